//! External verification of PLAIN logins: the proxy asks a backend (an exec
//! plugin, LDAP) whether a user and password are good, without blocking.
//!
//! The session emits the question as an output
//! ([`Event::Authenticate`](crate::session::Event::Authenticate) carrying an
//! [`AuthRequest`]) and takes the answer as an input
//! ([`Session::handle_verdict`](crate::session::Session::handle_verdict)).
//! Meanwhile it holds the client's SaslAuthenticate; a verdict that does not
//! come within [`ExternalPlain::timeout`] fails the login with
//! `SASL_AUTHENTICATION_FAILED`, so a dead backend never hangs a client.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::secret::SecretString;

/// PLAIN logins of users not in the local credentials go to an external backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExternalPlain {
    /// How long the session waits for a verdict before failing the login.
    pub timeout: Duration,
}

/// A login for the backend to check.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// Names the request within its session; pass it back with the verdict.
    pub id: u64,
    /// The SASL user.
    pub user: String,
    /// The password (never printed).
    pub password: SecretString,
    /// The client's address, when the session has a client.
    pub client: Option<SocketAddr>,
}

impl fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthRequest")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("password", &self.password)
            .field("client", &self.client)
            .finish()
    }
}

/// The backend's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The login is good; `principal` replaces the user name as the client's
    /// principal when given.
    Allow {
        /// The principal the backend names, if any.
        principal: Option<String>,
    },
    /// The user or password is wrong (`reason` is logged, never sent).
    Deny {
        /// Why, for the log.
        reason: Option<String>,
    },
    /// The backend could not decide (down, slow, broken): the login fails.
    Error(String),
}

/// Why an external verification refused a client (for logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternalFailure {
    /// The backend said no.
    Denied(Option<String>),
    /// The backend failed.
    Backend(String),
    /// No verdict within the timeout.
    TimedOut(Duration),
}

impl fmt::Display for ExternalFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExternalFailure::Denied(None) => f.write_str("denied by the external authenticator"),
            ExternalFailure::Denied(Some(why)) => write!(f, "denied by the external authenticator: {why}"),
            ExternalFailure::Backend(why) => write!(f, "external authenticator failed: {why}"),
            ExternalFailure::TimedOut(after) => {
                write!(f, "external authenticator gave no verdict within {} ms", after.as_millis())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_never_print_the_password() {
        let r = AuthRequest {
            id: 1,
            user: "alice".into(),
            password: SecretString::new("hunter2".into()),
            client: Some("127.0.0.1:5000".parse().unwrap()),
        };
        let shown = format!("{r:?}");
        assert!(shown.contains("alice") && !shown.contains("hunter2"), "{shown}");
    }
}
