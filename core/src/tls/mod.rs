//! TLS on both sides, driven through rustls' unbuffered API.
//!
//! * [`RustlsSession`]: the record engine behind the [`TlsDriver`] trait,
//!   usable on its own by any code that moves the bytes itself (the CLI's
//!   blocking certificate fetcher does).
//! * [`config`]: rustls client and server configurations from PEM bytes
//!   (encrypted keys, CRLs) and a [`config::TlsPolicy`] (versions, suites, groups).
//! * `client_hello`: the ClientHello SNI peek that picks a route before the
//!   server connection exists.
//! * [`principal`]: Kafka's `ssl.principal.mapping.rules` over the client
//!   certificate's subject.

pub(crate) mod client_hello;
pub mod config;
pub(crate) mod driver;
mod policy;
pub mod principal;
mod private_key;

#[cfg(test)]
pub(crate) mod test_util;

/// The buffer type of [`TlsIo`], re-exported for drivers outside the core
/// (the CLI's blocking certificate fetcher).
pub use bytes::BytesMut;
pub use driver::{FirstBytes, Negotiated, Role, RustlsSession, TlsDriver, TlsError, TlsIo, TlsStatus};
