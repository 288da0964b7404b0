//! A session under the proxy's policy: forbidden requests answered by the
//! proxy (or the connection closed), byte-rate quotas enforced the KIP-219
//! way (the response carries `throttle_time_ms` and the client is not read
//! until the throttle ends), and the connection counted against the
//! process-wide, per-address and per-principal limits while it lives.
//!
//! With no policy configured nothing applies to a session: a request costs
//! one atomic load (has a reload changed the rules?) and one branch.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tracing::{debug, info};

use super::{CloseReason, Session, response_frame};
use crate::api::{self, ApiKey};
use crate::correlation::Expected;
use crate::frame::SIZE_LEN;
use crate::header::{self, RequestHeader};
use crate::policy::refusal::{self, Refusal, RefusalError};
use crate::policy::state::{ConnectionPermit, Direction, PolicyState, PrincipalPermit};
use crate::policy::{ApiSet, QuotaWindow, throttle};

/// What a session's policy decided about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Policed {
    /// Forward it.
    Pass,
    /// The proxy answered it (a forbidden API).
    Answered,
    /// Forbidden, and its answer needs the whole frame: do not cut it through.
    NeedsWhole,
}

/// Why a session was closed over a forbidden request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForbiddenClose {
    /// Produce with `acks=0`: no response is due, so, as Kafka does when such
    /// a request fails, the connection is closed for the producer to notice.
    NoResponse,
    /// The proxy cannot answer this request with the API's own response.
    Unanswerable(RefusalError),
}

impl std::fmt::Display for ForbiddenClose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForbiddenClose::NoResponse => {
                f.write_str("acks=0 gets no response, so the connection is closed (as Kafka does)")
            }
            ForbiddenClose::Unanswerable(e) => write!(f, "{e}, so the connection is closed"),
        }
    }
}

/// What the policy says about one session.
#[derive(Debug, Default)]
pub(super) struct SessionPolicy {
    /// The rules' generation `applied` was resolved at.
    generation: u64,
    /// What applies to this client; `None` when nothing does.
    applied: Option<Box<Applied>>,
    /// KIP-219: the client's next requests are not read before this.
    pub(super) muted_until: Option<Instant>,
    /// Produce requests whose responses must carry the proxy's throttle, in
    /// request order.
    throttled: VecDeque<(i32, Duration)>,
    /// The connection's place in `limits.max_connections(_per_ip)`.
    connection: Option<ConnectionPermit>,
    /// The connection's place in its principal's `max_connections`, and the
    /// principal's quota windows.
    principal: Option<PrincipalPermit>,
}

/// The policy of this session's principal, resolved.
#[derive(Debug)]
struct Applied {
    forbidden: ApiSet,
    producer_byte_rate: Option<u64>,
    consumer_byte_rate: Option<u64>,
    window: QuotaWindow,
}

impl SessionPolicy {
    /// Nothing applies yet; the session resolves at its first request.
    pub(super) fn unresolved() -> SessionPolicy {
        SessionPolicy { generation: u64::MAX, ..SessionPolicy::default() }
    }
}

impl Session {
    fn policy_state(&self) -> &PolicyState {
        &self.config.policy
    }

    /// Counts this connection against the process-wide and per-address
    /// limits until the session is dropped.
    pub(crate) fn hold_connection(&mut self, permit: ConnectionPermit) {
        self.policy.connection = Some(permit);
    }

    /// Resolves what applies to this session's principal under the rules in
    /// force now.
    pub(super) fn resolve_policy(&mut self) {
        let (generation, resolved, window) = self.policy_state().resolve(self.principal.as_deref());
        self.policy.generation = generation;
        if self.probe {
            // The proxy's own Metadata request is not a client's.
            self.policy.applied = None;
            return;
        }
        let limits = resolved.limits;
        // Quotas are measured per principal: without one known to the proxy
        // (SASL passed through) only the forbidden list applies.
        let quotas = self.policy.principal.is_some();
        let producer_byte_rate = limits.producer_byte_rate.filter(|_| quotas);
        let consumer_byte_rate = limits.consumer_byte_rate.filter(|_| quotas);
        self.policy.applied =
            (!resolved.forbidden.is_empty() || producer_byte_rate.is_some() || consumer_byte_rate.is_some())
                .then(|| {
                    Box::new(Applied {
                        forbidden: resolved.forbidden,
                        producer_byte_rate,
                        consumer_byte_rate,
                        window,
                    })
                });
    }

    /// Counts a connection of `principal` against its `max_connections`
    /// (once per session); `Err` carries the limit it reached.
    pub(super) fn admit_principal(&mut self, now: Instant, principal: &str) -> Result<(), u32> {
        if self.policy.principal.is_some() || self.probe {
            return Ok(());
        }
        let state = self.config.policy.clone();
        let (_, resolved, window) = state.resolve(Some(principal));
        match state.admit_principal(principal, resolved.limits.max_connections, &window, now) {
            Ok(permit) => {
                self.policy.principal = Some(permit);
                Ok(())
            }
            Err(limit) => {
                self.stats.principal_limit_refusals += 1;
                Err(limit)
            }
        }
    }

    /// The close reason for a principal over its `max_connections`.
    pub(super) fn principal_limit_reason(principal: &str, limit: u32) -> CloseReason {
        CloseReason::PrincipalConnectionLimit { principal: principal.to_owned(), limit }
    }

    /// The policy's decision on a client request of `len` bytes: `body` is
    /// the whole frame body (header included), or `None` for a frame about
    /// to be cut through. Forbidden requests are answered here (whole frames
    /// only); Produce bytes count against the producer quota.
    pub(super) fn police_request(
        &mut self,
        now: Instant,
        h: &RequestHeader,
        body: Option<&[u8]>,
        len: usize,
        expects_response: bool,
    ) -> Result<Policed, CloseReason> {
        if self.policy_state().generation() != self.policy.generation {
            self.resolve_policy();
        }
        let Some(applied) = self.policy.applied.as_deref() else { return Ok(Policed::Pass) };
        if applied.forbidden.contains(h.api_key) {
            let Some(body) = body else { return Ok(Policed::NeedsWhole) };
            self.refuse_forbidden(now, h, body)?;
            return Ok(Policed::Answered);
        }
        if h.api_key == ApiKey::PRODUCE
            && let Some(quota) = applied.producer_byte_rate
            && let Some(permit) = &self.policy.principal
        {
            let window = applied.window;
            let throttle =
                permit.principal.throttle(&self.config.policy, Direction::Produce, len, quota, &window, now);
            if !throttle.is_zero() {
                // The client's next requests wait from now: a producer that
                // pipelines must not slip more in while this one is at the
                // broker (Kafka reads a connection's next request only after
                // answering this one). The response carries the throttle
                // (acks=0 has none: only the muting tells).
                self.stats.quota_throttle(ApiKey::PRODUCE, throttle);
                self.mute(now, throttle);
                if expects_response {
                    self.policy.throttled.push_back((h.correlation_id, throttle));
                }
            }
        }
        Ok(Policed::Pass)
    }

    /// Answers a forbidden request the way Kafka answers an unauthorized
    /// principal, or explains why the connection must close.
    fn refuse_forbidden(&mut self, now: Instant, h: &RequestHeader, body: &[u8]) -> Result<(), CloseReason> {
        let principal =
            self.principal.clone().unwrap_or_else(|| "(not authenticated by the proxy)".to_owned());
        let log = self.config.policy.note_refusal(&principal, h.api_key, now);
        let spec = refusal::spec(h.api_key);
        let outcome = match spec {
            Some(spec) => match header::request_header_len(body, spec.flexible(h.api_version)) {
                Ok(start) => refusal::refuse(h.api_key, h.api_version, body.get(start..).unwrap_or_default()),
                Err(_) => Err(RefusalError::Malformed {
                    api: h.api_key,
                    version: h.api_version,
                    offset: 0,
                    what: "request header",
                }),
            },
            None => Err(RefusalError::NoAnswer(h.api_key)),
        };
        let forbidden = |why| CloseReason::Forbidden { principal: principal.clone(), api: h.api_key, why };
        let answered = matches!((&outcome, spec), (Ok(Refusal::Respond(_)), Some(_)));
        self.stats.policy_refusal(h.api_key, if answered { "authorization_error" } else { "closed" });
        match (outcome, spec) {
            (Ok(Refusal::Respond(response)), Some(spec)) => {
                if log {
                    info!(
                        session = self.id,
                        %principal,
                        api = %h.api_key,
                        version = h.api_version,
                        "request forbidden by policy, answered with an authorization error (logged once a minute per principal and API)"
                    );
                } else {
                    debug!(session = self.id, %principal, api = %h.api_key, "request forbidden by policy");
                }
                let header_tags: &[u8] = if spec.flexible(h.api_version) { &[0] } else { &[] };
                self.answer(response_frame(h.correlation_id, header_tags, &response));
                Ok(())
            }
            (Ok(Refusal::Silent), _) => Err(forbidden(ForbiddenClose::NoResponse)),
            (Err(e), _) => Err(forbidden(ForbiddenClose::Unanswerable(e))),
            (Ok(Refusal::Respond(_)), None) => {
                Err(forbidden(ForbiddenClose::Unanswerable(RefusalError::NoAnswer(h.api_key))))
            }
        }
    }

    /// Stops reading the client until `now + throttle` (KIP-219 muting).
    fn mute(&mut self, now: Instant, throttle: Duration) {
        let until = now + throttle;
        if self.policy.muted_until.is_none_or(|t| t < until) {
            debug!(session = self.id, throttle_ms = throttle.as_millis() as u64, "client throttled");
            self.policy.muted_until = Some(until);
        }
    }

    /// Ends the muting once its time has come.
    pub(super) fn unmute_if_due(&mut self, now: Instant) {
        if self.policy.muted_until.is_some_and(|t| now >= t) {
            self.policy.muted_until = None;
        }
    }

    /// True while the client is throttled (and not in the middle of a frame
    /// that is being cut through, which is finished first).
    pub(super) fn muted(&self) -> bool {
        self.policy.muted_until.is_some() && self.down.cut_through == 0
    }

    /// The throttle the response to `request`, `len` bytes long, must carry:
    /// Fetch responses count against the consumer quota here; Produce
    /// responses carry what their request earned.
    fn response_throttle(&mut self, now: Instant, request: &Expected, len: usize) -> Option<Duration> {
        match request.api_key {
            ApiKey::PRODUCE => {
                let &(id, throttle) = self.policy.throttled.front()?;
                if id != request.correlation_id {
                    return None;
                }
                self.policy.throttled.pop_front();
                Some(throttle)
            }
            ApiKey::FETCH => {
                let applied = self.policy.applied.as_deref()?;
                let quota = applied.consumer_byte_rate?;
                let window = applied.window;
                let permit = self.policy.principal.as_ref()?;
                let throttle = permit.principal.throttle(
                    &self.config.policy,
                    Direction::Fetch,
                    len,
                    quota,
                    &window,
                    now,
                );
                if throttle.is_zero() {
                    return None;
                }
                self.stats.quota_throttle(ApiKey::FETCH, throttle);
                Some(throttle)
            }
            _ => None,
        }
    }

    /// True when the response to `request` must carry a throttle the proxy
    /// can only write into a whole frame (a throttled Produce response).
    pub(super) fn throttle_needs_whole(&self, request: &Expected) -> bool {
        request.api_key == ApiKey::PRODUCE
            && self.policy.throttled.front().is_some_and(|&(id, _)| id == request.correlation_id)
    }

    /// A whole response frame to `request`, with the proxy's throttle raised
    /// into it where one is due (and the client muted for it).
    pub(super) fn throttle_response(&mut self, now: Instant, request: &Expected, frame: Bytes) -> Bytes {
        if self.policy.applied.is_none() && self.policy.throttled.is_empty() {
            return frame;
        }
        let Some(throttle) = self.response_throttle(now, request, frame.len()) else { return frame };
        if request.api_key == ApiKey::FETCH {
            // A Produce request muted the client when it was read.
            self.mute(now, throttle);
        }
        let mut copy = BytesMut::from(&frame[..]);
        if !raise_in_frame(&mut copy, request, throttle) {
            debug!(session = self.id, api = %request.api_key, "response too short to carry the throttle");
        }
        copy.freeze()
    }

    /// The head of a Fetch response of `len` bytes about to be cut through:
    /// counts it against the consumer quota and raises the throttle in the
    /// buffered head.
    pub(super) fn throttle_response_head(&mut self, now: Instant, request: &Expected, len: usize) {
        if self.policy.applied.is_none() {
            return;
        }
        let Some(throttle) = self.response_throttle(now, request, len) else { return };
        self.mute(now, throttle);
        if !raise_in_frame(self.up.frames(), request, throttle) {
            debug!(session = self.id, api = %request.api_key, "response head too short to carry the throttle");
        }
    }
}

/// Raises `throttle_time_ms` in a buffered response frame (size prefix
/// first) to `request`; false when it has none or it could not be found.
fn raise_in_frame(frame: &mut [u8], request: &Expected, throttle: Duration) -> bool {
    let Some(decoded) = api::decoded(request.api_key) else { return false };
    let tagged = api::response_header_has_tags(decoded, request.version);
    let Some(body) = frame.get_mut(SIZE_LEN..) else { return false };
    let Ok(header_len) = header::response_header_len(body, tagged) else { return false };
    let Some(payload) = body.get_mut(header_len..) else { return false };
    match throttle::offset(request.api_key, request.version, payload) {
        Ok(Some(at)) => throttle::raise(payload, at, throttle),
        _ => false,
    }
}
