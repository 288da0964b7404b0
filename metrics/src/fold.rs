//! The fold: a session's counts ([`SessionStats`]) into the registry.
//!
//! One [`ConnMetrics`] per client connection. The runtime calls
//! [`ConnMetrics::fold`] about once a second while the session has counts
//! ([`ConnMetrics::due`] says when), and [`ConnMetrics::closed`] when it
//! ends. Each fold costs a handful of label lookups and atomic additions,
//! whatever the traffic was.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_proxy_core::api::ApiKey;
use kafka_proxy_core::route::ListenerId;
use kafka_proxy_core::session::{CloseReason, Session, SessionStats, Side};
use prometheus::{IntCounter, IntGauge};

use crate::Telemetry;

/// How often an active connection's counts are folded into the registry.
pub const FOLD_INTERVAL: Duration = Duration::from_secs(1);

/// The broker label's handles, resolved once the session knows its route.
#[derive(Debug)]
struct Broker {
    label: String,
    connections: IntCounter,
    opened: IntGauge,
    request_bytes: IntCounter,
    response_bytes: IntCounter,
}

/// One client connection's metrics: its labels, and whether its upstream
/// connection is counted as open.
#[derive(Debug)]
pub struct ConnMetrics {
    telemetry: Arc<Telemetry>,
    listener: String,
    broker: Option<Broker>,
    /// The upstream connection is counted in `proxy_opened_connections`.
    upstream_open: bool,
    last_fold: Option<Instant>,
}

impl ConnMetrics {
    pub(crate) fn new(telemetry: Arc<Telemetry>, listener: ListenerId) -> ConnMetrics {
        let listener = listener_label(listener);
        let families = telemetry.families();
        families.client_connections.with_label_values(&[&listener]).inc();
        families.client_connections_open.with_label_values(&[&listener]).inc();
        ConnMetrics { telemetry, listener, broker: None, upstream_open: false, last_fold: None }
    }

    /// When the session's counts should next be folded: `None` while it has
    /// none (an idle connection costs nothing).
    pub fn due(&self, session: &Session) -> Option<Instant> {
        if !session.has_stats() {
            return None;
        }
        Some(self.last_fold.map_or_else(Instant::now, |at| at + FOLD_INTERVAL))
    }

    /// Folds the session's counts when a fold is due at `now` (the first
    /// counts at once: comparing `now` with [`ConnMetrics::due`], which reads
    /// the clock later, would put the first fold off forever and keep the
    /// runtime's timer for it firing).
    pub fn maybe_fold(&mut self, now: Instant, session: &mut Session) {
        if session.has_stats() && self.last_fold.is_none_or(|at| now >= at + FOLD_INTERVAL) {
            self.fold(now, session);
        }
    }

    /// Takes the session's counts and adds them to the registry.
    pub fn fold(&mut self, now: Instant, session: &mut Session) {
        self.last_fold = Some(now);
        if !session.has_stats() {
            return;
        }
        if self.broker.is_none()
            && let Some(route) = session.route()
        {
            self.broker = Some(self.resolve_broker(route.upstream.to_string()));
        }
        let stats = session.take_stats();
        self.add(&stats);
    }

    /// The session ended with `reason`: folds what is left and counts the ending.
    pub fn closed(mut self, session: &mut Session, reason: &CloseReason) {
        self.fold(Instant::now(), session);
        let families = self.telemetry.families();
        families.closed.with_label_values(&[reason.kind()]).inc();
        match reason {
            CloseReason::ConnectFailed { target, .. } => {
                let broker = format!("{}:{}", target.host, target.port);
                families.connect_failures.with_label_values(&[&broker, "error"]).inc();
            }
            CloseReason::ConnectTimeout { target } => {
                let broker = format!("{}:{}", target.host, target.port);
                families.connect_failures.with_label_values(&[&broker, "timeout"]).inc();
            }
            CloseReason::RequestTimeout { api, .. } => {
                families.request_timeouts.with_label_values(&[api_name(*api)]).inc();
            }
            _ => {}
        }
        if self.upstream_open
            && let Some(broker) = &self.broker
        {
            broker.opened.dec();
        }
        families.client_connections_open.with_label_values(&[&self.listener]).dec();
    }

    fn resolve_broker(&self, label: String) -> Broker {
        let f = self.telemetry.families();
        Broker {
            connections: f.connections.with_label_values(&[&label]),
            opened: f.opened_connections.with_label_values(&[&label]),
            request_bytes: f.request_bytes.with_label_values(&[&label]),
            response_bytes: f.response_bytes.with_label_values(&[&label]),
            label,
        }
    }

    fn add(&mut self, stats: &SessionStats) {
        let f = self.telemetry.families();
        if let Some(broker) = &self.broker {
            if stats.upstream_connects > 0 {
                broker.connections.inc_by(u64::from(stats.upstream_connects));
                if !self.upstream_open {
                    broker.opened.inc();
                    self.upstream_open = true;
                }
            }
            broker.request_bytes.inc_by(stats.request_bytes);
            broker.response_bytes.inc_by(stats.response_bytes);
            for api in &stats.apis {
                if api.requests > 0 {
                    let key = api_key_label(api.api_key);
                    let version = version_label(api.version);
                    f.requests.with_label_values(&[&broker.label, &key, &version]).inc_by(api.requests);
                }
            }
        }
        for api in &stats.apis {
            f.latency.add(api_name(api.api_key), &api.latency);
        }
        for (side, counts) in [(Side::Downstream, &stats.client), (Side::Upstream, &stats.broker)] {
            let side_label = side_label(side);
            for (path, received, sent) in [
                ("copied", counts.copied_in, counts.copied_out),
                ("spliced", counts.spliced_in, counts.spliced_out),
            ] {
                if received > 0 {
                    f.received_bytes.with_label_values(&[side_label, path]).inc_by(received);
                }
                if sent > 0 {
                    f.sent_bytes.with_label_values(&[side_label, path]).inc_by(sent);
                }
            }
            if counts.tls_handshakes > 0 {
                f.tls_handshakes
                    .with_label_values(&[side_label, "ok"])
                    .inc_by(u64::from(counts.tls_handshakes));
            }
            if counts.tls_handshake_failures > 0 {
                f.tls_handshakes
                    .with_label_values(&[side_label, "failed"])
                    .inc_by(u64::from(counts.tls_handshake_failures));
            }
        }
        for refusal in &stats.policy_refusals {
            f.policy_refusals
                .with_label_values(&[api_name(refusal.api_key), refusal.reason])
                .inc_by(refusal.count);
        }
        if stats.principal_limit_refusals > 0 {
            f.connection_limit_refusals
                .with_label_values(&["principal_max_connections"])
                .inc_by(u64::from(stats.principal_limit_refusals));
        }
        for (api, throttles) in [("Produce", &stats.produce_throttles), ("Fetch", &stats.fetch_throttles)] {
            if throttles.count > 0 {
                f.quota_throttles.with_label_values(&[api]).inc_by(u64::from(throttles.count));
                f.quota_throttle_seconds.with_label_values(&[api]).inc_by(throttles.millis as f64 / 1000.0);
            }
        }
        for auth in &stats.auth {
            let side = side_label(auth.side);
            match auth.failure {
                None => f.authentications.with_label_values(&[side, auth.mechanism]).inc(),
                Some(reason) => {
                    f.authentication_failures.with_label_values(&[side, auth.mechanism, reason]).inc()
                }
            }
        }
    }
}

fn side_label(side: Side) -> &'static str {
    match side {
        Side::Downstream => "client",
        Side::Upstream => "broker",
    }
}

/// `bootstrap-0`, `broker-111`, `sni`.
fn listener_label(listener: ListenerId) -> String {
    match listener {
        ListenerId::Bootstrap(slot) => format!("bootstrap-{slot}"),
        ListenerId::Broker(id) => format!("broker-{id}"),
        ListenerId::Sni => "sni".to_owned(),
    }
}

/// Kafka's name of an API; `other` for keys without one (a client could
/// send any of 65536, and labels must stay bounded).
pub(crate) fn api_name(api: ApiKey) -> &'static str {
    api.name().unwrap_or("other")
}

/// The Go proxy's `api_key` label: the number, for named APIs only.
fn api_key_label(api: ApiKey) -> String {
    if api.name().is_some() { api.0.to_string() } else { "other".to_owned() }
}

/// The Go proxy's `api_version` label: the number, for plausible versions only.
fn version_label(version: i16) -> String {
    if (0..=99).contains(&version) { version.to_string() } else { "other".to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_bounded() {
        assert_eq!(api_name(ApiKey(1)), "Fetch");
        assert_eq!(api_name(ApiKey(30_000)), "other");
        assert_eq!(api_key_label(ApiKey(3)), "3");
        assert_eq!(api_key_label(ApiKey(-7)), "other");
        assert_eq!(version_label(12), "12");
        assert_eq!(version_label(4000), "other");
        assert_eq!(listener_label(ListenerId::Broker(111)), "broker-111");
    }
}
