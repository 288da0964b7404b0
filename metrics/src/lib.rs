//! `kafka-proxy-metrics`: everything the proxy exports, in one place both
//! runtimes share.
//!
//! * [`families`]: the Prometheus registry and every metric family, with the
//!   exact names of the Go kafka-proxy (`proxy_*`, so existing dashboards keep
//!   working) and our own `kafka_proxy_*` families.
//! * [`ConnMetrics`]: the fold. Sessions count in plain fields
//!   ([`Session::take_stats`](kafka_proxy_core::session::Session::take_stats));
//!   a runtime that exports metrics takes those counts about once a second per
//!   active connection and when the connection ends, and [`ConnMetrics`]
//!   adds them to the registry. The data path never touches an atomic.
//! * [`Status`]: readiness (listeners bound, cluster learned, not draining),
//!   which the runtimes update and `/ready` reads.
//!
//! With metrics off (no `admin.bind`) a runtime has no [`Telemetry`] and folds
//! nothing.

pub mod families;
mod fold;
mod latency;
mod status;

use std::sync::Arc;

use kafka_proxy_core::proxy::{Proxy, ProxyStats};
use kafka_proxy_core::route::ListenerId;

pub use families::Families;
pub use fold::{ConnMetrics, FOLD_INTERVAL};
pub use status::{NotReady, Status};

/// The `Content-Type` of [`Telemetry::encode`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The registry, its families and the readiness status of one process.
#[derive(Debug)]
pub struct Telemetry {
    families: Families,
    status: Status,
}

impl Telemetry {
    /// Metrics for a process of this `version` running on `runtime` (both go
    /// into `kafka_proxy_build_info`).
    pub fn new(version: &str, runtime: &str) -> Arc<Telemetry> {
        let families = Families::new();
        families.build_info.with_label_values(&[version, runtime]).set(1);
        Arc::new(Telemetry { families, status: Status::default() })
    }

    /// The families, for folding.
    pub fn families(&self) -> &Families {
        &self.families
    }

    /// Readiness.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Every metric, in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let readiness = self.status.readiness();
        self.families.ready.set(i64::from(readiness.is_ok()));
        if readiness == Err(NotReady::Draining) {
            self.families.draining.set(1);
        }
        self.families.encode()
    }

    /// A client connection was accepted on `listener`: its metrics.
    pub fn open_connection(self: &Arc<Self>, listener: ListenerId) -> ConnMetrics {
        ConnMetrics::new(self.clone(), listener)
    }

    /// Takes the proxy's own numbers (listeners, brokers, draining, reloads)
    /// and the readiness they imply. Cheap: call after every proxy change.
    pub fn observe_proxy(&self, proxy: &Proxy) {
        let stats: ProxyStats = proxy.stats();
        self.families.observe_proxy(&stats);
        self.status.observe(&stats, proxy.knows_cluster());
    }

    /// A configuration reload was refused (the file did not load); the
    /// applied ones are counted from the proxy.
    pub fn reload_failed(&self) {
        self.families.reloads.with_label_values(&["failed"]).inc();
    }
}
