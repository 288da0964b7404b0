//! `kafka-proxy-oauth`: the HTTPS side of OAUTHBEARER, off the data path.
//!
//! The core validates tokens against the key set a [`JwksStore`] holds and
//! logs in to brokers with the token a [`TokenStore`] holds; it never
//! fetches. This crate does: one thread per store reads a JWKS endpoint
//! (on a schedule, and when a validator met an unknown `kid`, at most once
//! per `min_refresh_interval`) or obtains a token with the client-credentials
//! grant (again at 80% of its lifetime, and at once when a login found none),
//! and installs what it got. A failed fetch keeps the last good key set or
//! token and is retried with a growing pause; the store's readers never wait.
//!
//! ```text
//! let sources = Arc::new(Sources::new());            // once per process
//! let core = config.to_core_with(&sources)?;          // configurations take their stores from it
//! let fetchers = Fetchers::new(sources.clone());
//! fetchers.sync();                                    // after every (re)load: first fetch, then a thread per store
//! ```
//!
//! HTTPS runs on ureq with rustls and the ring provider (the tree's only
//! crypto provider), trusting the configured CA certificates or the system
//! roots.
//!
//! [`JwksStore`]: kafka_proxy_core::sasl::oauthbearer::JwksStore
//! [`TokenStore`]: kafka_proxy_core::sasl::oauthbearer::TokenStore

mod http;
mod jwks;
mod schedule;
mod token;

use std::sync::{Arc, Mutex, PoisonError, Weak};

use kafka_proxy_core::sasl::oauthbearer::{JwksStore, Sources, TokenStore};

pub use http::FetchError;
pub use token::parse_token_response;

/// Starts and keeps track of one fetcher thread per store of a [`Sources`].
#[derive(Debug)]
pub struct Fetchers {
    sources: Arc<Sources>,
    started: Mutex<Started>,
}

#[derive(Debug, Default)]
struct Started {
    jwks: Vec<Weak<JwksStore>>,
    tokens: Vec<Weak<TokenStore>>,
}

fn is_started<T>(list: &mut Vec<Weak<T>>, store: &Arc<T>) -> bool {
    list.retain(|w| w.strong_count() > 0);
    list.iter().any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(store)))
}

impl Fetchers {
    /// Fetchers for the stores `sources` hands out.
    pub fn new(sources: Arc<Sources>) -> Fetchers {
        Fetchers { sources, started: Mutex::new(Started::default()) }
    }

    /// The registry configurations take their stores from (`Config::to_core_with` in kafka-proxy-config).
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// Starts a fetcher for every store without one: its first fetch runs
    /// here (so a proxy starts with keys and tokens when the endpoints
    /// answer), the rest on its own thread. Call after each configuration
    /// load; a store no configuration holds any more ends its thread.
    pub fn sync(&self) {
        let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
        for store in self.sources.jwks_stores() {
            if !is_started(&mut started.jwks, &store) {
                started.jwks.push(Arc::downgrade(&store));
                jwks::start(&store);
            }
        }
        for store in self.sources.token_stores() {
            if !is_started(&mut started.tokens, &store) {
                started.tokens.push(Arc::downgrade(&store));
                token::start(&store);
            }
        }
    }
}
