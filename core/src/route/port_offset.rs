//! The `port_offset` mapping: bootstrap ports `base..base+19`, broker `n` at
//! `base + 20 + n` (advertised at `advertised_base + 20 + n`), one advertised
//! host for all.

use std::borrow::Cow;

use crate::config::PortOffset;
use crate::rewrite::{AddressMap, Advertised};

/// Advertises every broker as `advertised_host:(advertised_base + 20 + node_id)`.
#[derive(Debug, Clone)]
pub(crate) struct PortOffsetMap {
    config: PortOffset,
}

impl PortOffsetMap {
    /// The map for `config`.
    pub(crate) fn new(config: PortOffset) -> PortOffsetMap {
        PortOffsetMap { config }
    }
}

impl AddressMap for PortOffsetMap {
    fn advertised(&self, node_id: i32, _host: &str, _port: i32) -> Option<Advertised<'_>> {
        let port = self.config.advertised_port(node_id)?;
        Some(Advertised { host: Cow::Borrowed(&self.config.advertised_host), port: i32::from(port) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertises_offset_ports_and_refuses_out_of_range_ids() {
        let map = PortOffsetMap::new(PortOffset {
            advertised_host: "proxy.example.com".into(),
            base: 9092,
            max_broker_id: 400,
            advertised_base: 9092,
        });
        let a = map.advertised(111, "broker-111.internal", 9092).expect("in range");
        assert_eq!((a.host.as_ref(), a.port), ("proxy.example.com", 9223));
        assert_eq!(map.advertised(401, "b", 1), None);
        assert_eq!(map.advertised(-1, "b", 1), None);
    }

    #[test]
    fn a_port_forward_shifts_what_clients_are_told() {
        let map = PortOffsetMap::new(PortOffset {
            advertised_host: "nat.example.com".into(),
            base: 9092,
            max_broker_id: 400,
            advertised_base: 30092,
        });
        let a = map.advertised(1, "broker-1.internal", 9092).expect("in range");
        assert_eq!((a.host.as_ref(), a.port), ("nat.example.com", 30113));
    }
}
