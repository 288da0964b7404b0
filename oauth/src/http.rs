//! HTTPS requests to identity providers: ureq on rustls with the ring
//! provider, trusting the endpoint's configured CAs or the system roots.

use std::fmt;
use std::time::Duration;

use kafka_proxy_core::sasl::oauthbearer::EndpointTrust;
use ureq::Agent;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

/// The longest a request may take, connection and body included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest response body read (a JWKS document or a token response).
const MAX_BODY: u64 = 1024 * 1024;

/// Why a fetch failed (logged; the last good value keeps serving).
#[derive(Debug)]
pub enum FetchError {
    /// No trust roots could be loaded for the endpoint.
    NoRoots(String),
    /// The request failed (connection, TLS, timeout).
    Http(ureq::Error),
    /// The endpoint answered with an error status.
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of the body (an OAuth error response names the error).
        body: String,
    },
    /// The body is not what the endpoint must send.
    Invalid(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::NoRoots(why) => write!(f, "no trust roots: {why}"),
            FetchError::Http(e) => write!(f, "request failed: {e}"),
            FetchError::Status { status, body } => write!(f, "HTTP {status}: {body}"),
            FetchError::Invalid(why) => write!(f, "invalid response: {why}"),
        }
    }
}

impl std::error::Error for FetchError {}

/// An agent for one endpoint.
pub(crate) fn agent(trust: &EndpointTrust) -> Result<Agent, FetchError> {
    let roots: Vec<Certificate<'static>> = match trust {
        EndpointTrust::Roots(certs) => {
            certs.iter().map(|c| Certificate::from_der(c.as_ref()).to_owned()).collect()
        }
        EndpointTrust::SystemRoots => {
            let found = rustls_native_certs_roots()?;
            found.iter().map(|c| Certificate::from_der(c.as_ref()).to_owned()).collect()
        }
    };
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .root_certs(RootCerts::from(roots))
        .build();
    Ok(Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .http_status_as_error(false)
        .https_only(true)
        .build()
        .new_agent())
}

fn rustls_native_certs_roots() -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, FetchError> {
    let found = rustls_native_certs::load_native_certs();
    if found.certs.is_empty() {
        let why =
            found.errors.first().map(ToString::to_string).unwrap_or_else(|| "none installed".to_owned());
        return Err(FetchError::NoRoots(why));
    }
    Ok(found.certs)
}

/// Reads a response: its body when the status is 2xx, else the error.
pub(crate) fn body(
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<String, FetchError> {
    let mut response = response.map_err(FetchError::Http)?;
    let status = response.status().as_u16();
    let text =
        response.body_mut().with_config().limit(MAX_BODY).read_to_string().map_err(FetchError::Http)?;
    if (200..300).contains(&status) {
        Ok(text)
    } else {
        let body: String = text.chars().take(200).collect();
        Err(FetchError::Status { status, body })
    }
}
