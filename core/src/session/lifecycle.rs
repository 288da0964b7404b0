//! A session's life: routing, connecting, timeouts, draining and closing.
//!
//! Every way a session ends goes through [`Session::close`]: reading stops,
//! what is already queued is flushed (bounded by the linger time), and then
//! [`Event::Closed`] tells the runtime to drop both sockets.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, warn};

use super::auth::UpAuth;
use super::{CloseReason, ConnectTarget, Event, Phase, ProxyEventKind, Session, Side, Via};
use crate::correlation::Expected;
use crate::egress::{Tunnel, TunnelStep};
use crate::route::{ListenerId, Route};
use crate::tls::{RustlsSession, TlsError};

impl Session {
    /// The earliest moment [`Session::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let phase = match &self.phase {
            Phase::Closing { deadline, .. } | Phase::Lingering { deadline, .. } => return Some(*deadline),
            Phase::Refusing { at, .. } => return Some(*at),
            Phase::Closed => return None,
            Phase::Connecting { deadline, .. } | Phase::Tunneling { deadline, .. } => Some(*deadline),
            Phase::Routing { .. } => None,
            Phase::Open | Phase::Earning { .. } => {
                let idle = self.config.limits.idle_timeout.map(|idle| self.last_activity + idle);
                let request = self.request_deadline().map(|(at, _)| at);
                [idle, request].into_iter().flatten().min()
            }
        };
        let reauth = match &self.up_auth {
            // Re-authentication waits for a request being cut through; its end re-checks.
            UpAuth::Done(client) if self.down.cut_through == 0 => client.reauth_at(),
            _ => None,
        };
        let request_read = self.request_read_deadline();
        let deferred = self.deferred.as_ref().map(|d| d.at);
        // A throttled client is read again when its throttle ends.
        let unmute = self.policy.muted_until;
        let release = self.release_deadline();
        [
            phase,
            reauth,
            self.handshake_deadline,
            request_read,
            deferred,
            unmute,
            self.verdict_deadline(),
            release,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// When the client's incomplete request must have arrived whole.
    fn request_read_deadline(&self) -> Option<Instant> {
        let (started, _) = self.request_read?;
        self.config.limits.request_read_timeout.map(|limit| started + limit)
    }

    /// After bytes from the client were processed: notes when its current
    /// incomplete request began (now, if a request completed meanwhile or
    /// none was under way), or that none is under way.
    pub(super) fn track_request_read(&mut self, now: Instant, frames_before: u64) {
        if !self.down.mid_frame() {
            self.request_read = None;
        } else if self.request_read.is_none() || self.client_frames != frames_before {
            self.request_read = Some((now, self.client_frames));
        }
    }

    /// The request read deadline passed: closes the connection unless the
    /// request completed meanwhile or the proxy itself is holding the client
    /// back (back-pressure, the login throttle), which restarts the clock.
    fn check_request_read(&mut self, now: Instant) {
        let Some((started, frames)) = self.request_read else { return };
        let Some(limit) = self.config.limits.request_read_timeout else { return };
        if now < started + limit {
            return;
        }
        if !self.down.mid_frame() {
            self.request_read = None;
        } else if self.client_frames != frames || !self.wants_read(Side::Downstream) {
            self.request_read = Some((now, self.client_frames));
        } else {
            self.close(now, CloseReason::RequestReadTimeout { limit });
        }
    }

    /// Time has reached (or passed) a deadline from `poll_timeout`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.unmute_if_due(now);
        self.release_idle(now);
        match &self.phase {
            Phase::Connecting { target, deadline } | Phase::Tunneling { target, deadline, .. }
                if now >= *deadline =>
            {
                let target = target.clone();
                return self.close(now, CloseReason::ConnectTimeout { target });
            }
            Phase::Closing { deadline, .. } | Phase::Lingering { deadline, .. } if now >= *deadline => {
                return self.finish();
            }
            Phase::Refusing { at, .. } if now >= *at => {
                if let Phase::Refusing { reason, reply, then, .. } =
                    std::mem::replace(&mut self.phase, Phase::Open)
                {
                    match reply {
                        Some(reply) => {
                            self.answer(reply);
                            self.phase = Phase::Refusing { reason, at: now + then, reply: None, then };
                            if then.is_zero() {
                                return self.handle_timeout(now);
                            }
                        }
                        None => self.close(now, reason),
                    }
                }
                return;
            }
            Phase::Closing { .. } | Phase::Lingering { .. } | Phase::Refusing { .. } | Phase::Closed => {
                return;
            }
            _ => {}
        }
        if self.verdict_deadline().is_some_and(|d| now >= d) {
            self.verdict_timed_out(now);
        }
        if self.handshake_deadline.is_some_and(|d| now >= d) {
            return self.close(now, CloseReason::HandshakeTimeout);
        }
        if let Phase::Open | Phase::Earning { .. } = self.phase
            && let Some(idle) = self.config.limits.idle_timeout
            && now >= self.last_activity + idle
        {
            return self.close(now, CloseReason::IdleTimeout);
        }
        self.check_request_read(now);
        if !self.running() {
            return;
        }
        if self.deferred.as_ref().is_some_and(|d| now >= d.at) {
            self.resume_deferred(now);
        }
        if let Some((deadline, request)) = self.request_deadline()
            && now >= deadline
        {
            let broker = self.route.as_ref().map(|r| r.upstream.to_string()).unwrap_or_default();
            let waited = now.saturating_duration_since(request.arrived.max(self.broker_clock));
            return self.close(
                now,
                CloseReason::RequestTimeout {
                    broker,
                    api: request.api_key,
                    version: request.version,
                    correlation_id: request.correlation_id,
                    waited,
                },
            );
        }
        self.maybe_reauthenticate(now);
    }

    /// When the oldest request the broker owes an answer to times out, and
    /// that request. Kafka brokers answer a connection's requests one at a
    /// time and in order, so the oldest decides, and its wait counts from
    /// when the broker last made progress for this client (a response began
    /// or bytes reached the client) if that is later than its arrival. No
    /// deadline runs while a response streams or while the client does not
    /// read (back-pressure holds the broker's answers in its socket).
    fn request_deadline(&self) -> Option<(Instant, Expected)> {
        if !matches!(self.phase, Phase::Open) || self.responses.is_streaming() {
            return None;
        }
        if self.up.open && self.down.queued() >= self.config.limits.max_buffered_bytes {
            return None;
        }
        let request = self.responses.peek()?;
        Some((request.arrived.max(self.broker_clock) + request.wait, request))
    }

    /// The login throttle's slot for the held SASL token has come: it is
    /// evaluated, then the client's further requests.
    fn resume_deferred(&mut self, now: Instant) {
        let Some(deferred) = self.deferred.take() else { return };
        if let Err(reason) = self.on_client_frame(now, deferred.frame) {
            return self.close(now, reason);
        }
        self.process(now, Side::Downstream);
        self.track_request_read(now, self.client_frames);
    }

    /// Opens the upstream connection once the client has earned it: after
    /// authentication where the proxy authenticates, otherwise once the
    /// downstream TLS handshake is done and a request waits for the broker.
    pub(super) fn maybe_connect(&mut self, now: Instant) {
        let Phase::Earning { .. } = self.phase else { return };
        let authenticated = match &self.down_auth {
            super::auth::DownAuth::Terminate(server) => server.is_authenticated(),
            _ => false,
        };
        let earned = authenticated || !self.held.is_empty();
        if self.down.is_secured() && earned {
            self.connect_now(now);
        }
    }

    /// The first bytes of a large request (past the SASL gate) arrived: the
    /// client has earned its upstream connection as a whole request would.
    pub(super) fn earned_by_large_request(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Earning { .. }) && self.down.is_secured() {
            self.connect_now(now);
        }
    }

    fn connect_now(&mut self, now: Instant) {
        let Phase::Earning { target } = &self.phase else { return };
        let target = target.clone();
        let upstream_handshake =
            self.config.security.upstream_tls.is_some() || !matches!(self.up_auth, UpAuth::Off);
        if upstream_handshake && self.handshake_deadline.is_none() {
            self.handshake_deadline = Some(now + self.config.limits.handshake_timeout);
        }
        debug!(session = self.id, %target, "client earned an upstream connection");
        self.events.push_back(Event::Connect(target.clone()));
        self.phase = Phase::Connecting { target, deadline: now + self.config.limits.connect_timeout };
    }

    /// The route for an SNI session (the proxy's answer to its route
    /// request); other sessions get theirs at creation.
    pub(crate) fn handle_route(&mut self, now: Instant, route: Route) {
        if !matches!(self.phase, Phase::Routing { .. }) {
            return;
        }
        let target = ConnectTarget {
            host: route.upstream.host.clone(),
            port: route.upstream.port,
            addr_override: route.addr_override,
            via: self.config.forward_proxy.as_ref().map(|p| Box::new(Via::of(p))),
        };
        debug!(session = self.id, listener = %route.listener, upstream = %route.upstream, "routed");
        self.route = Some(route);
        self.phase = Phase::Earning { target };
        // The ClientHello waited in the buffer for the route; go on with it.
        self.process(now, Side::Downstream);
    }

    /// The SNI name routes nowhere.
    pub(crate) fn handle_no_route(&mut self, now: Instant, name: &str) {
        self.close(now, CloseReason::NoRoute(name.to_owned()));
    }

    /// The upstream connection is established (to the forward proxy, when
    /// there is one: its handshake runs first).
    pub fn handle_connected(&mut self, now: Instant) {
        let Phase::Connecting { target, deadline } = std::mem::replace(&mut self.phase, Phase::Open) else {
            return;
        };
        self.up.open = true;
        self.last_activity = now;
        if let Some(proxy) = &self.config.forward_proxy {
            // The tunnel leads to the override address when `resolve` has one.
            let host = target.addr_override.map_or_else(|| target.host.clone(), |ip| ip.to_string());
            match Tunnel::start(proxy, &host, target.port) {
                Ok((tunnel, first)) => {
                    debug!(session = self.id, via = %proxy, "connected to the forward proxy");
                    self.up.await_tunnel();
                    self.send_broker(&[first]);
                    self.phase = Phase::Tunneling { tunnel: Box::new(tunnel), target, deadline };
                }
                Err(error) => self.close(now, CloseReason::Tunnel { target, error }),
            }
            return;
        }
        self.transport_ready(now);
    }

    /// Feeds the forward proxy's reply to the tunnel handshake.
    pub(super) fn advance_tunnel(&mut self, now: Instant) {
        for _ in 0..4 {
            let Phase::Tunneling { tunnel, .. } = &mut self.phase else { return };
            match tunnel.on_bytes(&mut self.up.rx) {
                Ok(TunnelStep::NeedMore) => return,
                Ok(TunnelStep::Send(bytes)) => self.send_broker(&[bytes]),
                Ok(TunnelStep::Open) => {
                    if let Phase::Tunneling { target, .. } = std::mem::replace(&mut self.phase, Phase::Open) {
                        debug!(session = self.id, %target, "tunnel open");
                    }
                    self.up.tunnel_open();
                    return self.transport_ready(now);
                }
                Err(error) => {
                    if let Phase::Tunneling { target, .. } = std::mem::replace(&mut self.phase, Phase::Open) {
                        self.close(now, CloseReason::Tunnel { target, error });
                    }
                    return;
                }
            }
        }
    }

    /// The byte stream to the broker is up: start upstream TLS, or go on
    /// with frames.
    fn transport_ready(&mut self, now: Instant) {
        self.broker_clock = now;
        self.stats.upstream_connects += 1;
        if let Some(tls) = &self.config.security.upstream_tls {
            let host = self.route.as_ref().map(|r| r.upstream.host.as_str()).unwrap_or_default();
            let driver = crate::tls::config::server_name(host)
                .map_err(|e| TlsError::Protocol { error: rustls::Error::General(e.to_string()) })
                .and_then(|name| RustlsSession::client(tls.config.clone(), name));
            match driver {
                Ok(driver) => self.up.use_tls(Box::new(driver)),
                Err(error) => return self.close(now, CloseReason::Tls { side: Side::Upstream, error }),
            }
        }
        debug!(session = self.id, tls = self.up.has_tls(), "connected upstream");
        if self.up.has_tls() {
            // A TLS client speaks first: the ClientHello.
            self.process(now, Side::Upstream);
        } else {
            self.on_secured(now, Side::Upstream);
            if !self.up.rx.is_empty() {
                self.process(now, Side::Upstream);
            }
        }
    }

    /// The upstream connection could not be established.
    pub fn handle_connect_failed(&mut self, now: Instant, error: &dyn std::fmt::Display) {
        if let Phase::Connecting { target, .. } = &self.phase {
            let target = target.clone();
            self.close(now, CloseReason::ConnectFailed { target, error: error.to_string() });
        }
    }

    /// Reading from or writing to `side` failed; the socket is unusable.
    pub fn handle_io_error(&mut self, now: Instant, side: Side, error: &dyn std::fmt::Display) {
        self.peer_mut(side).shut();
        self.close(now, CloseReason::Io { side, error: error.to_string() });
    }

    /// The peer of `side` closed its end (a read returned end of stream).
    /// The runtime calls this when it learns of it outside
    /// [`Session::read_from`], e.g. from a splice that moved nothing.
    pub fn handle_eof(&mut self, now: Instant, side: Side) {
        if let Phase::Lingering { .. } = self.phase {
            return self.finish();
        }
        self.peer_mut(side).shut();
        self.close(now, CloseReason::PeerClosed(side));
    }

    /// The runtime stops at once: close with [`CloseReason::Shutdown`],
    /// flushing only what is already queued (bounded by the linger time).
    pub fn shutdown(&mut self, now: Instant) {
        self.close(now, CloseReason::Shutdown);
    }

    /// The proxy is draining: take no new request from the client (one
    /// whose bytes have started arriving is completed and forwarded), deliver
    /// the responses to every request already forwarded, then close at that
    /// request boundary with [`CloseReason::Drained`].
    pub fn drain(&mut self, now: Instant) {
        if self.draining || !self.running() {
            return;
        }
        self.draining = true;
        match self.phase {
            Phase::Routing { .. } => self.close(now, CloseReason::Drained),
            _ => self.close_if_quiescent(now),
        }
    }

    /// True once [`Session::drain`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Draining: true when nothing is owed in either direction and no
    /// request from the client is half-received.
    fn quiescent(&self) -> bool {
        self.responses.is_empty()
            && self.held.is_empty()
            && self.broker_owes.is_empty()
            && self.fetch.is_none()
            && self.up.cut_through == 0
            && !self.down.mid_frame()
    }

    /// Draining: closes at a request boundary.
    pub(super) fn close_if_quiescent(&mut self, now: Instant) {
        if self.draining && self.running() && self.quiescent() {
            self.close(now, CloseReason::Drained);
        }
    }

    /// A response to the client has been forwarded (whole, or the last piece
    /// of one cut through): a probe ends, a draining session may close.
    pub(super) fn after_response(&mut self, now: Instant) {
        if self.probe && self.responses.is_empty() {
            self.close(now, CloseReason::ProbeComplete);
        } else {
            self.close_if_quiescent(now);
        }
    }

    /// Refuses the client: `reply` (if any) is sent, and the session closes
    /// after `delay` (Kafka delays closing after failed authentication).
    pub(super) fn refuse(
        &mut self,
        now: Instant,
        reply: Option<Bytes>,
        reason: CloseReason,
        delay: Duration,
    ) {
        self.refuse_after(now, Duration::ZERO, reply, reason, delay);
    }

    /// Refuses the client like [`Session::refuse`], but holds `reply` back
    /// for `hold` first (the login throttle's penalty).
    pub(super) fn refuse_after(
        &mut self,
        now: Instant,
        hold: Duration,
        reply: Option<Bytes>,
        reason: CloseReason,
        delay: Duration,
    ) {
        if let Some(suppressed) = self.config.warnings.allow(now) {
            warn!(session = self.id, %reason, suppressed, held_ms = hold.as_millis() as u64, "refusing client");
        } else {
            debug!(session = self.id, %reason, "refusing client");
        }
        if !hold.is_zero() && self.running() {
            self.phase = Phase::Refusing { reason, at: now + hold, reply, then: delay };
            return;
        }
        if let Some(reply) = reply {
            self.answer(reply);
        }
        if delay.is_zero() {
            self.close(now, reason);
        } else if self.running() {
            self.phase = Phase::Refusing { reason, at: now + delay, reply: None, then: delay };
        }
    }

    /// Starts closing: stop reading, flush what is queued (bounded by the
    /// linger time), then emit `Event::Closed`.
    pub(super) fn close(&mut self, now: Instant, reason: CloseReason) {
        if let Phase::Lingering { .. } = self.phase {
            // The client's socket failed while lingering: nothing left to wait for.
            return self.finish();
        }
        if matches!(self.phase, Phase::Closing { .. } | Phase::Closed) {
            return;
        }
        if let CloseReason::Tls { side, .. } = &reason
            && !self.peer(*side).is_secured()
        {
            self.stats.side_mut(*side).tls_handshake_failures += 1;
        }
        if reason.is_normal() {
            debug!(session = self.id, %reason, "closing");
        } else if let Some(suppressed) = self.config.warnings.allow(now) {
            let route = self.route.as_ref().map_or(ListenerId::Sni, |r| r.listener);
            if suppressed > 0 {
                warn!(session = self.id, %route, %reason, suppressed, "closing (and more like it)");
            } else {
                warn!(session = self.id, %route, %reason, "closing");
            }
        } else {
            debug!(session = self.id, %reason, "closing");
        }
        if matches!(
            self.phase,
            Phase::Connecting { .. }
                | Phase::Tunneling { .. }
                | Phase::Routing { .. }
                | Phase::Earning { .. }
        ) {
            // Nothing queued for the broker can be delivered.
            self.up.shut();
        }
        if self.deferred.take().is_some() || self.throttle_owed {
            // The throttle counted the held token in; it will never be evaluated.
            self.throttle_owed = false;
            if let Some(addr) = self.peer.map(|p| p.ip()) {
                self.config.throttle.finish(addr, None, false, now);
            }
        }
        self.down.close_notify();
        self.up.close_notify();
        self.phase = Phase::Closing { reason, deadline: now + self.config.linger };
        self.finish_if_flushed();
    }

    /// Closing: once every queued (and spliced) byte is out, either ends the
    /// session or, while the client's connection is still open, half-closes
    /// it and lingers until the client closes too (bounded by the linger
    /// time). A socket closed with unread bytes in it sends a reset, which
    /// can destroy what the client has not read yet (responses, a refusal's
    /// error); lingering reads (and drops) what the client still sends, so
    /// the client reads everything, then end of stream. A shutdown does not
    /// linger.
    pub(super) fn finish_if_flushed(&mut self) {
        let Phase::Closing { reason, deadline } = &self.phase else { return };
        if !(self.flushed(Side::Downstream) && self.flushed(Side::Upstream)) {
            return;
        }
        if *reason != CloseReason::Shutdown && self.down.open && !self.probe {
            let (reason, deadline) = (reason.clone(), *deadline);
            self.events.push_back(Event::ShutdownWrite(Side::Downstream));
            self.phase = Phase::Lingering { reason, deadline };
            return;
        }
        self.finish();
    }

    /// True when nothing more will be written to `side`.
    fn flushed(&self, side: Side) -> bool {
        self.peer(side).drained() && self.pending_splice(side) == 0
    }

    pub(super) fn finish(&mut self) {
        let reason = match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Closing { reason, .. } | Phase::Lingering { reason, .. } => reason,
            other => {
                self.phase = other;
                return;
            }
        };
        self.down.shut();
        self.up.shut();
        if self.probe {
            self.events.push_back(Event::Proxy(super::ProxyEvent(ProxyEventKind::ProbeEnded)));
        }
        self.events.push_back(Event::Closed(reason));
    }
}
