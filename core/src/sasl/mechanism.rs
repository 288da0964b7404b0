//! The SASL mechanisms the proxy implements, by name, and why one refused a
//! client. A leaf: the server, the client and the server's exchange all name
//! mechanisms, and none of them is needed to do so.

use std::fmt;

use super::credentials::PasswordMismatch;
use super::external::ExternalFailure;
use super::oauthbearer::{self, OAuthError};
use super::plain::PlainError;
use super::random::RandomError;
use super::scram::{ScramError, ScramMechanism};

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
    /// The external authenticator refused the login (or gave no verdict).
    External(ExternalFailure),
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
            AuthFailure::External(e) => e.fmt(f),
        }
    }
}

impl AuthFailure {
    /// The `ErrorMessage` Kafka sends for this failure: the messages Kafka
    /// deliberately shows (authzid mismatch, the OAUTHBEARER status), and
    /// otherwise one generic text that does not tell whether the user exists.
    pub(crate) fn client_message(&self, mechanism: Mechanism, reauthentication: bool) -> String {
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
pub(crate) fn generic_failure_message(mechanism: Mechanism, reauthentication: bool) -> String {
    let during = if reauthentication { "re-authentication" } else { "authentication" };
    format!(
        "Authentication failed during {during} due to invalid credentials with SASL mechanism {mechanism}"
    )
}
