//! In-memory TLS pairs for tests: a client and a server driver wired back to
//! back, bytes moved in chosen chunk sizes.

use std::sync::Arc;

use bytes::BytesMut;
use rustls::pki_types::ServerName;

use super::config::{
    CertKeyPem, ClientAuth, ClientTlsOptions, ServerTlsOptions, ServerVerification, TlsVersions,
    certificates_from_pem, client_config, server_config,
};
use super::driver::{Role, RustlsSession, TlsDriver, TlsError, TlsIo, TlsStatus};

pub(crate) const CA: &[u8] = include_bytes!("testdata/ca.pem");
pub(crate) const SERVER: &[u8] = include_bytes!("testdata/server.pem");
pub(crate) const SERVER_KEY: &[u8] = include_bytes!("testdata/server_key.pem");
pub(crate) const CLIENT1: &[u8] = include_bytes!("testdata/client1.pem");
pub(crate) const CLIENT1_KEY: &[u8] = include_bytes!("testdata/client1_key.pem");
pub(crate) const OTHER_CA: &[u8] = include_bytes!("testdata/other_ca.pem");
pub(crate) const OTHER_CLIENT1: &[u8] = include_bytes!("testdata/other_client1.pem");
pub(crate) const OTHER_CLIENT1_KEY: &[u8] = include_bytes!("testdata/other_client1_key.pem");

pub(crate) fn server_cfg(client_auth: ClientAuth<'_>, versions: TlsVersions) -> Arc<rustls::ServerConfig> {
    server_config(&ServerTlsOptions {
        identity: CertKeyPem::new(SERVER, SERVER_KEY),
        client_auth,
        policy: versions.into(),
    })
    .unwrap()
}

pub(crate) fn client_cfg(
    roots: &[u8],
    identity: Option<(&[u8], &[u8])>,
    versions: TlsVersions,
) -> Arc<rustls::ClientConfig> {
    client_config(&ClientTlsOptions {
        verification: ServerVerification::Roots(
            certificates_from_pem(roots, super::config::PemItem::ServerCaBundle).unwrap(),
        ),
        identity: identity.map(|(cert_chain, key)| CertKeyPem::new(cert_chain, key)),
        policy: versions.into(),
    })
    .unwrap()
}

pub(crate) fn trust_all_cfg(versions: TlsVersions) -> Arc<rustls::ClientConfig> {
    client_config(&ClientTlsOptions {
        verification: ServerVerification::TrustAll,
        identity: None,
        policy: versions.into(),
    })
    .unwrap()
}

pub(crate) fn name(host: &str) -> ServerName<'static> {
    ServerName::try_from(host.to_owned()).unwrap()
}

/// One end: its driver and the three buffers a session would own.
#[derive(Debug)]
pub(crate) struct End {
    pub(crate) tls: RustlsSession,
    pub(crate) incoming: BytesMut,
    pub(crate) plaintext: BytesMut,
    pub(crate) outgoing: BytesMut,
    pub(crate) error: Option<TlsError>,
}

impl End {
    pub(crate) fn new(tls: RustlsSession) -> Self {
        End {
            tls,
            incoming: BytesMut::new(),
            plaintext: BytesMut::new(),
            outgoing: BytesMut::new(),
            error: None,
        }
    }

    fn io_call<T>(&mut self, f: impl FnOnce(&mut RustlsSession, &mut TlsIo<'_>) -> T) -> T {
        let mut io = TlsIo {
            incoming: &mut self.incoming,
            plaintext: &mut self.plaintext,
            outgoing: &mut self.outgoing,
        };
        f(&mut self.tls, &mut io)
    }

    pub(crate) fn process(&mut self) -> Result<TlsStatus, TlsError> {
        let result = self.io_call(|tls, io| tls.process(io));
        if let Err(e) = &result {
            self.error.get_or_insert_with(|| e.clone());
        }
        result
    }

    pub(crate) fn write(&mut self, slices: &[&[u8]]) -> Result<TlsStatus, TlsError> {
        self.io_call(|tls, io| tls.write(io, slices))
    }

    pub(crate) fn close(&mut self) -> Result<TlsStatus, TlsError> {
        self.io_call(|tls, io| tls.close(io))
    }
}

/// A client and a server, wired in memory.
#[derive(Debug)]
pub(crate) struct Pair {
    pub(crate) client: End,
    pub(crate) server: End,
}

impl Pair {
    pub(crate) fn new(
        client: Arc<rustls::ClientConfig>,
        host: &str,
        server: Arc<rustls::ServerConfig>,
    ) -> Self {
        Pair {
            client: End::new(RustlsSession::client(client, name(host)).unwrap()),
            server: End::new(RustlsSession::server(server).unwrap()),
        }
    }

    /// Moves bytes both ways until nothing moves, delivering at most the next
    /// size of `client_to_server` / `server_to_client` (cycled, 0 read as 1)
    /// per step and processing after each delivery. Stops at the first error
    /// of either end (recorded in `End::error`).
    pub(crate) fn run(&mut self, client_to_server: &[usize], server_to_client: &[usize]) {
        let mut c2s = client_to_server.iter().cycle();
        let mut s2c = server_to_client.iter().cycle();
        let _ = self.client.process();
        for _ in 0..1_000_000 {
            if self.client.error.is_some() || self.server.error.is_some() {
                return;
            }
            let mut moved = false;
            if !self.client.outgoing.is_empty() {
                let n = c2s.next().copied().unwrap_or(usize::MAX).max(1).min(self.client.outgoing.len());
                let chunk = self.client.outgoing.split_to(n);
                self.server.incoming.extend_from_slice(&chunk);
                let _ = self.server.process();
                moved = true;
            }
            if self.server.error.is_some() {
                // Deliver the server's alert, as a real socket would before closing.
                let rest = self.server.outgoing.split();
                self.client.incoming.extend_from_slice(&rest);
                let _ = self.client.process();
                return;
            }
            if !self.server.outgoing.is_empty() {
                let n = s2c.next().copied().unwrap_or(usize::MAX).max(1).min(self.server.outgoing.len());
                let chunk = self.server.outgoing.split_to(n);
                self.client.incoming.extend_from_slice(&chunk);
                let _ = self.client.process();
                moved = true;
            }
            if self.client.error.is_some() {
                let rest = self.client.outgoing.split();
                self.server.incoming.extend_from_slice(&rest);
                let _ = self.server.process();
                return;
            }
            if !moved {
                return;
            }
        }
        panic!("pair did not settle");
    }

    pub(crate) fn handshake(&mut self) {
        self.run(&[usize::MAX], &[usize::MAX]);
    }

    pub(crate) fn end(&mut self, role: Role) -> &mut End {
        match role {
            Role::Client => &mut self.client,
            Role::Server => &mut self.server,
        }
    }
}
