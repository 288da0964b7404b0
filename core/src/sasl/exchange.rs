//! One exchange of any server-side mechanism as a single state machine: a
//! client token in, a challenge, a principal or a failure out. Kept apart
//! from [`super::mechanism`] (the names) and [`super::server`] (Kafka's
//! framing and states), which hands it only the [`Verifiers`] it needs.

use std::time::SystemTime;

use super::credentials::CredentialStore;
use super::mechanism::{AuthFailure, Mechanism};
use super::oauthbearer::{self, JwtValidator, OAuthBearerServer, OAuthChallengeSent, OAuthStep};
use super::plain;
use super::random::Random;
use super::scram::{ScramServer, ScramServerFirstSent};
use super::secret::SecretString;

/// What an exchange checks a client against, borrowed from the server's
/// configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Verifiers<'a> {
    /// The users (PLAIN, SCRAM).
    pub(crate) credentials: &'a CredentialStore,
    /// The token validator (OAUTHBEARER), if configured.
    pub(crate) oauthbearer: Option<&'a JwtValidator>,
    /// Nonces for SCRAM.
    pub(crate) random: &'a dyn Random,
    /// PLAIN users not in `credentials` are checked externally.
    pub(crate) external: bool,
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
    /// Ask the external authenticator (PLAIN, for a user not held locally).
    Verify { username: String, password: SecretString },
}

impl Exchange {
    pub(crate) fn new(mechanism: Mechanism) -> Exchange {
        match mechanism {
            Mechanism::Plain => Exchange::Plain,
            Mechanism::Scram(s) => Exchange::ScramFirst(ScramServer::new(s)),
            Mechanism::OAuthBearer => Exchange::OAuthInitial,
        }
    }

    /// The user name `token` claims (before it is checked): PLAIN's, or the
    /// one SCRAM's first message named.
    pub(crate) fn claimed_user(&self, token: &[u8]) -> Option<String> {
        match self {
            Exchange::Plain => plain::parse(token).ok().map(|m| m.username.to_owned()),
            Exchange::ScramFinal(state) => Some(state.username().to_owned()),
            Exchange::ScramFirst(_) | Exchange::OAuthInitial | Exchange::OAuthChallenged(_) => None,
        }
    }

    /// Feeds one client token to the exchange.
    pub(crate) fn step(self, token: &[u8], verifiers: &Verifiers<'_>, wall: SystemTime) -> MechanismStep {
        match self {
            Exchange::Plain => match plain::parse(token) {
                Err(e) => MechanismStep::Fail(AuthFailure::Plain(e)),
                Ok(m) if verifiers.external && !verifiers.credentials.contains(m.username) => {
                    match std::str::from_utf8(m.password.expose()) {
                        Ok(password) => MechanismStep::Verify {
                            username: m.username.to_owned(),
                            password: SecretString::new(password.to_owned()),
                        },
                        Err(_) => MechanismStep::Fail(AuthFailure::Plain(super::PlainError::Malformed(
                            "password is not UTF-8",
                        ))),
                    }
                }
                Ok(m) => match verifiers.credentials.verify_plain(m.username, m.password.expose()) {
                    Err(e) => MechanismStep::Fail(AuthFailure::Password(e)),
                    Ok(()) => MechanismStep::Done {
                        response: Vec::new(),
                        principal: m.username.to_owned(),
                        expires_at: None,
                    },
                },
            },
            Exchange::ScramFirst(server) => {
                let nonce = match verifiers.random.scram_nonce() {
                    Ok(n) => n,
                    Err(e) => return MechanismStep::Fail(AuthFailure::Random(e)),
                };
                let store = verifiers.credentials;
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
                let Some(validator) = verifiers.oauthbearer else {
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
