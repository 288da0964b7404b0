//! External mappings, in every mode: a broker another server exposes (a load
//! balancer, another proxy) is advertised at that server's address, ahead of
//! whatever the mode would say.

use std::borrow::Cow;
use std::sync::Arc;

use crate::config::ExternalBroker;
use crate::rewrite::{AddressMap, Advertised};

/// The mode's map with the external brokers checked first.
pub(crate) struct WithExternal {
    external: Vec<ExternalBroker>,
    inner: Arc<dyn AddressMap + Send + Sync>,
}

impl std::fmt::Debug for WithExternal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithExternal").field("external", &self.external).finish_non_exhaustive()
    }
}

impl WithExternal {
    /// `inner`, unless `external` is empty (then `inner` alone).
    pub(crate) fn wrap(
        external: &[ExternalBroker],
        inner: Arc<dyn AddressMap + Send + Sync>,
    ) -> Arc<dyn AddressMap + Send + Sync> {
        if external.is_empty() {
            return inner;
        }
        Arc::new(WithExternal { external: external.to_vec(), inner })
    }
}

/// The external entry for a broker the cluster advertises as `host:port`.
pub(crate) fn external_for<'a>(
    external: &'a [ExternalBroker],
    host: &str,
    port: i32,
) -> Option<&'a ExternalBroker> {
    external.iter().find(|e| e.upstream.matches(host, port))
}

impl AddressMap for WithExternal {
    fn advertised(&self, node_id: i32, host: &str, port: i32) -> Option<Advertised<'_>> {
        match external_for(&self.external, host, port) {
            Some(e) => Some(Advertised {
                host: Cow::Borrowed(&e.advertised.host),
                port: i32::from(e.advertised.port),
            }),
            None => self.inner.advertised(node_id, host, port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HostPort, PortOffset};
    use crate::route::port_offset::PortOffsetMap;

    #[test]
    fn external_brokers_come_first_the_mode_answers_the_rest() {
        let inner = Arc::new(PortOffsetMap::new(PortOffset {
            advertised_host: "proxy".into(),
            base: 9092,
            max_broker_id: 400,
            advertised_base: 9092,
        }));
        let external = [ExternalBroker {
            upstream: HostPort { host: "192.168.99.100".into(), port: 32401 },
            advertised: HostPort { host: "127.0.0.1".into(), port: 32402 },
        }];
        let map = WithExternal::wrap(&external, inner);
        let a = map.advertised(1, "192.168.99.100", 32401).expect("external");
        assert_eq!((a.host.as_ref(), a.port), ("127.0.0.1", 32402));
        let b = map.advertised(1, "192.168.99.100", 32400).expect("port_offset");
        assert_eq!((b.host.as_ref(), b.port), ("proxy", 9113));
    }
}
