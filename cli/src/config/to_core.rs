//! [`Config`] → the engine's [`ProxyConfig`], refusing what the engine cannot run yet.

use std::net::IpAddr;

use kafka_proxy_core::config::{Mapping, ProxyConfig, ResolveRule};

use super::error::{ConfigError, Problem};
use super::model::{BrokerMapping, Config, Resolve, SecurityProtocol, UpstreamAuth};

impl Config {
    /// The engine configuration. Today the engine runs PLAINTEXT on both sides with the
    /// `port_offset` mapping; every other setting in use is reported as
    /// [`ConfigError::Unsupported`] under its key path, never dropped.
    pub fn to_core(&self) -> Result<ProxyConfig, ConfigError> {
        let mut unsupported = Vec::new();
        let mut refuse = |path: &str, what: &str| {
            unsupported.push(Problem::new(&self.path, path, format!("{what} is not supported yet")));
        };
        let (up, down) = (self.upstream.security_protocol, self.downstream.security_protocol);
        if up != SecurityProtocol::Plaintext {
            refuse("upstream.security_protocol", &format!("{up} towards brokers"));
        }
        if down != SecurityProtocol::Plaintext {
            refuse("downstream.security_protocol", &format!("{down} towards clients"));
        }
        match &self.upstream.auth {
            // Both need a SASL upstream, refused above.
            UpstreamAuth::None | UpstreamAuth::PassThrough => {}
            UpstreamAuth::Service { .. } => {
                refuse("upstream.sasl_username", "a service identity towards brokers")
            }
            UpstreamAuth::Swap { .. } => refuse("auth_swap", "auth swap"),
        }
        let mapping = match &self.mapping {
            BrokerMapping::PortOffset(port_offset) => Some(Mapping::PortOffset(port_offset.clone())),
            BrokerMapping::Sni(_) => {
                refuse("broker_mapping.mode", "the sni mapping");
                None
            }
        };
        if self.admin.is_some() {
            refuse("admin.bind", "the admin endpoint");
        }
        if !self.policy.is_empty() {
            refuse("policy", "forbidding API keys");
        }
        match mapping {
            Some(mapping) if unsupported.is_empty() => Ok(ProxyConfig {
                bind_ip: self.bind_address,
                mapping,
                bootstrap: self.upstream.bootstrap_servers.clone(),
                resolve: resolve_rules(&self.resolve),
                limits: self.limits.clone(),
            }),
            _ => Err(ConfigError::Unsupported(unsupported)),
        }
    }
}

/// The `resolve` entries as first-match-wins rules, ordered so the first match is the one
/// the seed proxy picks: exact names before wildcards, longer wildcards before shorter,
/// later entries before earlier ones, and within an entry `ipv6` before `ipv4`.
pub(crate) fn resolve_rules(entries: &[Resolve]) -> Vec<ResolveRule> {
    let mut rules: Vec<(usize, usize, ResolveRule)> = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let ips = [entry.ipv4.map(IpAddr::V4), entry.ipv6.map(IpAddr::V6)];
        for (within, ip) in ips.into_iter().enumerate() {
            if let Some(ip) = ip {
                rules.push((
                    index * 2 + within,
                    entry.host.specificity(),
                    ResolveRule { pattern: entry.host.clone(), ip },
                ));
            }
        }
    }
    rules.sort_by(|(order_a, spec_a, _), (order_b, spec_b, _)| spec_b.cmp(spec_a).then(order_b.cmp(order_a)));
    rules.into_iter().map(|(_, _, rule)| rule).collect()
}
