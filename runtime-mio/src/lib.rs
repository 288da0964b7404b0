//! Drives `kafka-proxy-core` with a minimal, single-threaded, edge-triggered
//! mio (epoll) loop: the lowest-overhead way to move bytes through the core.
//!
//! Every socket is registered once for readable edges, and for writable
//! edges only while a write is blocked (otherwise every ACK from the peer
//! would wake the loop). Because edges fire once, the loop remembers
//! readiness per socket and keeps reading or writing until the kernel says
//! `WouldBlock` (or the session applies back-pressure, in which case the
//! remembered readiness is used as soon as the session wants bytes again).
//! After every input it drains the session's events, flushes its queues and
//! re-arms its timer: the core's rule. There is no protocol logic here.
//!
//! The entry point and control handle are the shared contract of
//! `kafka-proxy-runtime`.

mod conn;
mod dns;
mod event_loop;
mod slab;

use kafka_proxy_core::proxy::Proxy;
use kafka_proxy_runtime::{Control, RunError, RunOptions};

/// Runs `proxy` on the calling thread until `control` stops it (or a drain
/// ends). Returns an error only if it cannot start.
pub fn run(proxy: Proxy, options: &RunOptions, control: &Control) -> Result<(), RunError> {
    event_loop::Loop::start(proxy, options, control)?.serve(control);
    Ok(())
}
