//! The Kafka-level SASL server for one client connection, with the broker's
//! semantics (`SaslServerAuthenticator`):
//!
//! * SaslHandshake v0 is followed by raw size-prefixed tokens (the session
//!   asks [`SaslServer::expects_raw_token`]), v1 by SaslAuthenticate v0–2;
//! * before authentication only ApiVersions and SaslHandshake are accepted
//!   ([`SaslServer::admit`]); anything else is `ILLEGAL_SASL_STATE` (34);
//! * an unknown mechanism is `UNSUPPORTED_SASL_MECHANISM` (33) with the
//!   enabled list, bad credentials `SASL_AUTHENTICATION_FAILED` (58) with a
//!   message that does not reveal whether the user exists; after a failure
//!   the response is sent and the connection closed after a delay;
//! * KIP-368: `SessionLifetimeMs` = min(configured lifetime, credential
//!   expiry − now), and a SaslHandshake on an authenticated connection
//!   starts a re-authentication that must keep the mechanism and principal.
//!
//! Outcomes are plain data ([`ServerStep`], [`Admission`]); the session
//! transmits, closes and arms timers.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::credentials::CredentialStore;
use super::exchange::{Exchange, MechanismStep, Verifiers};
use super::external::{AuthRequest, ExternalFailure, ExternalPlain, Verdict};
use super::mechanism::{AuthFailure, Mechanism, generic_failure_message};
use super::messages::{
    DecodeError, RequestRef, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse, raw_token_frame,
};
use super::oauthbearer::JwtValidator;
use super::random::Random;
use crate::api::{ApiKey, ErrorCode};

/// Kafka's `connection.failed.authentication.delay.ms` default.
pub(crate) const DEFAULT_FAILURE_DELAY: Duration = Duration::from_millis(100);

/// Kafka's `sasl.server.max.receive.size` default: the largest frame worth
/// reading before authentication. The session should refuse larger frames
/// while [`SaslServer::is_authenticated`] is false.
pub(crate) const MAX_UNAUTHENTICATED_FRAME: usize = 524_288;

/// Re-authentication may start at most once per second (Kafka's
/// `KafkaChannel`); a SaslHandshake sooner is answered with
/// `ILLEGAL_SASL_STATE` and the connection stays up.
pub(crate) const MIN_REAUTH_INTERVAL: Duration = Duration::from_secs(1);

/// The server's configuration, shared by all connections of a listener.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Enabled mechanisms, in the order SaslHandshake responses list them.
    pub mechanisms: Vec<Mechanism>,
    /// The users (PLAIN, SCRAM).
    pub credentials: Arc<CredentialStore>,
    /// The token validator (OAUTHBEARER).
    pub oauthbearer: Option<Arc<JwtValidator>>,
    /// Longest session before re-authentication (`connections.max.reauth.ms`); `None` = unlimited.
    pub session_lifetime: Option<Duration>,
    /// Delay between a failure response and the close.
    pub failure_delay: Duration,
    /// Nonces for SCRAM.
    pub random: Arc<dyn Random>,
    /// PLAIN users not in `credentials` are checked by an external
    /// authenticator (the session asks its runtime).
    pub external: Option<ExternalPlain>,
}

/// A configuration that cannot work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerConfigError {
    /// No mechanism enabled.
    NoMechanism,
    /// OAUTHBEARER enabled without a token validator.
    OAuthBearerWithoutValidator,
}

impl fmt::Display for ServerConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerConfigError::NoMechanism => f.write_str("no SASL mechanism enabled"),
            ServerConfigError::OAuthBearerWithoutValidator => {
                f.write_str("OAUTHBEARER enabled without a JWKS or public key")
            }
        }
    }
}

impl std::error::Error for ServerConfigError {}

impl ServerConfig {
    /// A configuration with Kafka's defaults: no session lifetime, 100 ms
    /// failure delay, no OAUTHBEARER validator. Duplicate mechanisms are dropped.
    pub fn new(mechanisms: &[Mechanism], credentials: Arc<CredentialStore>, random: Arc<dyn Random>) -> Self {
        let mut unique: Vec<Mechanism> = Vec::with_capacity(mechanisms.len());
        for m in mechanisms {
            if !unique.contains(m) {
                unique.push(*m);
            }
        }
        ServerConfig {
            mechanisms: unique,
            credentials,
            oauthbearer: None,
            session_lifetime: None,
            failure_delay: DEFAULT_FAILURE_DELAY,
            random,
            external: None,
        }
    }

    /// Checks that the configuration can authenticate anyone.
    pub fn validate(&self) -> Result<(), ServerConfigError> {
        if self.mechanisms.is_empty() {
            return Err(ServerConfigError::NoMechanism);
        }
        if self.mechanisms.contains(&Mechanism::OAuthBearer) && self.oauthbearer.is_none() {
            return Err(ServerConfigError::OAuthBearerWithoutValidator);
        }
        Ok(())
    }

    fn mechanism_names(&self) -> Vec<&'static [u8]> {
        self.mechanisms.iter().map(|m| m.name().as_bytes()).collect()
    }

    /// What a mechanism exchange checks clients against.
    fn verifiers(&self) -> Verifiers<'_> {
        Verifiers {
            credentials: &self.credentials,
            oauthbearer: self.oauthbearer.as_deref(),
            random: self.random.as_ref(),
            external: self.external.is_some(),
        }
    }
}

/// An authenticated identity, Kafka style: `User:<name>`, where the name is
/// the SASL user (PLAIN, SCRAM) or the token's `sub` (OAUTHBEARER).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    name: String,
}

impl Principal {
    /// The principal of user `name`.
    pub fn user(name: impl Into<String>) -> Principal {
        Principal { name: name.into() }
    }

    /// The user name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "User:{}", self.name)
    }
}

/// Why the server refused a client (for logs and metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureReason {
    /// The client asked for a mechanism that is not enabled (lossy UTF-8, at most 64 bytes).
    UnsupportedMechanism {
        /// What the client asked for.
        requested: String,
    },
    /// A request not allowed in the current state.
    IllegalState {
        /// The request's API.
        api_key: ApiKey,
    },
    /// A raw token arrived when none was expected.
    UnexpectedRawToken,
    /// A SASL request could not be decoded.
    Decode(DecodeError),
    /// A token larger than Kafka's `sasl.server.max.receive.size` default (512 KiB).
    TokenTooLarge {
        /// Its size.
        len: usize,
    },
    /// The mechanism refused the client.
    Authentication {
        /// The mechanism.
        mechanism: Mechanism,
        /// Why.
        failure: AuthFailure,
        /// True during a re-authentication.
        reauthentication: bool,
    },
    /// Re-authentication asked for another mechanism.
    ReauthMechanismChanged {
        /// The session's mechanism.
        from: Mechanism,
        /// The one asked for.
        to: Mechanism,
    },
    /// Re-authentication ended with another principal.
    ReauthPrincipalChanged {
        /// The session's principal.
        from: Principal,
        /// The new one.
        to: Principal,
    },
    /// The session outlived its lifetime without re-authenticating.
    SessionExpired,
    /// The exchange had already failed.
    AlreadyFailed,
}

impl FailureReason {
    /// The Kafka error code a response to the refused request should carry, if any.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            FailureReason::UnsupportedMechanism { .. } => Some(ErrorCode::UNSUPPORTED_SASL_MECHANISM),
            FailureReason::IllegalState { .. } | FailureReason::UnexpectedRawToken => {
                Some(ErrorCode::ILLEGAL_SASL_STATE)
            }
            FailureReason::Authentication { .. }
            | FailureReason::TokenTooLarge { .. }
            | FailureReason::ReauthMechanismChanged { .. }
            | FailureReason::ReauthPrincipalChanged { .. } => Some(ErrorCode::SASL_AUTHENTICATION_FAILED),
            FailureReason::Decode(_) | FailureReason::SessionExpired | FailureReason::AlreadyFailed => None,
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::UnsupportedMechanism { requested } => {
                write!(f, "unsupported SASL mechanism {requested:?}")
            }
            FailureReason::IllegalState { api_key } => {
                write!(f, "unexpected {api_key} during SASL authentication")
            }
            FailureReason::UnexpectedRawToken => f.write_str("unexpected raw SASL token"),
            FailureReason::Decode(e) => e.fmt(f),
            FailureReason::TokenTooLarge { len } => write!(f, "SASL token of {len} bytes is too large"),
            FailureReason::Authentication { mechanism, failure, reauthentication } => {
                let what = if *reauthentication { "re-authentication" } else { "authentication" };
                write!(f, "{mechanism} {what} failed: {failure}")
            }
            FailureReason::ReauthMechanismChanged { from, to } => {
                write!(f, "re-authentication with {to} refused for a {from} session")
            }
            FailureReason::ReauthPrincipalChanged { from, to } => {
                write!(f, "re-authentication changed the principal from {from} to {to}")
            }
            FailureReason::SessionExpired => f.write_str("SASL session expired"),
            FailureReason::AlreadyFailed => f.write_str("SASL authentication already failed"),
        }
    }
}

/// A successful (re-)authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
pub struct Authentication {
    /// Who the client is.
    pub principal: Principal,
    /// The mechanism used.
    pub mechanism: Mechanism,
    /// `SessionLifetimeMs` sent to the client; `None` = unlimited.
    pub lifetime: Option<Duration>,
    /// When the session ends unless re-authenticated (`now + lifetime`).
    pub expires_at: Option<Instant>,
    /// True for a KIP-368 re-authentication.
    pub reauthentication: bool,
}

/// What the session must do after a SASL request or raw token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
pub enum ServerStep {
    /// Send this frame; nothing else changes.
    Reply(Bytes),
    /// Send this frame; the client is now authenticated.
    Authenticated {
        /// The frame to send.
        reply: Bytes,
        /// Who, with which lifetime.
        authentication: Authentication,
    },
    /// Ask the external authenticator ([`AuthRequest`]); its verdict goes
    /// to [`SaslServer::on_verdict`]. Nothing is sent meanwhile.
    Verify(AuthRequest),
    /// Send `reply` (if any), then close the connection after `close_after`.
    Failed {
        /// The error response, when Kafka sends one.
        reply: Option<Bytes>,
        /// Why (for logs; never sent as is).
        reason: FailureReason,
        /// How long to wait before closing.
        close_after: Duration,
    },
}

/// What the session does with a request, decided from its API key alone.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
pub enum Admission {
    /// Not the server's business: handle or forward it (ApiVersions before
    /// authentication, everything after).
    Pass,
    /// A SASL request: give it to [`SaslServer::on_request`].
    Sasl,
    /// Refused: close after `close_after`, answering with
    /// `reason.error_code()` first if the session can encode that API's error.
    Refuse {
        /// Why.
        reason: FailureReason,
        /// How long to wait before closing.
        close_after: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// SaslHandshake v0: size-prefixed tokens without Kafka headers.
    Raw,
    /// SaslHandshake v1: tokens in SaslAuthenticate.
    Kafka,
}

#[derive(Debug, Clone)]
struct Session {
    principal: Principal,
    mechanism: Mechanism,
    expires_at: Option<Instant>,
    last_reauth_start: Option<Instant>,
}

#[derive(Debug)]
struct Exchanging {
    mechanism: Mechanism,
    framing: Framing,
    exchange: Exchange,
    /// The authenticated session being re-authenticated, if any.
    previous: Option<Session>,
}

#[derive(Debug)]
enum State {
    /// Waiting for ApiVersions or SaslHandshake.
    Initial,
    /// A mechanism exchange is under way.
    Exchanging(Exchanging),
    /// Re-authentication asked for another (enabled) mechanism: Kafka accepts
    /// the handshake and fails at the next token.
    ReauthBadMechanism { framing: Framing, to: Mechanism, previous: Session },
    /// Waiting for the external authenticator's verdict on a PLAIN login.
    Verifying(Verifying),
    /// Authenticated.
    Authenticated(Session),
    /// Failed; the connection is closing.
    Failed,
}

/// A PLAIN login out for an external verdict.
#[derive(Debug)]
struct Verifying {
    mechanism: Mechanism,
    reply_to: ReplyTo,
    previous: Option<Session>,
    id: u64,
    username: String,
    deadline: Instant,
    timeout: Duration,
}

/// How a token reply is framed.
#[derive(Debug, Clone, Copy)]
enum ReplyTo {
    Raw,
    Authenticate { correlation_id: i32, version: i16 },
}

impl ReplyTo {
    fn ok(self, token: &[u8], lifetime_ms: i64) -> Bytes {
        match self {
            ReplyTo::Raw => raw_token_frame(token),
            ReplyTo::Authenticate { correlation_id, version } => SaslAuthenticateResponse {
                error_code: ErrorCode::NONE,
                error_message: None,
                auth_bytes: token,
                session_lifetime_ms: lifetime_ms,
            }
            .encode_frame(correlation_id, version),
        }
    }

    /// The error response; raw tokens have none (Kafka just closes).
    fn error(self, error_code: ErrorCode, message: &str) -> Option<Bytes> {
        match self {
            ReplyTo::Raw => None,
            ReplyTo::Authenticate { correlation_id, version } => Some(
                SaslAuthenticateResponse {
                    error_code,
                    error_message: Some(message.as_bytes()),
                    auth_bytes: &[],
                    session_lifetime_ms: 0,
                }
                .encode_frame(correlation_id, version),
            ),
        }
    }
}

/// The SASL server of one client connection.
#[derive(Debug)]
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
pub struct SaslServer {
    config: Arc<ServerConfig>,
    state: State,
    /// The id of the last external verification asked for.
    last_request: u64,
    /// The user name the client's last token claimed (for the login throttle).
    claimed: Option<String>,
}

/// `SessionLifetimeMs` for a lifetime (0 = unlimited; at least 1 ms otherwise,
/// since 0 would mean "unlimited" to the client).
fn lifetime_ms(lifetime: Option<Duration>) -> i64 {
    lifetime.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1))
}

/// KIP-368: min(configured lifetime, credential expiry − now), `None` if neither applies.
fn session_lifetime(max: Option<Duration>, expiry: Option<SystemTime>, wall: SystemTime) -> Option<Duration> {
    let max = max.filter(|d| !d.is_zero());
    let remaining =
        expiry.map(|e| e.duration_since(wall).unwrap_or(Duration::ZERO).max(Duration::from_millis(1)));
    match (max, remaining) {
        (None, r) => r,
        (m, None) => m,
        (Some(m), Some(r)) => Some(m.min(r)),
    }
}

fn lossy_name(name: &[u8]) -> String {
    let cut = name.get(..64).unwrap_or(name);
    String::from_utf8_lossy(cut).into_owned()
}

#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
impl SaslServer {
    /// A server for a new connection.
    pub fn new(config: Arc<ServerConfig>) -> Self {
        SaslServer { config, state: State::Initial, last_request: 0, claimed: None }
    }

    /// True when the next frame is a raw SASL token (after SaslHandshake v0):
    /// the session passes its payload to [`SaslServer::on_raw_token`].
    pub fn expects_raw_token(&self) -> bool {
        matches!(
            self.state,
            State::Exchanging(Exchanging { framing: Framing::Raw, .. })
                | State::ReauthBadMechanism { framing: Framing::Raw, .. }
        )
    }

    /// The user name the client's last token claimed, whether or not it
    /// exists (PLAIN, SCRAM; none for OAUTHBEARER).
    pub(crate) fn claimed_user(&self) -> Option<&str> {
        self.claimed.as_deref()
    }

    /// True once the client has authenticated (also while it re-authenticates).
    pub fn is_authenticated(&self) -> bool {
        self.principal().is_some()
    }

    /// The authenticated principal (the previous one during re-authentication).
    pub(crate) fn principal(&self) -> Option<&Principal> {
        match &self.state {
            State::Authenticated(s)
            | State::Exchanging(Exchanging { previous: Some(s), .. })
            | State::Verifying(Verifying { previous: Some(s), .. })
            | State::ReauthBadMechanism { previous: s, .. } => Some(&s.principal),
            _ => None,
        }
    }

    /// The mechanism of the authenticated session.
    #[cfg(test)]
    pub(crate) fn mechanism(&self) -> Option<Mechanism> {
        match &self.state {
            State::Authenticated(s) => Some(s.mechanism),
            _ => None,
        }
    }

    /// When the authenticated session ends unless the client re-authenticates
    /// (for the session's timer).
    pub(crate) fn session_expires_at(&self) -> Option<Instant> {
        match &self.state {
            State::Authenticated(s) => s.expires_at,
            _ => None,
        }
    }

    /// True when the session has outlived its lifetime: like a broker, the
    /// session then closes the connection at the next request that is not a
    /// SaslHandshake.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.session_expires_at().is_some_and(|t| now >= t)
    }

    /// True after a failure.
    #[cfg(test)]
    pub(crate) fn has_failed(&self) -> bool {
        matches!(self.state, State::Failed)
    }

    fn refuse(&mut self, reason: FailureReason, close_after: Duration) -> Admission {
        self.state = State::Failed;
        Admission::Refuse { reason, close_after }
    }

    fn fail(&mut self, reply: Option<Bytes>, reason: FailureReason, close_after: Duration) -> ServerStep {
        self.state = State::Failed;
        ServerStep::Failed { reply, reason, close_after }
    }

    /// Decides what happens to a request with `api_key` (not for raw tokens).
    pub fn admit(&mut self, api_key: ApiKey, now: Instant) -> Admission {
        let delay = self.config.failure_delay;
        let sasl = api_key == ApiKey::SASL_HANDSHAKE || api_key == ApiKey::SASL_AUTHENTICATE;
        match &self.state {
            State::Failed => self.refuse(FailureReason::AlreadyFailed, Duration::ZERO),
            _ if self.expects_raw_token() => self.refuse(FailureReason::IllegalState { api_key }, delay),
            // An expired session may only re-authenticate (Kafka's SocketServer).
            State::Authenticated(_) if api_key != ApiKey::SASL_HANDSHAKE && self.is_expired(now) => {
                self.refuse(FailureReason::SessionExpired, Duration::ZERO)
            }
            _ if sasl => Admission::Sasl,
            State::Initial if api_key == ApiKey::API_VERSIONS => Admission::Pass,
            State::Authenticated(_) => Admission::Pass,
            State::Initial
            | State::Exchanging(_)
            | State::ReauthBadMechanism { .. }
            | State::Verifying(_) => self.refuse(FailureReason::IllegalState { api_key }, delay),
        }
    }

    /// True while a verdict from the external authenticator is awaited (the
    /// session reads nothing more from the client meanwhile).
    pub fn is_verifying(&self) -> bool {
        matches!(self.state, State::Verifying(_))
    }

    /// When the awaited verdict is late ([`SaslServer::on_verdict_timeout`]).
    pub(crate) fn verdict_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Verifying(v) => Some(v.deadline),
            _ => None,
        }
    }

    /// The external authenticator answered request `id` (a stale or unknown
    /// id is ignored: `None`).
    pub fn on_verdict(
        &mut self,
        id: u64,
        verdict: Verdict,
        now: Instant,
        wall: SystemTime,
    ) -> Option<ServerStep> {
        if !matches!(&self.state, State::Verifying(v) if v.id == id) {
            return None;
        }
        let State::Verifying(v) = std::mem::replace(&mut self.state, State::Failed) else { return None };
        let reauthentication = v.previous.is_some();
        Some(match verdict {
            Verdict::Allow { principal } => {
                let principal = Principal::user(principal.filter(|p| !p.is_empty()).unwrap_or(v.username));
                self.succeed(v.mechanism, v.previous, principal, None, &[], v.reply_to, now, wall)
            }
            Verdict::Deny { reason } => self.fail_authentication(
                v.mechanism,
                AuthFailure::External(ExternalFailure::Denied(reason)),
                reauthentication,
                v.reply_to,
            ),
            Verdict::Error(why) => self.fail_authentication(
                v.mechanism,
                AuthFailure::External(ExternalFailure::Backend(why)),
                reauthentication,
                v.reply_to,
            ),
        })
    }

    /// The verdict did not come in time: the login fails.
    pub(crate) fn on_verdict_timeout(&mut self, now: Instant) -> Option<ServerStep> {
        if !matches!(&self.state, State::Verifying(v) if now >= v.deadline) {
            return None;
        }
        let State::Verifying(v) = std::mem::replace(&mut self.state, State::Failed) else { return None };
        let failure = AuthFailure::External(ExternalFailure::TimedOut(v.timeout));
        Some(self.fail_authentication(v.mechanism, failure, v.previous.is_some(), v.reply_to))
    }

    /// Handles a SaslHandshake or SaslAuthenticate request.
    pub fn on_request(&mut self, request: RequestRef<'_>, now: Instant, wall: SystemTime) -> ServerStep {
        match request.api_key {
            ApiKey::SASL_HANDSHAKE => self.on_handshake(request, now),
            ApiKey::SASL_AUTHENTICATE => self.on_authenticate(request, now, wall),
            api_key => self.fail(None, FailureReason::IllegalState { api_key }, self.config.failure_delay),
        }
    }

    /// Handles a raw token (after SaslHandshake v0): the frame's payload.
    pub fn on_raw_token(&mut self, token: &[u8], now: Instant, wall: SystemTime) -> ServerStep {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Exchanging(ex) if ex.framing == Framing::Raw => {
                self.token_step(ex, token, ReplyTo::Raw, now, wall)
            }
            State::ReauthBadMechanism { framing: Framing::Raw, to, previous } => self.fail(
                None,
                FailureReason::ReauthMechanismChanged { from: previous.mechanism, to },
                self.config.failure_delay,
            ),
            State::Failed => self.fail(None, FailureReason::AlreadyFailed, Duration::ZERO),
            _ => self.fail(None, FailureReason::UnexpectedRawToken, self.config.failure_delay),
        }
    }

    fn handshake_reply(&self, correlation_id: i32, error_code: ErrorCode) -> Bytes {
        SaslHandshakeResponse { error_code, mechanisms: self.config.mechanism_names() }
            .encode_frame(correlation_id)
    }

    fn on_handshake(&mut self, request: RequestRef<'_>, now: Instant) -> ServerStep {
        let delay = self.config.failure_delay;
        let state = std::mem::replace(&mut self.state, State::Failed);
        let handshake = match SaslHandshakeRequest::decode(request.body, request.version) {
            Ok(h) => h,
            Err(e) => return self.fail(None, FailureReason::Decode(e), Duration::ZERO),
        };
        let previous = match state {
            State::Initial => None,
            State::Authenticated(session) => {
                if session
                    .last_reauth_start
                    .is_some_and(|t| now.saturating_duration_since(t) < MIN_REAUTH_INTERVAL)
                {
                    // Too soon: Kafka answers as a normal request and keeps the session.
                    self.state = State::Authenticated(session);
                    return ServerStep::Reply(
                        self.handshake_reply(request.correlation_id, ErrorCode::ILLEGAL_SASL_STATE),
                    );
                }
                Some(Session { last_reauth_start: Some(now), ..session })
            }
            State::Failed => return self.fail(None, FailureReason::AlreadyFailed, Duration::ZERO),
            State::Exchanging(_) | State::ReauthBadMechanism { .. } | State::Verifying(_) => {
                let reply = self.handshake_reply(request.correlation_id, ErrorCode::ILLEGAL_SASL_STATE);
                return self.fail(
                    Some(reply),
                    FailureReason::IllegalState { api_key: ApiKey::SASL_HANDSHAKE },
                    delay,
                );
            }
        };
        let enabled =
            Mechanism::from_name(handshake.mechanism).filter(|m| self.config.mechanisms.contains(m));
        let Some(mechanism) = enabled else {
            let reply = self.handshake_reply(request.correlation_id, ErrorCode::UNSUPPORTED_SASL_MECHANISM);
            let requested = lossy_name(handshake.mechanism);
            return self.fail(Some(reply), FailureReason::UnsupportedMechanism { requested }, delay);
        };
        let framing = if request.version >= 1 { Framing::Kafka } else { Framing::Raw };
        self.state = match previous {
            Some(previous) if previous.mechanism != mechanism => {
                State::ReauthBadMechanism { framing, to: mechanism, previous }
            }
            previous => State::Exchanging(Exchanging {
                mechanism,
                framing,
                exchange: Exchange::new(mechanism),
                previous,
            }),
        };
        ServerStep::Reply(self.handshake_reply(request.correlation_id, ErrorCode::NONE))
    }

    fn on_authenticate(&mut self, request: RequestRef<'_>, now: Instant, wall: SystemTime) -> ServerStep {
        let delay = self.config.failure_delay;
        let state = std::mem::replace(&mut self.state, State::Failed);
        let auth = match SaslAuthenticateRequest::decode(request.body, request.version) {
            Ok(a) => a,
            Err(e) => return self.fail(None, FailureReason::Decode(e), Duration::ZERO),
        };
        let reply_to =
            ReplyTo::Authenticate { correlation_id: request.correlation_id, version: request.version };
        match state {
            State::Exchanging(ex) if ex.framing == Framing::Kafka => {
                self.token_step(ex, auth.auth_bytes, reply_to, now, wall)
            }
            State::ReauthBadMechanism { framing: Framing::Kafka, to, previous } => {
                let message = format!(
                    "SASL mechanism '{to}' requested by client is not supported for re-authentication of mechanism '{}'",
                    previous.mechanism
                );
                let reply = reply_to.error(ErrorCode::SASL_AUTHENTICATION_FAILED, &message);
                self.fail(
                    reply,
                    FailureReason::ReauthMechanismChanged { from: previous.mechanism, to },
                    delay,
                )
            }
            State::Authenticated(session) => {
                // Kafka's KafkaApis: an error response, the session goes on.
                self.state = State::Authenticated(session);
                let message = "SaslAuthenticate request received after successful authentication";
                match reply_to.error(ErrorCode::ILLEGAL_SASL_STATE, message) {
                    Some(reply) => ServerStep::Reply(reply),
                    None => self.fail(None, FailureReason::UnexpectedRawToken, delay),
                }
            }
            State::Failed => self.fail(None, FailureReason::AlreadyFailed, Duration::ZERO),
            State::Initial
            | State::Exchanging(_)
            | State::ReauthBadMechanism { .. }
            | State::Verifying(_) => {
                let message = "Unexpected Kafka request of type SaslAuthenticate during SASL handshake.";
                let reply = reply_to.error(ErrorCode::ILLEGAL_SASL_STATE, message);
                self.fail(reply, FailureReason::IllegalState { api_key: ApiKey::SASL_AUTHENTICATE }, delay)
            }
        }
    }

    fn token_step(
        &mut self,
        ex: Exchanging,
        token: &[u8],
        reply_to: ReplyTo,
        now: Instant,
        wall: SystemTime,
    ) -> ServerStep {
        let delay = self.config.failure_delay;
        let Exchanging { mechanism, framing, exchange, previous } = ex;
        let reauthentication = previous.is_some();
        if token.len() > MAX_UNAUTHENTICATED_FRAME {
            let message = generic_failure_message(mechanism, reauthentication);
            let reply = reply_to.error(ErrorCode::SASL_AUTHENTICATION_FAILED, &message);
            return self.fail(reply, FailureReason::TokenTooLarge { len: token.len() }, delay);
        }
        let config = Arc::clone(&self.config);
        if let Some(user) = exchange.claimed_user(token) {
            self.claimed = Some(user);
        }
        match exchange.step(token, &config.verifiers(), wall) {
            MechanismStep::Continue { challenge, next } => {
                self.state = State::Exchanging(Exchanging { mechanism, framing, exchange: next, previous });
                ServerStep::Reply(reply_to.ok(&challenge, 0))
            }
            MechanismStep::Fail(failure) => {
                self.fail_authentication(mechanism, failure, reauthentication, reply_to)
            }
            MechanismStep::Verify { username, password } => {
                let Some(external) = config.external else {
                    return self.fail_authentication(
                        mechanism,
                        AuthFailure::NotConfigured,
                        reauthentication,
                        reply_to,
                    );
                };
                self.last_request = self.last_request.wrapping_add(1);
                let id = self.last_request;
                self.state = State::Verifying(Verifying {
                    mechanism,
                    reply_to,
                    previous,
                    id,
                    username: username.clone(),
                    deadline: now + external.timeout,
                    timeout: external.timeout,
                });
                ServerStep::Verify(AuthRequest { id, user: username, password, client: None })
            }
            MechanismStep::Done { response, principal, expires_at } => {
                let principal = Principal::user(principal);
                self.succeed(mechanism, previous, principal, expires_at, &response, reply_to, now, wall)
            }
        }
    }

    /// Refuses a login the mechanism (or the external authenticator) refused.
    fn fail_authentication(
        &mut self,
        mechanism: Mechanism,
        failure: AuthFailure,
        reauthentication: bool,
        reply_to: ReplyTo,
    ) -> ServerStep {
        let message = failure.client_message(mechanism, reauthentication);
        let reply = reply_to.error(ErrorCode::SASL_AUTHENTICATION_FAILED, &message);
        let delay = self.config.failure_delay;
        self.fail(reply, FailureReason::Authentication { mechanism, failure, reauthentication }, delay)
    }

    /// Completes a login for `principal` (keeping it across a re-authentication).
    #[expect(clippy::too_many_arguments, reason = "one call per way a login completes")]
    fn succeed(
        &mut self,
        mechanism: Mechanism,
        previous: Option<Session>,
        principal: Principal,
        expires_at: Option<SystemTime>,
        response: &[u8],
        reply_to: ReplyTo,
        now: Instant,
        wall: SystemTime,
    ) -> ServerStep {
        let delay = self.config.failure_delay;
        let reauthentication = previous.is_some();
        let config = Arc::clone(&self.config);
        if let Some(previous) = previous.as_ref().filter(|p| p.principal != principal) {
            let message = format!(
                "Cannot change principals during re-authentication from {}: {}",
                previous.principal, principal
            );
            let reply = reply_to.error(ErrorCode::SASL_AUTHENTICATION_FAILED, &message);
            let reason =
                FailureReason::ReauthPrincipalChanged { from: previous.principal.clone(), to: principal };
            return self.fail(reply, reason, delay);
        }
        let lifetime = session_lifetime(config.session_lifetime, expires_at, wall);
        let expires_at = lifetime.and_then(|d| now.checked_add(d));
        let session = Session {
            principal: principal.clone(),
            mechanism,
            expires_at,
            last_reauth_start: previous.and_then(|p| p.last_reauth_start),
        };
        self.state = State::Authenticated(session);
        ServerStep::Authenticated {
            reply: reply_to.ok(response, lifetime_ms(lifetime)),
            authentication: Authentication { principal, mechanism, lifetime, expires_at, reauthentication },
        }
    }
}

#[cfg(test)]
mod tests;
