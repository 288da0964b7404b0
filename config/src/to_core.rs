//! [`Config`] → the engine's [`ProxyConfig`], refusing what the engine cannot run yet.

use std::net::IpAddr;

use kafka_proxy_core::config::{Mapping, ProxyConfig, ResolveRule, SniMapping, SniNames};

use crate::error::{ConfigError, Problem};
use crate::model::{BrokerMapping, Config, Resolve};

impl Config {
    /// The engine configuration: files read, TLS configurations built,
    /// passwords hashed. The request policy is not implemented yet and is
    /// refused under its key path, never dropped. (`admin` is the binary's
    /// business, not the engine's: it is not part of the result.)
    pub fn to_core(&self) -> Result<ProxyConfig, ConfigError> {
        let mut unsupported = Vec::new();
        if !self.policy.is_empty() {
            unsupported.push(Problem::new(&self.path, "policy", "forbidding API keys is not supported yet"));
        }
        if !unsupported.is_empty() {
            return Err(ConfigError::Unsupported(unsupported));
        }
        let mapping = match &self.mapping {
            BrokerMapping::PortOffset(port_offset) => Mapping::PortOffset(port_offset.clone()),
            BrokerMapping::Static(mapping) => Mapping::Static(mapping.clone()),
            BrokerMapping::Sni(sni) => {
                let names = SniNames::new(sni.upstream.as_str(), &sni.downstream.text, sni.advertised_port)
                    .map_err(|e| {
                    ConfigError::Invalid(vec![Problem::new(&self.path, "broker_mapping.sni", e.to_string())])
                })?;
                Mapping::Sni(SniMapping { bind_port: sni.bind_port, names: std::sync::Arc::new(names) })
            }
        };
        let security = self.security().map_err(ConfigError::Invalid)?;
        Ok(ProxyConfig {
            bind_ip: self.bind_address,
            mapping,
            external: self.external.clone(),
            bootstrap: self.upstream.bootstrap_servers.clone(),
            resolve: resolve_rules(&self.resolve),
            limits: self.limits.clone(),
            socket: self.socket.clone(),
            security,
            forward_proxy: self.upstream.forward_proxy.clone(),
            client_id: self.upstream.client_id.clone(),
        })
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
