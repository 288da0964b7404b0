//! From the YAML as written ([`RawConfig`]) to a checked [`Config`]: defaults, rules that
//! span several keys, file existence, and the seed proxy's semantics. Every independent
//! problem is collected, so one run of `kafka-proxy check` shows them all.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::num::{NonZeroU32, NonZeroU64};
use std::path::{Path, PathBuf};
use std::time::Duration;

use kafka_proxy_core::api::ApiKey;
use kafka_proxy_core::config::{Limits, PortOffset, SocketOptions};

use super::error::{ConfigError, Report};
use super::model::{
    ANONYMOUS, Admin, ClientAuth, Config, Downstream, LogFormat, Logging, Policy, PrincipalPolicy, Quotas,
    Resolve, RuntimeKind, SecurityProtocol,
};
use super::raw::{RawConfig, RawLimits, RawLogging, RawPolicy, RawResolve, RawSocket};
use super::scalar::{ApiKeyNumber, Parsed};

mod auth_swap;
mod downstream;
mod mapping;
mod tls;
mod upstream;

use downstream::empty_downstream;

/// Most bootstrap servers: `port_offset` reserves 20 bootstrap ports.
pub(crate) const MAX_BOOTSTRAP_SERVERS: usize = PortOffset::BOOTSTRAP_SLOTS as usize;
/// `broker_mapping.port_offset.max_broker_id` when absent (seed 000).
pub(crate) const DEFAULT_MAX_BROKER_ID: u16 = 400;
/// `security_protocol` of either side when absent (seed 000).
pub(crate) const DEFAULT_SECURITY_PROTOCOL: SecurityProtocol = SecurityProtocol::SaslSsl;
/// `downstream.oauthbearer.clock_skew_seconds` when absent.
pub(crate) const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);
/// `policy.quota_window_num` when absent (Kafka's `quota.window.num`).
pub(crate) const DEFAULT_QUOTA_WINDOW_NUM: u32 = 11;
/// `policy.quota_window_size_seconds` when absent (Kafka's `quota.window.size.seconds`).
pub(crate) const DEFAULT_QUOTA_WINDOW_SIZE: Duration = Duration::from_secs(1);

/// Checks `raw`, loaded from `file`, into a [`Config`].
pub(crate) fn validate(
    raw: RawConfig,
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let dir =
        std::path::absolute(file).ok().and_then(|f| f.parent().map(Path::to_path_buf)).unwrap_or_default();
    let mut cx = Checker { report: Report::new(file), dir, env };
    let config = cx.config(raw);
    if cx.report.problems.is_empty() {
        let mut config = config;
        config.warnings = cx.report.warnings;
        Ok(config)
    } else {
        Err(ConfigError::Invalid(cx.report.problems))
    }
}

/// The state of one validation run.
struct Checker<'a> {
    report: Report<'a>,
    /// The configuration file's directory: relative paths are resolved against it.
    dir: PathBuf,
    env: &'a dyn Fn(&str) -> Option<String>,
}

/// A side's protocol and whether it was written or defaulted (for messages).
#[derive(Clone, Copy)]
struct Protocol {
    value: SecurityProtocol,
    defaulted: bool,
}

impl Protocol {
    fn new(raw: Option<Parsed<SecurityProtocol>>) -> Protocol {
        match raw {
            Some(p) => Protocol { value: p.0, defaulted: false },
            None => Protocol { value: DEFAULT_SECURITY_PROTOCOL, defaulted: true },
        }
    }

    /// `SASL_SSL` or `SASL_SSL (the default)`.
    fn shown(self) -> String {
        if self.defaulted { format!("{} (the default)", self.value) } else { self.value.to_string() }
    }
}

impl Checker<'_> {
    fn config(&mut self, raw: RawConfig) -> Config {
        let bind_address = raw.bind_address.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.0);
        let raw_downstream = raw.downstream.unwrap_or_else(empty_downstream);
        let up_protocol = Protocol::new(raw.upstream.security_protocol.clone());
        let down_protocol = Protocol::new(raw_downstream.security_protocol.clone());

        let swap = self.auth_swap(raw.auth_swap, up_protocol, down_protocol);
        let oauth_client_id = raw.upstream.oauthbearer.as_ref().is_some_and(|o| o.client_id.is_some());
        let upstream_login_missing =
            up_protocol.value.uses_sasl() && raw.upstream.sasl_username.is_none() && !oauth_client_id;
        let downstream = self.downstream(
            raw_downstream,
            down_protocol,
            swap.as_ref().map(|s| &s.downstream),
            upstream_login_missing,
        );
        let upstream = self.upstream(raw.upstream, up_protocol, swap.map(|s| s.swap), &downstream);
        self.swap_routes(&upstream, &downstream);
        let mapping = self.mapping(raw.broker_mapping, bind_address, &downstream);
        let policy = self.policy(raw.policy, &downstream);
        Config {
            path: self.report.file.to_path_buf(),
            bind_address,
            upstream,
            downstream,
            mapping,
            resolve: self.resolve(raw.resolve.unwrap_or_default()),
            admin: raw.admin.map(|a| Admin { bind: a.bind.0 }),
            policy,
            limits: limits(raw.limits),
            socket: self.socket(raw.socket),
            logging: self.logging(raw.logging),
            runtime: raw.runtime.map_or(RuntimeKind::Tokio, |r| r.0),
            warnings: Vec::new(),
        }
    }

    /// Checks an explicit `tls.enabled` against the protocol: the protocol decides, and a
    /// contradicting `enabled` is an error rather than a guess.
    fn tls_enabled(&mut self, side: &str, enabled: Option<bool>, protocol: Protocol) {
        match enabled {
            Some(false) if protocol.value.uses_tls() => self.report.error(
                format!("{side}.tls.enabled"),
                format!(
                    "expected true or no value: {side}.security_protocol {} uses TLS \
                     (use PLAINTEXT or SASL_PLAINTEXT for no TLS)",
                    protocol.shown()
                ),
            ),
            Some(true) if !protocol.value.uses_tls() => self.report.error(
                format!("{side}.tls.enabled"),
                format!(
                    "expected false or no value: {side}.security_protocol {} does not use TLS \
                     (use SSL or SASL_SSL for TLS)",
                    protocol.shown()
                ),
            ),
            _ => {}
        }
    }

    /// Reports each SASL key of `side` that is `set` although the side's protocol does
    /// not use SASL: a setting that would otherwise be silently ignored.
    fn sasl_keys_without_sasl(&mut self, side: &str, protocol: Protocol, keys: &[(&str, bool)]) {
        for &(key, set) in keys {
            if set {
                self.report.error(
                    format!("{side}.{key}"),
                    format!(
                        "set, but {side}.security_protocol {} does not use SASL: expected \
                         SASL_PLAINTEXT or SASL_SSL, or remove {side}.{key}",
                        protocol.shown()
                    ),
                );
            }
        }
    }

    /// Resolves `path` against the configuration's directory and checks that it is a file.
    /// `key` names the setting; `defaulted` says the name came from a default.
    fn existing_file(&mut self, key: &str, path: &Path, defaulted: bool) -> PathBuf {
        let full = self.dir.join(path);
        let origin = if defaulted { format!(" (the default for {key})") } else { String::new() };
        if path.as_os_str().is_empty() {
            self.report.error(key, "expected a file name, got an empty value");
        } else {
            match std::fs::metadata(&full) {
                Ok(meta) if meta.is_file() => {}
                Ok(_) => self.report.error(key, format!("expected a file, got {}{origin}", full.display())),
                Err(e) => self
                    .report
                    .error(key, format!("expected an existing file, got {}{origin}: {e}", full.display())),
            }
        }
        full
    }

    fn resolve(&mut self, raw: Vec<RawResolve>) -> Vec<Resolve> {
        let mut out = Vec::with_capacity(raw.len());
        for (i, entry) in raw.into_iter().enumerate() {
            if entry.ipv4.is_none() && entry.ipv6.is_none() {
                self.report.error(format!("resolve[{i}]"), "expected ipv4 and/or ipv6 next to host");
                continue;
            }
            out.push(Resolve {
                host: entry.host.0,
                ipv4: entry.ipv4.map(|a| a.0),
                ipv6: entry.ipv6.map(|a| a.0),
            });
        }
        out
    }

    fn policy(&mut self, raw: Option<RawPolicy>, downstream: &Downstream) -> Policy {
        let Some(raw) = raw else { return Policy::default() };
        let keys = |list: Option<Vec<ApiKeyNumber>>| -> BTreeSet<ApiKey> {
            list.unwrap_or_default().into_iter().map(|k| k.0).collect()
        };
        let forbidden_api_keys = keys(raw.forbidden_api_keys);
        let default = raw.default.map_or_else(Quotas::default, |q| Quotas {
            producer_byte_rate: q.producer_byte_rate.map(NonZeroU64::get),
            consumer_byte_rate: q.consumer_byte_rate.map(NonZeroU64::get),
            request_percentage: q.request_percentage,
            max_connections: q.max_connections.map(NonZeroU32::get),
        });
        let principals: BTreeMap<String, PrincipalPolicy> = raw
            .principals
            .map(|p| p.0)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, p)| {
                if p.forbidden_api_keys.is_none()
                    && p.producer_byte_rate.is_none()
                    && p.consumer_byte_rate.is_none()
                    && p.request_percentage.is_none()
                    && p.max_connections.is_none()
                {
                    self.report.error(
                        format!("policy.principals.{name}"),
                        "expected at least one of forbidden_api_keys, producer_byte_rate, consumer_byte_rate, \
                         request_percentage, max_connections",
                    );
                }
                let quotas = Quotas {
                    producer_byte_rate: p.producer_byte_rate.map(NonZeroU64::get),
                    consumer_byte_rate: p.consumer_byte_rate.map(NonZeroU64::get),
                    request_percentage: p.request_percentage,
                    max_connections: p.max_connections.map(NonZeroU32::get),
                };
                (name, PrincipalPolicy { forbidden_api_keys: keys(p.forbidden_api_keys), quotas })
            })
            .collect();
        let policy = Policy {
            forbidden_api_keys,
            default,
            principals,
            quota_window_num: raw.quota_window_num.map_or(DEFAULT_QUOTA_WINDOW_NUM, NonZeroU32::get),
            quota_window_size: raw
                .quota_window_size_seconds
                .map_or(DEFAULT_QUOTA_WINDOW_SIZE, |s| Duration::from_secs(u64::from(s.get()))),
        };
        self.policy_checks(&policy, downstream);
        policy
    }

    /// Settings that load but would not do what they say: forbidding what
    /// every client needs, APIs the proxy can only refuse by disconnecting,
    /// percentages out of range, and per-principal settings for principals
    /// the proxy never sees.
    fn policy_checks(&mut self, policy: &Policy, downstream: &Downstream) {
        let handshake = [ApiKey::API_VERSIONS, ApiKey::SASL_HANDSHAKE, ApiKey::SASL_AUTHENTICATE];
        let global = policy.forbidden_api_keys.iter().map(|k| ("policy.forbidden_api_keys".to_owned(), *k));
        let per_principal = policy.principals.iter().flat_map(|(name, p)| {
            p.forbidden_api_keys
                .iter()
                .map(move |k| (format!("policy.principals.{name}.forbidden_api_keys"), *k))
        });
        let mut warnings = Vec::new();
        for (path, key) in global.chain(per_principal) {
            if handshake.contains(&key) {
                warnings.push((
                    path,
                    format!("{key} is needed by every client to connect; forbidding it locks clients out"),
                ));
            } else if kafka_proxy_core::policy::refusable_versions(key).is_none() {
                warnings.push((
                    path,
                    format!(
                        "the proxy has no authorization-error response for {key}: a client that sends it is disconnected"
                    ),
                ));
            }
        }
        let quotas = std::iter::once(("policy.default".to_owned(), &policy.default)).chain(
            policy.principals.iter().map(|(name, p)| (format!("policy.principals.{name}"), &p.quotas)),
        );
        for (path, q) in quotas {
            if let Some(pct) = q.request_percentage
                && !(pct.is_finite() && pct > 0.0)
            {
                self.report.error(
                    format!("{path}.request_percentage"),
                    format!("expected a percentage above 0, got {pct}"),
                );
            }
        }
        let authenticated = downstream.sasl.is_some()
            || downstream.tls.as_ref().is_some_and(|t| t.client_auth != ClientAuth::None);
        if downstream.sasl_pass_through {
            if !policy.principals.is_empty() || !policy.default.is_empty() {
                warnings.push((
                    "policy".to_owned(),
                    "downstream SASL is passed through to the brokers, so the proxy never learns principals: \
                     only policy.forbidden_api_keys applies"
                        .to_owned(),
                ));
            }
        } else if !authenticated {
            for name in policy.principals.keys().filter(|n| n.as_str() != ANONYMOUS) {
                warnings.push((
                    format!("policy.principals.{name}"),
                    format!(
                        "clients are not authenticated (no SASL, no mTLS), so every client is {ANONYMOUS}: this entry never applies"
                    ),
                ));
            }
        }
        for (path, message) in warnings {
            self.report.warn(path, message);
        }
    }

    fn logging(&mut self, raw: Option<RawLogging>) -> Logging {
        let (level, format) = match raw {
            Some(raw) => (raw.level, raw.format.map(|f| f.0)),
            None => (None, None),
        };
        let level = level.map_or_else(|| "info".to_owned(), |l| level_aliases(&l));
        if let Err(why) = check_log_level(&level) {
            self.report.error("logging.level", why);
        }
        Logging { level, format: format.unwrap_or(LogFormat::Text) }
    }

    /// `socket`: keepalive (0 = off, else whole seconds the kernel can take), buffer
    /// sizes (0 = the system's default, at most [`MAX_SOCKET_BUFFER`]), `SO_REUSEPORT`.
    fn socket(&mut self, raw: Option<RawSocket>) -> SocketOptions {
        let mut socket = SocketOptions::default();
        let Some(raw) = raw else { return socket };
        if let Some(ms) = raw.keepalive_ms {
            if ms == 0 {
                socket.keepalive = None;
            } else if !(1000..=MAX_KEEPALIVE_MS).contains(&ms) {
                self.report.error(
                    "socket.keepalive_ms",
                    format!("expected 0 (off) or 1000 to {MAX_KEEPALIVE_MS} milliseconds, got {ms}"),
                );
            } else {
                socket.keepalive = Some(Duration::from_millis(ms));
            }
        }
        for (key, value, slot) in [
            ("socket.send_buffer_bytes", raw.send_buffer_bytes, &mut socket.send_buffer_bytes),
            ("socket.receive_buffer_bytes", raw.receive_buffer_bytes, &mut socket.receive_buffer_bytes),
        ] {
            match value {
                None | Some(0) => {}
                Some(bytes) if bytes <= MAX_SOCKET_BUFFER => *slot = usize::try_from(bytes).ok(),
                Some(bytes) => self.report.error(
                    key,
                    format!(
                        "expected 0 (the system's default) or at most {MAX_SOCKET_BUFFER} bytes, got {bytes}"
                    ),
                ),
            }
        }
        if let Some(reuse_port) = raw.reuse_port {
            socket.reuse_port = reuse_port;
        }
        socket
    }
}

/// Largest `socket.*_buffer_bytes` (the kernel caps it lower anyway: `net.core.wmem_max`).
const MAX_SOCKET_BUFFER: u64 = 1 << 30;

/// Longest `socket.keepalive_ms`: the kernel takes the idle time in whole
/// seconds, at most 32767.
const MAX_KEEPALIVE_MS: u64 = 32_767_000;

fn limits(raw: Option<RawLimits>) -> Limits {
    let mut limits = Limits::default();
    if let Some(raw) = raw {
        if let Some(v) = raw.max_frame_bytes {
            limits.max_frame_bytes = v.get();
        }
        if let Some(v) = raw.connect_timeout_ms {
            limits.connect_timeout = Duration::from_millis(v.get());
        }
        if let Some(v) = raw.handshake_timeout_ms {
            limits.handshake_timeout = Duration::from_millis(v.get());
        }
        if let Some(v) = raw.idle_timeout_ms {
            limits.idle_timeout = (v > 0).then(|| Duration::from_millis(v));
        }
        if let Some(v) = raw.max_buffered_bytes {
            limits.max_buffered_bytes = v.get();
        }
        if let Some(v) = raw.max_in_flight {
            limits.max_in_flight = v.get();
        }
        limits.max_connections = raw.max_connections.map(|v| v.get());
        limits.max_connections_per_ip = raw.max_connections_per_ip.map(|v| v.get());
        if let Some(v) = raw.request_timeout_ms {
            limits.request_timeout = Duration::from_millis(v.get());
        }
        if let Some(v) = raw.drain_timeout_ms {
            limits.drain_timeout = Duration::from_millis(v.get());
        }
        if let Some(v) = raw.request_read_timeout_ms {
            limits.request_read_timeout = (v > 0).then(|| Duration::from_millis(v));
        }
        let throttle = &mut limits.login_throttle;
        if let Some(v) = raw.login_failure_base_delay_ms {
            throttle.base_delay = Duration::from_millis(v.get());
        }
        if let Some(v) = raw.login_failure_max_delay_ms {
            throttle.max_delay = Duration::from_millis(v.get());
        }
        if let Some(v) = raw.login_failure_decay_ms {
            throttle.decay = Duration::from_millis(v.get());
        }
    }
    limits
}

/// Maps the level names other tools use onto `tracing`'s, in a bare level
/// (`warning`) and in each `target=level` directive: `warning` is `warn`;
/// `fatal`, `critical` and `panic` (logrus, syslog) are `error`.
fn level_aliases(level: &str) -> String {
    let alias = |name: &str| -> Option<&'static str> {
        match name.to_ascii_lowercase().as_str() {
            "warning" => Some("warn"),
            "fatal" | "critical" | "panic" => Some("error"),
            _ => None,
        }
    };
    level
        .split(',')
        .map(|directive| match directive.rsplit_once('=') {
            Some((target, name)) => match alias(name.trim()) {
                Some(level) => format!("{target}={level}"),
                None => directive.to_owned(),
            },
            None => alias(directive.trim()).map_or_else(|| directive.to_owned(), str::to_owned),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A bare level name, or a `tracing` filter with targets (`kafka_proxy=debug,warn`).
fn check_log_level(level: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let bare = !level.contains(['=', ',', '[', ':']);
    if bare && !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "expected trace, debug, info, warn (warning), error (fatal, critical), off or a filter like \
             kafka_proxy=debug, got {level:?}"
        ));
    }
    tracing_subscriber::EnvFilter::try_new(level)
        .map(|_| ())
        .map_err(|e| format!("expected a log filter like info or kafka_proxy=debug,warn, got {level:?}: {e}"))
}
