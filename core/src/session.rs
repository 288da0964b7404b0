//! One client connection and its upstream connection.
//!
//! A [`Session`] owns both directions' buffers: frames are assembled in the
//! receive buffer of the side they came from and queued, as zero-copy
//! [`Bytes`] chunks, on the transmit queue of the other side. Requests are
//! recorded in order (Kafka answers in request order on a connection) so
//! each response can be matched to its API and version and rewritten where
//! it carries broker addresses.
//!
//! The runtime drives it with [`Session::read_from`], [`Session::write_to`],
//! [`Session::handle_connected`], [`Session::handle_timeout`] and friends,
//! and after each call drains [`Session::poll_event`] and re-arms its timer
//! from [`Session::poll_timeout`] (the crate-level rule).

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tracing::{debug, warn};

use crate::api::{self, ApiKey};
use crate::config::Limits;
use crate::correlation::{Expected, Mismatch, Responses};
use crate::frame::{self, FrameDecoder, FrameError};
use crate::header::{self, HeaderError};
use crate::rewrite::{self, AddressMap, Body, Observed, RewriteError};
use crate::rewrite::{ApiVersionsPolicy, rewrite_api_versions, unsupported_version_body};
use crate::route::Route;

/// The two ends of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The Kafka client.
    Downstream,
    /// The Kafka broker.
    Upstream,
}

impl Side {
    /// The other end.
    pub fn peer(self) -> Side {
        match self {
            Side::Downstream => Side::Upstream,
            Side::Upstream => Side::Downstream,
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Downstream => "client",
            Side::Upstream => "broker",
        })
    }
}

/// Settings every session shares, built once by the [`crate::proxy::Proxy`].
#[derive(Debug)]
pub struct SessionConfig {
    /// Limits and timeouts.
    pub limits: Limits,
    /// How broker addresses are advertised to clients.
    pub address_map: Arc<dyn AddressMap + Send + Sync>,
    /// How ApiVersions responses are clamped.
    pub api_versions: ApiVersionsPolicy,
    /// How long a closing session may spend flushing what it already queued.
    pub linger: Duration,
}

impl std::fmt::Debug for dyn AddressMap + Send + Sync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AddressMap")
    }
}

/// Where to open the upstream connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTarget {
    /// Host name or address the cluster (or configuration) gave.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Connect here instead of resolving `host` (a `resolve` override).
    pub addr_override: Option<std::net::IpAddr>,
}

impl std::fmt::Display for ConnectTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.addr_override {
            Some(ip) => write!(f, "{}:{} (resolved to {ip} by configuration)", self.host, self.port),
            None => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

/// Something the runtime must act on, drained with [`Session::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Open the upstream connection, then call [`Session::handle_connected`]
    /// or [`Session::handle_connect_failed`].
    Connect(ConnectTarget),
    /// The cluster named brokers: pass to [`crate::proxy::Proxy::handle_observed`].
    Observed(Observed),
    /// The session is over: close both sockets and drop the session. Every
    /// byte it queued before closing has been offered to `write_to` first.
    Closed(CloseReason),
}

/// A protocol violation by one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// A header could not be read.
    Header(HeaderError),
    /// A response whose correlation id matches no outstanding request.
    UnexpectedResponse {
        /// The response's correlation id.
        correlation_id: i32,
    },
    /// A request at a version the proxy did not advertise.
    VersionNotAdvertised {
        /// The API.
        api: ApiKey,
        /// The version used.
        version: i16,
        /// The highest version the proxy advertises.
        max: i16,
    },
    /// A request for an API the proxy removed from ApiVersions.
    ApiNotAdvertised(ApiKey),
    /// A response arrived out of request order.
    OutOfOrder {
        /// The correlation id it carried.
        got: i32,
        /// The correlation id of the oldest outstanding request.
        expected: i32,
    },
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtocolError::Header(e) => write!(f, "{e}"),
            ProtocolError::UnexpectedResponse { correlation_id } => {
                write!(f, "response with correlation id {correlation_id} matches no outstanding request")
            }
            ProtocolError::VersionNotAdvertised { api, version, max } => {
                write!(f, "{api} v{version} requested, but the proxy advertised at most v{max}")
            }
            ProtocolError::ApiNotAdvertised(api) => {
                write!(f, "{api} requested, but the proxy does not offer it")
            }
            ProtocolError::OutOfOrder { got, expected } => {
                write!(f, "response with correlation id {got} arrived before the one for request {expected}")
            }
        }
    }
}

/// Why a session ended, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// A side closed its connection.
    PeerClosed(Side),
    /// Reading or writing a side failed.
    Io {
        /// The side.
        side: Side,
        /// The error, as the operating system described it.
        error: String,
    },
    /// The upstream connection could not be opened.
    ConnectFailed {
        /// Where it was going.
        target: ConnectTarget,
        /// Why it failed.
        error: String,
    },
    /// The upstream connection took longer than `connect_timeout`.
    ConnectTimeout {
        /// Where it was going.
        target: ConnectTarget,
    },
    /// A side sent bytes that are not valid Kafka framing.
    Frame {
        /// The side.
        side: Side,
        /// What was wrong.
        error: FrameError,
    },
    /// A side broke the Kafka protocol.
    Protocol {
        /// The side.
        side: Side,
        /// What it did.
        error: ProtocolError,
    },
    /// A broker response could not be rewritten (its addresses would leak).
    Rewrite(RewriteError),
    /// Nothing moved for `idle_timeout`.
    IdleTimeout,
    /// The runtime is shutting down.
    Shutdown,
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::PeerClosed(side) => write!(f, "{side} closed the connection"),
            CloseReason::Io { side, error } => write!(f, "{side} connection failed: {error}"),
            CloseReason::ConnectFailed { target, error } => {
                write!(f, "cannot connect to broker {target}: {error}")
            }
            CloseReason::ConnectTimeout { target } => {
                write!(f, "connecting to broker {target} timed out")
            }
            CloseReason::Frame { side, error } => write!(f, "{side} sent invalid framing: {error}"),
            CloseReason::Protocol { side, error } => write!(f, "{side} protocol violation: {error}"),
            CloseReason::Rewrite(e) => write!(f, "cannot rewrite broker response: {e}"),
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::Shutdown => f.write_str("proxy shutting down"),
        }
    }
}

impl CloseReason {
    /// True for endings that are part of normal operation (a peer hanging up,
    /// idleness, shutdown), false for failures worth a warning.
    pub fn is_normal(&self) -> bool {
        matches!(self, CloseReason::PeerClosed(_) | CloseReason::IdleTimeout | CloseReason::Shutdown)
    }
}

/// What [`Session::read_from`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many bytes were read and processed.
    Read(usize),
    /// The peer closed its end.
    Eof,
    /// The session does not want bytes from this side now (back-pressure,
    /// not connected, closing); the read closure was not called. Try again
    /// after writes progress.
    Paused,
}

/// What [`Session::write_to`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// This many bytes were written.
    Written(usize),
    /// Nothing is waiting for this side; the write closure was not called.
    Idle,
}

/// One side's buffers.
#[derive(Debug, Default)]
struct Peer {
    /// Bytes read from this side, not yet framed.
    rx: BytesMut,
    /// Chunks queued for this side, front first.
    tx: VecDeque<Bytes>,
    /// Total bytes in `tx`.
    tx_len: usize,
    /// The socket is connected and usable.
    open: bool,
}

impl Peer {
    fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.tx_len += chunk.len();
            self.tx.push_back(chunk);
        }
    }

    fn consume(&mut self, mut n: usize) {
        self.tx_len = self.tx_len.saturating_sub(n);
        while n > 0 {
            let Some(front) = self.tx.front_mut() else { break };
            if n >= front.len() {
                n -= front.len();
                self.tx.pop_front();
            } else {
                let _ = front.split_to(n);
                n = 0;
            }
        }
    }

    fn drained(&self) -> bool {
        !self.open || self.tx.is_empty()
    }

    fn shut(&mut self) {
        self.open = false;
        self.tx.clear();
        self.tx_len = 0;
    }
}

/// The life of a session.
#[derive(Debug)]
enum Phase {
    /// Waiting for the upstream connection.
    Connecting { target: ConnectTarget, deadline: Instant },
    /// Both sides connected.
    Open,
    /// Flushing what is queued, then closing.
    Closing { reason: CloseReason, deadline: Instant },
    /// Over; `Event::Closed` has been emitted.
    Closed,
}

/// Most chunks handed to one vectored write.
const MAX_IOV: usize = 64;

/// One client connection and its upstream connection.
#[derive(Debug)]
pub struct Session {
    id: u64,
    config: Arc<SessionConfig>,
    route: Route,
    decoder: FrameDecoder,
    down: Peer,
    up: Peer,
    responses: Responses,
    events: VecDeque<Event>,
    phase: Phase,
    last_activity: Instant,
}

impl Session {
    /// A session for a client that just connected, routed by `route`. Its
    /// first event asks the runtime to connect upstream.
    pub fn new(id: u64, now: Instant, config: Arc<SessionConfig>, route: Route) -> Session {
        let target = ConnectTarget {
            host: route.upstream.host.clone(),
            port: route.upstream.port,
            addr_override: route.addr_override,
        };
        let decoder = FrameDecoder::new(config.limits.max_frame_bytes);
        let deadline = now + config.limits.connect_timeout;
        let mut events = VecDeque::with_capacity(4);
        events.push_back(Event::Connect(target.clone()));
        Session {
            id,
            config,
            route,
            decoder,
            down: Peer { open: true, ..Peer::default() },
            up: Peer::default(),
            responses: Responses::with_capacity(16),
            events,
            phase: Phase::Connecting { target, deadline },
            last_activity: now,
        }
    }

    /// The id given at creation, for logs.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Where this session forwards to.
    pub fn route(&self) -> &Route {
        &self.route
    }

    /// Bytes of memory held by this session's buffers (receive capacity plus
    /// queued transmit bytes), for metrics and memory-bound tests.
    pub fn buffered_bytes(&self) -> usize {
        self.down.rx.capacity() + self.up.rx.capacity() + self.down.tx_len + self.up.tx_len
    }

    /// Requests whose response has not reached the client yet.
    pub fn in_flight(&self) -> usize {
        self.responses.len()
    }

    /// True once `Event::Closed` has been emitted.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// The next event for the runtime; call until `None` after every input.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// True when [`Session::poll_event`] has something.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// The earliest moment [`Session::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Connecting { deadline, .. } | Phase::Closing { deadline, .. } => Some(*deadline),
            Phase::Open => self.config.limits.idle_timeout.map(|idle| self.last_activity + idle),
            Phase::Closed => None,
        }
    }

    /// Time has reached (or passed) a deadline from `poll_timeout`.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &self.phase {
            Phase::Connecting { target, deadline } if now >= *deadline => {
                let target = target.clone();
                self.close(now, CloseReason::ConnectTimeout { target });
            }
            Phase::Closing { deadline, .. } if now >= *deadline => self.finish(),
            Phase::Open => {
                if let Some(idle) = self.config.limits.idle_timeout
                    && now >= self.last_activity + idle
                {
                    self.close(now, CloseReason::IdleTimeout);
                }
            }
            _ => {}
        }
    }

    /// The upstream connection is established.
    pub fn handle_connected(&mut self, now: Instant) {
        if let Phase::Connecting { .. } = self.phase {
            debug!(session = self.id, upstream = %self.route.upstream, "connected upstream");
            self.up.open = true;
            self.phase = Phase::Open;
            self.last_activity = now;
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

    /// The runtime stops: close with [`CloseReason::Shutdown`].
    pub fn shutdown(&mut self, now: Instant) {
        self.close(now, CloseReason::Shutdown);
    }

    /// True when the session takes bytes from `side` now. When it turns true
    /// again after a [`ReadOutcome::Paused`] (because writes progressed), the
    /// runtime must try to read even without a new readiness event.
    pub fn wants_read(&self, side: Side) -> bool {
        let limits = &self.config.limits;
        match (&self.phase, side) {
            (Phase::Closing { .. } | Phase::Closed, _) => false,
            (Phase::Connecting { .. }, Side::Upstream) => false,
            (_, Side::Downstream) => {
                self.down.open
                    && self.up.tx_len < limits.max_buffered_bytes
                    && self.responses.len() < limits.max_in_flight
            }
            (Phase::Open, Side::Upstream) => self.up.open && self.down.tx_len < limits.max_buffered_bytes,
        }
    }

    /// True when bytes are queued for `side` and its socket can take them.
    pub fn wants_write(&self, side: Side) -> bool {
        let peer = self.peer(side);
        peer.open && !peer.tx.is_empty()
    }

    /// Reads from `side`: `read` appends bytes to the buffer it is given (at
    /// most its spare capacity) and returns how many, `Ok(0)` meaning end of
    /// stream. The bytes are processed before this returns.
    pub fn read_from<E>(
        &mut self,
        now: Instant,
        side: Side,
        read: impl FnOnce(&mut BytesMut) -> Result<usize, E>,
    ) -> Result<ReadOutcome, E> {
        if !self.wants_read(side) {
            return Ok(ReadOutcome::Paused);
        }
        let decoder = self.decoder;
        if let Err(error) = decoder.reserve(&mut self.peer_mut(side).rx) {
            self.close(now, CloseReason::Frame { side, error });
            return Ok(ReadOutcome::Paused);
        }
        let n = read(&mut self.peer_mut(side).rx)?;
        if n == 0 {
            self.peer_mut(side).shut();
            self.close(now, CloseReason::PeerClosed(side));
            return Ok(ReadOutcome::Eof);
        }
        self.last_activity = now;
        self.process(now, side);
        Ok(ReadOutcome::Read(n))
    }

    /// Writes to `side`: `write` gets the queued chunks (one vectored write)
    /// and returns how many bytes it wrote.
    pub fn write_to<E>(
        &mut self,
        now: Instant,
        side: Side,
        write: impl FnOnce(&[IoSlice<'_>]) -> Result<usize, E>,
    ) -> Result<WriteOutcome, E> {
        let peer = self.peer(side);
        if !peer.open || peer.tx.is_empty() {
            return Ok(WriteOutcome::Idle);
        }
        let mut iov = [IoSlice::new(&[]); MAX_IOV];
        let mut count = 0;
        for (slot, chunk) in iov.iter_mut().zip(peer.tx.iter()) {
            *slot = IoSlice::new(chunk);
            count += 1;
        }
        let n = write(iov.get(..count).unwrap_or_default())?;
        self.peer_mut(side).consume(n);
        if n > 0 {
            self.last_activity = now;
        }
        if let Phase::Closing { .. } = self.phase
            && self.down.drained()
            && self.up.drained()
        {
            self.finish();
        }
        Ok(WriteOutcome::Written(n))
    }

    fn peer(&self, side: Side) -> &Peer {
        match side {
            Side::Downstream => &self.down,
            Side::Upstream => &self.up,
        }
    }

    fn peer_mut(&mut self, side: Side) -> &mut Peer {
        match side {
            Side::Downstream => &mut self.down,
            Side::Upstream => &mut self.up,
        }
    }

    /// Frames everything complete in `side`'s receive buffer.
    fn process(&mut self, now: Instant, side: Side) {
        loop {
            if matches!(self.phase, Phase::Closing { .. } | Phase::Closed) {
                return;
            }
            let decoder = self.decoder;
            let frame = match decoder.decode(&mut self.peer_mut(side).rx) {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(error) => return self.close(now, CloseReason::Frame { side, error }),
            };
            let result = match side {
                Side::Downstream => self.on_request(frame),
                Side::Upstream => self.on_response(frame),
            };
            if let Err(reason) = result {
                return self.close(now, reason);
            }
        }
    }

    /// A complete request frame from the client.
    fn on_request(&mut self, frame: Bytes) -> Result<(), CloseReason> {
        let violation = |error| CloseReason::Protocol { side: Side::Downstream, error };
        let body = frame.get(frame::SIZE_LEN..).unwrap_or_default();
        let h = header::peek_request(body).map_err(|e| violation(ProtocolError::Header(e)))?;
        if api::HIDDEN.contains(&h.api_key) {
            return Err(violation(ProtocolError::ApiNotAdvertised(h.api_key)));
        }
        if let Some(d) = api::decoded(h.api_key)
            && h.api_version > d.max_version
        {
            if h.api_key == ApiKey::API_VERSIONS {
                // KIP-511: answer with UNSUPPORTED_VERSION and a v0 body; the
                // client retries with a version from it.
                let reply = unsupported_version_body();
                self.answer(response_frame(h.correlation_id, &[], &reply));
                return Ok(());
            }
            return Err(violation(ProtocolError::VersionNotAdvertised {
                api: h.api_key,
                version: h.api_version,
                max: d.max_version,
            }));
        }
        let expects_response = h.api_key != ApiKey::PRODUCE
            || header::produce_acks(body, h.api_version).map_err(|e| violation(ProtocolError::Header(e)))?
                != 0;
        if expects_response {
            self.responses.expect(Expected {
                correlation_id: h.correlation_id,
                api_key: h.api_key,
                version: h.api_version,
            });
        }
        self.up.push(frame);
        Ok(())
    }

    /// Sends a response the proxy wrote itself, in request order.
    fn answer(&mut self, frame: Bytes) {
        if let Some(frame) = self.responses.answer(frame) {
            self.down.push(frame);
        }
    }

    /// A complete response frame from the broker.
    fn on_response(&mut self, frame: Bytes) -> Result<(), CloseReason> {
        let violation = |error| CloseReason::Protocol { side: Side::Upstream, error };
        let body = frame::body(&frame);
        let correlation_id = header::peek_response(&body).map_err(|e| violation(ProtocolError::Header(e)))?;
        let request = self.responses.take(correlation_id).map_err(|m| {
            violation(match m {
                Mismatch::NothingOwed => ProtocolError::UnexpectedResponse { correlation_id },
                Mismatch::OutOfOrder { got, expected } => ProtocolError::OutOfOrder { got, expected },
            })
        })?;
        self.forward_response(request, frame, body)?;
        for local in self.responses.release() {
            self.down.push(local);
        }
        Ok(())
    }

    /// Forwards the broker's response to `request`, rewritten where needed.
    fn forward_response(&mut self, request: Expected, frame: Bytes, body: Bytes) -> Result<(), CloseReason> {
        let violation = |error| CloseReason::Protocol { side: Side::Upstream, error };
        let correlation_id = request.correlation_id;
        if request.api_key == ApiKey::API_VERSIONS {
            // Always header v0 (KIP-511).
            let rest = body.get(4..).unwrap_or_default();
            let rewritten = rewrite_api_versions(request.version, rest, &self.config.api_versions)
                .map_err(CloseReason::Rewrite)?;
            self.down.push(response_frame(correlation_id, &[], &rewritten));
            return Ok(());
        }
        if !rewrite::needs_rewrite(request.api_key, request.version) {
            self.down.push(frame);
            return Ok(());
        }
        let tagged =
            api::decoded(request.api_key).is_some_and(|d| api::response_header_has_tags(d, request.version));
        let header_len =
            header::response_header_len(&body, tagged).map_err(|e| violation(ProtocolError::Header(e)))?;
        let payload = body.slice(header_len.min(body.len())..);
        let result =
            rewrite::rewrite_response(request.api_key, request.version, &payload, &*self.config.address_map)
                .map_err(CloseReason::Rewrite)?;
        if result.observed != Observed::Nothing {
            self.events.push_back(Event::Observed(result.observed));
        }
        match result.body {
            Body::Unchanged => self.down.push(frame),
            Body::Spliced { front, new, back } => {
                let len = header_len + front.len() + new.len() + back.len();
                self.down.push(Bytes::copy_from_slice(&frame::size_prefix(len)));
                self.down.push(body.slice(..header_len.min(body.len())));
                self.down.push(front);
                self.down.push(new);
                self.down.push(back);
            }
        }
        Ok(())
    }

    /// Starts closing: stop reading, flush what is queued (bounded by the
    /// linger time), then emit `Event::Closed`.
    fn close(&mut self, now: Instant, reason: CloseReason) {
        if matches!(self.phase, Phase::Closing { .. } | Phase::Closed) {
            return;
        }
        if reason.is_normal() {
            debug!(session = self.id, route = %self.route.listener, %reason, "closing");
        } else {
            warn!(session = self.id, route = %self.route.listener, %reason, "closing");
        }
        if let Phase::Connecting { .. } = self.phase {
            // Nothing queued for the broker can be delivered.
            self.up.shut();
        }
        self.phase = Phase::Closing { reason, deadline: now + self.config.linger };
        if self.down.drained() && self.up.drained() {
            self.finish();
        }
    }

    fn finish(&mut self) {
        if let Phase::Closing { reason, .. } = std::mem::replace(&mut self.phase, Phase::Closed) {
            self.down.shut();
            self.up.shut();
            self.events.push_back(Event::Closed(reason));
        }
    }
}

/// A complete response frame: size, correlation id, the response header's
/// tagged fields (`header_tags`, empty for header v0), then `body`.
fn response_frame(correlation_id: i32, header_tags: &[u8], body: &[u8]) -> Bytes {
    let len = 4 + header_tags.len() + body.len();
    let mut frame = BytesMut::with_capacity(frame::SIZE_LEN + len);
    frame.extend_from_slice(&frame::size_prefix(len));
    frame.extend_from_slice(&correlation_id.to_be_bytes());
    frame.extend_from_slice(header_tags);
    frame.extend_from_slice(body);
    frame.freeze()
}
