//! `kafka-proxy server [flags]`: the Go kafka-proxy's command line (seed
//! 002's help output) translated into this proxy's configuration.
//!
//! The translation is YAML text ([`Translation::yaml`]) that
//! [`crate::load_str`] loads like any configuration file, so the flags and
//! the file they print (`--print-config`) are one configuration by
//! construction: the printed file passes `kafka-proxy check` and runs the
//! same. File names become absolute (against the working directory), `$` is
//! written `$$` so no flag value is ever expanded, and each key remembers
//! the flag it came from for error messages.
//!
//! Flags whose feature has no equivalent (`--auth-gateway-*`, `--debug-*`)
//! are refused with what to use instead; a few Go tuning knobs without an
//! equivalent are noted and ignored.

mod doc;
mod jaas;
mod spec;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use spec::{FLAGS, FlagKind, FlagSpec};

use crate::scalar::parse_host_port;
use doc::{Doc, Value};

/// A flag given on the command line, with every value it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenFlag {
    /// The long name, without `--`.
    pub name: String,
    /// Its values, in order (`true` for a bare boolean flag).
    pub values: Vec<String>,
}

/// A flag that cannot be translated, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagError {
    /// The flag, without `--`.
    pub flag: String,
    /// What was expected, or what to use instead.
    pub message: String,
}

impl std::fmt::Display for FlagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--{}: {}", self.flag, self.message)
    }
}

impl std::error::Error for FlagError {}

/// The configuration the flags mean.
#[derive(Debug, Clone)]
pub struct Translation {
    /// The configuration file, with a header naming the flags and notes.
    pub yaml: String,
    /// What was ignored, and why (also in the YAML's header).
    pub notes: Vec<String>,
    /// Key path → the flag it came from.
    sources: BTreeMap<String, String>,
}

impl Translation {
    /// The flag a configuration key came from: that of the longest key
    /// prefix that has one, else that of the first key below it.
    pub fn flag_for(&self, key_path: &str) -> Option<&str> {
        let mut path = key_path;
        loop {
            if let Some(flag) = self.sources.get(path) {
                return Some(flag);
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None => break,
            }
        }
        let below = format!("{key_path}.");
        self.sources.iter().find(|(k, _)| k.starts_with(&below)).map(|(_, f)| f.as_str())
    }
}

/// `--auth-local-timeout` when not given (the Go proxy's default).
const GO_AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// Our socket keepalive default, which equals the Go proxy's (`1m0s`).
const KEEPALIVE_DEFAULT: Duration = Duration::from_secs(60);

/// Translates the Go proxy's `server` flags (those given on the command
/// line) into a configuration; relative file names are taken from `cwd`.
pub fn translate(given: &[GivenFlag], cwd: &Path) -> Result<Translation, FlagError> {
    let flags = Flags::new(given)?;
    let mut t = Translator { flags, cwd, doc: Doc::default(), notes: Vec::new() };
    t.refuse_without_equivalent()?;
    t.mapping()?;
    t.upstream()?;
    t.downstream()?;
    t.operations()?;
    let Translator { doc, notes, flags, .. } = t;
    let mut header = String::from(
        "# kafka-proxy configuration translated from the Go kafka-proxy's flags:\n#   kafka-proxy server",
    );
    for g in given {
        for v in &g.values {
            let shown = if secret_flag(&g.name) { "***" } else { v.as_str() };
            header.push_str(&format!(" --{}={}", g.name, shown.replace('\n', " ")));
        }
    }
    header.push('\n');
    for note in &notes {
        header.push_str(&format!("# note: {note}\n"));
    }
    drop(flags);
    let (yaml, sources) = doc.render();
    Ok(Translation { yaml: header + &yaml, notes, sources })
}

/// Flags whose values are secrets (never echoed).
fn secret_flag(name: &str) -> bool {
    name.ends_with("password") || name == "auth-local-param" || name == "forward-proxy"
}

/// The given flags, by name, checked against the table.
struct Flags<'a> {
    by_name: BTreeMap<&'a str, &'a [String]>,
}

impl<'a> Flags<'a> {
    fn new(given: &'a [GivenFlag]) -> Result<Flags<'a>, FlagError> {
        let mut by_name = BTreeMap::new();
        for g in given {
            if !FLAGS.iter().any(|f| f.name == g.name) {
                return Err(FlagError {
                    flag: g.name.clone(),
                    message: "not a flag of the Go kafka-proxy's server command".into(),
                });
            }
            by_name.insert(g.name.as_str(), g.values.as_slice());
        }
        Ok(Flags { by_name })
    }

    fn given(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// The last value given.
    fn last(&self, name: &str) -> Option<&'a str> {
        self.by_name.get(name).and_then(|v| v.last()).map(String::as_str)
    }

    /// Every value, comma lists split for slice kinds.
    fn all(&self, name: &str) -> Vec<&'a str> {
        let values = self.by_name.get(name).copied().unwrap_or_default();
        let slice = FLAGS
            .iter()
            .any(|f| f.name == name && matches!(f.kind, FlagKind::StringSlice | FlagKind::IntSlice));
        if slice {
            values.iter().flat_map(|v| v.split(',')).map(str::trim).filter(|v| !v.is_empty()).collect()
        } else {
            values.iter().map(String::as_str).collect()
        }
    }

    fn bool(&self, name: &str) -> Result<bool, FlagError> {
        match self.last(name) {
            None => Ok(false),
            Some(v) => match v {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
                "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
                _ => Err(err(name, format!("expected true or false, got {v:?}"))),
            },
        }
    }

    fn duration(&self, name: &str) -> Result<Option<Duration>, FlagError> {
        self.last(name)
            .map(|v| {
                go_duration(v).ok_or_else(|| {
                    err(name, format!("expected a duration like 10s, 1m0s or 500ms, got {v:?}"))
                })
            })
            .transpose()
    }

    fn int(&self, name: &str) -> Result<Option<i64>, FlagError> {
        self.last(name)
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| err(name, format!("expected an integer, got {v:?}")))
            })
            .transpose()
    }
}

fn err(flag: &str, message: impl Into<String>) -> FlagError {
    FlagError { flag: flag.to_owned(), message: message.into() }
}

/// A Go `time.Duration` string: `300ms`, `1.5h`, `2h45m`, `1m0s`, `0`.
pub(crate) fn go_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if number_end == 0 {
            return None;
        }
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_end..];
    }
    (total.is_finite() && total < 1e12).then(|| Duration::from_secs_f64(total))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

struct Translator<'a> {
    flags: Flags<'a>,
    cwd: &'a Path,
    doc: Doc,
    notes: Vec<String>,
}

impl Translator<'_> {
    fn set(&mut self, path: &str, value: Value, flag: &str) {
        self.doc.set(path, value, flag);
    }

    fn path(&self, text: &str) -> String {
        let p = PathBuf::from(text);
        let full = if p.is_absolute() { p } else { self.cwd.join(p) };
        full.display().to_string()
    }

    fn refuse_without_equivalent(&self) -> Result<(), FlagError> {
        for name in self.flags.by_name.keys() {
            if name.starts_with("auth-gateway-") {
                return Err(err(
                    name,
                    "the Go proxy's gateway authentication (proxy to proxy, google-id) has no equivalent here: \
                     authenticate the proxies to each other with mTLS instead (--proxy-listener-ca-chain-cert-file \
                     on the server side, --tls-client-cert-file/--tls-client-key-file on the client side)",
                ));
            }
            if name.starts_with("debug-") {
                return Err(err(
                    name,
                    "the Go pprof debug endpoint has no equivalent here: use --log-level=debug (or RUST_LOG) \
                     for diagnostics and the admin endpoint's /metrics (--http-listen-address)",
                ));
            }
        }
        Ok(())
    }

    /// `--bootstrap-server-mapping`, `--external-server-mapping`, dynamic listeners.
    fn mapping(&mut self) -> Result<(), FlagError> {
        const MAP: &str = "bootstrap-server-mapping";
        let mappings = self.flags.all(MAP);
        if mappings.is_empty() {
            return Err(err(
                MAP,
                "required: at least one remote-host:port,local-host:port[,advertised-host:port]",
            ));
        }
        let default_ip = match self.flags.last("default-listener-ip") {
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(text) => listen_ip(text)
                .ok_or_else(|| err("default-listener-ip", format!("expected an IP address, got {text:?}")))?,
        };
        self.set("bind_address", Value::str(default_ip.to_string()), "default-listener-ip");
        let mut servers = Vec::new();
        let mut brokers = Vec::new();
        let mut top_port = 0u16;
        for entry in self.flags.all("external-server-mapping") {
            // Other servers listen there, on this host maybe: dynamic listeners stay above.
            if let Some(port) = entry.rsplit(':').next().and_then(|p| p.trim().parse::<u16>().ok()) {
                top_port = top_port.max(port);
            }
        }
        for entry in mappings {
            let parts: Vec<&str> = entry.split(',').map(str::trim).collect();
            let (remote, local, advertised) = match parts.as_slice() {
                [r, l] => (*r, *l, None),
                [r, l, a] => (*r, *l, Some(*a)),
                _ => {
                    return Err(err(
                        MAP,
                        format!(
                            "expected remote-host:port,local-host:port[,advertised-host:port], got {entry:?}"
                        ),
                    ));
                }
            };
            let remote =
                parse_host_port(remote).map_err(|e| err(MAP, format!("remote address in {entry:?}: {e}")))?;
            let (ip, port) = split_listen(local).ok_or_else(|| {
                err(MAP, format!("local address in {entry:?}: expected ip:port (or localhost:port, or :port), got {local:?}"))
            })?;
            top_port = top_port.max(port);
            let listen = std::net::SocketAddr::new(ip, port);
            let mut broker = vec![
                ("upstream".to_owned(), Value::str(remote.to_string())),
                ("listen".to_owned(), Value::str(listen.to_string())),
            ];
            if let Some(a) = advertised {
                let a = parse_host_port(a)
                    .map_err(|e| err(MAP, format!("advertised address in {entry:?}: {e}")))?;
                broker.push(("advertised".to_owned(), Value::str(a.to_string())));
            } else if ip.is_unspecified() {
                // The Go proxy advertises the listen address as written; so does this translation.
                broker.push((
                    "advertised".to_owned(),
                    Value::str(format!("{local_host}:{port}", local_host = ip)),
                ));
            }
            servers.push(Value::str(remote.to_string()));
            brokers.push(Value::Map(broker));
        }
        self.set("upstream.bootstrap_servers", Value::List(servers), MAP);
        self.set("broker_mapping.mode", Value::str("static"), MAP);
        self.set("broker_mapping.static.brokers", Value::List(brokers), MAP);

        const EXT: &str = "external-server-mapping";
        let mut external = Vec::new();
        for entry in self.flags.all(EXT) {
            let Some((remote, advertised)) = entry.split_once(',') else {
                return Err(err(
                    EXT,
                    format!("expected remote-host:port,advertised-host:port, got {entry:?}"),
                ));
            };
            let remote = parse_host_port(remote.trim())
                .map_err(|e| err(EXT, format!("remote address in {entry:?}: {e}")))?;
            let advertised = parse_host_port(advertised.trim())
                .map_err(|e| err(EXT, format!("external address in {entry:?}: {e}")))?;
            external.push(Value::Map(vec![
                ("upstream".to_owned(), Value::str(remote.to_string())),
                ("advertised".to_owned(), Value::str(advertised.to_string())),
            ]));
        }
        if !external.is_empty() {
            self.set("broker_mapping.external", Value::List(external), EXT);
        }

        const DYN: &str = "broker_mapping.static.dynamic_listeners";
        if self.flags.bool("dynamic-listeners-disable")? {
            self.set(&format!("{DYN}.enabled"), Value::Bool(false), "dynamic-listeners-disable");
            return Ok(());
        }
        let first_port = match self.flags.int("dynamic-sequential-min-port")? {
            Some(p) if p != 0 => u16::try_from(p).ok().filter(|p| *p != 0).ok_or_else(|| {
                err("dynamic-sequential-min-port", format!("expected a port 1-65535, got {p}"))
            })?,
            _ => {
                // Go picks random free ports; here brokers get first_port + node id
                // (deterministic, so replicas agree): right above the mapped ports.
                self.notes.push(format!(
                    "brokers in neither mapping get a listener on {} + their node id (Go used random ports; \
                     pass --dynamic-sequential-min-port to choose the first, or --dynamic-listeners-disable)",
                    u32::from(top_port) + 1
                ));
                top_port
                    .checked_add(1)
                    .ok_or_else(|| err(MAP, "no port left above the mapped ones for dynamic listeners"))?
            }
        };
        let max_broker_id = u16::MAX.saturating_sub(first_port).min(crate::validate::DEFAULT_MAX_BROKER_ID);
        self.set(&format!("{DYN}.bind"), Value::str(default_ip.to_string()), "default-listener-ip");
        self.set(
            &format!("{DYN}.first_port"),
            Value::Int(i64::from(first_port)),
            "dynamic-sequential-min-port",
        );
        self.set(
            &format!("{DYN}.max_broker_id"),
            Value::Int(i64::from(max_broker_id)),
            "dynamic-sequential-min-port",
        );
        Ok(())
    }

    /// `<side>.security_protocol` from a TLS switch and a SASL switch; both
    /// switches' values.
    fn security_protocol(
        &mut self,
        side: &str,
        tls_flag: &str,
        sasl_flag: &str,
    ) -> Result<(bool, bool), FlagError> {
        let tls = self.flags.bool(tls_flag)?;
        let sasl = self.flags.bool(sasl_flag)?;
        let key = format!("{side}.security_protocol");
        self.set(&key, Value::str(protocol_name(tls, sasl)), if tls { tls_flag } else { sasl_flag });
        Ok((tls, sasl))
    }

    /// TLS and SASL towards brokers, client id, egress.
    fn upstream(&mut self) -> Result<(), FlagError> {
        let (tls, sasl) = self.security_protocol("upstream", "tls-enable", "sasl-enable")?;
        let tls_flags = [
            "tls-ca-chain-cert-file",
            "tls-client-cert-file",
            "tls-client-key-file",
            "tls-client-key-password",
            "tls-insecure-skip-verify",
        ];
        if tls {
            for (flag, key) in [
                ("tls-ca-chain-cert-file", "ca_certs"),
                ("tls-client-cert-file", "client_cert"),
                ("tls-client-key-file", "client_key"),
            ] {
                if let Some(file) = self.flags.last(flag) {
                    let file = self.path(file);
                    self.set(&format!("upstream.tls.{key}"), Value::str(file), flag);
                }
            }
            if let Some(pw) = self.flags.last("tls-client-key-password") {
                self.set("upstream.tls.key_password", Value::str(pw), "tls-client-key-password");
            }
            if self.flags.bool("tls-insecure-skip-verify")? {
                self.set("upstream.tls.trust_server_certs", Value::Bool(true), "tls-insecure-skip-verify");
            }
        } else if let Some(flag) = tls_flags.iter().find(|f| self.flags.given(f)) {
            self.notes.push(format!("--{flag} is ignored without --tls-enable (as the Go proxy does)"));
        }
        let jaas = self.flags.last("sasl-jaas-config-file");
        let (user, password) = (self.flags.last("sasl-username"), self.flags.last("sasl-password"));
        if sasl {
            self.set("upstream.sasl_mechanism", Value::str("PLAIN"), "sasl-enable");
            let (user, password, from) = match (jaas, user, password) {
                (Some(file), None, None) => {
                    let path = self.path(file);
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| err("sasl-jaas-config-file", format!("cannot read {path}: {e}")))?;
                    let plain = jaas::parse(&text)
                        .map_err(|e| err("sasl-jaas-config-file", format!("{path}: {e}")))?;
                    (plain.username, plain.password, "sasl-jaas-config-file")
                }
                (Some(_), _, _) => {
                    return Err(err(
                        "sasl-jaas-config-file",
                        "expected either --sasl-jaas-config-file or --sasl-username/--sasl-password, not both",
                    ));
                }
                (None, Some(u), Some(p)) => (u.to_owned(), p.to_owned(), "sasl-username"),
                (None, _, _) => {
                    return Err(err(
                        "sasl-enable",
                        "expected --sasl-username and --sasl-password, or --sasl-jaas-config-file",
                    ));
                }
            };
            self.set("upstream.sasl_username", Value::str(user), from);
            self.set(
                "upstream.sasl_password",
                Value::str(password),
                if from == "sasl-username" { "sasl-password" } else { from },
            );
        } else if jaas.is_some() || user.is_some() || password.is_some() {
            self.notes.push(
                "--sasl-username/--sasl-password/--sasl-jaas-config-file are ignored without --sasl-enable"
                    .into(),
            );
        }
        if let Some(id) = self.flags.last("kafka-client-id") {
            self.set("upstream.client_id", Value::str(id), "kafka-client-id");
        }
        if let Some(url) = self.flags.last("forward-proxy") {
            self.set("upstream.forward_proxy", Value::str(url), "forward-proxy");
        }
        Ok(())
    }

    /// TLS and local authentication towards clients.
    fn downstream(&mut self) -> Result<(), FlagError> {
        let (tls, auth) =
            self.security_protocol("downstream", "proxy-listener-tls-enable", "auth-local-enable")?;
        if tls {
            for (flag, key) in [
                ("proxy-listener-cert-file", "cert"),
                ("proxy-listener-key-file", "key"),
                ("proxy-listener-ca-chain-cert-file", "ca_certs"),
            ] {
                if let Some(file) = self.flags.last(flag) {
                    let file = self.path(file);
                    self.set(&format!("downstream.tls.{key}"), Value::str(file), flag);
                }
            }
            if self.flags.given("proxy-listener-ca-chain-cert-file") {
                self.set(
                    "downstream.tls.mtls_enabled",
                    Value::Bool(true),
                    "proxy-listener-ca-chain-cert-file",
                );
            }
            if let Some(pw) = self.flags.last("proxy-listener-key-password") {
                self.set("downstream.tls.key_password", Value::str(pw), "proxy-listener-key-password");
            }
            for (flag, key) in [
                ("proxy-listener-cipher-suites", "cipher_suites"),
                ("proxy-listener-curve-preferences", "curves"),
            ] {
                let values = self.flags.all(flag);
                if !values.is_empty() {
                    let list = values.into_iter().map(Value::str).collect();
                    self.set(&format!("downstream.tls.{key}"), Value::List(list), flag);
                }
            }
        }
        if !auth {
            return Ok(());
        }
        self.set("downstream.sasl_mechanism", Value::str("PLAIN"), "auth-local-enable");
        let Some(command) = self.flags.last("auth-local-command") else {
            return Err(err(
                "auth-local-enable",
                "expected --auth-local-command (the plugin that checks user and password)",
            ));
        };
        let params = self.flags.all("auth-local-param");
        let plugin = Path::new(command).file_name().and_then(|n| n.to_str()).unwrap_or_default();
        const EXT: &str = "downstream.credentials.external";
        match plugin {
            // The Go project's own plugins, whose work is built in here.
            "auth-user" => {
                let (user, password) = auth_user_params(&params)?;
                self.doc.set_keys(
                    &["downstream", "credentials", "users", &user],
                    Value::str(password),
                    "auth-local-param",
                );
                self.notes.push("--auth-local-command auth-user (the Go project's single-user plugin) is built in: the user is defined in downstream.credentials.users".into());
                return Ok(());
            }
            "auth-ldap" => {
                for (key, value) in auth_ldap_params(&params)? {
                    self.set(&format!("{EXT}.ldap.{key}"), value, "auth-local-param");
                }
                self.notes.push("--auth-local-command auth-ldap (the Go project's LDAP plugin) is built in: its parameters are in downstream.credentials.external.ldap".into());
            }
            _ => {
                let command = if command.contains('/') { self.path(command) } else { command.to_owned() };
                self.set(&format!("{EXT}.exec.command"), Value::str(command), "auth-local-command");
                if !params.is_empty() {
                    let list = params.into_iter().map(Value::str).collect();
                    self.set(&format!("{EXT}.exec.args"), Value::List(list), "auth-local-param");
                }
                self.notes.push("the --auth-local-command plugin must speak kafka-proxy's line-based JSON protocol (README: external authentication), not Go's plugin RPC".into());
            }
        }
        let timeout = self.flags.duration("auth-local-timeout")?.unwrap_or(GO_AUTH_TIMEOUT);
        if timeout.is_zero() {
            return Err(err("auth-local-timeout", "expected a positive duration"));
        }
        self.set(&format!("{EXT}.timeout_ms"), Value::Int(millis(timeout)), "auth-local-timeout");
        // The handshake must outlast the plugin, so a slow plugin yields error 58, not a dropped connection.
        let handshake = timeout + Duration::from_secs(5);
        if handshake > Duration::from_secs(10) {
            self.set("limits.handshake_timeout_ms", Value::Int(millis(handshake)), "auth-local-timeout");
        }
        if self.flags.given("auth-local-log-level") {
            self.notes.push(
                "--auth-local-log-level is ignored: the plugin's stderr goes to the proxy's log".into(),
            );
        }
        Ok(())
    }

    /// Policy, admin endpoint, logging, timeouts, sockets.
    fn operations(&mut self) -> Result<(), FlagError> {
        let keys = self.flags.all("forbidden-api-keys");
        if !keys.is_empty() {
            let mut list = Vec::new();
            for k in keys {
                let n: i64 = k
                    .parse()
                    .map_err(|_| err("forbidden-api-keys", format!("expected API key numbers, got {k:?}")))?;
                list.push(Value::Int(n));
            }
            self.set("policy.forbidden_api_keys", Value::List(list), "forbidden-api-keys");
        }
        if !self.flags.bool("http-disable")? {
            match self.flags.last("http-listen-address") {
                Some(address) => self.set("admin.bind", Value::str(address), "http-listen-address"),
                None => self.set(
                    "admin.bind",
                    Value::str("0.0.0.0:9080"),
                    "http-listen-address default 0.0.0.0:9080, or --http-disable",
                ),
            }
            for (flag, key, default) in [
                ("http-health-path", "admin.health_path", "/health"),
                ("http-metrics-path", "admin.metrics_path", "/metrics"),
            ] {
                if let Some(given) = self.flags.last(flag).filter(|p| *p != default) {
                    self.set(key, Value::str(given), flag);
                }
            }
        }
        if let Some(format) = self.flags.last("log-format") {
            if !["text", "json"].contains(&format) {
                return Err(err("log-format", format!("expected text or json, got {format:?}")));
            }
            self.set("logging.format", Value::str(format), "log-format");
        }
        if let Some(level) = self.flags.last("log-level") {
            let level = match level.to_ascii_lowercase().as_str() {
                "trace" => "trace",
                "debug" => "debug",
                "info" => "info",
                "warn" | "warning" => "warn",
                "error" | "fatal" | "panic" => "error",
                other => {
                    return Err(err(
                        "log-level",
                        format!("expected debug, info, warning, error, fatal or panic, got {other:?}"),
                    ));
                }
            };
            self.set("logging.level", Value::str(level), "log-level");
        }
        if let Some(d) = self.flags.duration("kafka-dial-timeout")? {
            self.set("limits.connect_timeout_ms", Value::Int(millis(d).max(1)), "kafka-dial-timeout");
        }
        if let Some(d) = self.flags.duration("kafka-read-timeout")? {
            self.set("limits.request_timeout_ms", Value::Int(millis(d).max(1)), "kafka-read-timeout");
        }
        if let Some(n) = self.flags.int("kafka-max-open-requests")? {
            if n <= 0 {
                return Err(err("kafka-max-open-requests", format!("expected a positive number, got {n}")));
            }
            self.set("limits.max_in_flight", Value::Int(n), "kafka-max-open-requests");
        }
        // One keepalive and one pair of buffer sizes serve both sides here.
        let keepalive =
            self.same("kafka-keep-alive", "proxy-listener-keep-alive", |t, f| t.flags.duration(f))?;
        if let Some((d, flag)) = keepalive
            && d != KEEPALIVE_DEFAULT
        {
            self.set("socket.keepalive_ms", Value::Int(millis(d)), flag);
        }
        for (a, b, key) in [
            ("kafka-connection-read-buffer-size", "proxy-listener-read-buffer-size", "receive_buffer_bytes"),
            ("kafka-connection-write-buffer-size", "proxy-listener-write-buffer-size", "send_buffer_bytes"),
        ] {
            if let Some((n, flag)) = self.same(a, b, |t, f| t.flags.int(f))?
                && n != 0
            {
                if n < 0 {
                    return Err(err(flag, format!("expected a size in bytes, got {n}")));
                }
                self.set(&format!("socket.{key}"), Value::Int(n), flag);
            }
        }
        for flag in ["kafka-write-timeout", "proxy-request-buffer-size", "proxy-response-buffer-size"] {
            if self.flags.given(flag) {
                self.notes.push(format!(
                    "--{flag} has no equivalent and is ignored (writes are paced by back-pressure, bounded by \
                     limits.max_buffered_bytes and limits.idle_timeout_ms)"
                ));
            }
        }
        Ok(())
    }

    /// The value of whichever of two flags was given; both given must agree.
    fn same<T: PartialEq + Copy>(
        &self,
        a: &'static str,
        b: &'static str,
        read: impl Fn(&Self, &str) -> Result<Option<T>, FlagError>,
    ) -> Result<Option<(T, &'static str)>, FlagError> {
        match (read(self, a)?, read(self, b)?) {
            (Some(x), Some(y)) if x != y => Err(err(
                b,
                format!("differs from --{a}: kafka-proxy applies one setting to both sides' sockets"),
            )),
            (Some(x), _) => Ok(Some((x, a))),
            (None, Some(y)) => Ok(Some((y, b))),
            (None, None) => Ok(None),
        }
    }
}

/// Kafka's `security.protocol` for a side with or without TLS and SASL.
fn protocol_name(tls: bool, sasl: bool) -> &'static str {
    use crate::model::SecurityProtocol as P;
    match (tls, sasl) {
        (false, false) => P::Plaintext,
        (true, false) => P::Ssl,
        (false, true) => P::SaslPlaintext,
        (true, true) => P::SaslSsl,
    }
    .name()
}

/// `localhost`, an IP literal, or empty (all interfaces).
fn listen_ip(text: &str) -> Option<IpAddr> {
    let unbracketed = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    match unbracketed {
        "" => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        "localhost" => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ip => ip.parse().ok(),
    }
}

/// A Go listen address: `ip:port`, `localhost:port`, `:port`.
fn split_listen(text: &str) -> Option<(IpAddr, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    Some((listen_ip(host)?, port))
}

/// `--username=U --password=P` of the Go project's auth-user plugin.
fn auth_user_params(params: &[&str]) -> Result<(String, String), FlagError> {
    let mut user = None;
    let mut password = None;
    for p in params {
        match p.trim_start_matches('-').split_once('=') {
            Some(("username", v)) => user = Some(v.to_owned()),
            Some(("password", v)) => password = Some(v.to_owned()),
            _ => {
                return Err(err(
                    "auth-local-param",
                    "auth-user takes --username=USER and --password=PASSWORD".to_owned(),
                ));
            }
        }
    }
    match (user, password) {
        (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => Ok((u, p)),
        _ => Err(err("auth-local-param", "auth-user needs --username=USER and --password=PASSWORD")),
    }
}

/// The Go project's auth-ldap plugin parameters → `downstream.credentials.external.ldap`.
fn auth_ldap_params(params: &[&str]) -> Result<Vec<(&'static str, Value)>, FlagError> {
    let mut url = None;
    let mut user_dn = None;
    let mut user_attr = "uid".to_owned();
    let mut out = Vec::new();
    for p in params {
        match p.trim_start_matches('-').split_once('=') {
            Some(("url", v)) => url = Some(v.to_owned()),
            Some(("user-dn", v)) => user_dn = Some(v.to_owned()),
            Some(("user-attr", v)) => user_attr = v.to_owned(),
            Some(("start-tls", v)) => out.push(("start_tls", Value::Bool(matches!(v, "true" | "1" | "t")))),
            Some(("ldap-ca-cert-file", v)) => out.push(("ca_certs", Value::str(v))),
            _ => {
                return Err(err(
                    "auth-local-param",
                    format!(
                        "auth-ldap parameter {p:?} has no built-in equivalent (supported: --url, --user-dn, \
                         --user-attr, --start-tls, --ldap-ca-cert-file); write downstream.credentials.external.ldap \
                         in a configuration file instead"
                    ),
                ));
            }
        }
    }
    let url = url.ok_or_else(|| err("auth-local-param", "auth-ldap needs --url=ldap[s]://host:port"))?;
    let user_dn = user_dn.ok_or_else(|| err("auth-local-param", "auth-ldap needs --user-dn=BASE_DN"))?;
    out.insert(0, ("url", Value::str(url)));
    out.insert(1, ("user_dn", Value::str(format!("{user_attr}={{user}},{user_dn}"))));
    Ok(out)
}

#[cfg(test)]
mod tests;
