//! Drives `kafka-proxy-core` with a multi-threaded tokio runtime.
//!
//! One task per listener accepts connections; one task per client connection
//! owns its [`Session`](kafka_proxy_core::session::Session) and both sockets.
//! After every input the task drains the session's events, writes what it
//! queued (one vectored write per side) and re-arms its timer: the core's
//! rule. There is no protocol logic here.
//!
//! The entry point and control handle are the shared contract of
//! `kafka-proxy-runtime`.

mod connection;
mod shared;

use std::sync::Arc;
use std::time::Duration;

use kafka_proxy_core::proxy::Proxy;
use kafka_proxy_runtime::{Control, RunError, RunOptions};
use tracing::{info, warn};

use shared::{Mode, Shared};

/// How often the runtime checks whether the last connection is gone while
/// it drains or stops.
const REAP_INTERVAL: Duration = Duration::from_millis(20);

/// Runs `proxy` on a new multi-threaded tokio runtime until `control` stops
/// it (or a drain ends). Returns an error only if it cannot start.
pub fn run(proxy: Proxy, options: &RunOptions, control: &Control) -> Result<(), RunError> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_name("kafka-proxy");
    if let Some(n) = options.worker_threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = builder.build().map_err(|error| RunError::Start { what: "tokio runtime", error })?;
    runtime.block_on(serve(proxy, options, control))
}

async fn serve(proxy: Proxy, options: &RunOptions, control: &Control) -> Result<(), RunError> {
    let shared =
        Shared::start(proxy, connection::spawn, options.authenticator.clone(), options.telemetry.clone())?;
    let woken = Arc::new(tokio::sync::Notify::new());
    {
        let woken = woken.clone();
        control.set_waker(move || woken.notify_one());
    }
    let timer = tokio::spawn(shared.clone().timer_loop());
    let mut drain_deadline: Option<tokio::time::Instant> = None;
    loop {
        let commands = control.take();
        if let Some(config) = commands.reload {
            let mut proxy = shared.proxy();
            proxy.reload(config);
            kafka_proxy_runtime::observe_proxy(shared.telemetry(), &proxy);
        }
        if let Some(timeout) = commands.drain
            && shared.mode() == Mode::Serving
        {
            info!(connections = shared.connections(), timeout_ms = timeout.as_millis() as u64, "draining");
            shared.drain();
            drain_deadline = Some(tokio::time::Instant::now() + timeout);
        }
        if commands.stop && shared.mode() != Mode::Stopping {
            info!(connections = shared.connections(), "stopping");
            shared.stop();
        }
        if shared.mode() != Mode::Serving && shared.connections() == 0 {
            break;
        }
        if let Some(deadline) = drain_deadline
            && shared.mode() == Mode::Draining
            && tokio::time::Instant::now() >= deadline
        {
            warn!(
                connections = shared.connections(),
                "drain deadline reached: closing the connections still open"
            );
            shared.expire_drain();
        }
        let reap = (shared.mode() != Mode::Serving).then(|| tokio::time::sleep(REAP_INTERVAL));
        tokio::select! {
            () = woken.notified() => {}
            () = shared::maybe(reap) => {}
        }
    }
    timer.abort();
    shared.cuts().summary();
    Ok(())
}
