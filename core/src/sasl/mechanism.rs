//! The set of mechanisms the proxy's SASL server offers, and one exchange of
//! any of them as a single state machine.

use std::fmt;
use std::time::SystemTime;

use super::credentials::PasswordMismatch;
use super::oauthbearer::{self, OAuthBearerServer, OAuthChallengeSent, OAuthError, OAuthStep};
use super::plain::{self, PlainError};
use super::random::RandomError;
use super::scram::{ScramError, ScramMechanism, ScramServer, ScramServerFirstSent};
use super::server::ServerConfig;

/// A SASL mechanism the proxy implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    /// `PLAIN`.
    Plain,
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    Scram(ScramMechanism),
    /// `OAUTHBEARER`.
    OAuthBearer,
}

impl Mechanism {
    /// Every mechanism, in Kafka's usual order of preference.
    pub const ALL: [Mechanism; 4] = [
        Mechanism::Scram(ScramMechanism::Sha512),
        Mechanism::Scram(ScramMechanism::Sha256),
        Mechanism::OAuthBearer,
        Mechanism::Plain,
    ];

    /// The SASL name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(s) => s.name(),
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The mechanism a client names in SaslHandshake: byte for byte, as Kafka compares.
    pub fn from_name(name: &[u8]) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name().as_bytes() == name)
    }

    /// The mechanism a configuration names: any case, with seed 000's aliases
    /// `SCRAM-256` and `SCRAM-512`.
    pub fn from_config_name(name: &str) -> Option<Mechanism> {
        match name.to_ascii_uppercase().as_str() {
            "PLAIN" => Some(Mechanism::Plain),
            "SCRAM-SHA-256" | "SCRAM-256" => Some(Mechanism::Scram(ScramMechanism::Sha256)),
            "SCRAM-SHA-512" | "SCRAM-512" => Some(Mechanism::Scram(ScramMechanism::Sha512)),
            "OAUTHBEARER" => Some(Mechanism::OAuthBearer),
            _ => None,
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a mechanism refused a client (for logs; the client sees Kafka's message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// A bad PLAIN message.
    Plain(PlainError),
    /// A PLAIN login that did not match.
    Password(PasswordMismatch),
    /// A SCRAM failure.
    Scram(ScramError),
    /// An OAUTHBEARER failure.
    OAuthBearer(OAuthError),
    /// OAUTHBEARER is enabled but no token validator is configured.
    NotConfigured,
    /// The random source failed.
    Random(RandomError),
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthFailure::Plain(e) => e.fmt(f),
            AuthFailure::Password(PasswordMismatch::UnknownUser) => f.write_str("unknown user"),
            AuthFailure::Password(PasswordMismatch::WrongPassword) => f.write_str("wrong password"),
            AuthFailure::Scram(e) => e.fmt(f),
            AuthFailure::OAuthBearer(e) => e.fmt(f),
            AuthFailure::NotConfigured => f.write_str("mechanism not configured"),
            AuthFailure::Random(e) => e.fmt(f),
        }
    }
}

impl AuthFailure {
    /// The `ErrorMessage` Kafka sends for this failure: the messages Kafka
    /// deliberately shows (authzid mismatch, the OAUTHBEARER status), and
    /// otherwise one generic text that does not tell whether the user exists.
    pub fn client_message(&self, mechanism: Mechanism, reauthentication: bool) -> String {
        match self {
            AuthFailure::Plain(PlainError::AuthzidMismatch)
            | AuthFailure::Scram(ScramError::AuthzidMismatch) => {
                "Authentication failed: Client requested an authorization id that is different from username"
                    .to_owned()
            }
            AuthFailure::OAuthBearer(OAuthError::AuthzidMismatch) => {
                "Authentication failed: Client requested an \
                 authorization id that is different from the token's principal name"
                    .to_owned()
            }
            AuthFailure::OAuthBearer(OAuthError::InvalidToken(_)) => {
                String::from_utf8_lossy(oauthbearer::INVALID_TOKEN_CHALLENGE).into_owned()
            }
            _ => generic_failure_message(mechanism, reauthentication),
        }
    }
}

/// Kafka's message for bad credentials.
pub fn generic_failure_message(mechanism: Mechanism, reauthentication: bool) -> String {
    let during = if reauthentication { "re-authentication" } else { "authentication" };
    format!(
        "Authentication failed during {during} due to invalid credentials with SASL mechanism {mechanism}"
    )
}

/// One exchange of one mechanism.
#[derive(Debug, Clone)]
pub(crate) enum Exchange {
    Plain,
    ScramFirst(ScramServer),
    ScramFinal(Box<ScramServerFirstSent>),
    OAuthInitial,
    OAuthChallenged(OAuthChallengeSent),
}

/// The result of one client token.
#[derive(Debug)]
pub(crate) enum MechanismStep {
    /// Send `challenge`; the exchange continues as `next`.
    Continue { challenge: Vec<u8>, next: Exchange },
    /// Authenticated: send `response` (possibly empty).
    Done { response: Vec<u8>, principal: String, expires_at: Option<SystemTime> },
    /// Refused.
    Fail(AuthFailure),
}

impl Exchange {
    pub(crate) fn new(mechanism: Mechanism) -> Exchange {
        match mechanism {
            Mechanism::Plain => Exchange::Plain,
            Mechanism::Scram(s) => Exchange::ScramFirst(ScramServer::new(s)),
            Mechanism::OAuthBearer => Exchange::OAuthInitial,
        }
    }

    /// Feeds one client token to the exchange.
    pub(crate) fn step(self, token: &[u8], config: &ServerConfig, wall: SystemTime) -> MechanismStep {
        match self {
            Exchange::Plain => match plain::parse(token) {
                Err(e) => MechanismStep::Fail(AuthFailure::Plain(e)),
                Ok(m) => match config.credentials.verify_plain(m.username, m.password.expose()) {
                    Err(e) => MechanismStep::Fail(AuthFailure::Password(e)),
                    Ok(()) => MechanismStep::Done {
                        response: Vec::new(),
                        principal: m.username.to_owned(),
                        expires_at: None,
                    },
                },
            },
            Exchange::ScramFirst(server) => {
                let nonce = match config.random.scram_nonce() {
                    Ok(n) => n,
                    Err(e) => return MechanismStep::Fail(AuthFailure::Random(e)),
                };
                let store = &config.credentials;
                match server.client_first(token, |m, user| store.scram(m, user), &nonce) {
                    Ok((next, challenge)) => {
                        MechanismStep::Continue { challenge, next: Exchange::ScramFinal(Box::new(next)) }
                    }
                    Err(e) => MechanismStep::Fail(AuthFailure::Scram(e)),
                }
            }
            Exchange::ScramFinal(state) => match state.client_final(token) {
                Ok(success) => MechanismStep::Done {
                    response: success.server_final,
                    principal: success.username,
                    expires_at: None,
                },
                Err(e) => MechanismStep::Fail(AuthFailure::Scram(e)),
            },
            Exchange::OAuthInitial => {
                let Some(validator) = config.oauthbearer.as_deref() else {
                    return MechanismStep::Fail(AuthFailure::NotConfigured);
                };
                match OAuthBearerServer.initial_response(token, validator, wall) {
                    OAuthStep::Success(s) => MechanismStep::Done {
                        response: Vec::new(),
                        principal: s.principal,
                        expires_at: Some(s.expires_at),
                    },
                    OAuthStep::Challenge(sent) => MechanismStep::Continue {
                        challenge: oauthbearer::INVALID_TOKEN_CHALLENGE.to_vec(),
                        next: Exchange::OAuthChallenged(sent),
                    },
                    OAuthStep::Failure(e) => MechanismStep::Fail(AuthFailure::OAuthBearer(e)),
                }
            }
            Exchange::OAuthChallenged(sent) => {
                MechanismStep::Fail(AuthFailure::OAuthBearer(sent.client_reply(token)))
            }
        }
    }
}
