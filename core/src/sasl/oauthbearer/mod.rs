//! OAUTHBEARER (RFC 7628, Kafka KIP-255): the client's initial response
//! carries a bearer token, validated here as a JWT.
//!
//! Framing: `n,[a=authzid],` `0x01` then `key=value 0x01` pairs, then a final
//! `0x01`; `auth=Bearer <token>` is mandatory. On an invalid token the server
//! answers with the JSON challenge `{"status":"invalid_token"}`, the client
//! acknowledges with a single `0x01`, and the exchange fails (Kafka's flow).

mod jwt;
mod keys;
mod remote;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::SystemTime;

pub use jwt::{JwtError, JwtRules, JwtValidator};
pub use keys::{EcCurve, JwsAlgorithm, KeyError, KeySet, PublicKey, VerificationKey};
pub use remote::{
    BearerToken, DEFAULT_JWKS_MIN_REFRESH_INTERVAL, DEFAULT_JWKS_REFRESH, EndpointTrust, JwksEndpoint,
    JwksStore, Sources, Store, TokenEndpoint, TokenStore,
};

use super::scram::unescape_username;
use super::secret::Secret;

/// The separator of RFC 7628 key/value pairs (Ctrl-A).
const SEPARATOR: u8 = 0x01;

/// The challenge sent for an invalid token: deliberately without detail.
pub(crate) const INVALID_TOKEN_CHALLENGE: &[u8] = br#"{"status":"invalid_token"}"#;

/// Why an OAUTHBEARER exchange failed (for logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthError {
    /// The initial response did not follow the GS2/kvpair framing.
    Malformed(&'static str),
    /// The token did not validate (the client got the `invalid_token` challenge).
    InvalidToken(JwtError),
    /// The authzid differed from the token's subject.
    AuthzidMismatch,
    /// After the challenge the client sent something other than `0x01`.
    UnexpectedAfterChallenge,
}

impl OAuthError {
    /// A short stable name of why, for metrics (`authentication_failures`'s
    /// `reason`): never the token or a claim's value.
    pub fn reason(&self) -> &'static str {
        match self {
            OAuthError::Malformed(_) => "malformed",
            OAuthError::InvalidToken(e) => e.reason(),
            OAuthError::AuthzidMismatch => "authzid_mismatch",
            OAuthError::UnexpectedAfterChallenge => "illegal_state",
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OAuthError::Malformed(what) => write!(f, "malformed OAUTHBEARER message: {what}"),
            OAuthError::InvalidToken(e) => write!(f, "invalid token: {e}"),
            OAuthError::AuthzidMismatch => f.write_str("authorization id differs from the token's subject"),
            OAuthError::UnexpectedAfterChallenge => {
                f.write_str("client did not acknowledge the error challenge")
            }
        }
    }
}

impl std::error::Error for OAuthError {}

/// A parsed client initial response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientInitialResponse<'a> {
    /// The decoded authzid, when present.
    pub authzid: Option<String>,
    /// The bearer token.
    pub token: Secret<&'a str>,
    /// SASL extensions (`key=value` pairs other than `auth`), in order.
    pub extensions: Vec<(&'a str, &'a str)>,
}

/// RFC 6750 `b64token`: `[-._~+/A-Za-z0-9]+` followed by any `=` padding.
fn valid_token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}

/// Parses the client initial response.
pub(crate) fn parse_client_initial_response(message: &[u8]) -> Result<ClientInitialResponse<'_>, OAuthError> {
    let text = std::str::from_utf8(message).map_err(|_| OAuthError::Malformed("not UTF-8"))?;
    let rest = text.strip_prefix("n,").ok_or(OAuthError::Malformed("GS2 header must start with n,"))?;
    let (authzid, rest) = rest.split_once(',').ok_or(OAuthError::Malformed("truncated GS2 header"))?;
    let authzid = match authzid {
        "" => None,
        a => {
            let name = a.strip_prefix("a=").ok_or(OAuthError::Malformed("bad authzid"))?;
            Some(unescape_username(name).ok_or(OAuthError::Malformed("bad authzid"))?)
        }
    };
    let pairs = rest
        .strip_prefix('\u{1}')
        .and_then(|r| r.strip_suffix('\u{1}'))
        .ok_or(OAuthError::Malformed("missing 0x01 separators"))?;
    let mut token = None;
    let mut extensions: Vec<(&str, &str)> = Vec::new();
    // `pairs` is now `k=v 0x01 k=v 0x01 ...`: each pair ends with a separator.
    let body = pairs.strip_suffix('\u{1}').ok_or(OAuthError::Malformed("missing final 0x01"))?;
    for pair in body.split(char::from(SEPARATOR)) {
        let (key, value) = pair.split_once('=').ok_or(OAuthError::Malformed("pair without ="))?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(OAuthError::Malformed("bad key"));
        }
        if value.is_empty()
            || !value.bytes().all(|b| (0x21..=0x7e).contains(&b) || matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        {
            return Err(OAuthError::Malformed("bad value"));
        }
        if key == "auth" {
            if token.is_some() {
                return Err(OAuthError::Malformed("auth given twice"));
            }
            let (scheme, credentials) =
                value.split_once(' ').ok_or(OAuthError::Malformed("auth without scheme"))?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(OAuthError::Malformed("auth scheme is not Bearer"));
            }
            let t = credentials.trim_start_matches(' ');
            if !valid_token(t) {
                return Err(OAuthError::Malformed("bad bearer token"));
            }
            token = Some(t);
        } else {
            if extensions.iter().any(|(k, _)| *k == key) {
                return Err(OAuthError::Malformed("extension given twice"));
            }
            extensions.push((key, value));
        }
    }
    let token = token.ok_or(OAuthError::Malformed("missing auth"))?;
    Ok(ClientInitialResponse { authzid, token: Secret::new(token), extensions })
}

/// Builds a client initial response for `token` (what a client sends).
#[cfg(test)]
pub(crate) fn client_initial_response(token: &str) -> Secret<Vec<u8>> {
    Secret::new(format!("n,,\u{1}auth=Bearer {token}\u{1}\u{1}").into_bytes())
}

/// A successful OAUTHBEARER exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OAuthSuccess {
    /// The principal (`sub`).
    pub principal: String,
    /// When the token expires: the session must end or re-authenticate before.
    pub expires_at: SystemTime,
}

/// The result of the client's initial response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OAuthStep {
    /// Authenticated (the server's reply is empty).
    Success(OAuthSuccess),
    /// The token was invalid: send [`INVALID_TOKEN_CHALLENGE`] and wait for the acknowledgement.
    Challenge(OAuthChallengeSent),
    /// The message was refused outright.
    Failure(OAuthError),
}

/// An OAUTHBEARER server waiting for the client's initial response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct OAuthBearerServer;

/// A server that sent the error challenge and waits for the client's `0x01`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OAuthChallengeSent {
    reason: JwtError,
}

impl OAuthBearerServer {
    /// Takes the initial response and validates its token at `wall`.
    pub(crate) fn initial_response(
        self,
        message: &[u8],
        validator: &JwtValidator,
        wall: SystemTime,
    ) -> OAuthStep {
        let response = match parse_client_initial_response(message) {
            Ok(r) => r,
            Err(e) => return OAuthStep::Failure(e),
        };
        match validator.validate(response.token.expose(), wall) {
            Err(reason) => OAuthStep::Challenge(OAuthChallengeSent { reason }),
            Ok(token) => {
                if response.authzid.as_ref().is_some_and(|a| *a != token.subject) {
                    return OAuthStep::Failure(OAuthError::AuthzidMismatch);
                }
                OAuthStep::Success(OAuthSuccess { principal: token.subject, expires_at: token.expires_at })
            }
        }
    }
}

impl OAuthChallengeSent {
    /// Why the token was refused.
    #[cfg(test)]
    pub(crate) fn reason(&self) -> &JwtError {
        &self.reason
    }

    /// Takes the client's reply to the challenge: the exchange fails either way.
    pub(crate) fn client_reply(self, message: &[u8]) -> OAuthError {
        if message == [SEPARATOR] {
            OAuthError::InvalidToken(self.reason)
        } else {
            OAuthError::UnexpectedAfterChallenge
        }
    }
}
