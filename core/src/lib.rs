//! `kafka-proxy-core`: the sans-IO engine of kafka-proxy.
//!
//! No sockets, no threads, no clock reads: bytes in, actions out, time passed
//! in. A runtime (tokio, mio, a test harness, an embedding application) owns
//! the sockets and drives two kinds of state machine:
//!
//! * [`proxy::Proxy`], one per process: the configuration, the topology learned
//!   from the cluster, the set of listeners. It decides what an accepted
//!   connection is and emits listener changes.
//! * [`session::Session`], one per client connection and its upstream
//!   connection: TLS, SASL, framing, correlation and rewriting.
//!
//! # The rule
//!
//! **After every input, drain the outputs until none is left.** That is:
//! after [`session::Session::handle_read`], `handle_connected`, `handle_eof`,
//! `handle_timeout`, `handle_written` (and the `Proxy` equivalents), call
//! `poll_event` until it returns `None`, write what `transmit` offers for each
//! side, and re-arm the timer from `poll_timeout`. A runtime that follows it
//! can never stall the core; one that does not may leave bytes or deadlines
//! unattended.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)
)]
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

pub mod api;
pub mod config;
pub mod rewrite;
pub mod route;
pub mod sasl;
pub mod tls;
pub mod wire;
