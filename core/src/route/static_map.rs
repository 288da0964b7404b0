//! The `static` mapping: listed brokers are advertised at their configured
//! address, other brokers at their dynamic listener (when enabled).

use std::borrow::Cow;

use crate::config::StaticMapping;
use crate::rewrite::{AddressMap, Advertised};

/// Advertises listed brokers by their upstream address, the others by node id.
#[derive(Debug, Clone)]
pub(crate) struct StaticMap {
    config: StaticMapping,
}

impl StaticMap {
    /// The map for `config`.
    pub(crate) fn new(config: StaticMapping) -> StaticMap {
        StaticMap { config }
    }
}

impl AddressMap for StaticMap {
    fn advertised(&self, node_id: i32, host: &str, port: i32) -> Option<Advertised<'_>> {
        if let Some((_, entry)) = self.config.broker(host, port) {
            let a = &entry.advertised;
            return Some(Advertised { host: Cow::Borrowed(&a.host), port: i32::from(a.port) });
        }
        let dynamic = self.config.dynamic.as_ref()?;
        let port = dynamic.advertised_port(node_id)?;
        Some(Advertised { host: Cow::Borrowed(&dynamic.advertised_host), port: i32::from(port) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DynamicListeners, HostPort, StaticBroker};

    fn mapping(dynamic: Option<DynamicListeners>) -> StaticMap {
        StaticMap::new(StaticMapping {
            brokers: vec![StaticBroker {
                upstream: HostPort { host: "kafka-0.example.com".into(), port: 9092 },
                listen: "0.0.0.0:32401".parse().unwrap(),
                advertised: HostPort { host: "kafka-0.grepplabs.com".into(), port: 9092 },
            }],
            dynamic,
        })
    }

    #[test]
    fn listed_brokers_get_their_advertised_address_whatever_their_id() {
        let map = mapping(None);
        let a = map.advertised(7, "KAFKA-0.example.com", 9092).expect("listed");
        assert_eq!((a.host.as_ref(), a.port), ("kafka-0.grepplabs.com", 9092));
        assert_eq!(map.advertised(7, "kafka-0.example.com", 9093), None, "another port is another broker");
        assert_eq!(map.advertised(1, "kafka-1.example.com", 9092), None, "unlisted, no dynamic listeners");
    }

    #[test]
    fn unlisted_brokers_get_a_port_by_node_id() {
        let map = mapping(Some(DynamicListeners {
            bind_ip: "127.0.0.1".parse().unwrap(),
            first_port: 32500,
            advertised_host: "proxy.example.com".into(),
            advertised_first_port: 42500,
            max_broker_id: 10,
        }));
        let a = map.advertised(3, "kafka-3.example.com", 9092).expect("dynamic");
        assert_eq!((a.host.as_ref(), a.port), ("proxy.example.com", 42503));
        assert_eq!(map.advertised(11, "kafka-11.example.com", 9092), None, "beyond max_broker_id");
    }
}
