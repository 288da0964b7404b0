//! Helpers shared by the tests of both certificate tools.

use std::fs;
use std::path::{Path, PathBuf};

use kafka_proxy_core::tls::{BytesMut, RustlsSession, TlsDriver, TlsError, TlsIo};

/// A fresh, empty directory under the system temp dir.
pub(super) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kafka-proxy-certs-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

/// The bytes of `file` in `dir`.
pub(super) fn read(dir: &Path, file: &str) -> Vec<u8> {
    fs::read(dir.join(file)).unwrap()
}

/// One side of an in-memory TLS connection, with its buffers.
pub(super) struct End {
    pub(super) tls: RustlsSession,
    pub(super) incoming: BytesMut,
    pub(super) plaintext: BytesMut,
    pub(super) outgoing: BytesMut,
}

impl End {
    pub(super) fn new(tls: RustlsSession) -> Self {
        End { tls, incoming: BytesMut::new(), plaintext: BytesMut::new(), outgoing: BytesMut::new() }
    }
    pub(super) fn process(&mut self) -> Result<(), TlsError> {
        let mut io = TlsIo {
            incoming: &mut self.incoming,
            plaintext: &mut self.plaintext,
            outgoing: &mut self.outgoing,
        };
        self.tls.process(&mut io).map(|_| ())
    }
}
