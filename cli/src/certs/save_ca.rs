//! `--save-ca-certs`: a one-shot blocking TLS client that records the chain a
//! server presents and saves its issuers as PEM. Apart from `generate`
//! because it is network and handshake code (through the core's TLS driver),
//! not certificate building.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use kafka_proxy_core::tls::config::{
    AcceptAnyServerCert, ClientTlsOptions, ServerVerification, TlsVersions, client_config, crypto_provider,
    server_name,
};
use kafka_proxy_core::tls::principal::subject_rfc2253;
use kafka_proxy_core::tls::{BytesMut, RustlsSession, TlsDriver, TlsError, TlsIo};
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::{CertsError, write_file};

/// The file written by [`save_ca_certs`] unless another is given.
pub(crate) const SERVER_CA_FILE: &str = "server_ca.pem";

/// How long [`save_ca_certs`] waits to connect, and for the whole handshake.
pub(super) const NETWORK_TIMEOUT: Duration = Duration::from_secs(15);

/// What [`save_ca_certs`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SavedCaCerts {
    /// The file written.
    pub path: PathBuf,
    /// RFC 2253 subjects of the certificates written, in order.
    pub subjects: Vec<String>,
    /// The server presented only a self-signed certificate, and that is what
    /// was written (trusting it pins that exact certificate).
    pub self_signed_leaf: bool,
    /// The handshake did not complete (e.g. the server wants a client
    /// certificate) but the chain had already been received.
    pub handshake_failed: Option<TlsError>,
}

/// Connects to `server` (`host:port`), reads the certificate chain it
/// presents, and writes its issuers (the certificates after the leaf) to `out`
/// as PEM. A server presenting only a self-signed certificate gets that
/// certificate written, flagged in the result.
pub(crate) fn save_ca_certs(server: &str, out: &Path, force: bool) -> Result<SavedCaCerts, CertsError> {
    if !force && out.exists() {
        return Err(CertsError::Exists { path: out.to_owned() });
    }
    let (host, port) =
        split_host_port(server).ok_or_else(|| CertsError::InvalidServer { server: server.to_owned() })?;
    let name = server_name(host).map_err(CertsError::TlsConfig)?;
    let recorder = Arc::new(ChainRecorder::default());
    let config = client_config(&ClientTlsOptions {
        verification: ServerVerification::Custom(recorder.clone()),
        identity: None,
        policy: TlsVersions::Tls12And13.into(),
    })
    .map_err(CertsError::TlsConfig)?;
    let mut tls = RustlsSession::client(config, name)
        .map_err(|error| CertsError::Tls { server: server.to_owned(), error })?;

    let mut stream = connect(server, host, port)?;
    let handshake_failed = fetch_chain(&mut tls, &mut stream, server, &recorder)?;
    let chain = recorder.chain();

    let (to_write, self_signed_leaf) = match chain.split_first() {
        None => return Err(CertsError::ClosedEarly { server: server.to_owned() }),
        Some((_, issuers)) if !issuers.is_empty() => (issuers.to_vec(), false),
        Some((leaf, _)) => {
            if !is_self_signed(leaf) {
                let subject = subject_rfc2253(leaf).unwrap_or_else(|_| "unparsable certificate".to_owned());
                return Err(CertsError::NoIssuer { server: server.to_owned(), subject });
            }
            (vec![leaf.clone()], true)
        }
    };
    let subjects =
        to_write.iter().map(|c| subject_rfc2253(c).unwrap_or_else(|_| "unparsable".to_owned())).collect();
    let pem: String = to_write.iter().map(|c| pem_certificate(c)).collect();
    write_file(out, pem.as_bytes(), force, false)?;
    Ok(SavedCaCerts { path: out.to_owned(), subjects, self_signed_leaf, handshake_failed })
}

/// Splits `host:port` or `[v6]:port`.
fn split_host_port(server: &str) -> Option<(&str, u16)> {
    let (host, port) = server.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    (!host.is_empty()).then_some((host, port))
}

fn connect(server: &str, host: &str, port: u16) -> Result<TcpStream, CertsError> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|error| CertsError::Resolve { server: server.to_owned(), error })?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, NETWORK_TIMEOUT) {
            Ok(stream) => {
                let net = |error| CertsError::Network { server: server.to_owned(), error };
                stream.set_read_timeout(Some(NETWORK_TIMEOUT)).map_err(net)?;
                stream.set_write_timeout(Some(NETWORK_TIMEOUT)).map_err(net)?;
                return Ok(stream);
            }
            Err(error) => last = error,
        }
    }
    Err(CertsError::Connect { server: server.to_owned(), error: last })
}

/// Runs the client handshake over a blocking socket until it completes, or
/// fails after the chain arrived (returned as `Some`). Sends close_notify.
fn fetch_chain(
    tls: &mut RustlsSession,
    stream: &mut TcpStream,
    server: &str,
    recorder: &ChainRecorder,
) -> Result<Option<TlsError>, CertsError> {
    let net = |error| CertsError::Network { server: server.to_owned(), error };
    let (mut incoming, mut plaintext, mut outgoing) = (BytesMut::new(), BytesMut::new(), BytesMut::new());
    let mut read_buf = vec![0u8; 16 * 1024];
    let deadline = Instant::now() + NETWORK_TIMEOUT;
    let mut failure = None;
    // Each turn reads at least one byte or ends; the deadline bounds the rest.
    while Instant::now() < deadline {
        let mut io = TlsIo { incoming: &mut incoming, plaintext: &mut plaintext, outgoing: &mut outgoing };
        let step = tls.process(&mut io);
        stream.write_all(&outgoing).map_err(net)?;
        outgoing.clear();
        match step {
            Ok(status) if status.handshake_complete => break,
            Ok(_) => {}
            Err(error) if !recorder.chain().is_empty() => {
                failure = Some(error);
                break;
            }
            Err(error) => return Err(CertsError::Tls { server: server.to_owned(), error }),
        }
        let read = stream.read(&mut read_buf).map_err(net)?;
        let Some(bytes) = read_buf.get(..read).filter(|b| !b.is_empty()) else {
            if recorder.chain().is_empty() {
                return Err(CertsError::ClosedEarly { server: server.to_owned() });
            }
            break;
        };
        incoming.extend_from_slice(bytes);
    }
    if failure.is_none() && recorder.chain().is_empty() {
        return Err(net(io::Error::new(io::ErrorKind::TimedOut, "handshake timed out")));
    }
    let mut io = TlsIo { incoming: &mut incoming, plaintext: &mut plaintext, outgoing: &mut outgoing };
    if tls.close(&mut io).is_ok() {
        // Best effort: the chain is what matters.
        let _ = stream.write_all(&outgoing);
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    Ok(failure)
}

fn is_self_signed(cert: &CertificateDer<'_>) -> bool {
    use x509_parser::prelude::{FromDer, X509Certificate};
    X509Certificate::from_der(cert).is_ok_and(|(_, c)| c.subject().as_raw() == c.issuer().as_raw())
}

fn pem_certificate(cert: &CertificateDer<'_>) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// Accepts any server certificate, like trust-all, and keeps the chain presented.
#[derive(Debug)]
struct ChainRecorder {
    signatures: AcceptAnyServerCert,
    chain: Mutex<Vec<CertificateDer<'static>>>,
}

impl Default for ChainRecorder {
    fn default() -> Self {
        ChainRecorder {
            signatures: AcceptAnyServerCert::new(&crypto_provider()),
            chain: Mutex::new(Vec::new()),
        }
    }
}

impl ChainRecorder {
    fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.chain.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

impl ServerCertVerifier for ChainRecorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = self.chain.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        chain.clear();
        chain.push(end_entity.clone().into_owned());
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.signatures.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests;
