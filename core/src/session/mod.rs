//! One client connection and its upstream connection.
//!
//! A [`Session`] owns both directions' buffers. Bytes from a side pass
//! through that side's TLS engine (when it has one), are cut into Kafka
//! frames in place, and leave as zero-copy [`Bytes`] chunks on the other
//! side's queue (encrypted again when that side speaks TLS). Requests leave
//! a place in an ordered queue, so each response is matched to its API and
//! version, rewritten where it carries broker addresses, and delivered in
//! request order even when the proxy answers some requests itself (SASL,
//! downgrades).
//!
//! Security runs inside: downstream TLS (with mTLS principals), downstream
//! SASL (terminated by the proxy, or passed through to the broker),
//! upstream TLS and upstream SASL (one service identity, or auth swap per
//! client principal), with KIP-368 re-authentication on both sides.
//!
//! Where each concern lives: `event` (what the runtime is told), `lifecycle`
//! (connecting, timeouts, draining, closing), `auth` (TLS principals and
//! SASL on both sides), `client` / `broker` (requests in, responses out),
//! `cut_through` and `splice` (large frames forwarded as they arrive),
//! `probe` (the proxy's own Metadata request), `peer` (one side's buffers
//! and TLS engine).
//!
//! The runtime drives it as the crate documentation's rule says.

mod auth;
mod broker;
mod client;
mod cut_through;
mod event;
mod lifecycle;
mod passthrough;
mod peer;
mod policy;
mod probe;
mod splice;
mod stats;
#[cfg(test)]
mod tests;
mod warn_limit;

pub(crate) use event::ProxyEventKind;
pub use event::{
    CloseReason, ConnectTarget, Endpoint, Event, ProtocolError, ProxyEvent, ReadOutcome, Via, WriteOutcome,
};
pub use policy::ForbiddenClose;
pub use stats::{
    ApiStats, AuthOutcome, LATENCY_BOUNDS_MICROS, LatencyHistogram, PolicyRefusal, QuotaThrottles,
    SessionStats, SideStats,
};
pub(crate) use warn_limit::WarnLimiter;

/// The receive buffer a [`Session::read_from`] closure appends to,
/// re-exported for runtimes that do not depend on `bytes` themselves.
pub use bytes::BytesMut;
// What a `CloseReason` or `ProtocolError` carries, named here for the runtime
// that matches on them.
pub use crate::frame::FrameError;
pub use crate::header::HeaderError;
pub use crate::rewrite::RewriteError;

use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tracing::debug;

use crate::api::ApiKey;
use crate::cluster::ClusterView;
use crate::config::{DownstreamSasl, Limits, Security, UpstreamLogin};
use crate::correlation::Responses;
use crate::frame::{self, FrameDecoder};
use crate::rewrite::{AddressMap, ApiVersionsPolicy, Observed};
use crate::route::Route;
use crate::sasl::throttle::LoginThrottle;
use crate::sasl::{SaslClient, SaslServer};
use crate::tls::{RustlsSession, TlsError};

use auth::{DownAuth, UpAuth};
use passthrough::RawTokens;
use peer::Peer;

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
pub(crate) struct SessionConfig {
    /// Limits and timeouts.
    pub limits: Limits,
    /// How broker addresses are advertised to clients.
    pub address_map: Arc<dyn AddressMap + Send + Sync>,
    /// How ApiVersions responses are clamped.
    pub api_versions: ApiVersionsPolicy,
    /// How long a closing session may spend flushing what it already queued.
    pub linger: Duration,
    /// TLS and SASL on both sides.
    pub security: Security,
    /// Bounds the warnings sessions log about failed connections.
    pub warnings: WarnLimiter,
    /// The policy's rules and shared state (kept across reloads).
    pub policy: Arc<crate::policy::state::PolicyState>,
    /// The client id of the proxy's own requests (its probe's Metadata).
    pub client_id: String,
    /// What the proxy learned of the cluster (shared, kept across reloads).
    pub cluster: Arc<ClusterView>,
    /// Failed-login throttling (shared, kept across reloads).
    pub throttle: Arc<LoginThrottle>,
    /// The forward proxy every upstream connection goes through, if any.
    pub forward_proxy: Option<crate::egress::ForwardProxy>,
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("limits", &self.limits)
            .field("api_versions", &self.api_versions)
            .field("linger", &self.linger)
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

/// The life of a session.
#[derive(Debug)]
enum Phase {
    /// SNI mode: waiting for the ClientHello, then for the route.
    Routing { asked: bool },
    /// Routed; the upstream connection waits until the client has earned
    /// one: after authentication where the proxy authenticates, otherwise
    /// after the TLS handshake and the first complete request.
    Earning { target: ConnectTarget },
    /// Waiting for the upstream connection.
    Connecting { target: ConnectTarget, deadline: Instant },
    /// Connected to the forward proxy; its handshake opens the tunnel to the
    /// broker (before upstream TLS), within the connect deadline.
    Tunneling { tunnel: Box<crate::egress::Tunnel>, target: ConnectTarget, deadline: Instant },
    /// Both sides connected.
    Open,
    /// The client was refused. At `at` its answer (if still held: a
    /// throttled login failure) is sent and the session closes `then`
    /// later (Kafka's failed-authentication delay); without one it closes.
    Refusing { reason: CloseReason, at: Instant, reply: Option<Bytes>, then: Duration },
    /// Flushing what is queued, then closing.
    Closing { reason: CloseReason, deadline: Instant },
    /// Drained and flushed: the client connection is half-closed and what
    /// the client still sends is read and dropped until it closes too.
    Lingering { reason: CloseReason, deadline: Instant },
    /// Over; `Event::Closed` has been emitted.
    Closed,
}

/// What the broker owes the proxy, in the order requests were sent to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BrokerOwes {
    /// A response to a client request (matched in `Responses`).
    Client,
    /// A raw SASL token for the client (pass-through, SaslHandshake v0).
    ClientRaw,
    /// A response to the proxy's own SASL login.
    Login,
}

/// A client request held until the upstream connection may carry it.
#[derive(Debug)]
struct Held {
    frame: Bytes,
    owes: Option<BrokerOwes>,
    api_key: ApiKey,
}

/// A SASL token waiting for its turn under the login throttle.
#[derive(Debug)]
struct Deferred {
    frame: Bytes,
    at: Instant,
}

/// Most chunks handed to one vectored write.
const MAX_IOV: usize = 64;

/// How long a session keeps its empty buffers and queues after its last
/// read or write (at least; at most half as long again, as the deadline
/// moves in ticks): a connection in use reuses them in place, one that
/// went quiet gives them back (an idle connection holds no buffer).
pub const BUFFER_IDLE: Duration = Duration::from_millis(250);

/// The granularity of the buffer release deadline, in milliseconds.
const RELEASE_TICK_MS: u64 = 125;

/// An empty queue that still holds an allocation.
pub(super) fn spare<T>(queue: &VecDeque<T>) -> bool {
    queue.is_empty() && queue.capacity() > 0
}

/// Drops an empty queue's allocation (its next use allocates again).
pub(super) fn release_queue<T>(queue: &mut VecDeque<T>) {
    if spare(queue) {
        *queue = VecDeque::new();
    }
}

/// Correlation ids of the proxy's own requests to brokers count down from
/// here, away from the small positive ids clients use.
const FIRST_INTERNAL_CORRELATION_ID: i32 = -1_000_000;

/// One client connection and its upstream connection.
#[derive(Debug)]
pub struct Session {
    id: u64,
    config: Arc<SessionConfig>,
    route: Option<Route>,
    decoder: FrameDecoder,
    down: Peer,
    up: Peer,
    /// Responses owed to the client, in request order.
    responses: Responses,
    /// What the broker owes, in the order requests were sent to it.
    broker_owes: VecDeque<BrokerOwes>,
    /// Client requests held until the upstream connection may carry them.
    held: VecDeque<Held>,
    held_len: usize,
    down_auth: DownAuth,
    up_auth: UpAuth,
    /// Who the client is (SASL user, certificate principal, or `$anonymous`).
    principal: Option<String>,
    /// The broker's SaslAuthenticate versions, once seen in ApiVersions.
    broker_authenticate_versions: Option<(i16, i16)>,
    next_internal_correlation_id: i32,
    events: VecDeque<Event>,
    phase: Phase,
    last_activity: Instant,
    /// TLS and SASL must complete before this.
    handshake_deadline: Option<Instant>,
    /// Wall-clock time at `anchor_instant` (JWT claims need wall time; it is
    /// derived from the monotonic time passed in).
    anchor_wall: SystemTime,
    anchor_instant: Instant,
    /// A probe: no client; the proxy asks the cluster for its brokers.
    probe: bool,
    /// The proxy is draining: no new requests, close at a request boundary.
    draining: bool,
    /// The walker of a Fetch response being streamed (KIP-951 tail held back).
    fetch: Option<Box<crate::rewrite::FetchStream>>,
    /// Forbidden APIs, quotas and connection limits for this client.
    policy: policy::SessionPolicy,
    /// Counts for metrics, taken by the runtime (`take_stats`).
    stats: SessionStats,
    /// The client id of the client's first request that named one (bounded,
    /// printable), for logs.
    client_id: Option<Box<str>>,
    /// When the broker last made progress for the client: a response began,
    /// or bytes reached the client. Request deadlines count from here.
    broker_clock: Instant,
    /// The client request being cut through awaits a response (its arrival
    /// is re-stamped when its last byte is in).
    cut_request_expects: bool,
    /// The client's address (none for a probe): the login throttle's key,
    /// and the external authenticator's `client`.
    peer: Option<SocketAddr>,
    /// Where the SaslAuthenticate response goes while its login waits for
    /// the external authenticator.
    verifying: Option<auth::AuthenticateRequest>,
    /// Complete requests (or request-shaped SASL tokens) read from the client.
    client_frames: u64,
    /// When the client's current, incomplete request began to arrive, and
    /// `client_frames` then (`limits.request_read_timeout`).
    request_read: Option<(Instant, u64)>,
    /// A SASL token held until the login throttle's slot for it (boxed:
    /// rare, and an idle session should be small).
    deferred: Option<Box<Deferred>>,
    /// A token was admitted by the login throttle and its outcome is owed to it.
    throttle_owed: bool,
    /// The start of a large request is buffered and waits for the upstream
    /// connection to be cut through.
    large_request_waits: bool,
}

/// The principal of clients nobody authenticated (seed 000).
pub(crate) const ANONYMOUS: &str = "$anonymous";

impl Session {
    /// A session for a client that just connected from `peer`. With a
    /// `route` it waits for the client to earn an upstream connection (see
    /// [`Phase::Earning`]); without one (SNI mode) it first reads the
    /// ClientHello and asks for a route.
    pub(crate) fn new(
        id: u64,
        now: Instant,
        wall: SystemTime,
        config: Arc<SessionConfig>,
        route: Option<Route>,
        peer: Option<SocketAddr>,
    ) -> Session {
        Session::build(id, now, wall, config, route, peer, false)
    }

    /// A session for a client, or (`probe`) for the proxy's own request.
    fn build(
        id: u64,
        now: Instant,
        wall: SystemTime,
        config: Arc<SessionConfig>,
        route: Option<Route>,
        peer: Option<SocketAddr>,
        probe: bool,
    ) -> Session {
        let decoder = FrameDecoder::new(config.limits.max_frame_bytes);
        let security = &config.security;
        let mut down = Peer::plain(true);
        let mut tls_failure = None;
        if let Some(tls) = &security.downstream_tls {
            match RustlsSession::server(tls.config.clone()) {
                Ok(driver) => down.use_tls(Box::new(driver)),
                Err(error) => tls_failure = Some(error),
            }
        }
        let down_auth = match &security.downstream_sasl {
            DownstreamSasl::Off => DownAuth::Off,
            DownstreamSasl::PassThrough => DownAuth::PassThrough(RawTokens::default()),
            DownstreamSasl::Terminate(server) => {
                DownAuth::Terminate(Box::new(SaslServer::new(server.clone())))
            }
        };
        let up_auth = match &security.upstream_login {
            UpstreamLogin::Off => UpAuth::Off,
            UpstreamLogin::Service(client) => UpAuth::Ready(Box::new(SaslClient::new(client.clone()))),
            UpstreamLogin::Swap(_) => UpAuth::AwaitPrincipal,
        };
        let principal = (security.downstream_tls.is_none() && matches!(down_auth, DownAuth::Off))
            .then(|| ANONYMOUS.to_owned());
        // The upstream handshakes' deadline starts with the upstream
        // connection (`connect_now`), which waits for the client.
        let needs_handshake = down.has_tls() || matches!(down_auth, DownAuth::Terminate(_));
        let mut session = Session {
            id,
            route: None,
            decoder,
            down,
            up: Peer::plain(false),
            responses: Responses::default(),
            broker_owes: VecDeque::new(),
            held: VecDeque::new(),
            held_len: 0,
            down_auth,
            up_auth,
            principal,
            broker_authenticate_versions: None,
            next_internal_correlation_id: FIRST_INTERNAL_CORRELATION_ID,
            events: VecDeque::new(),
            phase: Phase::Routing { asked: false },
            last_activity: now,
            handshake_deadline: needs_handshake.then(|| now + config.limits.handshake_timeout),
            anchor_wall: wall,
            anchor_instant: now,
            probe,
            draining: false,
            fetch: None,
            policy: policy::SessionPolicy::unresolved(),
            stats: SessionStats::default(),
            client_id: None,
            broker_clock: now,
            cut_request_expects: false,
            peer,
            verifying: None,
            client_frames: 0,
            request_read: None,
            deferred: None,
            throttle_owed: false,
            large_request_waits: false,
            config,
        };
        if let Some(error) = tls_failure {
            // Never fall back to plaintext on a TLS listener.
            session.close(now, CloseReason::Tls { side: Side::Downstream, error });
            return session;
        }
        if let Some(principal) = session.principal.clone() {
            // No authentication downstream: `$anonymous` (auth swap may map it).
            session.set_principal(now, principal);
        }
        match route {
            Some(route) => session.handle_route(now, route),
            None if !session.down.has_tls() => {
                // SNI needs TLS; without it there is nothing to route by.
                session.events.push_back(Event::Proxy(ProxyEvent(ProxyEventKind::Route(None))));
                session.phase = Phase::Routing { asked: true };
            }
            None => {}
        }
        session
    }

    /// The id given at creation, for logs.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Where this session forwards to (once known).
    pub fn route(&self) -> Option<&Route> {
        self.route.as_ref()
    }

    /// Who the client is, once known.
    pub fn principal(&self) -> Option<&str> {
        self.principal.as_deref()
    }

    /// The client id the client sent (its first request that had one),
    /// at most 128 characters, control characters replaced.
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// Bytes of memory held by this session's buffers (receive capacity plus
    /// queued transmit bytes), for metrics and memory-bound tests.
    pub fn buffered_bytes(&self) -> usize {
        self.down.footprint() + self.up.footprint() + self.held_len
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

    /// True when the session takes bytes from `side` now. When it turns true
    /// again after a [`ReadOutcome::Paused`] (because writes progressed), the
    /// runtime must try to read even without a new readiness event.
    pub fn wants_read(&self, side: Side) -> bool {
        let limits = &self.config.limits;
        if self.peer(side).piped > 0 {
            // Spliced bytes from this side still wait for the other socket.
            return false;
        }
        match (&self.phase, side) {
            (Phase::Lingering { .. }, Side::Downstream) => true,
            (Phase::Closing { .. } | Phase::Lingering { .. } | Phase::Closed | Phase::Refusing { .. }, _) => {
                false
            }
            (Phase::Routing { .. } | Phase::Earning { .. } | Phase::Connecting { .. }, Side::Upstream) => {
                false
            }
            (Phase::Tunneling { .. }, Side::Upstream) => self.up.open,
            (Phase::Routing { asked: true }, Side::Downstream) => false,
            // A login waits for its external verdict: the client must not go on.
            (_, Side::Downstream) if self.awaiting_verdict() => false,
            // A SASL token waits for the login throttle: nothing after it is read.
            (_, Side::Downstream) if self.deferred.is_some() => false,
            // A large request waits for the upstream connection before more of
            // it is read, so it is cut through rather than assembled whole.
            (_, Side::Downstream)
                if self.large_request_waits
                    && self.down.buffered().len() >= cut_through::CUT_THROUGH_MIN
                    && !self.upstream_ready() =>
            {
                false
            }
            (_, Side::Downstream) => {
                self.down.open
                    && (!self.draining || self.down.mid_frame())
                    && !self.muted()
                    && self.up.queued() + self.held_len < limits.max_buffered_bytes
                    && self.responses.len() < limits.max_in_flight
            }
            (Phase::Open, Side::Upstream) => self.up.open && self.down.queued() < limits.max_buffered_bytes,
        }
    }

    /// True when bytes wait for `side` (queued, or spliced towards it) and
    /// its socket can take them.
    pub fn wants_write(&self, side: Side) -> bool {
        let peer = self.peer(side);
        peer.open && (peer.has_tx() || self.pending_splice(side) > 0)
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
        if let Phase::Lingering { .. } = self.phase {
            return self.read_and_drop(now, side, read);
        }
        let decoder = self.decoder;
        let peer = self.peer_mut(side);
        let reserved = if peer.has_tls() || peer.cut_through > 0 {
            // Ciphertext arrives in records of at most ~16 KiB (frames are
            // sized on the plaintext side); a frame being cut through needs
            // no room for itself.
            if peer.rx.capacity() - peer.rx.len() < frame::READ_CHUNK {
                peer.rx.reserve(cut_through::READ_SIZE);
            }
            Ok(())
        } else {
            decoder.reserve(&mut peer.rx, peer.read_step)
        };
        if let Err(error) = reserved {
            self.close(now, CloseReason::Frame { side, error });
            return Ok(ReadOutcome::Paused);
        }
        let peer = self.peer_mut(side);
        let spare = peer.rx.capacity() - peer.rx.len();
        let n = read(&mut peer.rx)?;
        if n == 0 {
            self.handle_eof(now, side);
            return Ok(ReadOutcome::Eof);
        }
        let peer = self.peer_mut(side);
        peer.read_step = frame::next_read_step(peer.read_step, n, spare);
        self.stats.side_mut(side).copied_in += n as u64;
        self.last_activity = now;
        let frames_before = self.client_frames;
        self.process(now, side);
        if side == Side::Downstream {
            self.track_request_read(now, frames_before);
        }
        Ok(ReadOutcome::Read(n))
    }

    /// When this session gives back its empty buffers and queues, if any
    /// holds memory: [`BUFFER_IDLE`] after its last read or write, that
    /// moment first rounded up to the next [`RELEASE_TICK_MS`] since the session
    /// began. The deadline moves once per tick of traffic rather than at
    /// every read and write, so a runtime re-arms its timer that rarely.
    fn release_deadline(&self) -> Option<Instant> {
        if !self.holds_spare_memory() {
            return None;
        }
        // In whole milliseconds (u64 arithmetic: this runs at every step).
        let since = self.last_activity.saturating_duration_since(self.anchor_instant);
        let ms = since.as_secs().saturating_mul(1000).saturating_add(u64::from(since.subsec_millis()));
        let tick = RELEASE_TICK_MS.max(1);
        Duration::from_millis((ms / tick).saturating_add(1).saturating_mul(tick))
            .checked_add(BUFFER_IDLE)
            .and_then(|after| self.anchor_instant.checked_add(after))
            .or(self.last_activity.checked_add(BUFFER_IDLE))
    }

    /// True when an empty buffer or queue still holds an allocation (what
    /// [`Session::release_idle`] gives back).
    fn holds_spare_memory(&self) -> bool {
        self.down.holds_spare_memory()
            || self.up.holds_spare_memory()
            || self.responses.holds_spare_memory()
            || spare(&self.broker_owes)
            || spare(&self.events)
            || spare(&self.held)
    }

    /// The session has been quiet for [`BUFFER_IDLE`]: gives back the memory
    /// of its empty buffers and queues, so an idle connection holds none
    /// (each is allocated again by the next bytes that need it). A busy
    /// session never gets here and reuses its buffers in place.
    fn release_idle(&mut self, now: Instant) {
        if self.release_deadline().is_none_or(|at| now < at) {
            return;
        }
        self.down.release_empty();
        self.up.release_empty();
        self.responses.release_if_empty();
        release_queue(&mut self.broker_owes);
        release_queue(&mut self.events);
        release_queue(&mut self.held);
    }

    /// Lingering: reads what the client still sends and drops it.
    fn read_and_drop<E>(
        &mut self,
        now: Instant,
        side: Side,
        read: impl FnOnce(&mut BytesMut) -> Result<usize, E>,
    ) -> Result<ReadOutcome, E> {
        let rx = &mut self.peer_mut(side).rx;
        rx.clear();
        if rx.capacity() < frame::READ_CHUNK {
            rx.reserve(frame::READ_CHUNK);
        }
        let n = read(rx)?;
        rx.clear();
        if n == 0 {
            self.handle_eof(now, side);
            return Ok(ReadOutcome::Eof);
        }
        self.stats.side_mut(side).copied_in += n as u64;
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
        if !peer.open || !peer.has_tx() || self.pending_splice(side) > 0 {
            return Ok(WriteOutcome::Idle);
        }
        let mut iov = [IoSlice::new(&[]); MAX_IOV];
        let mut count = 0;
        for (slot, chunk) in iov.iter_mut().zip(peer.tx_chunks()) {
            *slot = IoSlice::new(chunk);
            count += 1;
        }
        let n = write(iov.get(..count).unwrap_or_default())?;
        self.peer_mut(side).consume(n);
        if n > 0 {
            self.last_activity = now;
            self.stats.side_mut(side).copied_out += n as u64;
            if side == Side::Downstream {
                self.broker_clock = now;
            }
        }
        self.finish_if_flushed();
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

    /// Wall-clock time at `now`.
    fn wall(&self, now: Instant) -> SystemTime {
        self.anchor_wall + now.saturating_duration_since(self.anchor_instant)
    }

    /// True while the session still processes input.
    fn running(&self) -> bool {
        !matches!(
            self.phase,
            Phase::Closing { .. } | Phase::Lingering { .. } | Phase::Closed | Phase::Refusing { .. }
        )
    }

    /// Everything received on `side`: TLS, then frames; repeats while a TLS
    /// write on either side surfaced more plaintext.
    fn process(&mut self, now: Instant, side: Side) {
        let mut side = side;
        for _ in 0..16 {
            if !self.running() {
                return;
            }
            if side == Side::Downstream && !self.sni_routed(now) {
                return;
            }
            if side == Side::Upstream && matches!(self.phase, Phase::Tunneling { .. }) {
                // The forward proxy's reply; the broker's bytes come after it.
                return self.advance_tunnel(now);
            }
            match self.peer_mut(side).process_tls() {
                Ok(progress) => {
                    if progress.secured {
                        self.on_secured(now, side);
                    }
                    if progress.peer_closed {
                        self.peer_mut(side).shut();
                        return self.close(now, CloseReason::PeerClosed(side));
                    }
                }
                Err(error) => return self.close(now, CloseReason::Tls { side, error }),
            }
            self.frames(now, side);
            if side == Side::Downstream {
                self.close_if_quiescent(now);
                self.maybe_connect(now);
            }
            if self.down.fresh_plaintext {
                self.down.fresh_plaintext = false;
                side = Side::Downstream;
            } else if self.up.fresh_plaintext {
                self.up.fresh_plaintext = false;
                side = Side::Upstream;
            } else {
                return;
            }
        }
    }

    /// SNI mode: true once the route is known; until then, peeks at the
    /// ClientHello and asks the runtime for a route.
    fn sni_routed(&mut self, now: Instant) -> bool {
        let Phase::Routing { asked } = self.phase else { return true };
        if asked {
            return false;
        }
        let name = match crate::tls::client_hello::peek_sni(&self.down.rx) {
            crate::tls::client_hello::SniPeek::NeedMore => return false,
            crate::tls::client_hello::SniPeek::Sni(name) => Some(name),
            crate::tls::client_hello::SniPeek::NoSni => None,
            crate::tls::client_hello::SniPeek::NotClientHello(_) => {
                // Let the TLS engine explain what the client sent.
                if let Err(error) = self.down.process_tls() {
                    self.close(now, CloseReason::Tls { side: Side::Downstream, error });
                } else {
                    self.close(now, CloseReason::NoRoute("(not a TLS ClientHello)".into()));
                }
                return false;
            }
        };
        debug!(session = self.id, sni = ?name, "ClientHello");
        self.events.push_back(Event::Proxy(ProxyEvent(ProxyEventKind::Route(name))));
        self.phase = Phase::Routing { asked: true };
        false
    }

    /// Frames everything in `side`'s frame buffer: whole frames, and large
    /// pass-through frames cut through as their bytes arrive.
    fn frames(&mut self, now: Instant, side: Side) {
        loop {
            if !self.running() || (side == Side::Downstream && self.deferred.is_some()) {
                return;
            }
            if self.peer(side).cut_through > 0 {
                if !self.continue_cut_through(now, side) {
                    return;
                }
                continue;
            }
            let decoder = match (side, &self.down_auth) {
                // Kafka caps what an unauthenticated client may send.
                (Side::Downstream, DownAuth::Terminate(server)) if !server.is_authenticated() => {
                    FrameDecoder::new(self.config.limits.max_frame_bytes.min(
                        u32::try_from(crate::sasl::server::MAX_UNAUTHENTICATED_FRAME).unwrap_or(u32::MAX),
                    ))
                }
                _ => self.decoder,
            };
            let frame = match decoder.decode(self.peer_mut(side).frames()) {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    let started = match side {
                        Side::Downstream => self.start_request_cut_through(now),
                        Side::Upstream => self.start_response_cut_through(now),
                    };
                    match started {
                        Ok(true) => continue,
                        Ok(false) => return,
                        Err(reason) => return self.close(now, reason),
                    }
                }
                Err(error) => return self.close(now, CloseReason::Frame { side, error }),
            };
            let result = match side {
                Side::Downstream => {
                    self.client_frames += 1;
                    self.on_client_frame(now, frame)
                }
                Side::Upstream => self.on_broker_frame(now, frame),
            };
            if let Err(reason) = result {
                return self.close(now, reason);
            }
        }
    }

    /// Tells the proxy about brokers a response named.
    fn observed(&mut self, observed: Observed) {
        if observed != Observed::Nothing {
            self.events.push_back(Event::Proxy(ProxyEvent(ProxyEventKind::Observed(observed))));
        }
    }

    /// A frame for the client, written by the proxy, in request order.
    fn answer(&mut self, frame: Bytes) {
        if let Some(frame) = self.responses.answer(frame) {
            self.send_client(&[frame]);
        }
    }

    /// Queues chunks of one frame for the client.
    fn send_client(&mut self, chunks: &[Bytes]) {
        if let Err(error) = self.down.send(chunks) {
            self.fail_tls(Side::Downstream, error);
        }
    }

    /// Queues chunks of one frame for the broker.
    fn send_broker(&mut self, chunks: &[Bytes]) {
        if let Err(error) = self.up.send(chunks) {
            self.fail_tls(Side::Upstream, error);
        }
    }

    fn fail_tls(&mut self, side: Side, error: TlsError) {
        let now = self.last_activity;
        self.close(now, CloseReason::Tls { side, error });
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
