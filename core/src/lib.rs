//! `kafka-proxy-core`: the sans-IO engine of kafka-proxy.
//!
//! No sockets, no threads, no clock reads: bytes in, actions out, time passed
//! in. A runtime (tokio, mio, a test harness, an embedding application) owns
//! the sockets and drives two kinds of state machine:
//!
//! * [`proxy::Proxy`], one per process: the configuration, the topology learned
//!   from the cluster, the set of listeners. It decides what an accepted
//!   connection is, answers its sessions' questions and emits listener changes.
//! * [`session::Session`], one per client connection and its upstream
//!   connection: TLS, SASL, framing, correlation and rewriting.
//!
//! # The rule
//!
//! **After every input, drain the outputs until none is left.** Completely:
//!
//! 1. **Proxy inputs** are [`Proxy::new`](proxy::Proxy::new),
//!    [`accept`](proxy::Proxy::accept), [`handle_session_event`](proxy::Proxy::handle_session_event),
//!    [`handle_timeout`](proxy::Proxy::handle_timeout),
//!    [`handle_listen_failed`](proxy::Proxy::handle_listen_failed), [`reload`](proxy::Proxy::reload)
//!    and [`drain`](proxy::Proxy::drain). After each, call
//!    [`poll_action`](proxy::Proxy::poll_action) until `None` and carry out
//!    every action: bind or close a listener, or drive a session the proxy
//!    started itself ([`ProxyAction::Spawn`](proxy::ProxyAction::Spawn), a probe
//!    of the cluster, which has no client socket). Then re-arm the proxy's
//!    timer from [`poll_timeout`](proxy::Proxy::poll_timeout).
//! 2. **Session inputs** are [`read_from`](session::Session::read_from),
//!    [`handle_eof`](session::Session::handle_eof),
//!    [`write_to`](session::Session::write_to),
//!    [`handle_connected`](session::Session::handle_connected),
//!    [`handle_connect_failed`](session::Session::handle_connect_failed),
//!    [`handle_io_error`](session::Session::handle_io_error),
//!    [`handle_timeout`](session::Session::handle_timeout),
//!    [`handle_spliced`](session::Session::handle_spliced),
//!    [`handle_unspliced`](session::Session::handle_unspliced),
//!    [`drain`](session::Session::drain) and [`shutdown`](session::Session::shutdown).
//!    After each, call [`poll_event`](session::Session::poll_event) until `None`:
//!    [`Event::Connect`](session::Event::Connect) opens the upstream
//!    connection (to [`ConnectTarget::endpoint`](session::ConnectTarget::endpoint)),
//!    [`Event::ShutdownWrite`](session::Event::ShutdownWrite) half-closes a
//!    socket, [`Event::Closed`](session::Event::Closed) drops both sockets and
//!    the session, and [`Event::Proxy`](session::Event::Proxy) goes unopened to
//!    `Proxy::handle_session_event` (then step 1). Then write what `write_to`
//!    offers for each side (and what [`pending_splice`](session::Session::pending_splice)
//!    says waits in a pipe, first), read each side whose socket is readable
//!    while [`wants_read`](session::Session::wants_read) (or
//!    [`splice_window`](session::Session::splice_window)) allows, and re-arm
//!    the session's timer from [`poll_timeout`](session::Session::poll_timeout).
//!
//! A runtime that follows it can never stall the core; one that does not may
//! leave bytes or deadlines unattended. Nothing else is the runtime's
//! business: it never decides a route, a retry or a close itself.
//!
//! A whole runtime that follows this rule step by step, with nothing but
//! `std::net` and one thread, is
//! [`examples/std_blocking.rs`](https://github.com/kafka-proxy/kafka-proxy/blob/main/core/examples/std_blocking.rs)
//! (`cargo run -p kafka-proxy-core --example std_blocking -- UPSTREAM_HOST:PORT BASE_PORT`):
//! read it as the reference for what "drain the outputs" means in practice.
//! The in-memory harness in `core/tests/common` drives the same contract
//! with a virtual clock.
//!
//! Built with `--cfg fuzzing` (as cargo-fuzz does), the crate also has a
//! `fuzzing` module: the internals the fuzz targets drive directly.
#![deny(clippy::indexing_slicing)]

pub mod api;
pub(crate) mod cluster;
pub mod config;
pub(crate) mod correlation;
pub(crate) mod deadline;
pub(crate) mod frame;
#[cfg(fuzzing)]
pub mod fuzzing;
pub(crate) mod header;
pub mod policy;
pub mod proxy;
pub(crate) mod rewrite;
pub mod route;
pub mod sasl;
pub mod session;
pub mod tls;
pub(crate) mod wire;
