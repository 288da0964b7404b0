//! `kafka-proxy-runtime`: the one contract both runtimes implement, and every
//! piece of I/O logic that is not specific to tokio or epoll.
//!
//! A runtime is a function with this shape (`kafka_proxy_tokio::run`,
//! `kafka_proxy_mio::run`):
//!
//! ```text
//! fn run(proxy: Proxy, options: &RunOptions, control: &Control) -> Result<(), RunError>
//! ```
//!
//! It binds the proxy's first listeners (all must bind, or it returns
//! [`RunError::Bind`]), then serves until [`Control::stop`] or the end of a
//! [`Control::drain`], applying [`Control::reload`]s as they come. The caller
//! (the `kafka-proxy` binary, or an embedding application) creates the
//! [`Control`] first and keeps a clone to steer the runtime from any thread:
//! signal handling is written once, against this handle.
//!
//! Inside, a runtime only moves bytes and carries out what the core asks:
//! [`actions::apply`] for the proxy's listener changes and sessions,
//! [`splice::Splicer`] for the splice contract, [`net`] for binding and
//! socket options, `ConnectTarget::endpoint` for where to connect, and
//! [`Watch`] for each connection's metrics fold and log fields.

pub mod actions;
mod control;
mod error;
pub mod net;
pub mod splice;
mod watch;

pub use control::{Commands, Control};
pub use error::RunError;
pub use kafka_proxy_metrics::Telemetry;
/// Reads into a buffer's spare capacity without zeroing it first.
pub use kafka_proxy_sys::read_into;
pub use watch::{DrainCuts, Watch};

/// Settings a runtime takes besides the proxy itself.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Worker threads for a multi-threaded runtime (`None`: one per core);
    /// single-threaded runtimes ignore it.
    pub worker_threads: Option<usize>,
    /// Where to export metrics and readiness (`None`: metrics off; the
    /// runtime then folds nothing and pays nothing for them).
    pub telemetry: Option<std::sync::Arc<Telemetry>>,
}

/// Tells `telemetry` (if any) the proxy's current numbers and readiness;
/// call after every change to the proxy (actions applied, reload, drain).
pub fn observe_proxy(telemetry: Option<&Telemetry>, proxy: &kafka_proxy_core::proxy::Proxy) {
    if let Some(telemetry) = telemetry {
        telemetry.observe_proxy(proxy);
    }
}

/// A client connection [`Proxy::accept`](kafka_proxy_core::proxy::Proxy::accept)
/// refused: logged (by the proxy itself, at a bounded rate, when a connection
/// limit refused it) and counted. The caller drops the socket, which closes
/// it at once.
pub fn connection_refused(
    telemetry: Option<&Telemetry>,
    proxy: &kafka_proxy_core::proxy::Proxy,
    listener: kafka_proxy_core::route::ListenerId,
    peer: std::net::SocketAddr,
    error: &kafka_proxy_core::proxy::AcceptError,
) {
    if error.logged_by_proxy() {
        tracing::debug!(%listener, %peer, %error, "connection refused");
    } else {
        tracing::warn!(%listener, %peer, %error, "connection refused");
    }
    observe_proxy(telemetry, proxy);
}
