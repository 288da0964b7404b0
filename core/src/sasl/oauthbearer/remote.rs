//! Key sets and tokens that come from HTTPS endpoints, as inputs of the core.
//!
//! The core never fetches: a fetcher outside it (the `kafka-proxy-oauth`
//! crate, driven by the CLI) reads a JWKS document or obtains a token and
//! installs it here; validators and SASL clients read what is installed.
//! A reader that needs something newer (a token signed with an unknown
//! `kid`, no token yet) raises a refresh request, which wakes the fetcher;
//! the fetcher decides when to honour it (rate limit, backoff).
//!
//! [`Sources`] hands out one store per endpoint and keeps handing out the
//! same one while any configuration holds it, so a SIGHUP reload that keeps
//! the endpoint keeps the keys and tokens fetched so far.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, SystemTime};

use rustls::pki_types::CertificateDer;

use super::keys::KeySet;
use crate::sasl::secret::Secret;

/// Kafka's `sasl.oauthbearer.jwks.endpoint.refresh.ms` default: one hour.
pub const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(3600);

/// The shortest pause between two refreshes asked for by unknown `kid`s.
pub const DEFAULT_JWKS_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// How the fetcher trusts an endpoint's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointTrust {
    /// The system's trust roots.
    SystemRoots,
    /// These CA certificates only (`jwks_ca_certs`, `ca_certs`).
    Roots(Vec<CertificateDer<'static>>),
}

/// A JWKS endpoint and how often to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksEndpoint {
    /// The `https://` URL of the JWKS document.
    pub url: String,
    /// Whom to trust.
    pub trust: EndpointTrust,
    /// Scheduled refresh period (`jwks_refresh_ms`).
    pub refresh: Duration,
    /// Shortest pause between refreshes for unknown `kid`s (`jwks_min_refresh_interval_ms`).
    pub min_refresh_interval: Duration,
}

/// A token endpoint and the client credentials to use there (RFC 6749 §4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEndpoint {
    /// The `https://` URL of the token endpoint.
    pub url: String,
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: Secret<String>,
    /// The `scope` parameter, when one is asked for.
    pub scope: Option<String>,
    /// Whom to trust.
    pub trust: EndpointTrust,
}

/// Wakes the fetcher of a store; set by the fetcher.
type Waker = Arc<dyn Fn() + Send + Sync>;

/// What stores share: a refresh request flag and the fetcher's waker.
#[derive(Default)]
struct Refresh {
    wanted: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Refresh {
    fn request(&self) {
        if !self.wanted.swap(true, Ordering::AcqRel) {
            let waker = self.waker.lock().unwrap_or_else(PoisonError::into_inner).clone();
            if let Some(wake) = waker {
                wake();
            }
        }
    }

    fn take(&self) -> bool {
        self.wanted.swap(false, Ordering::AcqRel)
    }

    fn set_waker(&self, waker: Waker) {
        *self.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(waker);
    }
}

/// What one endpoint's fetcher fills and sessions read: the endpoint, the
/// value last fetched from it (none before the first success), and the
/// refresh requests between them.
pub struct Store<E, T> {
    endpoint: E,
    value: RwLock<Option<Arc<T>>>,
    refresh: Refresh,
}

/// The verification keys of one JWKS endpoint, as last fetched.
pub type JwksStore = Store<JwksEndpoint, KeySet>;

/// The current token of one client identity at one token endpoint.
pub type TokenStore = Store<TokenEndpoint, BearerToken>;

impl fmt::Debug for JwksStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.current().map(|k| k.keys().len());
        f.debug_struct("JwksStore").field("url", &self.endpoint.url).field("keys", &keys).finish()
    }
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenStore")
            .field("url", &self.endpoint.url)
            .field("client_id", &self.endpoint.client_id)
            .field("token", &self.current().map(|t| t.expires_at))
            .finish()
    }
}

impl<E, T> Store<E, T> {
    /// An empty store for `endpoint` (use [`Sources`] to share one per endpoint).
    pub fn new(endpoint: E) -> Store<E, T> {
        Store { endpoint, value: RwLock::new(None), refresh: Refresh::default() }
    }

    /// The endpoint (and, for tokens, the credentials).
    pub fn endpoint(&self) -> &E {
        &self.endpoint
    }

    /// Installs a newly fetched value: tokens are checked against these keys,
    /// or logins and re-authentications use this token, from now on.
    pub fn install(&self, value: T) {
        *self.value.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(value));
    }

    /// The value last installed, if any.
    pub fn current(&self) -> Option<Arc<T>> {
        self.value.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Asks the fetcher for a fresh value now (a token named an unknown
    /// `kid`; a login found no token).
    pub(crate) fn request_refresh(&self) {
        self.refresh.request();
    }

    /// True (once) when a refresh was asked for since the last call.
    pub fn take_refresh_request(&self) -> bool {
        self.refresh.take()
    }

    /// What the store calls when a refresh is asked for.
    pub fn set_waker(&self, waker: Arc<dyn Fn() + Send + Sync>) {
        self.refresh.set_waker(waker);
    }
}

/// A bearer token obtained from a token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerToken {
    /// The access token (a JWT for Kafka).
    pub value: Secret<String>,
    /// When it expires (`expires_in` after it was issued).
    pub expires_at: SystemTime,
}

/// One store per endpoint for the life of the process: configurations built
/// with the same `Sources` share the stores of equal endpoints.
#[derive(Debug, Default)]
pub struct Sources {
    jwks: Mutex<Vec<Weak<JwksStore>>>,
    tokens: Mutex<Vec<Weak<TokenStore>>>,
}

/// The live entry for `wanted`, or a new one made by `make`; dead entries are dropped.
fn shared<T, K: PartialEq>(
    list: &Mutex<Vec<Weak<T>>>,
    wanted: &K,
    key: impl Fn(&T) -> &K,
    make: impl FnOnce() -> T,
) -> Arc<T> {
    let mut list = list.lock().unwrap_or_else(PoisonError::into_inner);
    list.retain(|w| w.strong_count() > 0);
    if let Some(found) = list.iter().filter_map(Weak::upgrade).find(|s| key(s) == wanted) {
        return found;
    }
    let store = Arc::new(make());
    list.push(Arc::downgrade(&store));
    store
}

fn live<T>(list: &Mutex<Vec<Weak<T>>>) -> Vec<Arc<T>> {
    list.lock().unwrap_or_else(PoisonError::into_inner).iter().filter_map(Weak::upgrade).collect()
}

impl Sources {
    /// A registry with no store yet.
    pub fn new() -> Sources {
        Sources::default()
    }

    /// The store of `endpoint`: the one already in use, or a new empty one.
    pub fn jwks(&self, endpoint: JwksEndpoint) -> Arc<JwksStore> {
        shared(&self.jwks, &endpoint, JwksStore::endpoint, || JwksStore::new(endpoint.clone()))
    }

    /// The store of `endpoint`: the one already in use, or a new empty one.
    pub fn token(&self, endpoint: TokenEndpoint) -> Arc<TokenStore> {
        shared(&self.tokens, &endpoint, TokenStore::endpoint, || TokenStore::new(endpoint.clone()))
    }

    /// Every JWKS store some configuration still holds.
    pub fn jwks_stores(&self) -> Vec<Arc<JwksStore>> {
        live(&self.jwks)
    }

    /// Every token store some configuration still holds.
    pub fn token_stores(&self) -> Vec<Arc<TokenStore>> {
        live(&self.tokens)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn endpoint(url: &str) -> JwksEndpoint {
        JwksEndpoint {
            url: url.to_owned(),
            trust: EndpointTrust::SystemRoots,
            refresh: DEFAULT_JWKS_REFRESH,
            min_refresh_interval: DEFAULT_JWKS_MIN_REFRESH_INTERVAL,
        }
    }

    #[test]
    fn equal_endpoints_share_a_store_while_it_is_held() {
        let sources = Sources::new();
        let a = sources.jwks(endpoint("https://idp/jwks"));
        let again = sources.jwks(endpoint("https://idp/jwks"));
        assert!(Arc::ptr_eq(&a, &again));
        let other = sources.jwks(endpoint("https://other/jwks"));
        assert!(!Arc::ptr_eq(&a, &other));
        assert_eq!(sources.jwks_stores().len(), 2);
        drop((a, again));
        assert_eq!(sources.jwks_stores().len(), 1, "a store no configuration holds is gone");
        let fresh = sources.jwks(endpoint("https://idp/jwks"));
        assert!(fresh.current().is_none());
    }

    #[test]
    fn refresh_requests_wake_the_fetcher_once() {
        let store = JwksStore::new(endpoint("https://idp/jwks"));
        let woken = Arc::new(AtomicUsize::new(0));
        let counter = woken.clone();
        store.set_waker(Arc::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        }));
        store.request_refresh();
        store.request_refresh();
        assert_eq!(woken.load(Ordering::Relaxed), 1, "a pending request is not repeated");
        assert!(store.take_refresh_request());
        assert!(!store.take_refresh_request());
        store.request_refresh();
        assert_eq!(woken.load(Ordering::Relaxed), 2);
    }
}
