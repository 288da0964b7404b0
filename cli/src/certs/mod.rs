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
//! Neither overwrites an existing file unless asked to. The two share only
//! their error type and the careful file writer, which live here.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use kafka_proxy_core::tls::TlsError;
use kafka_proxy_core::tls::config::TlsConfigError;

mod generate;
mod save_ca;
#[cfg(test)]
mod test_support;

pub(crate) use generate::generate_certs;
pub(crate) use save_ca::{SERVER_CA_FILE, save_ca_certs};

/// Why a certificate tool failed.
#[derive(Debug)]
pub(crate) enum CertsError {
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
