//! `sni` mapping mode: one TLS port, the broker chosen by the SNI host name.
//!
//! The naming rule ([`SniNames`], in the configuration) says which name clients are
//! told for each broker; [`SniRoutes`] (the proxy's learned state) remembers
//! every name advertised, so an incoming SNI name leads back to its broker's
//! upstream address. A name not (yet) learned goes to the bootstrap servers.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::config::{HostPort, NameError, SniNames};

/// Upper bound on learned names; a cluster has far fewer brokers.
pub(crate) const MAX_ROUTES: usize = 100_000;

/// Where an incoming connection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SniRoute<'a> {
    /// A known broker.
    Broker {
        /// Its node id.
        node_id: i32,
        /// Its upstream address.
        upstream: &'a HostPort,
    },
    /// Unknown or absent name: the configured bootstrap servers.
    Bootstrap,
}

/// Why a broker cannot be advertised through the SNI port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotAdvertised {
    /// Its upstream host yields no name.
    Name(NameError),
    /// Another broker already has this name.
    Collision {
        /// The contested downstream name.
        name: String,
        /// The broker that has it.
        existing: (i32, HostPort),
        /// The broker refused.
        refused: (i32, HostPort),
    },
    /// The table of learned names is full.
    TooManyRoutes,
}

impl fmt::Display for NotAdvertised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotAdvertised::Name(e) => write!(f, "{e}"),
            NotAdvertised::Collision { name, existing, refused } => write!(
                f,
                "brokers {} ({}) and {} ({}) both map to {name:?}; fix sni.downstream",
                existing.0, existing.1, refused.0, refused.1
            ),
            NotAdvertised::TooManyRoutes => write!(f, "more than {MAX_ROUTES} SNI names learned"),
        }
    }
}

impl std::error::Error for NotAdvertised {}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Learned {
    node_id: i32,
    upstream: HostPort,
}

/// The names advertised so far, each leading back to its broker.
#[derive(Debug, Clone)]
pub(crate) struct SniRoutes {
    names: Arc<SniNames>,
    routes: HashMap<String, Learned>,
}

impl SniRoutes {
    /// No route learned yet.
    pub(crate) fn new(names: Arc<SniNames>) -> SniRoutes {
        SniRoutes { names, routes: HashMap::new() }
    }

    /// The address to advertise for broker `node_id` at `upstream`, learning
    /// the reverse route. Refuses a name another broker already has.
    pub(crate) fn advertise(&mut self, node_id: i32, upstream: &HostPort) -> Result<HostPort, NotAdvertised> {
        let name = self.names.downstream_name(node_id, &upstream.host).map_err(NotAdvertised::Name)?;
        match self.routes.get_mut(&name) {
            Some(learned) => {
                if learned.node_id != node_id && learned.upstream != *upstream {
                    return Err(NotAdvertised::Collision {
                        name,
                        existing: (learned.node_id, learned.upstream.clone()),
                        refused: (node_id, upstream.clone()),
                    });
                }
                // Same broker, or a broker that moved (same id, new address).
                if learned.node_id != node_id || learned.upstream != *upstream {
                    *learned = Learned { node_id, upstream: upstream.clone() };
                }
            }
            None => {
                if self.routes.len() >= MAX_ROUTES {
                    return Err(NotAdvertised::TooManyRoutes);
                }
                self.routes.insert(name.clone(), Learned { node_id, upstream: upstream.clone() });
            }
        }
        Ok(HostPort { host: name, port: self.names.advertised_port() })
    }

    /// Where a connection with this SNI name goes (case-insensitive; a
    /// trailing dot is ignored).
    pub(crate) fn route(&self, sni: Option<&str>) -> SniRoute<'_> {
        let Some(name) = sni else { return SniRoute::Bootstrap };
        let name = name.strip_suffix('.').unwrap_or(name);
        let found = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.routes.get(&name.to_ascii_lowercase())
        } else {
            self.routes.get(name)
        };
        match found {
            Some(learned) => SniRoute::Broker { node_id: learned.node_id, upstream: &learned.upstream },
            None => SniRoute::Bootstrap,
        }
    }

    /// How many names have been learned.
    #[cfg(test)]
    pub(crate) fn learned(&self) -> usize {
        self.routes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(host: &str, port: u16) -> HostPort {
        HostPort { host: host.into(), port }
    }

    fn router() -> SniRoutes {
        routes(r"(.*)\.region\.example\.cloud", "<$1>-b<$id>.proxy.example.com", 9092)
    }

    fn routes(upstream: &str, downstream: &str, port: u16) -> SniRoutes {
        SniRoutes::new(Arc::new(SniNames::new(upstream, downstream, port).unwrap()))
    }

    #[test]
    fn advertise_and_route_back() {
        let mut sni = router();
        let upstream = hp("pkc-123.region.example.cloud", 9092);
        let advertised = sni.advertise(3, &upstream).unwrap();
        assert_eq!(advertised, hp("pkc-123-b3.proxy.example.com", 9092));
        assert_eq!(
            sni.route(Some("pkc-123-b3.proxy.example.com")),
            SniRoute::Broker { node_id: 3, upstream: &upstream }
        );
        assert_eq!(
            sni.route(Some("PKC-123-B3.Proxy.Example.Com.")),
            SniRoute::Broker { node_id: 3, upstream: &upstream },
            "DNS names compare case-insensitively, trailing dot ignored"
        );
        assert_eq!(sni.route(Some("pkc-123-b4.proxy.example.com")), SniRoute::Bootstrap);
        assert_eq!(sni.route(Some("bootstrap.proxy.example.com")), SniRoute::Bootstrap);
        assert_eq!(sni.route(None), SniRoute::Bootstrap);
        // Advertising again is idempotent.
        assert_eq!(sni.advertise(3, &upstream).unwrap(), advertised);
        assert_eq!(sni.learned(), 1);
    }

    #[test]
    fn seed_style_id_template() {
        let mut sni = routes(r"(.*)\.region\.example\.cloud", "b<$id>.proxy.example.com", 443);
        let a = hp("b0-pkc.region.example.cloud", 9092);
        let b = hp("b1-pkc.region.example.cloud", 9092);
        assert_eq!(sni.advertise(0, &a).unwrap(), hp("b0.proxy.example.com", 443));
        assert_eq!(sni.advertise(1, &b).unwrap(), hp("b1.proxy.example.com", 443));
        assert_eq!(sni.route(Some("b1.proxy.example.com")), SniRoute::Broker { node_id: 1, upstream: &b });
        // Broker 1 moves to a new host: same id, same name, new upstream.
        let moved = hp("b1-new.region.example.cloud", 9093);
        assert_eq!(sni.advertise(1, &moved).unwrap(), hp("b1.proxy.example.com", 443));
        assert_eq!(
            sni.route(Some("b1.proxy.example.com")),
            SniRoute::Broker { node_id: 1, upstream: &moved }
        );
    }

    #[test]
    fn collisions_are_refused() {
        let mut sni = routes(r"[^.]+\.(zone-[a-z])\.example\.cloud", "<$1>.proxy.test", 9092);
        let first = hp("b0.zone-a.example.cloud", 9092);
        let second = hp("b1.zone-a.example.cloud", 9092);
        sni.advertise(0, &first).unwrap();
        let error = sni.advertise(1, &second).unwrap_err();
        assert_eq!(
            error,
            NotAdvertised::Collision {
                name: "zone-a.proxy.test".into(),
                existing: (0, first.clone()),
                refused: (1, second)
            }
        );
        let text = error.to_string();
        assert!(
            text.contains("zone-a.proxy.test") && text.contains("b0.zone-a") && text.contains("b1.zone-a"),
            "{text}"
        );
        // The first broker keeps its route.
        assert_eq!(sni.route(Some("zone-a.proxy.test")), SniRoute::Broker { node_id: 0, upstream: &first });
    }

    #[test]
    fn unmatched_or_invalid_hosts_are_not_advertised() {
        let mut sni = router();
        assert_eq!(
            sni.advertise(1, &hp("broker.elsewhere.net", 9092)),
            Err(NotAdvertised::Name(NameError::NoMatch {
                host: "broker.elsewhere.net".into(),
                pattern: r"(.*)\.region\.example\.cloud".into()
            }))
        );
        // The regex must match the whole host name.
        assert!(matches!(
            sni.advertise(1, &hp("x.region.example.cloud.evil.net", 9092)),
            Err(NotAdvertised::Name(NameError::NoMatch { .. }))
        ));
        assert!(matches!(
            sni.advertise(1, &hp("bad..name.region.example.cloud", 9092)),
            Err(NotAdvertised::Name(NameError::InvalidName { .. }))
        ));
        assert_eq!(sni.learned(), 0);
        // Matching is case-insensitive, output lower-case.
        assert_eq!(
            sni.advertise(2, &hp("PKC.Region.Example.Cloud", 9092)).unwrap(),
            hp("pkc-b2.proxy.example.com", 9092)
        );
    }
}
