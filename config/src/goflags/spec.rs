//! The Go proxy's `server` flags, as its help output (seed 002) lists them:
//! names, value kinds, defaults and help texts. The CLI builds its
//! `kafka-proxy server` command from this table, so the two never drift.

/// A flag's value kind, named as pflag's help shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `--flag` or `--flag=true|false`.
    Bool,
    /// One value (given twice: the last wins).
    String,
    /// One integer.
    Int,
    /// One unsigned integer.
    Uint,
    /// A Go duration (`10s`, `1m0s`, `500ms`).
    Duration,
    /// Repeatable; each occurrence one value.
    StringArray,
    /// Repeatable; each occurrence a comma-separated list.
    StringSlice,
    /// Repeatable; each occurrence a comma-separated list of integers.
    IntSlice,
}

impl FlagKind {
    /// pflag's name for the kind, shown as the value name in help.
    pub fn value_name(self) -> &'static str {
        match self {
            FlagKind::Bool => "",
            FlagKind::String => "string",
            FlagKind::Int => "int",
            FlagKind::Uint => "uint",
            FlagKind::Duration => "duration",
            FlagKind::StringArray => "stringArray",
            FlagKind::StringSlice => "stringSlice",
            FlagKind::IntSlice => "intSlice",
        }
    }

    /// True when the flag may be given more than once, all values counting.
    pub fn repeatable(self) -> bool {
        matches!(self, FlagKind::StringArray | FlagKind::StringSlice | FlagKind::IntSlice)
    }
}

/// One flag of the Go proxy's `server` command.
#[derive(Debug, Clone, Copy)]
pub struct FlagSpec {
    /// The long name, without `--`.
    pub name: &'static str,
    /// The value kind.
    pub kind: FlagKind,
    /// The Go proxy's default, as its help shows it.
    pub default: Option<&'static str>,
    /// The Go proxy's help text.
    pub help: &'static str,
}

const fn flag(
    name: &'static str,
    kind: FlagKind,
    default: Option<&'static str>,
    help: &'static str,
) -> FlagSpec {
    FlagSpec { name, kind, default, help }
}

use FlagKind::{Bool, Duration, Int, IntSlice, String, StringArray, StringSlice, Uint};

/// Every flag of the Go proxy's `server` command (seed 002's help output),
/// plus `--forward-proxy` (the Go proxy's later SOCKS5/HTTP egress flag).
pub const FLAGS: &[FlagSpec] = &[
    flag("auth-gateway-client-command", String, None, "Path to authentication plugin binary"),
    flag("auth-gateway-client-enable", Bool, None, "Enable gateway client authentication"),
    flag("auth-gateway-client-log-level", String, Some("trace"), "Log level of the auth plugin"),
    flag("auth-gateway-client-magic", Uint, None, "Magic bytes sent in the handshake"),
    flag("auth-gateway-client-method", String, None, "Authentication method"),
    flag("auth-gateway-client-param", StringArray, None, "Authentication plugin parameter"),
    flag("auth-gateway-client-timeout", Duration, Some("10s"), "Authentication timeout"),
    flag("auth-gateway-server-command", String, None, "Path to authentication plugin binary"),
    flag("auth-gateway-server-enable", Bool, None, "Enable proxy server authentication"),
    flag("auth-gateway-server-log-level", String, Some("trace"), "Log level of the auth plugin"),
    flag("auth-gateway-server-magic", Uint, None, "Magic bytes sent in the handshake"),
    flag("auth-gateway-server-method", String, None, "Authentication method"),
    flag("auth-gateway-server-param", StringArray, None, "Authentication plugin parameter"),
    flag("auth-gateway-server-timeout", Duration, Some("10s"), "Authentication timeout"),
    flag("auth-local-command", String, None, "Path to authentication plugin binary"),
    flag(
        "auth-local-enable",
        Bool,
        None,
        "Enable local SASL/PLAIN authentication performed by listener - SASL handshake will not be passed to kafka brokers",
    ),
    flag("auth-local-log-level", String, Some("trace"), "Log level of the auth plugin"),
    flag("auth-local-param", StringArray, None, "Authentication plugin parameter"),
    flag("auth-local-timeout", Duration, Some("10s"), "Authentication timeout"),
    flag(
        "bootstrap-server-mapping",
        StringArray,
        None,
        "Mapping of Kafka bootstrap server address to local address (host:port,host:port(,advhost:advport))",
    ),
    flag("debug-enable", Bool, None, "Enable Debug endpoint"),
    flag("debug-listen-address", String, Some("0.0.0.0:6060"), "Debug listen address"),
    flag("default-listener-ip", String, Some("127.0.0.1"), "Default listener IP"),
    flag(
        "dynamic-sequential-min-port",
        Int,
        None,
        "If set to non-zero, makes the dynamic listener use a sequential port starting with this value rather than a random port every time",
    ),
    flag("dynamic-listeners-disable", Bool, None, "Disable dynamic listeners."),
    flag(
        "external-server-mapping",
        StringArray,
        None,
        "Mapping of Kafka server address to external address (host:port,host:port). A listener for the external address is not started",
    ),
    flag(
        "forbidden-api-keys",
        IntSlice,
        None,
        "Forbidden Kafka request types. The restriction should prevent some Kafka operations e.g. 20 - DeleteTopics",
    ),
    flag("forward-proxy", String, None, "URL of the forward proxy. Supported schemas are socks5 and http"),
    flag("http-disable", Bool, None, "Disable HTTP endpoints"),
    flag("http-health-path", String, Some("/health"), "Path on which to health endpoint"),
    flag("http-listen-address", String, Some("0.0.0.0:9080"), "Address that kafka-proxy is listening on"),
    flag("http-metrics-path", String, Some("/metrics"), "Path on which to expose metrics"),
    flag(
        "kafka-client-id",
        String,
        Some("kafka-proxy"),
        "An optional identifier to track the source of requests",
    ),
    flag(
        "kafka-connection-read-buffer-size",
        Int,
        None,
        "Size of the operating system's receive buffer associated with the connection. If zero, system default is used",
    ),
    flag(
        "kafka-connection-write-buffer-size",
        Int,
        None,
        "Sets the size of the operating system's transmit buffer associated with the connection. If zero, system default is used",
    ),
    flag("kafka-dial-timeout", Duration, Some("15s"), "How long to wait for the initial connection"),
    flag(
        "kafka-keep-alive",
        Duration,
        Some("1m0s"),
        "Keep alive period for an active network connection. If zero, keep-alives are disabled",
    ),
    flag(
        "kafka-max-open-requests",
        Int,
        Some("256"),
        "Maximal number of open requests pro tcp connection before sending on it blocks",
    ),
    flag("kafka-read-timeout", Duration, Some("30s"), "How long to wait for a response"),
    flag("kafka-write-timeout", Duration, Some("30s"), "How long to wait for a transmit"),
    flag("log-format", String, Some("text"), "Log format text or json"),
    flag("log-level", String, Some("info"), "Log level debug, info, warning, error, fatal or panic"),
    flag(
        "proxy-listener-ca-chain-cert-file",
        String,
        None,
        "PEM encoded CA's certificate file. If provided, client certificate is required and verified",
    ),
    flag("proxy-listener-cert-file", String, None, "PEM encoded file with server certificate"),
    flag("proxy-listener-cipher-suites", StringSlice, None, "List of supported cipher suites"),
    flag("proxy-listener-curve-preferences", StringSlice, None, "List of curve preferences"),
    flag(
        "proxy-listener-keep-alive",
        Duration,
        Some("1m0s"),
        "Keep alive period for an active network connection. If zero, keep-alives are disabled",
    ),
    flag(
        "proxy-listener-key-file",
        String,
        None,
        "PEM encoded file with private key for the server certificate",
    ),
    flag("proxy-listener-key-password", String, None, "Password to decrypt rsa private key"),
    flag(
        "proxy-listener-read-buffer-size",
        Int,
        None,
        "Size of the operating system's receive buffer associated with the connection. If zero, system default is used",
    ),
    flag("proxy-listener-tls-enable", Bool, None, "Whether or not to use TLS listener"),
    flag(
        "proxy-listener-write-buffer-size",
        Int,
        None,
        "Sets the size of the operating system's transmit buffer associated with the connection. If zero, system default is used",
    ),
    flag("proxy-request-buffer-size", Int, Some("4096"), "Request buffer size pro tcp connection"),
    flag("proxy-response-buffer-size", Int, Some("4096"), "Response buffer size pro tcp connection"),
    flag("sasl-enable", Bool, None, "Connect using SASL/PLAIN"),
    flag(
        "sasl-jaas-config-file",
        String,
        None,
        "Location of JAAS config file with SASL username and password",
    ),
    flag("sasl-password", String, None, "SASL user password"),
    flag("sasl-username", String, None, "SASL user name"),
    flag("tls-ca-chain-cert-file", String, None, "PEM encoded CA's certificate file"),
    flag("tls-client-cert-file", String, None, "PEM encoded file with client certificate"),
    flag("tls-client-key-file", String, None, "PEM encoded file with private key for the client certificate"),
    flag("tls-client-key-password", String, None, "Password to decrypt rsa private key"),
    flag("tls-enable", Bool, None, "Whether or not to use TLS when connecting to the broker"),
    flag(
        "tls-insecure-skip-verify",
        Bool,
        None,
        "It controls whether a client verifies the server's certificate chain and host name",
    ),
];
