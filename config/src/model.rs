//! The validated, typed configuration: what the rest of `kafka-proxy` consumes.
//!
//! Every value here has been checked; paths are absolute (resolved against the
//! configuration file's directory) and secrets print as `***`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use kafka_proxy_core::api::ApiKey;
use kafka_proxy_core::config::{HostPattern, HostPort, Limits, PortOffset, SocketOptions};
use kafka_proxy_core::tls::config::TlsPolicy;
use regex::Regex;

use crate::error::Warning;

/// A loaded configuration. Build it with [`crate::load`].
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// Address every listener binds to (`bind_address`, default `0.0.0.0`).
    pub bind_address: IpAddr,
    /// The cluster and how the proxy connects and authenticates to it.
    pub upstream: Upstream,
    /// What clients connect with and how the proxy authenticates them.
    pub downstream: Downstream,
    /// How broker addresses are exposed to clients.
    pub mapping: BrokerMapping,
    /// Address overrides for upstream host names, in file order.
    pub resolve: Vec<Resolve>,
    /// The metrics / health endpoint, when configured.
    pub admin: Option<Admin>,
    /// Forbidden APIs, quotas and connection limits per principal.
    pub policy: Policy,
    /// Frame size, timeouts and buffers.
    pub limits: Limits,
    /// TCP keepalive, socket buffer sizes and `SO_REUSEPORT` (`socket`).
    pub socket: SocketOptions,
    /// Log level and format.
    pub logging: Logging,
    /// The runtime to drive the core with (`--runtime` overrides).
    pub runtime: RuntimeKind,
    /// Things that load but deserve attention; log them at start.
    pub warnings: Vec<Warning>,
}

/// A secret value (password, key). `Debug` and `Display` print `***`; read it with
/// [`Secret::expose`] only where it is used.
#[derive(Clone)]
pub struct Secret<T = String>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Secret<T> {
        Secret(value)
    }

    /// The secret value itself.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<T: PartialEq> PartialEq for Secret<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<T: Eq> Eq for Secret<T> {}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Kafka's `security.protocol`: whether a side uses TLS and whether it uses SASL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    /// No TLS, no SASL.
    Plaintext,
    /// TLS, no SASL.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// True for `SSL` and `SASL_SSL`.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// True for `SASL_PLAINTEXT` and `SASL_SSL`.
    pub fn uses_sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }

    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Parses a name, case-insensitively.
    pub fn parse(text: &str) -> Option<SecurityProtocol> {
        match text.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A SASL mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    /// `PLAIN` (RFC 4616).
    Plain,
    /// `SCRAM-SHA-256` (alias `SCRAM-256`).
    ScramSha256,
    /// `SCRAM-SHA-512` (alias `SCRAM-512`).
    ScramSha512,
    /// `OAUTHBEARER` (KIP-255); towards brokers with `upstream.oauthbearer`.
    OAuthBearer,
}

impl Mechanism {
    /// The IANA / Kafka name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// Parses a name or one of the seed proxy's aliases (`SCRAM-256`, `SCRAM-512`), case-insensitively.
    pub fn parse(text: &str) -> Option<Mechanism> {
        match text.to_ascii_uppercase().as_str() {
            "PLAIN" => Some(Mechanism::Plain),
            "SCRAM-SHA-256" | "SCRAM-256" => Some(Mechanism::ScramSha256),
            "SCRAM-SHA-512" | "SCRAM-512" => Some(Mechanism::ScramSha512),
            "OAUTHBEARER" => Some(Mechanism::OAuthBearer),
            _ => None,
        }
    }

    /// True for the SCRAM family.
    pub fn is_scram(self) -> bool {
        matches!(self, Mechanism::ScramSha256 | Mechanism::ScramSha512)
    }

    /// Length in bytes of SCRAM keys for this mechanism (the hash output), if SCRAM.
    pub fn scram_key_len(self) -> Option<usize> {
        match self {
            Mechanism::ScramSha256 => Some(32),
            Mechanism::ScramSha512 => Some(64),
            Mechanism::Plain | Mechanism::OAuthBearer => None,
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The upstream side: the cluster.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Bootstrap servers, in order (1 to 20: bootstrap slot `i` of `port_offset` is server `i`).
    pub bootstrap_servers: Vec<HostPort>,
    /// How the proxy talks to brokers.
    pub security_protocol: SecurityProtocol,
    /// TLS towards brokers; `Some` exactly when the protocol uses TLS.
    pub tls: Option<UpstreamTls>,
    /// Who the proxy is towards brokers.
    pub auth: UpstreamAuth,
    /// The token endpoint; `Some` exactly when the proxy logs in with OAUTHBEARER.
    pub oauthbearer: Option<UpstreamOAuth>,
    /// The client id of the proxy's own requests (`upstream.client_id`,
    /// default `kafka-proxy`).
    pub client_id: String,
}

/// TLS towards brokers.
#[derive(Debug, Clone)]
pub struct UpstreamTls {
    /// How broker certificates are verified.
    pub verify: UpstreamVerify,
    /// Client certificate presented to brokers.
    pub client_cert: Option<CertKey>,
    /// Versions, cipher suites and curves (`min_version`, `max_version`, `cipher_suites`, `curves`).
    pub policy: TlsPolicy,
}

/// How broker certificates are verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamVerify {
    /// The system's trust roots (default).
    SystemRoots,
    /// The CAs in this PEM file (`upstream.tls.ca_certs`).
    CaFile(PathBuf),
    /// Accept any certificate (`trust_server_certs: true`; tests only).
    TrustAll,
}

/// A certificate chain and its private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertKey {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key (plain, or encrypted PKCS#8 with `key_password`).
    pub key: PathBuf,
    /// The password of an encrypted key.
    pub key_password: Option<KeyPassword>,
}

/// Where the password of an encrypted private key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPassword {
    /// `key_password` (`${VAR}` expands in it).
    Value(Secret),
    /// `key_password_file`: the file's first line, read at load and at each reload.
    File(PathBuf),
}

/// Who the proxy is towards brokers.
#[derive(Debug, Clone)]
pub enum UpstreamAuth {
    /// No SASL upstream (`PLAINTEXT` or `SSL`).
    None,
    /// SASL upstream, but the proxy holds no credentials: the client's own SASL exchange is
    /// forwarded to the broker. Only valid when the proxy does not run SASL towards clients.
    PassThrough,
    /// One service identity for every client (`upstream.sasl_username` / `sasl_password`).
    Service {
        /// Mechanism used with brokers.
        mechanism: Mechanism,
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
    /// Per-principal upstream credentials (`auth_swap`).
    Swap {
        /// Mechanism used with brokers.
        mechanism: Mechanism,
        /// The credentials and the principal mapping.
        swap: AuthSwap,
    },
}

/// The seed proxy's auth swap: each client principal logs in upstream as a configured user.
#[derive(Debug, Clone)]
pub struct AuthSwap {
    /// `auth_swap.upstream_credentials`: upstream user → password.
    pub upstream_credentials: BTreeMap<String, Secret>,
    /// `auth_swap.mapping`: downstream principal → upstream user.
    pub mapping: BTreeMap<String, String>,
}

/// The principal of clients the proxy does not authenticate (seed 000).
pub const ANONYMOUS: &str = "$anonymous";

impl AuthSwap {
    /// The upstream user and password for a downstream principal, as the seed proxy
    /// decides: the principal's mapping entry; `$anonymous` without one maps to itself.
    pub fn upstream_for(&self, principal: &str) -> Option<(&str, &Secret)> {
        let user = match self.mapping.get(principal) {
            Some(user) => user.as_str(),
            None if principal == ANONYMOUS => ANONYMOUS,
            None => return None,
        };
        self.upstream_credentials.get_key_value(user).map(|(user, password)| (user.as_str(), password))
    }
}

/// The downstream side: clients.
#[derive(Debug, Clone)]
pub struct Downstream {
    /// What clients must speak.
    pub security_protocol: SecurityProtocol,
    /// TLS termination; `Some` exactly when the protocol uses TLS.
    pub tls: Option<DownstreamTls>,
    /// SASL the proxy runs towards clients; `None` without SASL, or when the
    /// client's own exchange passes through (`sasl_pass_through`).
    pub sasl: Option<DownstreamSasl>,
    /// SASL on both sides and no credentials at the proxy: the client's own
    /// exchange goes to the broker untouched.
    pub sasl_pass_through: bool,
}

/// TLS termination towards clients.
#[derive(Debug, Clone)]
pub struct DownstreamTls {
    /// The proxy's certificate and key (default `server.pem` / `server_key.pem` as in seed 000).
    pub cert_key: CertKey,
    /// `downstream.tls.ca_certs` (default `ca.pem` under mTLS): verifies client certificates
    /// under mTLS; the seed proxy also sends it after the server certificate to complete the chain.
    pub ca_certs: Option<PathBuf>,
    /// Whether clients must present a certificate.
    pub client_auth: ClientAuth,
    /// Certificate revocation lists (PEM or DER) for client certificates, re-read on reload.
    pub crl_files: Vec<PathBuf>,
    /// How a client certificate becomes a principal.
    pub principal_mapping: PrincipalMapping,
    /// Versions, cipher suites and curves (`min_version`, `max_version`, `cipher_suites`, `curves`).
    pub policy: TlsPolicy,
}

/// Client certificate requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// One-way TLS: clients' principal is `$anonymous` unless SASL names one.
    None,
    /// mTLS: clients must present a certificate signed by a CA in this PEM file.
    Required {
        /// The client CA file.
        ca_certs: PathBuf,
    },
    /// Clients may present a certificate (verified against this CA file and
    /// mapped to their principal); clients without one are `$anonymous`.
    Requested {
        /// The client CA file.
        ca_certs: PathBuf,
    },
}

impl ClientAuth {
    /// The client CA file, when certificates are asked for.
    pub fn ca_certs(&self) -> Option<&PathBuf> {
        match self {
            ClientAuth::None => None,
            ClientAuth::Required { ca_certs } | ClientAuth::Requested { ca_certs } => Some(ca_certs),
        }
    }
}

/// `downstream.tls.client_auth` as written (Kafka's `ssl.client.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAuthMode {
    None,
    Requested,
    Required,
}

/// How an mTLS client certificate's subject becomes a principal.
#[derive(Debug, Clone)]
pub enum PrincipalMapping {
    /// The subject's CN (seed 000 behaviour; the default).
    CommonName,
    /// Kafka's `ssl.principal.mapping.rules`: first matching rule wins.
    Rules(Vec<PrincipalRule>),
}

/// One Kafka-style principal mapping rule (`DEFAULT` or
/// `RULE:pattern/replacement/[LU]`), as written; checked at load with the
/// engine's own parser, which applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalRule(pub String);

/// SASL towards clients.
#[derive(Debug, Clone)]
pub struct DownstreamSasl {
    /// Mechanisms offered, in preference order, without duplicates.
    pub mechanisms: Vec<Mechanism>,
    /// Users the proxy accepts (for PLAIN and SCRAM).
    pub credentials: Credentials,
    /// Token validation; `Some` exactly when `OAUTHBEARER` is offered.
    pub oauthbearer: Option<OAuthBearer>,
    /// KIP-368 session lifetime (`None`: sessions never expire).
    pub session_lifetime: Option<Duration>,
}

/// Users the proxy accepts, merged from `downstream.credentials.users`,
/// `auth_swap.downstream_credentials` and `downstream.credentials.file` (no user in two places).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Users written in the configuration file.
    pub users: BTreeMap<String, UserCredential>,
    /// The credentials file, as read at load (the runtime may re-read it with
    /// [`crate::load_credentials_file`]).
    pub file: Option<CredentialsFile>,
}

impl Credentials {
    /// The credential of `user`: the configuration file's, else the credentials file's.
    pub fn get(&self, user: &str) -> Option<&UserCredential> {
        self.users.get(user).or_else(|| self.file.as_ref().and_then(|f| f.users.get(user)))
    }

    /// True when no user is configured anywhere.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.file.as_ref().is_none_or(|f| f.users.is_empty())
    }

    /// Every user name, sorted, without duplicates.
    pub fn user_names(&self) -> BTreeSet<&str> {
        let file_users = self.file.iter().flat_map(|f| f.users.keys());
        self.users.keys().chain(file_users).map(String::as_str).collect()
    }
}

/// A credentials file and the users it held when read.
#[derive(Debug, Clone)]
pub struct CredentialsFile {
    /// Absolute path.
    pub path: PathBuf,
    /// Its users.
    pub users: BTreeMap<String, UserCredential>,
}

/// How one user is checked.
#[derive(Debug, Clone)]
pub enum UserCredential {
    /// A password: PLAIN compares it, SCRAM hashes it at start.
    Password {
        /// The password.
        password: Secret,
        /// PBKDF2 iterations for the SCRAM credentials derived from it (`None`: the SASL
        /// module's default; when set, at least 4096).
        iterations: Option<u32>,
    },
    /// Pre-computed SCRAM credentials (usable with that one mechanism only).
    Scram(ScramCredential),
}

/// Stored SCRAM credentials (RFC 5802): what a broker keeps instead of the password.
#[derive(Debug, Clone)]
pub struct ScramCredential {
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: Mechanism,
    /// Salt.
    pub salt: Vec<u8>,
    /// PBKDF2 iterations, at least 4096.
    pub iterations: u32,
    /// `H(ClientKey)`, as long as the mechanism's hash.
    pub stored_key: Secret<Vec<u8>>,
    /// `HMAC(SaltedPassword, "Server Key")`, as long as the mechanism's hash.
    pub server_key: Secret<Vec<u8>>,
}

/// OAUTHBEARER token validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthBearer {
    /// Where the verification keys come from.
    pub keys: OAuthKeys,
    /// Required `iss`, if any.
    pub issuer: Option<String>,
    /// Accepted `aud` values: a token must name one of them (empty: any audience).
    pub audience: Vec<String>,
    /// The claim naming the principal (`sub_claim_name`; `None`: `sub`).
    pub sub_claim_name: Option<String>,
    /// The claim holding the scopes (`scope_claim_name`; `None`: `scope`).
    pub scope_claim_name: Option<String>,
    /// Scopes every token must carry.
    pub required_scopes: Vec<String>,
    /// Tolerance for `exp` / `nbf` (default 60 s).
    pub clock_skew: Duration,
}

/// The keys JWT signatures are checked with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthKeys {
    /// A JWKS document (`jwks_file`).
    JwksFile(PathBuf),
    /// One PEM public key (`public_key_path`).
    PublicKey(PathBuf),
    /// A JWKS endpoint (`jwks_url`), fetched over HTTPS and refreshed.
    JwksUrl(JwksUrl),
}

/// `downstream.oauthbearer.jwks_url` and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksUrl {
    /// The `https://` URL.
    pub url: String,
    /// `jwks_ca_certs`: the CAs to trust for it (absent: system roots).
    pub ca_certs: Option<PathBuf>,
    /// `jwks_refresh_ms` (default one hour, Kafka's).
    pub refresh: Duration,
    /// `jwks_min_refresh_interval_ms`: the shortest pause between refreshes for unknown `kid`s.
    pub min_refresh_interval: Duration,
}

/// `upstream.oauthbearer`: where the proxy obtains its tokens towards brokers.
/// The client id and secret are the identity's user name and password
/// (`UpstreamAuth::Service` or, under auth swap, each `upstream_credentials` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamOAuth {
    /// `token_endpoint_url`.
    pub token_endpoint_url: String,
    /// `scope`, sent with every token request when set.
    pub scope: Option<String>,
    /// `ca_certs`: the CAs to trust for the token endpoint (absent: system roots).
    pub ca_certs: Option<PathBuf>,
}

/// How broker addresses are exposed to clients.
#[derive(Debug, Clone)]
pub enum BrokerMapping {
    /// One port per broker.
    PortOffset(PortOffset),
    /// One TLS port; the broker is chosen by SNI host name.
    Sni(SniMapping),
}

/// The `sni` mapping.
#[derive(Debug, Clone)]
pub struct SniMapping {
    /// The single TLS port.
    pub bind_port: u16,
    /// Regex over upstream broker host names.
    pub upstream: Regex,
    /// Template for the advertised host name.
    pub downstream: SniTemplate,
}

/// A `broker_mapping.sni.downstream` template: literal text, `<$N>` capture groups of the
/// upstream regex and `<$id>` the broker id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniTemplate {
    /// The template as written.
    pub text: String,
    /// Its parts, in order.
    pub parts: Vec<TemplatePart>,
}

/// One part of an [`SniTemplate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    /// Text copied as is.
    Literal(String),
    /// `<$N>`: capture group `N` (1-based) of the upstream regex.
    Group(usize),
    /// `<$id>`: the broker id.
    BrokerId,
}

impl SniTemplate {
    /// The advertised host for a broker whose upstream host matched with `captures`.
    /// A group that did not participate in the match expands to nothing.
    pub fn render(&self, captures: &regex::Captures<'_>, broker_id: i32) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Literal(text) => out.push_str(text),
                TemplatePart::Group(n) => out.push_str(captures.get(*n).map_or("", |m| m.as_str())),
                TemplatePart::BrokerId => out.push_str(&broker_id.to_string()),
            }
        }
        out
    }
}

/// A `resolve` entry: connect to these addresses instead of resolving matching names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolve {
    /// `name`, `*.suffix` or `*`.
    pub host: HostPattern,
    /// IPv4 override.
    pub ipv4: Option<Ipv4Addr>,
    /// IPv6 override.
    pub ipv6: Option<Ipv6Addr>,
}

/// The admin endpoint (`/metrics`, `/health`, `/ready`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// Where it listens.
    pub bind: HostPort,
}

/// The `policy` section: APIs refused (with each API's own authorization
/// error), byte-rate quotas and connection limits, globally and per principal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    /// Refused for every principal.
    pub forbidden_api_keys: BTreeSet<ApiKey>,
    /// Quotas for every principal without its own (`policy.default`).
    pub default: Quotas,
    /// Per principal, by the name the proxy sees after SASL or mTLS mapping
    /// (`$anonymous` for clients nobody authenticated).
    pub principals: BTreeMap<String, PrincipalPolicy>,
    /// Kafka's `quota.window.num` (default 11).
    pub quota_window_num: u32,
    /// Kafka's `quota.window.size.seconds` (default 1).
    pub quota_window_size: Duration,
}

/// One principal's entry under `policy.principals`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrincipalPolicy {
    /// Refused for this principal, besides the global list.
    pub forbidden_api_keys: BTreeSet<ApiKey>,
    /// Its quotas (unset ones fall back to `policy.default`).
    pub quotas: Quotas,
}

/// Quotas in Kafka's vocabulary; `None`: not limited here.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Quotas {
    /// Produce bytes per second.
    pub producer_byte_rate: Option<u64>,
    /// Fetch bytes per second.
    pub consumer_byte_rate: Option<u64>,
    /// Kafka's request-time quota: parsed so it can be refused with a
    /// reason (a proxy cannot see broker request-handler time).
    pub request_percentage: Option<f64>,
    /// Connections held at once.
    pub max_connections: Option<u32>,
}

impl Quotas {
    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Quotas::default()
    }

    /// Each quota of `self`, or `fallback`'s where `self` has none.
    pub fn or(&self, fallback: &Quotas) -> Quotas {
        Quotas {
            producer_byte_rate: self.producer_byte_rate.or(fallback.producer_byte_rate),
            consumer_byte_rate: self.consumer_byte_rate.or(fallback.consumer_byte_rate),
            request_percentage: self.request_percentage.or(fallback.request_percentage),
            max_connections: self.max_connections.or(fallback.max_connections),
        }
    }
}

impl Policy {
    /// True when nothing is forbidden or limited.
    pub fn is_empty(&self) -> bool {
        self.forbidden_api_keys.is_empty()
            && self.default.is_empty()
            && self.principals.values().all(|p| p.forbidden_api_keys.is_empty() && p.quotas.is_empty())
    }
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logging {
    /// A `tracing` filter directive (`info`, `kafka_proxy=debug,warn`), with the usual
    /// aliases already mapped (`warning` is `warn`; `fatal`, `critical` and `panic` are
    /// `error`); `RUST_LOG` overrides.
    pub level: String,
    /// Output format.
    pub format: LogFormat,
}

/// `logging.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// `runtime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// kafka-proxy-tokio (default).
    Tokio,
    /// kafka-proxy-mio.
    Mio,
}

impl RuntimeKind {
    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Tokio => "tokio",
            RuntimeKind::Mio => "mio",
        }
    }
}

/// `broker_mapping.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MappingMode {
    PortOffset,
    Sni,
}
