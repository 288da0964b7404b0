//! The proxy's configuration as plain, validated data.
//!
//! The `kafka-proxy` CLI reads YAML, checks it and builds these values; the
//! core trusts them. Nothing here touches files or the network.

use std::net::IpAddr;
use std::time::Duration;

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

/// Which upstream host names a [`ResolveRule`] applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Exactly this name (case-insensitive).
    Exact(String),
    /// Any name ending in `.suffix` (written `*.suffix`), case-insensitive.
    Subdomains(String),
    /// Every name (written `*`).
    Any,
}

impl HostPattern {
    /// Parses `name`, `*.suffix` or `*`.
    pub fn parse(text: &str) -> HostPattern {
        if text == "*" {
            HostPattern::Any
        } else if let Some(suffix) = text.strip_prefix("*.") {
            HostPattern::Subdomains(suffix.to_ascii_lowercase())
        } else {
            HostPattern::Exact(text.to_ascii_lowercase())
        }
    }

    /// True when `host` matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(name) => host.eq_ignore_ascii_case(name),
            HostPattern::Subdomains(suffix) => {
                host.len() > suffix.len() + 1
                    && host
                        .get(host.len() - suffix.len()..)
                        .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
                    && host.as_bytes().get(host.len() - suffix.len() - 1) == Some(&b'.')
            }
        }
    }
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
    /// Bytes queued towards one side before the other side is no longer read.
    pub max_buffered_bytes: usize,
    /// Requests awaiting a response before the client is no longer read.
    pub max_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 100 * 1024 * 1024,
            connect_timeout: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(600)),
            max_buffered_bytes: 4 * 1024 * 1024,
            max_in_flight: 1024,
        }
    }
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
}

impl ProxyConfig {
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
        assert!(wild.matches("a.b1.internal.example.com"));
        assert!(!wild.matches("internal.example.com"));
        assert!(!wild.matches("xinternal.example.com"));
        assert!(HostPattern::parse("*").matches("anything"));
    }
}
