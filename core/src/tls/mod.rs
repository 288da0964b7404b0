//! TLS on both sides, driven through rustls' unbuffered API.
//!
//! * [`driver`]: the record engine behind the [`driver::TlsDriver`] trait.
//! * [`config`]: rustls client and server configurations from PEM bytes.
//! * [`client_hello`]: the ClientHello SNI peek that picks a route before the
//!   server connection exists.
//! * [`principal`]: Kafka's `ssl.principal.mapping.rules` over the client
//!   certificate's subject.

pub mod client_hello;
pub mod config;
pub mod driver;
pub mod principal;

#[cfg(test)]
pub(crate) mod test_util;

/// The buffer type of [`TlsIo`], re-exported for drivers outside the core
/// (the CLI's blocking certificate fetcher).
pub use bytes::BytesMut;
pub use driver::{Negotiated, Role, RustlsSession, TlsDriver, TlsError, TlsIo, TlsStatus};
