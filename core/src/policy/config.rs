//! The policy as configured: plain, validated data (the `policy` section).

use std::collections::BTreeMap;
use std::time::Duration;

use super::ApiSet;

/// Kafka's quota window: the rate is measured over `samples` windows of
/// `size` each (`quota.window.num` × `quota.window.size.seconds`), and no
/// throttle is longer than the whole span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaWindow {
    /// Windows kept (at least 1).
    pub samples: u32,
    /// Length of one window (at least 1 ms).
    pub size: Duration,
}

impl Default for QuotaWindow {
    /// Kafka's defaults: 11 windows of one second.
    fn default() -> Self {
        QuotaWindow { samples: 11, size: Duration::from_secs(1) }
    }
}

impl QuotaWindow {
    /// The longest throttle: the whole span of the windows.
    pub fn max_throttle(&self) -> Duration {
        self.size.saturating_mul(self.samples)
    }
}

/// Limits on one principal, in Kafka's vocabulary. `None`: unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrincipalLimits {
    /// Produce request bytes per second (`producer_byte_rate`).
    pub producer_byte_rate: Option<u64>,
    /// Fetch response bytes per second (`consumer_byte_rate`).
    pub consumer_byte_rate: Option<u64>,
    /// Connections the principal may hold at once.
    pub max_connections: Option<u32>,
}

impl PrincipalLimits {
    /// Each limit of `self`, or `fallback`'s where `self` has none (Kafka
    /// picks the most specific quota per quota type).
    pub fn or(&self, fallback: &PrincipalLimits) -> PrincipalLimits {
        PrincipalLimits {
            producer_byte_rate: self.producer_byte_rate.or(fallback.producer_byte_rate),
            consumer_byte_rate: self.consumer_byte_rate.or(fallback.consumer_byte_rate),
            max_connections: self.max_connections.or(fallback.max_connections),
        }
    }

    /// True when nothing is limited.
    pub fn is_empty(&self) -> bool {
        *self == PrincipalLimits::default()
    }
}

/// What applies to one named principal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrincipalPolicy {
    /// APIs refused to this principal (besides the global ones).
    pub forbidden_api_keys: ApiSet,
    /// Its limits (each unset one falls back to `PolicyConfig::default`).
    pub limits: PrincipalLimits,
}

/// The `policy` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyConfig {
    /// APIs refused to everyone.
    pub forbidden_api_keys: ApiSet,
    /// Limits for every principal that has none of its own.
    pub default: PrincipalLimits,
    /// Principals by name, as the proxy sees them after SASL or mTLS
    /// mapping (`$anonymous` for clients nobody authenticated).
    pub principals: BTreeMap<String, PrincipalPolicy>,
    /// How byte rates are measured.
    pub quota_window: QuotaWindow,
}

impl PolicyConfig {
    /// True when nothing is forbidden or limited: sessions then skip every
    /// policy step.
    pub fn is_empty(&self) -> bool {
        self.forbidden_api_keys.is_empty()
            && self.default.is_empty()
            && self.principals.values().all(|p| p.forbidden_api_keys.is_empty() && p.limits.is_empty())
    }

    /// Every API forbidden to anyone (ApiVersions clamps these to the
    /// versions the proxy can refuse).
    pub fn any_forbidden(&self) -> ApiSet {
        self.principals
            .values()
            .fold(self.forbidden_api_keys.clone(), |all, p| all.union(&p.forbidden_api_keys))
    }

    /// What applies to `principal` (`None`: not known to the proxy, e.g.
    /// SASL passed through: only the global list applies).
    pub fn resolve(&self, principal: Option<&str>) -> Resolved {
        let Some(name) = principal else {
            return Resolved {
                forbidden: self.forbidden_api_keys.clone(),
                limits: PrincipalLimits::default(),
            };
        };
        match self.principals.get(name) {
            Some(p) => Resolved {
                forbidden: self.forbidden_api_keys.union(&p.forbidden_api_keys),
                limits: p.limits.or(&self.default),
            },
            None => Resolved { forbidden: self.forbidden_api_keys.clone(), limits: self.default },
        }
    }
}

/// The policy of one principal, resolved from the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// APIs refused.
    pub forbidden: ApiSet,
    /// Limits.
    pub limits: PrincipalLimits,
}

impl Resolved {
    /// True when nothing applies.
    pub fn is_empty(&self) -> bool {
        self.forbidden.is_empty() && self.limits.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiKey;

    #[test]
    fn principals_fall_back_to_the_default_per_limit() {
        let mut config = PolicyConfig {
            forbidden_api_keys: [ApiKey::DELETE_TOPICS].into_iter().collect(),
            default: PrincipalLimits {
                producer_byte_rate: Some(1_000),
                consumer_byte_rate: Some(2_000),
                max_connections: None,
            },
            ..PolicyConfig::default()
        };
        config.principals.insert(
            "alice".into(),
            PrincipalPolicy {
                forbidden_api_keys: [ApiKey::PRODUCE].into_iter().collect(),
                limits: PrincipalLimits {
                    producer_byte_rate: Some(5),
                    max_connections: Some(2),
                    ..Default::default()
                },
            },
        );
        let alice = config.resolve(Some("alice"));
        assert!(alice.forbidden.contains(ApiKey::PRODUCE) && alice.forbidden.contains(ApiKey::DELETE_TOPICS));
        assert_eq!(
            alice.limits,
            PrincipalLimits {
                producer_byte_rate: Some(5),
                consumer_byte_rate: Some(2_000),
                max_connections: Some(2)
            }
        );
        let bob = config.resolve(Some("bob"));
        assert!(!bob.forbidden.contains(ApiKey::PRODUCE));
        assert_eq!(bob.limits, config.default);
        let unknown = config.resolve(None);
        assert!(unknown.forbidden.contains(ApiKey::DELETE_TOPICS));
        assert!(unknown.limits.is_empty(), "quotas need a principal the proxy knows");
        assert!(!config.is_empty());
        let all: Vec<_> = config.any_forbidden().iter().collect();
        assert_eq!(all, [ApiKey::PRODUCE, ApiKey::DELETE_TOPICS]);
        assert!(PolicyConfig::default().is_empty());
        assert_eq!(QuotaWindow::default().max_throttle(), Duration::from_secs(11));
    }
}
