//! `kafka-proxy-auth`: the external authenticator behind
//! `downstream.credentials.external`.
//!
//! The core asks for a verdict on a PLAIN login (`Event::Authenticate`); the
//! runtime hands it to an [`AuthService`] (through the
//! [`Authenticator`] hook of `kafka-proxy-runtime`), which answers from its
//! cache or asks the backend on its own thread, never the runtime's:
//!
//! * **exec**: a long-running helper the proxy starts (and restarts when it
//!   exits), speaking one JSON object per line on stdin/stdout
//!   ([`exec`] documents the protocol);
//! * **ldap**: a simple bind as the user (a DN template), or a search with a
//!   service account and then a bind as the entry found; `ldaps://` or
//!   StartTLS, with rustls and ring.
//!
//! Every login gets a verdict within the configured timeout (waiting for a
//! concurrency slot included); verdicts (allow and deny, never errors) are
//! cached for the configured TTL under an HMAC of user and password, never
//! the password itself.

mod cache;
pub mod exec;
mod ldap;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kafka_proxy_config::{ExternalAuth, ExternalBackend};
use kafka_proxy_core::sasl::{AuthRequest, Verdict};
use kafka_proxy_runtime::auth::{Authenticator, Completion};
use tracing::debug;

use cache::VerdictCache;

/// Logins waiting for a slot beyond which new ones fail at once.
const MAX_WAITING: usize = 4096;

/// Why the service cannot start.
#[derive(Debug)]
pub enum StartError {
    /// Its threads could not start.
    Runtime(std::io::Error),
    /// The LDAP TLS settings are unusable (CA file, system roots).
    Tls(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Runtime(e) => write!(f, "cannot start the external authenticator's threads: {e}"),
            StartError::Tls(e) => write!(f, "downstream.credentials.external.ldap: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// The backend that decides.
enum Backend {
    Exec(exec::ExecPlugin),
    Ldap(ldap::LdapBackend),
}

impl Backend {
    async fn check(&self, request: &AuthRequest) -> Verdict {
        match self {
            Backend::Exec(plugin) => plugin.check(request).await,
            Backend::Ldap(ldap) => ldap.check(request).await,
        }
    }
}

/// Checks PLAIN logins with an exec plugin or LDAP; see the crate documentation.
pub struct AuthService {
    runtime: Option<tokio::runtime::Runtime>,
    shared: Arc<Shared>,
}

struct Shared {
    backend: Backend,
    cache: Option<VerdictCache>,
    slots: tokio::sync::Semaphore,
    timeout: Duration,
    waiting: AtomicUsize,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.shared.backend {
            Backend::Exec(_) => "exec",
            Backend::Ldap(_) => "ldap",
        };
        f.debug_struct("AuthService")
            .field("backend", &backend)
            .field("timeout", &self.shared.timeout)
            .finish()
    }
}

impl AuthService {
    /// Starts the service for `config` (its threads; an exec plugin starts at
    /// the first login).
    pub fn start(config: &ExternalAuth) -> Result<Arc<AuthService>, StartError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kafka-proxy-auth")
            .enable_all()
            .build()
            .map_err(StartError::Runtime)?;
        let backend = match &config.backend {
            ExternalBackend::Exec { command, args } => {
                Backend::Exec(exec::ExecPlugin::new(command.clone(), args.clone()))
            }
            ExternalBackend::Ldap(ldap) => Backend::Ldap(ldap::LdapBackend::new(ldap, config.timeout)?),
        };
        let shared = Arc::new(Shared {
            backend,
            cache: config.cache_ttl.map(VerdictCache::new),
            slots: tokio::sync::Semaphore::new(config.max_concurrency.max(1)),
            timeout: config.timeout,
            waiting: AtomicUsize::new(0),
        });
        Ok(Arc::new(AuthService { runtime: Some(runtime), shared }))
    }

    /// Checks one login, asynchronously: the verdict within the timeout.
    pub async fn verdict(&self, request: &AuthRequest) -> Verdict {
        self.shared.verdict(request).await
    }
}

impl Shared {
    async fn verdict(&self, request: &AuthRequest) -> Verdict {
        if let Some(v) = self.cache.as_ref().and_then(|c| c.get(request)) {
            return v;
        }
        let checked = tokio::time::timeout(self.timeout, async {
            let Ok(_slot) = self.slots.acquire().await else {
                return Verdict::Error("the external authenticator is shutting down".into());
            };
            self.backend.check(request).await
        })
        .await;
        let verdict = checked
            .unwrap_or_else(|_| Verdict::Error(format!("no verdict within {} ms", self.timeout.as_millis())));
        if let Some(cache) = &self.cache {
            cache.put(request, &verdict);
        }
        verdict
    }
}

impl Authenticator for AuthService {
    fn authenticate(&self, request: AuthRequest, done: Completion) {
        if let Some(v) = self.shared.cache.as_ref().and_then(|c| c.get(&request)) {
            debug!(user = %request.user, "verdict from the cache");
            return done(v);
        }
        let Some(runtime) = &self.runtime else {
            return done(Verdict::Error("the external authenticator has stopped".into()));
        };
        let shared = self.shared.clone();
        if shared.waiting.fetch_add(1, Ordering::Relaxed) >= MAX_WAITING {
            shared.waiting.fetch_sub(1, Ordering::Relaxed);
            return done(Verdict::Error(format!(
                "more than {MAX_WAITING} logins waiting for the external authenticator"
            )));
        }
        runtime.spawn(async move {
            let verdict = shared.verdict(&request).await;
            shared.waiting.fetch_sub(1, Ordering::Relaxed);
            done(verdict);
        });
    }
}

impl Drop for AuthService {
    fn drop(&mut self) {
        // Allowed from inside another runtime, unlike a plain drop.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
