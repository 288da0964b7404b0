//! The one error both runtimes return.

use std::io;
use std::net::SocketAddr;

use kafka_proxy_core::route::ListenerId;

/// Why a runtime could not start (once serving, it only stops when told).
#[derive(Debug)]
pub enum RunError {
    /// The runtime's own machinery (thread pool, epoll, waker) could not be created.
    Start {
        /// What could not be created.
        what: &'static str,
        /// The operating system's error.
        error: io::Error,
    },
    /// A listener the configuration needs could not be bound.
    Bind {
        /// The listener.
        id: ListenerId,
        /// Its address.
        addr: SocketAddr,
        /// The operating system's error.
        error: io::Error,
    },
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Start { what, error } => write!(f, "cannot start the {what}: {error}"),
            RunError::Bind { id, addr, error } => write!(f, "cannot listen on {addr} for {id}: {error}"),
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Start { error, .. } | RunError::Bind { error, .. } => Some(error),
        }
    }
}
