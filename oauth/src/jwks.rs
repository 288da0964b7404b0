//! The JWKS fetcher of one [`JwksStore`]: the document read on a schedule
//! (`jwks_refresh_ms`) and when a validator met an unknown `kid` (at most
//! once per `jwks_min_refresh_interval_ms`), parsed by the core's
//! [`KeySet::from_jwks`] and installed. A failure keeps the last good set.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_proxy_core::sasl::oauthbearer::{JwksStore, KeySet};
use tracing::{info, warn};

use crate::http::{self, FetchError};
use crate::schedule::{Schedule, keep_fresh};

/// Kafka's `sasl.oauthbearer.jwks.endpoint.retry.backoff.ms` and `.max.ms`.
const RETRY_BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(10));

/// Fetches once now, then keeps `store` fresh on a thread of its own.
pub(crate) fn start(store: &Arc<JwksStore>) {
    let endpoint = store.endpoint();
    let schedule =
        Schedule::new(Instant::now(), endpoint.min_refresh_interval, RETRY_BACKOFF.0, RETRY_BACKOFF.1);
    let agent = match http::agent(&endpoint.trust) {
        Ok(agent) => agent,
        Err(e) => {
            warn!(url = %endpoint.url, "JWKS endpoint unusable, OAUTHBEARER tokens are refused: {e}");
            return;
        }
    };
    if let Err(e) = keep_fresh(store, agent, schedule, "kafka-proxy-jwks", fetch) {
        warn!(url = %store.endpoint().url, "cannot start the JWKS refresh thread: {e}");
    }
}

fn fetch(store: &JwksStore, agent: &ureq::Agent, schedule: &mut Schedule) {
    let endpoint = store.endpoint();
    let result = http::body(agent.get(&endpoint.url).header("Accept", "application/json").call())
        .and_then(|text| KeySet::from_jwks(&text).map_err(|e| FetchError::Invalid(e.to_string())));
    let now = Instant::now();
    match result {
        Ok(keys) => {
            let kids: Vec<&str> = keys.keys().iter().map(|k| k.kid.as_deref().unwrap_or("-")).collect();
            info!(url = %endpoint.url, keys = keys.keys().len(), kids = ?kids, "JWKS key set installed");
            store.install(keys);
            schedule.succeeded(now, endpoint.refresh);
        }
        Err(e) => {
            let retry_in = schedule.failed(now);
            let serving = store.current().map_or(0, |k| k.keys().len());
            warn!(
                url = %endpoint.url,
                retry_in_ms = retry_in.as_millis() as u64,
                serving_keys = serving,
                "JWKS refresh failed, the last good key set keeps serving: {e}"
            );
        }
    }
}
