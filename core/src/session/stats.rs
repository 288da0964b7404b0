//! What a session counts for metrics, in plain fields (quinn-proto's
//! `Connection::stats()` pattern).
//!
//! The data path pays a few integer additions per frame and nothing else: no
//! atomics, no locks, no allocation (the per-API table grows only with the
//! (API, version) pairs a client actually uses). A runtime that exports
//! metrics takes the counts with [`Session::take_stats`] at coarse intervals
//! and when the session ends, and folds them into its registry; one that
//! does not never looks, and the counts stay a few hundred bytes per session
//! (they are reset by each take).

use std::time::Duration;

use super::{Session, Side};
use crate::api::ApiKey;

/// Upper bounds of the request latency buckets, in microseconds (the last
/// bucket, above them all, is `+Inf`).
pub const LATENCY_BOUNDS_MICROS: [u64; 15] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000,
];

/// Bytes moved through one side's socket since the last take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SideStats {
    /// Read from the socket into the session (ciphertext under TLS).
    pub copied_in: u64,
    /// Moved from the socket to the other side's pipe by `splice(2)`,
    /// never touching the session.
    pub spliced_in: u64,
    /// Written to the socket from the session's queue.
    pub copied_out: u64,
    /// Written to the socket from the other side's pipe.
    pub spliced_out: u64,
    /// TLS handshakes completed on this side.
    pub tls_handshakes: u32,
    /// TLS handshakes that failed on this side.
    pub tls_handshake_failures: u32,
}

/// Request latencies (request's last byte in to the response's first byte
/// out) in the buckets of [`LATENCY_BOUNDS_MICROS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    pub buckets: [u32; LATENCY_BOUNDS_MICROS.len() + 1],
    /// Sum of the observations, in microseconds.
    pub sum_micros: u64,
}

impl LatencyHistogram {
    /// Counts one observation.
    pub fn observe(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BOUNDS_MICROS.iter().position(|bound| micros <= *bound);
        if let Some(slot) = self.buckets.get_mut(bucket.unwrap_or(LATENCY_BOUNDS_MICROS.len())) {
            *slot = slot.saturating_add(1);
        }
        self.sum_micros = self.sum_micros.saturating_add(micros);
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|n| u64::from(*n)).sum()
    }
}

/// One (API, version) pair a client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiStats {
    /// The API.
    pub api_key: ApiKey,
    /// The version the client used.
    pub version: i16,
    /// Requests received from the client.
    pub requests: u64,
    /// Latencies of the broker's responses to them.
    pub latency: LatencyHistogram,
}

/// An authentication on either side: the client's SASL exchange or
/// certificate (`side` downstream), or the proxy's own login at the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthOutcome {
    /// Which side authenticated.
    pub side: Side,
    /// The SASL mechanism (`PLAIN`, `SCRAM-SHA-256`, ...), `MTLS` for a client
    /// certificate, `unknown` before a mechanism was chosen.
    pub mechanism: &'static str,
    /// `None` for a success; otherwise why, as a short stable name
    /// (`invalid_credentials`, `unsupported_mechanism`, ...). Never a user name.
    pub failure: Option<&'static str>,
}

/// Requests of one API the policy refused one way, since the last take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyRefusal {
    /// The forbidden API.
    pub api_key: ApiKey,
    /// How: `authorization_error` (answered with the API's own response),
    /// or `closed` (acks=0 Produce, or an API the proxy cannot answer).
    pub reason: &'static str,
    /// How many.
    pub count: u64,
}

/// Quota throttles the proxy handed out in one direction, since the last take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaThrottles {
    /// Requests (Produce) or responses (Fetch) throttled.
    pub count: u32,
    /// Their throttle times added up, in milliseconds.
    pub millis: u64,
}

impl QuotaThrottles {
    fn add(&mut self, throttle: Duration) {
        self.count = self.count.saturating_add(1);
        self.millis = self.millis.saturating_add(u64::try_from(throttle.as_millis()).unwrap_or(u64::MAX));
    }
}

/// Everything a session counted since the last [`Session::take_stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// The client's socket.
    pub client: SideStats,
    /// The broker's socket.
    pub broker: SideStats,
    /// Requests and latencies by (API, version), in order of first use.
    pub apis: Vec<ApiStats>,
    /// Bytes of the client's request frames (size prefix included).
    pub request_bytes: u64,
    /// Bytes of the broker's response frames (size prefix included).
    pub response_bytes: u64,
    /// Upstream connections established (0 or 1).
    pub upstream_connects: u32,
    /// Authentications that ended, either way.
    pub auth: Vec<AuthOutcome>,
    /// Requests refused by the policy's forbidden APIs.
    pub policy_refusals: Vec<PolicyRefusal>,
    /// Connections refused because their principal held its `max_connections` (0 or 1).
    pub principal_limit_refusals: u32,
    /// Produce requests throttled by `producer_byte_rate`.
    pub produce_throttles: QuotaThrottles,
    /// Fetch responses throttled by `consumer_byte_rate`.
    pub fetch_throttles: QuotaThrottles,
}

impl SessionStats {
    /// True when nothing was counted.
    pub fn is_empty(&self) -> bool {
        *self == SessionStats::default()
    }

    /// The counts of `side`'s socket.
    pub fn side(&self, side: Side) -> &SideStats {
        match side {
            Side::Downstream => &self.client,
            Side::Upstream => &self.broker,
        }
    }

    pub(super) fn side_mut(&mut self, side: Side) -> &mut SideStats {
        match side {
            Side::Downstream => &mut self.client,
            Side::Upstream => &mut self.broker,
        }
    }

    /// A request frame of `len` bytes (size prefix included) arrived from the client.
    pub(super) fn request_frame(&mut self, len: usize) {
        self.request_bytes = self.request_bytes.saturating_add(len as u64);
    }

    /// A response frame of `len` bytes (size prefix included) arrived from the broker.
    pub(super) fn response_frame(&mut self, len: usize) {
        self.response_bytes = self.response_bytes.saturating_add(len as u64);
    }

    /// A request for `api_key` at `version` arrived from the client.
    pub(super) fn request(&mut self, api_key: ApiKey, version: i16) {
        self.api(api_key, version, |api| api.requests += 1);
    }

    /// The broker's response to `api_key` started after `latency`.
    pub(super) fn latency(&mut self, api_key: ApiKey, version: i16, latency: Duration) {
        self.api(api_key, version, |api| api.latency.observe(latency));
    }

    /// The policy refused a request for `api_key`, `reason` says how.
    pub(super) fn policy_refusal(&mut self, api_key: ApiKey, reason: &'static str) {
        match self.policy_refusals.iter_mut().find(|r| r.api_key == api_key && r.reason == reason) {
            Some(refusal) => refusal.count += 1,
            None => self.policy_refusals.push(PolicyRefusal { api_key, reason, count: 1 }),
        }
    }

    /// A quota throttled a request of `api_key` (Produce or Fetch) for `throttle`.
    pub(super) fn quota_throttle(&mut self, api_key: ApiKey, throttle: Duration) {
        match api_key {
            ApiKey::PRODUCE => self.produce_throttles.add(throttle),
            _ => self.fetch_throttles.add(throttle),
        }
    }

    fn api(&mut self, api_key: ApiKey, version: i16, update: impl FnOnce(&mut ApiStats)) {
        match self.apis.iter_mut().find(|a| a.api_key == api_key && a.version == version) {
            Some(api) => update(api),
            None => {
                let mut api =
                    ApiStats { api_key, version, requests: 0, latency: LatencyHistogram::default() };
                update(&mut api);
                // One slot per pair a client uses (a handful), not the
                // four a doubling Vec starts with: sessions are many.
                self.apis.reserve_exact(1);
                self.apis.push(api);
            }
        }
    }
}

impl Session {
    /// The counts since the last call (or since the session started), reset
    /// to zero: cheap, and allocation-free when nothing was counted.
    pub fn take_stats(&mut self) -> SessionStats {
        std::mem::take(&mut self.stats)
    }

    /// True when [`Session::take_stats`] has something to return.
    pub fn has_stats(&self) -> bool {
        !self.stats.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_their_bucket() {
        let mut h = LatencyHistogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_micros(501));
        h.observe(Duration::from_secs(3600));
        assert_eq!(h.buckets[0], 1, "a bound is inclusive");
        assert_eq!(h.buckets[1], 1);
        assert_eq!(h.buckets[LATENCY_BOUNDS_MICROS.len()], 1, "+Inf");
        assert_eq!(h.count(), 3);
        assert_eq!(h.sum_micros, 500 + 501 + 3_600_000_000);
    }

    #[test]
    fn the_api_table_grows_only_with_new_pairs() {
        let mut s = SessionStats::default();
        assert!(s.is_empty());
        for _ in 0..100 {
            s.request(ApiKey::PRODUCE, 9);
            s.request_frame(100);
            s.request(ApiKey::FETCH, 12);
            s.request_frame(50);
        }
        s.latency(ApiKey::FETCH, 12, Duration::from_millis(3));
        assert_eq!(s.apis.len(), 2);
        assert_eq!(s.apis[0].requests, 100);
        assert_eq!(s.apis[1].latency.count(), 1);
        assert_eq!(s.request_bytes, 15_000);
        assert!(!s.is_empty());
    }
}
