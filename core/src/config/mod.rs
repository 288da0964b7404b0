//! The proxy's configuration as plain, validated data.
//!
//! The `kafka-proxy` CLI reads YAML, checks it and builds these values; the
//! core trusts them. Nothing here touches files or the network.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::policy::PolicyConfig;
use crate::sasl;
use crate::tls::principal::PrincipalMapper;

mod sni;

pub use sni::{NameError, SniConfigError, SniNames};

/// A `host:port` pair as written in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host name or IP literal.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How broker addresses are exposed to clients.
#[derive(Debug, Clone)]
pub enum Mapping {
    /// One port per broker (`base + 20 + node_id`), bootstrap ports `base..base+19`.
    PortOffset(PortOffset),
    /// One TLS port; the broker is chosen by the SNI name the client sends.
    Sni(SniMapping),
}

/// The `sni` mapping (requires downstream TLS).
#[derive(Debug, Clone)]
pub struct SniMapping {
    /// The one port clients connect to.
    pub bind_port: u16,
    /// Upstream host → client-visible name.
    pub names: Arc<SniNames>,
}

/// The `port_offset` mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortOffset {
    /// Host name clients are told to connect to.
    pub advertised_host: String,
    /// First bootstrap port; broker `n` listens on `base + 20 + n`.
    pub base: u16,
    /// Highest broker id that gets a listener; larger ids are refused.
    pub max_broker_id: i32,
}

impl PortOffset {
    /// Number of bootstrap slots before the first broker port.
    pub const BOOTSTRAP_SLOTS: u16 = 20;

    /// The port of broker `node_id`, if it is within `0..=max_broker_id` and fits a port.
    pub fn broker_port(&self, node_id: i32) -> Option<u16> {
        if !(0..=self.max_broker_id).contains(&node_id) {
            return None;
        }
        let port = i64::from(self.base) + i64::from(Self::BOOTSTRAP_SLOTS) + i64::from(node_id);
        u16::try_from(port).ok()
    }

    /// The port of bootstrap slot `slot` (`0..20`).
    pub fn bootstrap_port(&self, slot: u16) -> Option<u16> {
        if slot >= Self::BOOTSTRAP_SLOTS {
            return None;
        }
        self.base.checked_add(slot)
    }
}

/// Which upstream host names a [`ResolveRule`] applies to (seed 000 rules:
/// `*` matches any run of characters within one label, never a dot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Exactly this name (case-insensitive).
    Exact(String),
    /// A name with `*` wildcards, each standing for zero or more characters
    /// other than `.` (case-insensitive): `*.example.com` matches
    /// `b1.example.com` but not `a.b1.example.com`.
    Wildcard(String),
}

impl HostPattern {
    /// Parses a name, with or without `*` wildcards.
    pub fn parse(text: &str) -> HostPattern {
        let lower = text.to_ascii_lowercase();
        if lower.contains('*') { HostPattern::Wildcard(lower) } else { HostPattern::Exact(lower) }
    }

    /// True when `host` matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(name) => host.eq_ignore_ascii_case(name),
            HostPattern::Wildcard(pattern) => {
                let mut labels = host.split('.');
                let mut globs = pattern.split('.');
                loop {
                    match (globs.next(), labels.next()) {
                        (None, None) => return true,
                        (Some(glob), Some(label)) if label_matches(glob.as_bytes(), label.as_bytes()) => {}
                        _ => return false,
                    }
                }
            }
        }
    }

    /// How specific the pattern is: exact names above every wildcard, and
    /// wildcards by how many literal characters they hold. The most specific
    /// matching rule wins (seed 000 semantics).
    pub fn specificity(&self) -> usize {
        match self {
            HostPattern::Exact(_) => usize::MAX,
            HostPattern::Wildcard(pattern) => pattern.chars().filter(|c| *c != '*').count(),
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Exact(p) | HostPattern::Wildcard(p) => f.write_str(p),
        }
    }
}

/// Glob match of one DNS label, `*` matching any run of characters,
/// ASCII case-insensitively (greedy, with one backtrack point: linear time).
fn label_matches(glob: &[u8], label: &[u8]) -> bool {
    let (mut g, mut l) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while l < label.len() {
        match glob.get(g) {
            Some(b'*') => {
                star = Some((g, l));
                g += 1;
            }
            Some(c) if label.get(l).is_some_and(|x| x.eq_ignore_ascii_case(c)) => {
                g += 1;
                l += 1;
            }
            _ => match star {
                Some((sg, sl)) => {
                    g = sg + 1;
                    l = sl + 1;
                    star = Some((sg, sl + 1));
                }
                None => return false,
            },
        }
    }
    glob.get(g..).unwrap_or_default().iter().all(|c| *c == b'*')
}

/// An address override for upstream host names (seed 000 `resolve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveRule {
    /// The names this rule applies to.
    pub pattern: HostPattern,
    /// The address to connect to instead of resolving the name.
    pub ip: IpAddr,
}

/// Resource limits and timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest Kafka frame accepted from either side, checked before allocating.
    pub max_frame_bytes: u32,
    /// How long an upstream connection may take to establish.
    pub connect_timeout: Duration,
    /// How long TLS and SASL handshakes may take.
    pub handshake_timeout: Duration,
    /// Close a connection idle this long (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// A client request whose first byte arrived this long ago and whose
    /// last has not closes the connection (`None`: never). Distinct from the
    /// idle timeout, which every byte resets: a client trickling one byte at
    /// a time is held to this.
    pub request_read_timeout: Option<Duration>,
    /// Bytes queued towards one side before the other side is no longer read.
    pub max_buffered_bytes: usize,
    /// Requests awaiting a response before the client is no longer read.
    pub max_in_flight: usize,
    /// How long a drain (SIGTERM) may take before the connections still
    /// open are closed.
    pub drain_timeout: Duration,
    /// Client connections the process serves at once; beyond it new ones
    /// are accepted and closed at once (`None`: unlimited).
    pub max_connections: Option<usize>,
    /// Client connections served at once from one IP address (`None`: unlimited).
    pub max_connections_per_ip: Option<usize>,
    /// How long the broker may take to answer a request before the client's
    /// connection pair is closed; never shorter than what the request itself
    /// asks the broker to wait (Fetch `max_wait_ms`, Produce `timeout_ms`,
    /// JoinGroup's rebalance timeout, ...) plus a grace period.
    pub request_timeout: Duration,
    /// Failed-login throttling (per client address and per user name).
    pub login_throttle: crate::sasl::throttle::ThrottleSettings,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 100 * 1024 * 1024,
            connect_timeout: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(600)),
            request_read_timeout: Some(Duration::from_secs(30)),
            max_buffered_bytes: 512 * 1024,
            max_in_flight: 1024,
            drain_timeout: Duration::from_secs(30),
            max_connections: None,
            max_connections_per_ip: None,
            request_timeout: Duration::from_secs(30),
            login_throttle: Default::default(),
        }
    }
}

/// TCP settings for the proxy's sockets, on both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOptions {
    /// TCP keepalive idle time (`None`: off); probes then go every
    /// third of it, and a peer silent for three probes is dropped.
    pub keepalive: Option<Duration>,
    /// `SO_SNDBUF` (`None`: the system's default, auto-tuned).
    pub send_buffer_bytes: Option<usize>,
    /// `SO_RCVBUF` (`None`: the system's default, auto-tuned).
    pub receive_buffer_bytes: Option<usize>,
    /// Listeners set `SO_REUSEPORT`, so a new `kafka-proxy` can bind the
    /// same ports while the old one drains (restarts without refused
    /// connections).
    pub reuse_port: bool,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            keepalive: Some(Duration::from_secs(60)),
            send_buffer_bytes: None,
            receive_buffer_bytes: None,
            reuse_port: true,
        }
    }
}

/// TLS towards clients.
#[derive(Debug, Clone)]
pub struct DownstreamTls {
    /// The server configuration (certificate, client-certificate policy).
    pub config: Arc<rustls::ServerConfig>,
    /// Client certificate subject → principal (Kafka's `ssl.principal.mapping.rules`).
    pub principal: Arc<PrincipalMapper>,
}

/// What the proxy does with SASL towards clients.
#[derive(Debug, Clone, Default)]
pub enum DownstreamSasl {
    /// No SASL: the principal comes from the client certificate, or is `$anonymous`.
    #[default]
    Off,
    /// The client's own SASL exchange goes to the broker untouched.
    PassThrough,
    /// The proxy authenticates clients itself.
    Terminate(Arc<sasl::server::ServerConfig>),
}

/// TLS towards brokers; the server name checked is the broker's host name
/// as the cluster (or the configuration) gave it.
#[derive(Debug, Clone)]
pub struct UpstreamTls {
    /// The client configuration (roots or trust-all, optional client certificate).
    pub config: Arc<rustls::ClientConfig>,
}

/// How the proxy logs in to brokers.
#[derive(Debug, Clone, Default)]
pub enum UpstreamLogin {
    /// It does not (no SASL upstream, or SASL passed through from the client).
    #[default]
    Off,
    /// One service identity for every connection.
    Service(Arc<sasl::client::ClientConfig>),
    /// Auth swap: each client principal logs in as the identity mapped to it;
    /// a principal without one is refused.
    Swap(Arc<BTreeMap<String, Arc<sasl::client::ClientConfig>>>),
}

/// Security on both sides.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// TLS towards clients.
    pub downstream_tls: Option<DownstreamTls>,
    /// SASL towards clients.
    pub downstream_sasl: DownstreamSasl,
    /// TLS towards brokers.
    pub upstream_tls: Option<UpstreamTls>,
    /// SASL towards brokers.
    pub upstream_login: UpstreamLogin,
}

/// Everything the core needs to run.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Address every listener binds to.
    pub bind_ip: IpAddr,
    /// How brokers are exposed.
    pub mapping: Mapping,
    /// The cluster's bootstrap servers, in configuration order.
    pub bootstrap: Vec<HostPort>,
    /// Address overrides for upstream host names.
    pub resolve: Vec<ResolveRule>,
    /// Limits and timeouts.
    pub limits: Limits,
    /// TCP settings for every socket.
    pub socket: SocketOptions,
    /// TLS and SASL on both sides.
    pub security: Security,
    /// Forbidden APIs, quotas and connection limits per principal.
    pub policy: PolicyConfig,
    /// The client id of the proxy's own requests to brokers (its cluster
    /// probe); clients' requests keep theirs.
    pub client_id: String,
}

impl ProxyConfig {
    /// The client id of the proxy's own requests when none is configured.
    pub const DEFAULT_CLIENT_ID: &'static str = "kafka-proxy";

    /// The override address for `host`, if a `resolve` rule matches (first match wins).
    pub fn resolve_override(&self, host: &str) -> Option<IpAddr> {
        self.resolve.iter().find(|r| r.pattern.matches(host)).map(|r| r.ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_offset_ports() {
        let p = PortOffset { advertised_host: "proxy".into(), base: 9092, max_broker_id: 400 };
        assert_eq!(p.bootstrap_port(0), Some(9092));
        assert_eq!(p.bootstrap_port(19), Some(9111));
        assert_eq!(p.bootstrap_port(20), None);
        assert_eq!(p.broker_port(0), Some(9112));
        assert_eq!(p.broker_port(111), Some(9223));
        assert_eq!(p.broker_port(400), Some(9512));
        assert_eq!(p.broker_port(401), None);
        assert_eq!(p.broker_port(-1), None);
        let high = PortOffset { advertised_host: "proxy".into(), base: 65500, max_broker_id: 400 };
        assert_eq!(high.broker_port(100), None, "beyond u16 is refused, not wrapped");
    }

    #[test]
    fn host_patterns() {
        assert!(HostPattern::parse("Broker-1.Example.com").matches("broker-1.example.COM"));
        assert!(!HostPattern::parse("broker-1.example.com").matches("broker-2.example.com"));
        let wild = HostPattern::parse("*.internal.example.com");
        assert!(wild.matches("b1.internal.example.com"));
        assert!(!wild.matches("a.b1.internal.example.com"), "a star never spans a dot");
        assert!(!wild.matches("internal.example.com"));
        assert!(!wild.matches("xinternal.example.com"));
        let inner = HostPattern::parse("pkc-*.us-*-1.aws.confluent.cloud");
        assert!(inner.matches("pkc-12ab.us-east-1.aws.confluent.cloud"));
        assert!(inner.matches("pkc-.us--1.aws.confluent.cloud"), "a star may match nothing");
        assert!(!inner.matches("pkc-12ab.eu-west-1.aws.confluent.cloud"));
        assert!(HostPattern::parse("*").matches("localhost"));
        assert!(!HostPattern::parse("*").matches("broker.example.com"), "`*` is one label");
        assert!(HostPattern::parse("b*r*").matches("broker"));
        assert!(!HostPattern::parse("b*r*x").matches("broker"));
        assert!(HostPattern::parse("b*ok*r").matches("brokoker"), "backtracking");
        assert!(
            HostPattern::parse("b1.x").specificity()
                > HostPattern::parse("*.longer.example.com").specificity()
        );
        assert!(
            HostPattern::parse("*.a.example.com").specificity()
                > HostPattern::parse("*.example.com").specificity()
        );
    }
}
