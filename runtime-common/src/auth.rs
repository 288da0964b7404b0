//! The external authenticator hook, the same for every runtime: a session
//! emits [`Event::Authenticate`](kafka_proxy_core::session::Event::Authenticate);
//! the runtime hands the request to the [`Authenticator`] of its
//! [`RunOptions`](crate::RunOptions) with a completion that delivers the
//! verdict back to that session (tokio: a oneshot the connection task awaits;
//! mio: a channel and the loop's waker). The authenticator does its work on
//! its own threads, never on the runtime's.

use std::fmt;
use std::sync::Arc;

use kafka_proxy_core::sasl::{AuthRequest, Verdict};

/// Delivers one verdict to the session that asked, from any thread.
pub type Completion = Box<dyn FnOnce(Verdict) + Send>;

/// Checks PLAIN logins for the proxy (an exec plugin, LDAP, ...).
pub trait Authenticator: Send + Sync + fmt::Debug {
    /// Checks `request` and calls `done` exactly once, from any thread,
    /// without blocking the caller. A slow backend may answer late: the
    /// session has already failed the login by then and ignores it.
    fn authenticate(&self, request: AuthRequest, done: Completion);
}

/// Hands `request` to `authenticator`; without one (the runtime was started
/// without `RunOptions::authenticator`) the login fails at once.
pub fn authenticate(authenticator: Option<&Arc<dyn Authenticator>>, request: AuthRequest, done: Completion) {
    match authenticator {
        Some(a) => a.authenticate(request, done),
        None => done(Verdict::Error("no external authenticator is configured in this runtime".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn without_an_authenticator_the_login_fails_at_once() {
        let got = Arc::new(Mutex::new(None));
        let sink = got.clone();
        let request = AuthRequest {
            id: 1,
            user: "alice".into(),
            password: kafka_proxy_core::sasl::SecretString::new("pw".into()),
            client: None,
        };
        authenticate(None, request, Box::new(move |v| *sink.lock().unwrap() = Some(v)));
        assert!(matches!(got.lock().unwrap().as_ref(), Some(Verdict::Error(_))));
    }
}
