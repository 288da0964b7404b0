//! What a runtime does for each connection besides moving bytes: fold the
//! session's counts into the metrics (when metrics are on), put the client's
//! id into the connection's log span once it is known, and report the
//! connections a drain had to cut.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use kafka_proxy_core::route::ListenerId;
use kafka_proxy_core::session::{CloseReason, Session};
use kafka_proxy_metrics::{ConnMetrics, Telemetry};
use tracing::{Span, warn};

/// Per-connection bookkeeping for metrics and logs. Create it with the
/// session, call [`Watch::after_step`] after each round of the core's rule,
/// include [`Watch::deadline`] in the connection's timer, and call
/// [`Watch::closed`] on `Event::Closed`.
#[derive(Debug)]
pub struct Watch {
    metrics: Option<ConnMetrics>,
    span: Span,
    client_id_logged: bool,
}

impl Watch {
    /// The watch of a client connection accepted on `listener` (`span`
    /// declares an empty `client_id` field), or of a probe (`listener` `None`:
    /// the proxy's own traffic is not client traffic and is not counted).
    pub fn new(telemetry: Option<&Arc<Telemetry>>, listener: Option<ListenerId>, span: Span) -> Watch {
        let metrics = telemetry.zip(listener).map(|(t, listener)| t.open_connection(listener));
        Watch { metrics, span, client_id_logged: listener.is_none() }
    }

    /// The connection's log span.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// After a round of the core's rule: records the client id in the span
    /// once known, and folds the session's counts when a fold is due (the
    /// clock is read only with metrics on and counts waiting).
    pub fn after_step(&mut self, session: &mut Session) {
        if !self.client_id_logged
            && let Some(client_id) = session.client_id()
        {
            self.span.record("client_id", client_id);
            self.client_id_logged = true;
        }
        if let Some(metrics) = &mut self.metrics
            && session.has_stats()
        {
            metrics.maybe_fold(Instant::now(), session);
        }
    }

    /// When [`Watch::after_step`] must run again even if nothing happens:
    /// the next fold of counts waiting in the session (`None` with metrics
    /// off, or when the session has counted nothing since the last fold).
    pub fn deadline(&self, session: &Session) -> Option<Instant> {
        self.metrics.as_ref().and_then(|m| m.due(session))
    }

    /// The session ended with `reason`.
    pub fn closed(&mut self, session: &mut Session, reason: &CloseReason) {
        if let Some(metrics) = self.metrics.take() {
            metrics.closed(session, reason);
        }
    }
}

/// Connections a drain's deadline cut, logged one by one (up to a bound)
/// and in a summary, so an operator sees what a too-short
/// `limits.drain_timeout_ms` cost.
#[derive(Debug, Default)]
pub struct DrainCuts {
    cut: AtomicU64,
    unanswered: AtomicU64,
}

/// Connections logged one by one; the rest only count in the summary.
const LOGGED_CUTS: u64 = 20;

impl DrainCuts {
    /// `session` is still open at the drain deadline and is closed now (call
    /// inside its span, before shutting it down); the proxy's own cluster
    /// probe is not counted.
    pub fn cut(&self, session: &Session) {
        if session.is_probe() {
            // The proxy's own cluster probe: no client loses anything.
            return;
        }
        let n = self.cut.fetch_add(1, Ordering::Relaxed);
        let in_flight = session.in_flight();
        self.unanswered.fetch_add(in_flight as u64, Ordering::Relaxed);
        if n < LOGGED_CUTS {
            warn!(
                session = session.id(),
                client_id = session.client_id().unwrap_or("-"),
                principal = session.principal().unwrap_or("-"),
                upstream = %session.route().map_or_else(String::new, |r| r.upstream.to_string()),
                unanswered_requests = in_flight,
                "drain deadline: closing a connection that had not finished"
            );
        }
    }

    /// Logs how many connections (and requests) the deadline cut.
    pub fn summary(&self) {
        let cut = self.cut.load(Ordering::Relaxed);
        if cut > 0 {
            warn!(
                connections = cut,
                unanswered_requests = self.unanswered.load(Ordering::Relaxed),
                "drain deadline reached: connections cut (raise limits.drain_timeout_ms to let them finish)"
            );
        }
    }
}
