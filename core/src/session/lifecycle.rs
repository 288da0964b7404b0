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
use crate::egress::{Tunnel, TunnelStep};
use crate::route::{ListenerId, Route};
use crate::tls::{RustlsSession, TlsError};

impl Session {
    /// The earliest moment [`Session::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let phase = match &self.phase {
            Phase::Connecting { deadline, .. }
            | Phase::Tunneling { deadline, .. }
            | Phase::Closing { deadline, .. }
            | Phase::Lingering { deadline, .. } => return Some(*deadline),
            Phase::Refusing { at, .. } => return Some(*at),
            Phase::Closed => return None,
            Phase::Routing { .. } => None,
            Phase::Open => self.config.limits.idle_timeout.map(|idle| self.last_activity + idle),
        };
        let reauth = match &self.up_auth {
            // Re-authentication waits for a request being cut through; its end re-checks.
            UpAuth::Done(client) if self.down.cut_through == 0 => client.reauth_at(),
            _ => None,
        };
        [phase, reauth, self.handshake_deadline, self.verdict_deadline()].into_iter().flatten().min()
    }

    /// Time has reached (or passed) a deadline from `poll_timeout`.
    pub fn handle_timeout(&mut self, now: Instant) {
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
                if let Phase::Refusing { reason, .. } = std::mem::replace(&mut self.phase, Phase::Open) {
                    self.close(now, reason);
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
        if let Phase::Open = self.phase
            && let Some(idle) = self.config.limits.idle_timeout
            && now >= self.last_activity + idle
        {
            return self.close(now, CloseReason::IdleTimeout);
        }
        self.maybe_reauthenticate(now);
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
        self.events.push_back(Event::Connect(target.clone()));
        self.phase = Phase::Connecting { target, deadline: now + self.config.limits.connect_timeout };
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
        if let Some(reply) = reply {
            self.answer(reply);
        }
        if let Some(suppressed) = self.config.warnings.allow(now) {
            warn!(session = self.id, %reason, suppressed, "refusing client");
        } else {
            debug!(session = self.id, %reason, "refusing client");
        }
        if delay.is_zero() {
            self.close(now, reason);
        } else if self.running() {
            self.phase = Phase::Refusing { reason, at: now + delay };
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
        if matches!(self.phase, Phase::Connecting { .. } | Phase::Tunneling { .. } | Phase::Routing { .. }) {
            // Nothing queued for the broker can be delivered.
            self.up.shut();
        }
        self.down.close_notify();
        self.up.close_notify();
        self.phase = Phase::Closing { reason, deadline: now + self.config.linger };
        self.finish_if_flushed();
    }

    /// Closing: once every queued (and spliced) byte is out, either ends the
    /// session or, after a drain, half-closes the client connection and
    /// lingers until the client closes too. A socket closed with unread
    /// bytes in it sends a reset, which can destroy responses the client has
    /// not read yet; lingering reads (and drops) what the client still sends.
    pub(super) fn finish_if_flushed(&mut self) {
        let Phase::Closing { reason, deadline } = &self.phase else { return };
        if !(self.flushed(Side::Downstream) && self.flushed(Side::Upstream)) {
            return;
        }
        if *reason == CloseReason::Drained && self.down.open && !self.probe {
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
