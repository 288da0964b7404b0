//! rustls configurations for both sides, built from PEM bytes.
//!
//! Reading files is the CLI's job; these builders take the bytes and name the
//! item that was wrong when one is. The crypto provider is always ring, passed
//! explicitly: nothing here depends on a process-wide default provider. No ALPN
//! is offered (Kafka has none); TLS 1.2 and 1.3, every ring suite and group
//! are enabled unless a [`TlsPolicy`] narrows them.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

pub use super::policy::{CipherSuite, KxGroup, PolicyError, TlsPolicy, TlsVersion, TlsVersions};
pub use super::private_key::KeyReadError;

/// The one crypto provider of the tree: ring, with every suite and group.
///
/// AES-128-GCM is preferred over AES-256-GCM (and ChaCha20): both are
/// strong, and AES-128 costs about 30% less CPU per byte, which is most of
/// what a TLS-terminating proxy spends. Servers apply this order rather
/// than the client's.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    TlsPolicy::default().provider()
}

/// Which PEM input an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemItem {
    /// The listener's certificate chain.
    ServerCertificate,
    /// The listener's private key.
    ServerKey,
    /// The CA bundle that client certificates must chain to.
    ClientCaBundle,
    /// The CA bundle (or system roots) that broker certificates must chain to.
    ServerCaBundle,
    /// The proxy's client certificate chain towards brokers.
    ClientCertificate,
    /// The proxy's client private key towards brokers.
    ClientKey,
}

impl fmt::Display for PemItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PemItem::ServerCertificate => "server certificate",
            PemItem::ServerKey => "server private key",
            PemItem::ClientCaBundle => "client CA bundle",
            PemItem::ServerCaBundle => "server CA bundle",
            PemItem::ClientCertificate => "client certificate",
            PemItem::ClientKey => "client private key",
        })
    }
}

/// Why a TLS configuration could not be built.
#[derive(Debug)]
pub enum TlsConfigError {
    /// The PEM text could not be read.
    Pem {
        /// Which input.
        item: PemItem,
        /// The PEM decoder's error.
        error: rustls::pki_types::pem::Error,
    },
    /// The PEM text holds no item of the expected kind.
    Missing {
        /// Which input (certificates or key).
        item: PemItem,
    },
    /// A CA certificate could not be used as a trust anchor.
    InvalidCa {
        /// Which bundle.
        item: PemItem,
        /// Position in the bundle, from 0.
        index: usize,
        /// rustls' reason.
        error: rustls::Error,
    },
    /// None of the given root certificates was usable.
    NoUsableRoots {
        /// How many were given and refused.
        rejected: usize,
    },
    /// rustls refused the certificate and key (mismatched pair, unsupported key
    /// type) or the protocol versions.
    Rustls {
        /// What was being configured.
        context: &'static str,
        /// rustls' reason.
        error: rustls::Error,
    },
    /// A private key could not be read or decrypted.
    Key {
        /// Which key.
        item: PemItem,
        /// Why.
        error: KeyReadError,
    },
    /// A certificate revocation list could not be read.
    Crl {
        /// Position among the CRLs given, from 0.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The versions, suites or groups cannot work together.
    Policy(PolicyError),
    /// The client certificate verifier could not be built.
    ClientVerifier(rustls::server::VerifierBuilderError),
    /// A host name or IP address that cannot be a TLS server name.
    InvalidServerName {
        /// The name as given.
        name: String,
    },
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsConfigError::Pem { item, error } => write!(f, "cannot read the {item} PEM: {error}"),
            TlsConfigError::Missing { item } => write!(f, "the {item} PEM contains no {item}"),
            TlsConfigError::InvalidCa { item, index, error } => {
                write!(f, "certificate #{index} of the {item} is not a usable trust anchor: {error}")
            }
            TlsConfigError::NoUsableRoots { rejected } => {
                write!(f, "no usable root certificate ({rejected} refused)")
            }
            TlsConfigError::Rustls { context, error } => write!(f, "{context}: {error}"),
            TlsConfigError::Key { item, error } => write!(f, "the {item} {error}"),
            TlsConfigError::Crl { index, reason } => write!(f, "CRL #{index}: {reason}"),
            TlsConfigError::Policy(error) => error.fmt(f),
            TlsConfigError::ClientVerifier(error) => write!(f, "client certificate verification: {error}"),
            TlsConfigError::InvalidServerName { name } => {
                write!(f, "{name:?} is not a valid TLS server name")
            }
        }
    }
}

impl std::error::Error for TlsConfigError {}

/// Every certificate in `pem`, in order (non-certificate sections are skipped).
pub fn certificates_from_pem(
    pem: &[u8],
    item: PemItem,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsConfigError::Pem { item, error })?;
    if certs.is_empty() {
        return Err(TlsConfigError::Missing { item });
    }
    Ok(certs)
}

/// The first private key in `pem` (PKCS#8, PKCS#1 or SEC1; encrypted
/// PKCS#8 with `password`).
pub fn private_key_from_pem(
    pem: &[u8],
    item: PemItem,
    password: Option<&[u8]>,
) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    super::private_key::private_key_from_pem(pem, password).map_err(|error| match error {
        KeyReadError::Missing => TlsConfigError::Missing { item },
        error => TlsConfigError::Key { item, error },
    })
}

/// Every certificate revocation list in one file: PEM (`X509 CRL` blocks)
/// or a single DER CRL. `index` numbers the file in messages.
pub fn crls_from_file(
    bytes: &[u8],
    index: usize,
) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsConfigError> {
    let crl_error = |reason: String| TlsConfigError::Crl { index, reason };
    if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        let crls = CertificateRevocationListDer::pem_slice_iter(bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| crl_error(e.to_string()))?;
        if crls.is_empty() {
            return Err(crl_error("the PEM holds no X509 CRL block".to_owned()));
        }
        Ok(crls)
    } else if bytes.first() == Some(&0x30) {
        Ok(vec![CertificateRevocationListDer::from(bytes.to_vec())])
    } else {
        Err(crl_error("neither PEM nor DER".to_owned()))
    }
}

/// A certificate chain and its private key, as PEM.
#[derive(Clone, Copy)]
pub struct CertKeyPem<'a> {
    /// The end-entity certificate first, then its issuers.
    pub cert_chain: &'a [u8],
    /// The private key of the end-entity certificate.
    pub key: &'a [u8],
    /// The password of an encrypted PKCS#8 key.
    pub key_password: Option<&'a [u8]>,
}

impl<'a> CertKeyPem<'a> {
    /// A chain and an unencrypted key.
    pub fn new(cert_chain: &'a [u8], key: &'a [u8]) -> Self {
        CertKeyPem { cert_chain, key, key_password: None }
    }
}

impl fmt::Debug for CertKeyPem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertKeyPem")
            .field("cert_chain", &self.cert_chain.len())
            .field("key", &"***")
            .field("key_password", &self.key_password.map(|_| "***"))
            .finish()
    }
}

/// Whether the listener asks Kafka clients for a certificate (Kafka's `ssl.client.auth`).
#[derive(Debug, Clone, Copy, Default)]
pub enum ClientAuth<'a> {
    /// No client certificate is requested (one-way TLS).
    #[default]
    None,
    /// mTLS: a certificate chaining to one of these CAs is required.
    Required {
        /// PEM bundle of the accepted CAs.
        ca_certs: &'a [u8],
        /// Revocation lists: a listed client certificate is refused.
        crls: &'a [CertificateRevocationListDer<'static>],
    },
    /// A certificate is requested and verified if sent; clients without one are accepted.
    Requested {
        /// PEM bundle of the accepted CAs.
        ca_certs: &'a [u8],
        /// Revocation lists: a listed client certificate is refused.
        crls: &'a [CertificateRevocationListDer<'static>],
    },
}

/// What a listener's TLS is made of.
#[derive(Debug, Clone)]
pub struct ServerTlsOptions<'a> {
    /// The listener's certificate chain and key.
    pub identity: CertKeyPem<'a>,
    /// Client certificate policy.
    pub client_auth: ClientAuth<'a>,
    /// Enabled versions, suites and groups.
    pub policy: TlsPolicy,
}

/// The server (listener) configuration.
pub fn server_config(options: &ServerTlsOptions<'_>) -> Result<Arc<ServerConfig>, TlsConfigError> {
    options.policy.check().map_err(TlsConfigError::Policy)?;
    let provider = options.policy.provider();
    let chain = certificates_from_pem(options.identity.cert_chain, PemItem::ServerCertificate)?;
    let key = private_key_from_pem(options.identity.key, PemItem::ServerKey, options.identity.key_password)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(options.policy.versions.rustls())
        .map_err(|error| TlsConfigError::Rustls { context: "TLS versions", error })?;
    let verifier: Option<Arc<dyn ClientCertVerifier>> = match options.client_auth {
        ClientAuth::None => None,
        ClientAuth::Required { ca_certs, crls } => Some(client_verifier(ca_certs, crls, provider, false)?),
        ClientAuth::Requested { ca_certs, crls } => Some(client_verifier(ca_certs, crls, provider, true)?),
    };
    let builder = match verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|error| TlsConfigError::Rustls { context: "server certificate and key", error })?;
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

/// Verifies client certificates against `ca_pem`. With CRLs, the client's
/// own certificate is checked against the list of its issuer; a certificate
/// whose issuer has no list given is not checked (so one CRL does not lock
/// out the clients of another trusted CA).
fn client_verifier(
    ca_pem: &[u8],
    crls: &[CertificateRevocationListDer<'static>],
    provider: Arc<CryptoProvider>,
    optional: bool,
) -> Result<Arc<dyn ClientCertVerifier>, TlsConfigError> {
    let item = PemItem::ClientCaBundle;
    let mut roots = RootCertStore::empty();
    for (index, cert) in certificates_from_pem(ca_pem, item)?.into_iter().enumerate() {
        roots.add(cert).map_err(|error| TlsConfigError::InvalidCa { item, index, error })?;
    }
    let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    if !crls.is_empty() {
        builder = builder
            .with_crls(crls.iter().cloned())
            .only_check_end_entity_revocation()
            .allow_unknown_revocation_status();
    }
    let builder = if optional { builder.allow_unauthenticated() } else { builder };
    builder.build().map_err(TlsConfigError::ClientVerifier)
}

/// How the proxy checks a broker's certificate.
#[derive(Debug, Clone)]
pub enum ServerVerification {
    /// WebPKI verification against these roots: the system roots (the CLI loads
    /// them with rustls-native-certs; unparsable ones are skipped) or a CA file
    /// (see [`certificates_from_pem`]). The server name is checked.
    Roots(Vec<CertificateDer<'static>>),
    /// Accept any certificate for any name (the handshake signature is still
    /// checked). For tests only; the CLI logs its use loudly.
    TrustAll,
    /// A verifier of the caller's own (e.g. one that records the chain).
    Custom(Arc<dyn ServerCertVerifier>),
}

/// What the proxy's TLS towards brokers is made of.
#[derive(Debug, Clone)]
pub struct ClientTlsOptions<'a> {
    /// Server certificate verification.
    pub verification: ServerVerification,
    /// The proxy's client certificate, when brokers require mTLS.
    pub identity: Option<CertKeyPem<'a>>,
    /// Enabled versions, suites and groups.
    pub policy: TlsPolicy,
}

/// The client (towards brokers) configuration.
pub fn client_config(options: &ClientTlsOptions<'_>) -> Result<Arc<ClientConfig>, TlsConfigError> {
    options.policy.check().map_err(TlsConfigError::Policy)?;
    let provider = options.policy.provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(options.policy.versions.rustls())
        .map_err(|error| TlsConfigError::Rustls { context: "TLS versions", error })?;
    let builder = match &options.verification {
        ServerVerification::Roots(certs) => {
            let mut roots = RootCertStore::empty();
            let (added, rejected) = roots.add_parsable_certificates(certs.iter().cloned());
            if added == 0 {
                return Err(TlsConfigError::NoUsableRoots { rejected });
            }
            if rejected > 0 {
                tracing::debug!(added, rejected, "some root certificates were not usable");
            }
            builder.with_root_certificates(roots)
        }
        ServerVerification::TrustAll => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert::new(&provider))),
        ServerVerification::Custom(verifier) => {
            builder.dangerous().with_custom_certificate_verifier(verifier.clone())
        }
    };
    let config = match options.identity {
        Some(identity) => {
            let chain = certificates_from_pem(identity.cert_chain, PemItem::ClientCertificate)?;
            let key = private_key_from_pem(identity.key, PemItem::ClientKey, identity.key_password)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|error| TlsConfigError::Rustls { context: "client certificate and key", error })?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The TLS server name for `host`: a DNS name, or an IP address literal.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsConfigError> {
    let trimmed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    ServerName::try_from(trimmed.to_owned())
        .map_err(|_| TlsConfigError::InvalidServerName { name: host.to_owned() })
}

/// A server certificate verifier that accepts every certificate and name, but
/// still checks that the server holds the key of the certificate it sent.
#[derive(Debug, Clone)]
pub struct AcceptAnyServerCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AcceptAnyServerCert {
    /// Uses `provider`'s signature algorithms for the handshake signature.
    pub fn new(provider: &CryptoProvider) -> Self {
        AcceptAnyServerCert { algorithms: provider.signature_verification_algorithms }
    }
}

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
