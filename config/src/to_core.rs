//! [`Config`] → the engine's [`ProxyConfig`], refusing what the engine cannot run yet.

use std::net::IpAddr;

use kafka_proxy_core::config::{Mapping, ProxyConfig, ResolveRule, SniMapping, SniNames};
use kafka_proxy_core::sasl::oauthbearer::Sources;

use kafka_proxy_core::policy::{
    PolicyConfig, PrincipalLimits, PrincipalPolicy as CorePrincipalPolicy, QuotaWindow,
};

use crate::error::{ConfigError, Problem};
use crate::model::{BrokerMapping, Config, Policy, Quotas, Resolve};

impl Config {
    /// The engine configuration: files read, TLS configurations built,
    /// passwords hashed. Kafka's request-time quota (`request_percentage`) is
    /// not implemented and is refused under its key paths, never dropped.
    /// (`admin` is the binary's business, not the engine's: it is not part
    /// of the result.)
    /// JWKS and token endpoints get stores of their own, empty: a program
    /// that runs the proxy uses [`Config::to_core_with`] and fills them.
    pub fn to_core(&self) -> Result<ProxyConfig, ConfigError> {
        self.to_core_with(&Sources::new())
    }

    /// [`Config::to_core`], with the JWKS and token stores taken from
    /// `sources`: a configuration loaded again (SIGHUP) gets the stores, and
    /// so the keys and tokens, of the endpoints it shares with the last one.
    pub fn to_core_with(&self, sources: &Sources) -> Result<ProxyConfig, ConfigError> {
        let mut unsupported = Vec::new();
        let quotas = std::iter::once(("policy.default".to_owned(), &self.policy.default)).chain(
            self.policy.principals.iter().map(|(name, p)| (format!("policy.principals.{name}"), &p.quotas)),
        );
        for (path, quotas) in quotas {
            if quotas.request_percentage.is_some() {
                unsupported.push(Problem::new(
                    &self.path,
                    format!("{path}.request_percentage"),
                    "request_percentage is not supported: it limits the time a broker's request handler \
                     threads spend on a client, which a proxy cannot observe (use producer_byte_rate and \
                     consumer_byte_rate)",
                ));
            }
        }
        if !unsupported.is_empty() {
            return Err(ConfigError::Unsupported(unsupported));
        }
        let mapping = match &self.mapping {
            BrokerMapping::PortOffset(port_offset) => Mapping::PortOffset(port_offset.clone()),
            BrokerMapping::Sni(sni) => {
                let names = SniNames::new(sni.upstream.as_str(), &sni.downstream.text, sni.bind_port)
                    .map_err(|e| {
                        ConfigError::Invalid(vec![Problem::new(
                            &self.path,
                            "broker_mapping.sni",
                            e.to_string(),
                        )])
                    })?;
                Mapping::Sni(SniMapping { bind_port: sni.bind_port, names: std::sync::Arc::new(names) })
            }
        };
        let security = self.security(sources).map_err(ConfigError::Invalid)?;
        Ok(ProxyConfig {
            bind_ip: self.bind_address,
            mapping,
            bootstrap: self.upstream.bootstrap_servers.clone(),
            resolve: resolve_rules(&self.resolve),
            limits: self.limits.clone(),
            socket: self.socket.clone(),
            security,
            policy: policy_config(&self.policy),
            client_id: self.upstream.client_id.clone(),
        })
    }
}

/// The `policy` section as the engine runs it.
pub(crate) fn policy_config(policy: &Policy) -> PolicyConfig {
    let limits = |q: &Quotas| PrincipalLimits {
        producer_byte_rate: q.producer_byte_rate,
        consumer_byte_rate: q.consumer_byte_rate,
        max_connections: q.max_connections,
    };
    PolicyConfig {
        forbidden_api_keys: policy.forbidden_api_keys.iter().copied().collect(),
        default: limits(&policy.default),
        principals: policy
            .principals
            .iter()
            .map(|(name, p)| {
                let entry = CorePrincipalPolicy {
                    forbidden_api_keys: p.forbidden_api_keys.iter().copied().collect(),
                    limits: limits(&p.quotas),
                };
                (name.clone(), entry)
            })
            .collect(),
        quota_window: QuotaWindow { samples: policy.quota_window_num, size: policy.quota_window_size },
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
