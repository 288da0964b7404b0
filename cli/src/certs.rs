//! Certificate tools of the `kafka-proxy` command (seed 000).
//!
//! * [`generate_certs`] (`--generate-certs --sni-suffix S`): a throw-away CA,
//!   a server certificate for `*.S`, `S`, `localhost` and `127.0.0.1`, and two
//!   client certificates for mTLS tests.
//! * [`save_ca_certs`] (`--save-ca-certs --server host:port`): connects to a
//!   TLS server, runs the handshake through the core's TLS driver while
//!   accepting any certificate, and saves the issuer chain the server
//!   presented, for `upstream.tls.ca_certs`.
//!
//! Neither overwrites an existing file unless asked to.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use kafka_proxy_core::tls::config::{
    AcceptAnyServerCert, ClientTlsOptions, ServerVerification, TlsConfigError, TlsVersions, client_config,
    crypto_provider, server_name,
};
use kafka_proxy_core::tls::principal::subject_rfc2253;
use kafka_proxy_core::tls::{BytesMut, RustlsSession, TlsDriver, TlsError, TlsIo};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// The CA certificate written by [`generate_certs`].
pub const CA_FILE: &str = "ca.pem";
/// The server certificate written by [`generate_certs`].
pub const SERVER_CERT_FILE: &str = "server.pem";
/// The server private key written by [`generate_certs`].
pub const SERVER_KEY_FILE: &str = "server_key.pem";
/// The file written by [`save_ca_certs`] unless another is given.
pub const SERVER_CA_FILE: &str = "server_ca.pem";

/// The client certificates written by [`generate_certs`]: (name, cert file, key file).
pub const CLIENTS: [(&str, &str, &str); 2] =
    [("client1", "client1.pem", "client1_key.pem"), ("client2", "client2.pem", "client2_key.pem")];

/// How long [`save_ca_certs`] waits to connect, and for the whole handshake.
pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a certificate tool failed.
#[derive(Debug)]
pub enum CertsError {
    /// The file exists and `force` was not given.
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Reading, writing or creating a file or directory failed.
    File {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        error: io::Error,
    },
    /// The SNI suffix is not a DNS name.
    InvalidSuffix {
        /// The suffix as given.
        suffix: String,
    },
    /// rcgen refused to build a certificate.
    Generate {
        /// Which certificate.
        what: &'static str,
        /// rcgen's error.
        error: rcgen::Error,
    },
    /// The server is not written `host:port`.
    InvalidServer {
        /// The server as given.
        server: String,
    },
    /// The server's name could not be resolved.
    Resolve {
        /// The server.
        server: String,
        /// The resolver's error.
        error: io::Error,
    },
    /// No TCP connection could be made.
    Connect {
        /// The server.
        server: String,
        /// The last connection error.
        error: io::Error,
    },
    /// Talking to the server failed (reading, writing, timeout).
    Network {
        /// The server.
        server: String,
        /// The I/O error.
        error: io::Error,
    },
    /// The server closed the connection before sending its certificate.
    ClosedEarly {
        /// The server.
        server: String,
    },
    /// The handshake failed before the server sent its certificate.
    Tls {
        /// The server.
        server: String,
        /// The TLS error.
        error: TlsError,
    },
    /// The client TLS configuration could not be built.
    TlsConfig(TlsConfigError),
    /// The server sent only its own certificate, which is not self-signed: its
    /// issuer must be obtained elsewhere.
    NoIssuer {
        /// The server.
        server: String,
        /// Subject of the certificate sent.
        subject: String,
    },
}

impl fmt::Display for CertsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertsError::Exists { path } => {
                write!(f, "{} exists; refusing to overwrite it (use --force)", path.display())
            }
            CertsError::File { path, error } => write!(f, "{}: {error}", path.display()),
            CertsError::InvalidSuffix { suffix } => write!(f, "SNI suffix {suffix:?} is not a DNS name"),
            CertsError::Generate { what, error } => write!(f, "cannot generate the {what}: {error}"),
            CertsError::InvalidServer { server } => write!(f, "server {server:?} must be written host:port"),
            CertsError::Resolve { server, error } => write!(f, "cannot resolve {server}: {error}"),
            CertsError::Connect { server, error } => write!(f, "cannot connect to {server}: {error}"),
            CertsError::Network { server, error } => write!(f, "talking to {server}: {error}"),
            CertsError::ClosedEarly { server } => {
                write!(f, "{server} closed the connection before sending a certificate")
            }
            CertsError::Tls { server, error } => write!(f, "TLS handshake with {server} failed: {error}"),
            CertsError::TlsConfig(error) => write!(f, "TLS configuration: {error}"),
            CertsError::NoIssuer { server, subject } => write!(
                f,
                "{server} sent only its own certificate ({subject}), which is not self-signed; \
                 get its issuer's certificate from the operator"
            ),
        }
    }
}

impl std::error::Error for CertsError {}

/// Writes a CA, a server certificate for `sni_suffix` and two client
/// certificates into `dir` (created if missing). Returns the files written.
/// Refuses, before writing anything, if one exists and `force` is false.
pub fn generate_certs(dir: &Path, sni_suffix: &str, force: bool) -> Result<Vec<PathBuf>, CertsError> {
    let suffix = sni_suffix.trim_start_matches("*.").trim_start_matches('.').to_ascii_lowercase();
    if !matches!(ServerName::try_from(suffix.as_str()), Ok(ServerName::DnsName(_))) {
        return Err(CertsError::InvalidSuffix { suffix: sni_suffix.to_owned() });
    }

    let mut names = vec![CA_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE];
    for (_, cert, key) in CLIENTS {
        names.push(cert);
        names.push(key);
    }
    let paths: Vec<PathBuf> = names.iter().map(|name| dir.join(name)).collect();
    if !force && let Some(existing) = paths.iter().find(|path| path.exists()) {
        return Err(CertsError::Exists { path: existing.clone() });
    }

    let gen_err = |what| move |error| CertsError::Generate { what, error };
    let ca_key = KeyPair::generate().map_err(gen_err("CA key"))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err("CA"))?;
    // The suffix in the CA's name keeps two generated CAs apart in one trust store.
    ca_params.distinguished_name = dn(&format!("kafka-proxy test CA ({suffix})"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(gen_err("CA"))?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().map_err(gen_err("server key"))?;
    let sans = vec![format!("*.{suffix}"), suffix.clone(), "localhost".to_owned(), "127.0.0.1".to_owned()];
    let mut server_params = CertificateParams::new(sans).map_err(gen_err("server certificate"))?;
    server_params.distinguished_name = dn(&suffix);
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let server_cert = server_params.signed_by(&server_key, &issuer).map_err(gen_err("server certificate"))?;

    let mut contents = vec![ca_cert.pem(), server_cert.pem(), server_key.serialize_pem()];
    for (name, _, _) in CLIENTS {
        let key = KeyPair::generate().map_err(gen_err("client key"))?;
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(gen_err("client certificate"))?;
        params.distinguished_name = dn(name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params.signed_by(&key, &issuer).map_err(gen_err("client certificate"))?;
        contents.push(cert.pem());
        contents.push(key.serialize_pem());
    }

    fs::create_dir_all(dir).map_err(|error| CertsError::File { path: dir.to_owned(), error })?;
    for ((path, content), name) in paths.iter().zip(&contents).zip(&names) {
        write_file(path, content.as_bytes(), force, name.ends_with("_key.pem"))?;
    }
    Ok(paths)
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

/// Writes `content` to `path`; without `force` the file must not exist
/// (checked atomically by the create). Private keys are readable by the owner only.
fn write_file(path: &Path, content: &[u8], force: bool, private: bool) -> Result<(), CertsError> {
    let mut options = OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(|error| match error.kind() {
        io::ErrorKind::AlreadyExists => CertsError::Exists { path: path.to_owned() },
        _ => CertsError::File { path: path.to_owned(), error },
    })?;
    file.write_all(content).map_err(|error| CertsError::File { path: path.to_owned(), error })
}

/// What [`save_ca_certs`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedCaCerts {
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
pub fn save_ca_certs(server: &str, out: &Path, force: bool) -> Result<SavedCaCerts, CertsError> {
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
        versions: TlsVersions::Tls12And13,
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
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use kafka_proxy_core::tls::config::{
        CertKeyPem, ClientAuth, PemItem, ServerTlsOptions, certificates_from_pem, server_config,
    };
    use kafka_proxy_core::tls::principal::PrincipalMapper;

    use super::*;

    /// A fresh, empty directory under the system temp dir.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kafka-proxy-certs-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn read(dir: &Path, file: &str) -> Vec<u8> {
        fs::read(dir.join(file)).unwrap()
    }

    struct End {
        tls: RustlsSession,
        incoming: BytesMut,
        plaintext: BytesMut,
        outgoing: BytesMut,
    }

    impl End {
        fn new(tls: RustlsSession) -> Self {
            End { tls, incoming: BytesMut::new(), plaintext: BytesMut::new(), outgoing: BytesMut::new() }
        }
        fn process(&mut self) -> Result<(), TlsError> {
            let mut io = TlsIo {
                incoming: &mut self.incoming,
                plaintext: &mut self.plaintext,
                outgoing: &mut self.outgoing,
            };
            self.tls.process(&mut io).map(|_| ())
        }
    }

    /// Runs a handshake in memory; returns each side's first error.
    fn handshake(client: &mut End, server: &mut End) -> (Option<TlsError>, Option<TlsError>) {
        let (mut c_err, mut s_err) = (client.process().err(), None);
        for _ in 0..100 {
            let to_server = client.outgoing.split();
            let to_client = server.outgoing.split();
            if to_server.is_empty() && to_client.is_empty() {
                break;
            }
            server.incoming.extend_from_slice(&to_server);
            client.incoming.extend_from_slice(&to_client);
            s_err = s_err.or_else(|| server.process().err());
            c_err = c_err.or_else(|| client.process().err());
        }
        (c_err, s_err)
    }

    #[test]
    fn generated_certificates_work_for_mtls() {
        let dir = scratch("mtls");
        let written = generate_certs(&dir, "*.kafka.test", false).unwrap();
        assert_eq!(written.len(), 7);
        let server = server_config(&ServerTlsOptions {
            identity: CertKeyPem {
                cert_chain: &read(&dir, SERVER_CERT_FILE),
                key: &read(&dir, SERVER_KEY_FILE),
            },
            client_auth: ClientAuth::Required { ca_certs: &read(&dir, CA_FILE) },
            versions: TlsVersions::Tls12And13,
        })
        .unwrap();
        let roots = certificates_from_pem(&read(&dir, CA_FILE), PemItem::ServerCaBundle).unwrap();
        for (client_name, cert_file, key_file) in CLIENTS {
            for host in ["broker-1.kafka.test", "kafka.test", "localhost", "127.0.0.1"] {
                let cert = read(&dir, cert_file);
                let key = read(&dir, key_file);
                let client = client_config(&ClientTlsOptions {
                    verification: ServerVerification::Roots(roots.clone()),
                    identity: Some(CertKeyPem { cert_chain: &cert, key: &key }),
                    versions: TlsVersions::Tls12And13,
                })
                .unwrap();
                let mut c = End::new(RustlsSession::client(client, server_name(host).unwrap()).unwrap());
                let mut s = End::new(RustlsSession::server(server.clone()).unwrap());
                assert_eq!(handshake(&mut c, &mut s), (None, None), "{client_name} to {host}");
                assert!(s.tls.status().handshake_complete);
                let principal = PrincipalMapper::default().principal(s.tls.peer_certificates()).unwrap();
                assert_eq!(principal, client_name);
            }
        }
        // A name outside the SANs is refused.
        let client = client_config(&ClientTlsOptions {
            verification: ServerVerification::Roots(roots),
            identity: None,
            versions: TlsVersions::Tls12And13,
        })
        .unwrap();
        let mut c = End::new(RustlsSession::client(client, server_name("other.test").unwrap()).unwrap());
        let mut s = End::new(RustlsSession::server(server).unwrap());
        assert!(matches!(handshake(&mut c, &mut s).0, Some(TlsError::PeerCertificate { .. })));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join(SERVER_KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "private keys are not readable by others");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn never_overwrites_without_force() {
        let dir = scratch("overwrite");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("client2_key.pem"), b"keep me").unwrap();
        match generate_certs(&dir, "kafka.test", false) {
            Err(CertsError::Exists { path }) => {
                assert_eq!(path, dir.join("client2_key.pem"));
                let text = CertsError::Exists { path }.to_string();
                assert!(text.contains("client2_key.pem") && text.contains("--force"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        assert!(!dir.join(CA_FILE).exists(), "nothing written when one file exists");
        assert_eq!(read(&dir, "client2_key.pem"), b"keep me");
        generate_certs(&dir, "kafka.test", true).unwrap();
        assert_ne!(read(&dir, "client2_key.pem"), b"keep me");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn invalid_suffix_refused() {
        let dir = scratch("suffix");
        assert!(matches!(generate_certs(&dir, "not a name", false), Err(CertsError::InvalidSuffix { .. })));
        assert!(!dir.exists());
    }

    #[test]
    fn host_port_parsing() {
        assert_eq!(
            split_host_port("pkc-1.aws.confluent.cloud:9092"),
            Some(("pkc-1.aws.confluent.cloud", 9092))
        );
        assert_eq!(split_host_port("[::1]:9093"), Some(("::1", 9093)));
        assert_eq!(split_host_port("127.0.0.1:1"), Some(("127.0.0.1", 1)));
        assert_eq!(split_host_port("broker"), None);
        assert_eq!(split_host_port("::1:9092"), None);
        assert_eq!(split_host_port(":9092"), None);
        assert_eq!(split_host_port("broker:port"), None);
    }

    /// Serves one TLS handshake on 127.0.0.1 with `chain`/`key`, on a thread.
    fn tls_server(chain: Vec<u8>, key: Vec<u8>) -> (String, thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let config = server_config(&ServerTlsOptions {
            identity: CertKeyPem { cert_chain: &chain, key: &key },
            client_auth: ClientAuth::None,
            versions: TlsVersions::Tls12And13,
        })
        .unwrap();
        let handle = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut end = End::new(RustlsSession::server(config).unwrap());
            let mut buf = [0u8; 4096];
            for _ in 0..1000 {
                let result = end.process();
                let _ = stream.write_all(&end.outgoing.split());
                if result.is_err() || end.tls.status().peer_closed {
                    return;
                }
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => end.incoming.extend_from_slice(&buf[..n]),
                }
            }
        });
        (format!("127.0.0.1:{}", addr.port()), handle)
    }

    #[test]
    fn saves_the_issuer_chain() {
        let dir = scratch("save");
        generate_certs(&dir, "kafka.test", false).unwrap();
        let mut chain = read(&dir, SERVER_CERT_FILE);
        chain.extend_from_slice(&read(&dir, CA_FILE));
        let (server, handle) = tls_server(chain, read(&dir, SERVER_KEY_FILE));
        let out = dir.join(SERVER_CA_FILE);
        let saved = save_ca_certs(&server, &out, false).unwrap();
        handle.join().unwrap();
        assert_eq!(saved.subjects, vec!["CN=kafka-proxy test CA (kafka.test)".to_owned()]);
        assert!(!saved.self_signed_leaf && saved.handshake_failed.is_none());
        let written = certificates_from_pem(&read(&dir, SERVER_CA_FILE), PemItem::ServerCaBundle).unwrap();
        let ca = certificates_from_pem(&read(&dir, CA_FILE), PemItem::ServerCaBundle).unwrap();
        assert_eq!(written, ca);
        // The saved file is a usable trust store for that server.
        client_config(&ClientTlsOptions {
            verification: ServerVerification::Roots(written),
            identity: None,
            versions: TlsVersions::Tls12And13,
        })
        .unwrap();
        // A second run refuses to overwrite, before connecting.
        match save_ca_certs("127.0.0.1:1", &out, false) {
            Err(CertsError::Exists { path }) => assert_eq!(path, out),
            other => panic!("{other:?}"),
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn leaf_without_issuer_is_reported() {
        let dir = scratch("leaf");
        generate_certs(&dir, "kafka.test", false).unwrap();
        let (server, handle) = tls_server(read(&dir, SERVER_CERT_FILE), read(&dir, SERVER_KEY_FILE));
        let result = save_ca_certs(&server, &dir.join(SERVER_CA_FILE), false);
        handle.join().unwrap();
        match result {
            Err(CertsError::NoIssuer { subject, .. }) => assert_eq!(subject, "CN=kafka.test"),
            other => panic!("{other:?}"),
        }
        assert!(!dir.join(SERVER_CA_FILE).exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn self_signed_leaf_is_written_and_flagged() {
        let dir = scratch("selfsigned");
        fs::create_dir_all(&dir).unwrap();
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert_pem = certified.cert.pem();
        let (server, handle) =
            tls_server(cert_pem.clone().into_bytes(), certified.signing_key.serialize_pem().into_bytes());
        let out = dir.join("pinned.pem");
        let saved = save_ca_certs(&server, &out, false).unwrap();
        handle.join().unwrap();
        assert!(saved.self_signed_leaf);
        assert_eq!(
            certificates_from_pem(&read(&dir, "pinned.pem"), PemItem::ServerCaBundle).unwrap(),
            certificates_from_pem(cert_pem.as_bytes(), PemItem::ServerCaBundle).unwrap()
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unreachable_or_malformed_servers() {
        let dir = scratch("unreachable");
        let out = dir.join(SERVER_CA_FILE);
        assert!(matches!(save_ca_certs("no-port", &out, false), Err(CertsError::InvalidServer { .. })));
        // A port with nothing listening (bound then released).
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        assert!(matches!(
            save_ca_certs(&format!("127.0.0.1:{port}"), &out, false),
            Err(CertsError::Connect { .. })
        ));
        // A plaintext server answering garbage.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        });
        match save_ca_certs(&addr.to_string(), &out, false) {
            Err(CertsError::Tls { error: TlsError::NotTls { .. }, .. })
            | Err(CertsError::ClosedEarly { .. }) => {}
            other => panic!("{other:?}"),
        }
        handle.join().unwrap();
        assert!(!out.exists());
    }
}
