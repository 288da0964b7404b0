//! Readiness: whether this process should get new clients.

use std::sync::atomic::{AtomicBool, Ordering};

use kafka_proxy_core::proxy::ProxyStats;

/// Why `/ready` answers 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    /// The listeners are not bound yet.
    Starting,
    /// The proxy has not learned the cluster's brokers yet (it could not
    /// reach the bootstrap servers, or is still asking).
    ClusterUnknown,
    /// A drain began (SIGTERM): clients should go to another instance.
    Draining,
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotReady::Starting => "listeners are not bound yet",
            NotReady::ClusterUnknown => "the cluster's brokers have not been learned yet",
            NotReady::Draining => "draining: this instance is shutting down",
        })
    }
}

/// What readiness is computed from; the runtimes and the signal handler
/// update it, the admin endpoint reads it.
#[derive(Debug, Default)]
pub struct Status {
    listening: AtomicBool,
    /// Sticky: once learned, a cluster that later shrinks does not make the
    /// proxy unready (its clients still need it).
    cluster_learned: AtomicBool,
    /// The proxy cannot learn the cluster on its own (SASL passed through):
    /// only clients teach it, so waiting for that would never end.
    learns_from_clients_only: AtomicBool,
    draining: AtomicBool,
}

impl Status {
    /// The runtime bound the proxy's first listeners.
    pub fn set_listening(&self) {
        self.listening.store(true, Ordering::Relaxed);
    }

    /// A drain began: `/ready` turns 503 at once (the signal handler calls
    /// this before the runtime even sees the drain).
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub(crate) fn observe(&self, stats: &ProxyStats, knows_cluster: bool) {
        if knows_cluster {
            self.cluster_learned.store(true, Ordering::Relaxed);
        }
        self.learns_from_clients_only.store(!stats.probes_cluster, Ordering::Relaxed);
        if stats.draining {
            self.set_draining();
        }
    }

    /// `Ok` when new clients are welcome, else why not.
    pub fn readiness(&self) -> Result<(), NotReady> {
        if self.draining.load(Ordering::Relaxed) {
            Err(NotReady::Draining)
        } else if !self.listening.load(Ordering::Relaxed) {
            Err(NotReady::Starting)
        } else if !self.cluster_learned.load(Ordering::Relaxed)
            && !self.learns_from_clients_only.load(Ordering::Relaxed)
        {
            Err(NotReady::ClusterUnknown)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(draining: bool, probes_cluster: bool) -> ProxyStats {
        ProxyStats { listeners: 1, draining, probes_cluster, ..ProxyStats::default() }
    }

    #[test]
    fn ready_once_listening_and_the_cluster_is_known_until_draining() {
        let s = Status::default();
        assert_eq!(s.readiness(), Err(NotReady::Starting));
        s.set_listening();
        s.observe(&stats(false, true), false);
        assert_eq!(s.readiness(), Err(NotReady::ClusterUnknown));
        s.observe(&stats(false, true), true);
        assert_eq!(s.readiness(), Ok(()));
        s.observe(&stats(false, true), false);
        assert_eq!(s.readiness(), Ok(()), "learned once is enough");
        s.set_draining();
        assert_eq!(s.readiness(), Err(NotReady::Draining));
    }

    #[test]
    fn a_proxy_that_cannot_probe_does_not_wait_for_the_cluster() {
        let s = Status::default();
        s.set_listening();
        s.observe(&stats(false, false), false);
        assert_eq!(s.readiness(), Ok(()));
    }
}
