//! The proxy's SASL client towards a broker: PLAIN, SCRAM-SHA-256/512 and
//! OAUTHBEARER over SaslHandshake v1 + SaslAuthenticate, with KIP-368
//! re-authentication. OAUTHBEARER sends the token its [`TokenStore`] holds at
//! the time (RFC 7628's `n,,` GS2 header and `auth=Bearer` pair, Kafka's
//! format), so a re-authentication carries the token a fetcher refreshed.
//!
//! The session supplies correlation ids and routes responses: while
//! [`SaslClient::pending`] names a request, the response with that
//! correlation id goes to [`SaslClient::on_response`] (body after the
//! response header). Re-authentication restarts the same exchange with
//! [`SaslClient::start`] once [`SaslClient::reauth_at`] has passed; the
//! session holds new requests meanwhile and keeps routing older responses.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::mechanism::Mechanism;
use super::messages::{
    CLIENT_ID, DecodeError, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse, authenticate_response_header_flexible, pick_authenticate_version,
};
use super::oauthbearer::TokenStore;
use super::plain::{self, PlainError};
use super::random::{Random, RandomError};
use super::scram::{ScramClient, ScramClientFinalSent, ScramClientFirstSent, ScramError};
use super::secret::Secret;
use super::server::MIN_REAUTH_INTERVAL;
use crate::api::{ApiKey, ErrorCode};

/// The SaslHandshake version the client sends (v1: SaslAuthenticate framing).
const HANDSHAKE_VERSION: i16 = 1;

/// Re-authenticate after this share of the session lifetime (per mille),
/// plus up to [`REAUTH_JITTER_PER_MILLE`] (Kafka's Java client: 85% + 0–10%).
pub(crate) const REAUTH_AT_PER_MILLE: u64 = 850;

/// Random extra share of the lifetime, so connections opened together do not
/// re-authenticate together.
pub(crate) const REAUTH_JITTER_PER_MILLE: u64 = 100;

/// The soonest a re-authentication starts: just after the broker's minimum
/// interval between two authentications of a connection.
const REAUTH_EARLIEST: Duration = MIN_REAUTH_INTERVAL.saturating_add(Duration::from_millis(50));

/// The latest a re-authentication starts: this long before the session ends
/// (where [`REAUTH_EARLIEST`] allows), so a short session (a token near its
/// expiry) keeps a margin in time, not only in share, against a busy host.
const REAUTH_MARGIN: Duration = Duration::from_secs(1);

/// Credentials and mechanism for logging in to brokers.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    mechanism: Mechanism,
    username: String,
    password: Secret<String>,
    /// OAUTHBEARER: where the current token is.
    token: Option<Arc<TokenStore>>,
    random: Arc<dyn Random>,
}

impl ClientConfig {
    /// A configuration for PLAIN or SCRAM (OAUTHBEARER takes [`ClientConfig::oauthbearer`]).
    pub fn new(
        mechanism: Mechanism,
        username: &str,
        password: Secret<String>,
        random: Arc<dyn Random>,
    ) -> Result<Self, ClientError> {
        if mechanism == Mechanism::OAuthBearer {
            return Err(ClientError::UnsupportedMechanism(mechanism));
        }
        if mechanism == Mechanism::Plain {
            // Checks the fields once, so the exchange cannot fail on them later.
            plain::client_message(username, &password).map_err(ClientError::Plain)?;
        } else if username.is_empty() {
            return Err(ClientError::Plain(PlainError::Malformed("empty user name")));
        }
        Ok(ClientConfig { mechanism, username: username.to_owned(), password, token: None, random })
    }

    /// An OAUTHBEARER configuration: each login sends the token `store` holds;
    /// the store's client id names the identity in logs.
    pub fn oauthbearer(store: Arc<TokenStore>, random: Arc<dyn Random>) -> Self {
        ClientConfig {
            mechanism: Mechanism::OAuthBearer,
            username: store.endpoint().client_id.clone(),
            password: Secret::new(String::new()),
            token: Some(store),
            random,
        }
    }

    /// The token store (OAUTHBEARER only).
    pub fn token_store(&self) -> Option<&Arc<TokenStore>> {
        self.token.as_ref()
    }

    /// The mechanism.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }
}

/// Why the client could not authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The broker answered with an error.
    Broker {
        /// Which request it answered.
        api_key: ApiKey,
        /// The error code (33, 34, 58, ...).
        error_code: ErrorCode,
        /// The broker's message, if any.
        message: Option<String>,
    },
    /// A mechanism configured without what it needs (OAUTHBEARER without a token store).
    UnsupportedMechanism(Mechanism),
    /// OAUTHBEARER: no token has been obtained from the token endpoint yet.
    NoToken,
    /// The credentials cannot be encoded for PLAIN.
    Plain(PlainError),
    /// The SCRAM exchange failed (for example the server's signature did not verify).
    Scram(ScramError),
    /// A response could not be decoded.
    Decode(DecodeError),
    /// The broker supports no SaslAuthenticate version the proxy knows.
    NoCommonVersion,
    /// A response arrived while none was expected.
    NotAwaitingResponse,
    /// A response with another correlation id than the pending request's.
    CorrelationMismatch {
        /// The pending request's id.
        expected: i32,
        /// The response's id.
        got: i32,
    },
    /// A login was started during an exchange or after a failure.
    InProgress,
    /// The random source failed.
    Random(RandomError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Broker { api_key, error_code, message } => {
                write!(f, "broker answered {api_key} with error {}", error_code.0)?;
                match message {
                    Some(m) => write!(f, ": {m}"),
                    None => Ok(()),
                }
            }
            ClientError::UnsupportedMechanism(m) => write!(f, "{m} is not configured towards brokers"),
            ClientError::NoToken => f.write_str("no OAUTHBEARER token from the token endpoint yet"),
            ClientError::Plain(e) => e.fmt(f),
            ClientError::Scram(e) => e.fmt(f),
            ClientError::Decode(e) => e.fmt(f),
            ClientError::NoCommonVersion => f.write_str("no common SaslAuthenticate version"),
            ClientError::NotAwaitingResponse => f.write_str("unexpected SASL response"),
            ClientError::CorrelationMismatch { expected, got } => {
                write!(f, "SASL response for correlation id {got}, expected {expected}")
            }
            ClientError::InProgress => f.write_str("SASL exchange already in progress or failed"),
            ClientError::Random(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ClientError {}

/// The request whose response the client waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pending {
    /// Its correlation id.
    pub correlation_id: i32,
    /// SaslHandshake or SaslAuthenticate.
    pub api_key: ApiKey,
    /// Its version.
    pub version: i16,
}

impl Pending {
    /// True when the response header is v1 (tagged fields): SaslAuthenticate v2.
    pub(crate) fn response_header_flexible(&self) -> bool {
        self.api_key == ApiKey::SASL_AUTHENTICATE && authenticate_response_header_flexible(self.version)
    }
}

/// A successful (re-)authentication towards the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientAuthentication {
    /// The broker's `SessionLifetimeMs`; `None` = unlimited (or SaslAuthenticate v0).
    pub lifetime: Option<Duration>,
    /// When the session ends at the broker.
    pub expires_at: Option<Instant>,
    /// When to start re-authenticating: 85–95% of the lifetime, at least a
    /// second before its end and no sooner than the broker allows.
    pub reauth_at: Option<Instant>,
    /// True for a re-authentication.
    pub reauthentication: bool,
}

/// What the session does after a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClientStep {
    /// Send this request frame (it carries the correlation id given with the response).
    Send(Bytes),
    /// Authenticated.
    Authenticated(ClientAuthentication),
    /// Failed: close the upstream connection.
    Failed(ClientError),
}

#[derive(Debug)]
enum Exchange {
    Plain,
    ScramFirst(ScramClientFirstSent),
    ScramFinal(ScramClientFinalSent),
    /// The token was sent; an empty reply means success, a JSON challenge refusal.
    OAuthToken,
    /// The broker refused the token with a challenge; the `0x01` acknowledgement was sent.
    OAuthRefused(String),
}

#[derive(Debug)]
enum State {
    Idle,
    AwaitHandshake { pending: Pending, authenticate_version: i16, reauthentication: bool },
    AwaitAuthenticate { pending: Pending, exchange: Exchange, reauthentication: bool },
    Authenticated(ClientAuthentication),
    Failed,
}

/// The SASL client of one upstream connection.
#[derive(Debug)]
pub(crate) struct SaslClient {
    config: Arc<ClientConfig>,
    state: State,
}

impl SaslClient {
    /// A client that has not started.
    pub(crate) fn new(config: Arc<ClientConfig>) -> Self {
        SaslClient { config, state: State::Idle }
    }

    /// Starts (or, once authenticated, restarts for KIP-368) the exchange:
    /// the SaslHandshake v1 request frame with `correlation_id`. The
    /// SaslAuthenticate version is picked from the broker's ApiVersions
    /// range when known, v1 otherwise.
    pub(crate) fn start(
        &mut self,
        correlation_id: i32,
        broker_authenticate_versions: Option<(i16, i16)>,
    ) -> Result<Bytes, ClientError> {
        let reauthentication = match self.state {
            State::Idle => false,
            State::Authenticated(_) => true,
            _ => return Err(ClientError::InProgress),
        };
        let authenticate_version =
            pick_authenticate_version(broker_authenticate_versions).ok_or(ClientError::NoCommonVersion)?;
        let frame = SaslHandshakeRequest { mechanism: self.config.mechanism.name().as_bytes() }.encode_frame(
            correlation_id,
            HANDSHAKE_VERSION,
            CLIENT_ID,
        );
        let pending = Pending { correlation_id, api_key: ApiKey::SASL_HANDSHAKE, version: HANDSHAKE_VERSION };
        self.state = State::AwaitHandshake { pending, authenticate_version, reauthentication };
        Ok(frame)
    }

    /// The credentials and mechanism this client logs in with.
    pub(crate) fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The request awaiting its response, if any.
    pub(crate) fn pending(&self) -> Option<Pending> {
        match &self.state {
            State::AwaitHandshake { pending, .. } | State::AwaitAuthenticate { pending, .. } => {
                Some(*pending)
            }
            _ => None,
        }
    }

    /// True once authenticated (also while re-authenticating).
    #[cfg(test)]
    pub(crate) fn is_authenticated(&self) -> bool {
        match &self.state {
            State::Authenticated(_) => true,
            State::AwaitHandshake { reauthentication, .. }
            | State::AwaitAuthenticate { reauthentication, .. } => *reauthentication,
            _ => false,
        }
    }

    /// When to re-authenticate (for the session's timer).
    pub(crate) fn reauth_at(&self) -> Option<Instant> {
        match &self.state {
            State::Authenticated(a) => a.reauth_at,
            _ => None,
        }
    }

    /// True when it is time to call [`SaslClient::start`] again.
    pub(crate) fn needs_reauth(&self, now: Instant) -> bool {
        self.reauth_at().is_some_and(|t| now >= t)
    }

    fn fail(&mut self, error: ClientError) -> ClientStep {
        self.state = State::Failed;
        ClientStep::Failed(error)
    }

    /// Takes the response (body after the response header) to the pending
    /// request. `next_correlation_id` is used if another request follows.
    pub(crate) fn on_response(
        &mut self,
        correlation_id: i32,
        body: &[u8],
        next_correlation_id: i32,
        now: Instant,
    ) -> ClientStep {
        let Some(pending) = self.pending() else {
            return self.fail(ClientError::NotAwaitingResponse);
        };
        if pending.correlation_id != correlation_id {
            return self.fail(ClientError::CorrelationMismatch {
                expected: pending.correlation_id,
                got: correlation_id,
            });
        }
        match std::mem::replace(&mut self.state, State::Failed) {
            State::AwaitHandshake { authenticate_version, reauthentication, .. } => {
                self.on_handshake(body, authenticate_version, reauthentication, next_correlation_id)
            }
            State::AwaitAuthenticate { pending, exchange, reauthentication } => {
                self.on_authenticate(body, pending, exchange, reauthentication, next_correlation_id, now)
            }
            _ => self.fail(ClientError::NotAwaitingResponse),
        }
    }

    fn on_handshake(
        &mut self,
        body: &[u8],
        version: i16,
        reauthentication: bool,
        correlation_id: i32,
    ) -> ClientStep {
        let response = match SaslHandshakeResponse::decode(body, HANDSHAKE_VERSION) {
            Ok(r) => r,
            Err(e) => return self.fail(ClientError::Decode(e)),
        };
        if response.error_code != ErrorCode::NONE {
            let api_key = ApiKey::SASL_HANDSHAKE;
            return self.fail(ClientError::Broker {
                api_key,
                error_code: response.error_code,
                message: None,
            });
        }
        let config = Arc::clone(&self.config);
        let (exchange, token) = match config.mechanism {
            Mechanism::Plain => match plain::client_message(&config.username, &config.password) {
                Ok(token) => (Exchange::Plain, token.into_inner()),
                Err(e) => return self.fail(ClientError::Plain(e)),
            },
            Mechanism::Scram(m) => {
                let nonce = match config.random.scram_nonce() {
                    Ok(n) => n,
                    Err(e) => return self.fail(ClientError::Random(e)),
                };
                let (state, token) =
                    ScramClient::new(m, &config.username, config.password.clone(), nonce).client_first();
                (Exchange::ScramFirst(state), token)
            }
            Mechanism::OAuthBearer => {
                let Some(store) = &config.token else {
                    return self.fail(ClientError::UnsupportedMechanism(config.mechanism));
                };
                let Some(token) = store.current() else {
                    store.request_refresh();
                    return self.fail(ClientError::NoToken);
                };
                let message = format!("n,,\u{1}auth=Bearer {}\u{1}\u{1}", token.value.expose());
                (Exchange::OAuthToken, message.into_bytes())
            }
        };
        let pending = Pending { correlation_id, api_key: ApiKey::SASL_AUTHENTICATE, version };
        self.state = State::AwaitAuthenticate { pending, exchange, reauthentication };
        ClientStep::Send(SaslAuthenticateRequest { auth_bytes: &token }.encode_frame(
            correlation_id,
            version,
            CLIENT_ID,
        ))
    }

    fn on_authenticate(
        &mut self,
        body: &[u8],
        pending: Pending,
        exchange: Exchange,
        reauthentication: bool,
        correlation_id: i32,
        now: Instant,
    ) -> ClientStep {
        let response = match SaslAuthenticateResponse::decode(body, pending.version) {
            Ok(r) => r,
            Err(e) => return self.fail(ClientError::Decode(e)),
        };
        if response.error_code != ErrorCode::NONE {
            let message = response.error_message.map(|m| String::from_utf8_lossy(m).into_owned());
            let api_key = ApiKey::SASL_AUTHENTICATE;
            return self.fail(ClientError::Broker { api_key, error_code: response.error_code, message });
        }
        match exchange {
            Exchange::ScramFirst(state) => match state.server_first(response.auth_bytes) {
                Ok((next, token)) => {
                    let pending = Pending { correlation_id, ..pending };
                    self.state = State::AwaitAuthenticate {
                        pending,
                        exchange: Exchange::ScramFinal(next),
                        reauthentication,
                    };
                    ClientStep::Send(SaslAuthenticateRequest { auth_bytes: &token }.encode_frame(
                        correlation_id,
                        pending.version,
                        CLIENT_ID,
                    ))
                }
                Err(e) => self.fail(ClientError::Scram(e)),
            },
            Exchange::ScramFinal(state) => match state.server_final(response.auth_bytes) {
                Ok(()) => self.authenticated(response.session_lifetime_ms, reauthentication, now),
                Err(e) => self.fail(ClientError::Scram(e)),
            },
            Exchange::Plain => self.authenticated(response.session_lifetime_ms, reauthentication, now),
            Exchange::OAuthToken if response.auth_bytes.is_empty() => {
                self.authenticated(response.session_lifetime_ms, reauthentication, now)
            }
            Exchange::OAuthToken => {
                // RFC 7628 §3.2.2: acknowledge the error challenge; the broker then fails.
                let challenge = String::from_utf8_lossy(response.auth_bytes).into_owned();
                let pending = Pending { correlation_id, ..pending };
                self.state = State::AwaitAuthenticate {
                    pending,
                    exchange: Exchange::OAuthRefused(challenge),
                    reauthentication,
                };
                ClientStep::Send(SaslAuthenticateRequest { auth_bytes: &[0x01] }.encode_frame(
                    correlation_id,
                    pending.version,
                    CLIENT_ID,
                ))
            }
            Exchange::OAuthRefused(challenge) => self.fail(ClientError::Broker {
                api_key: ApiKey::SASL_AUTHENTICATE,
                error_code: ErrorCode::SASL_AUTHENTICATION_FAILED,
                message: Some(challenge),
            }),
        }
    }

    fn authenticated(&mut self, lifetime_ms: i64, reauthentication: bool, now: Instant) -> ClientStep {
        let lifetime = u64::try_from(lifetime_ms).ok().filter(|ms| *ms > 0).map(Duration::from_millis);
        let reauth_at = lifetime.and_then(|l| {
            let mut jitter = [0u8; 1];
            let extra = match self.config.random.fill(&mut jitter) {
                Ok(()) => {
                    let [byte] = jitter;
                    REAUTH_JITTER_PER_MILLE * u64::from(byte) / 255
                }
                Err(_) => 0,
            };
            let ms = u128::from(REAUTH_AT_PER_MILLE + extra) * l.as_millis() / 1000;
            let at = Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX));
            // No later than a second before the end; but a broker refuses a
            // re-authentication within a second of the last one (Kafka's minimum
            // interval): a very short session re-authenticates after that second,
            // or at its end.
            let at = at.min(l.saturating_sub(REAUTH_MARGIN));
            now.checked_add(at.max(REAUTH_EARLIEST.min(l)))
        });
        let authentication = ClientAuthentication {
            lifetime,
            expires_at: lifetime.and_then(|l| now.checked_add(l)),
            reauth_at,
            reauthentication,
        };
        self.state = State::Authenticated(authentication);
        ClientStep::Authenticated(authentication)
    }
}

#[cfg(test)]
mod tests;
