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
//! The runtime drives it with [`Session::read_from`], [`Session::write_to`],
//! [`Session::handle_connected`], [`Session::handle_timeout`] and friends,
//! and after each call drains [`Session::poll_event`] and re-arms its timer
//! from [`Session::poll_timeout`] (the crate-level rule).

mod broker;
mod client;
mod cut_through;

pub use cut_through::SPLICE_MIN;
mod passthrough;
mod peer;
#[cfg(test)]
mod tests;
mod warn_limit;

pub use warn_limit::WarnLimiter;

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use tracing::{debug, info, warn};

use crate::api::ApiKey;
use crate::config::{DownstreamSasl, Limits, Security, UpstreamLogin};
use crate::correlation::Responses;
use crate::frame::{self, FrameDecoder, FrameError};
use crate::header::HeaderError;
use crate::rewrite::{AddressMap, ApiVersionsPolicy, RewriteError};
use crate::route::{ListenerId, Route};
use crate::sasl::server::FailureReason;
use crate::sasl::{ClientError, SaslClient, SaslServer};
use crate::tls::{RustlsSession, TlsError};

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
pub struct SessionConfig {
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
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Open the upstream connection, then call [`Session::handle_connected`]
    /// or [`Session::handle_connect_failed`].
    Connect(ConnectTarget),
    /// The client named this server (`None`: it sent no SNI): ask
    /// [`crate::proxy::Proxy::route_sni`] and answer with [`Session::handle_route`].
    Route(Option<String>),
    /// The cluster named brokers: pass to [`crate::proxy::Proxy::handle_observed`].
    Observed(crate::rewrite::Observed),
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
    /// A Kafka response where a raw SASL token was due, or the reverse.
    SaslFraming,
    /// A SaslHandshake v0 exchange with a mechanism whose raw tokens the
    /// proxy cannot follow.
    UntrackableSasl(String),
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
            ProtocolError::SaslFraming => f.write_str("raw SASL token and Kafka response out of step"),
            ProtocolError::UntrackableSasl(what) => {
                write!(f, "SaslHandshake v0 pass-through with {what} is not supported (use SaslHandshake v1)")
            }
        }
    }
}

/// Why a session ended, for the log.
#[derive(Debug, Clone, PartialEq)]
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
    /// TLS or SASL did not complete within `handshake_timeout`.
    HandshakeTimeout,
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
    /// TLS failed on a side.
    Tls {
        /// The side.
        side: Side,
        /// What failed.
        error: TlsError,
    },
    /// The client was refused: authentication failed, a request before
    /// authentication, an expired session, no upstream identity for its principal.
    Refused(FailureReason),
    /// The client's certificate could not be mapped to a principal, or its
    /// principal has no upstream identity (auth swap).
    Unauthorized {
        /// The principal, or the certificate problem.
        principal: String,
        /// Why.
        why: &'static str,
    },
    /// The proxy's own login at the broker failed.
    UpstreamLogin(ClientError),
    /// A broker response could not be rewritten (its addresses would leak).
    Rewrite(RewriteError),
    /// The SNI name routes nowhere.
    NoRoute(String),
    /// A probe session learned what it asked for.
    ProbeComplete,
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
            CloseReason::HandshakeTimeout => f.write_str("TLS/SASL handshake timed out"),
            CloseReason::Frame { side, error } => write!(f, "{side} sent invalid framing: {error}"),
            CloseReason::Protocol { side, error } => write!(f, "{side} protocol violation: {error}"),
            CloseReason::Tls { side, error } => write!(f, "TLS with the {side} failed: {error}"),
            CloseReason::Refused(reason) => match reason.error_code() {
                Some(code) => write!(f, "client refused: {reason} (error code {})", code.0),
                None => write!(f, "client refused: {reason}"),
            },
            CloseReason::Unauthorized { principal, why } => write!(f, "client {principal} refused: {why}"),
            CloseReason::UpstreamLogin(e) => write!(f, "login at the broker failed: {e}"),
            CloseReason::Rewrite(e) => write!(f, "cannot rewrite broker response: {e}"),
            CloseReason::NoRoute(name) => write!(f, "no route for SNI name {name}"),
            CloseReason::ProbeComplete => f.write_str("cluster probe complete"),
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::Shutdown => f.write_str("proxy shutting down"),
        }
    }
}

impl CloseReason {
    /// True for endings that are part of normal operation (a peer hanging up,
    /// idleness, shutdown), false for failures worth a warning.
    pub fn is_normal(&self) -> bool {
        matches!(
            self,
            CloseReason::PeerClosed(_)
                | CloseReason::IdleTimeout
                | CloseReason::Shutdown
                | CloseReason::ProbeComplete
        )
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

/// The life of a session.
#[derive(Debug)]
enum Phase {
    /// SNI mode: waiting for the ClientHello, then for the route.
    Routing { asked: bool },
    /// Waiting for the upstream connection.
    Connecting { target: ConnectTarget, deadline: Instant },
    /// Both sides connected.
    Open,
    /// The client was refused: its answer is flushed, then the session
    /// closes at `at` (Kafka's failed-authentication delay).
    Refusing { reason: CloseReason, at: Instant },
    /// Flushing what is queued, then closing.
    Closing { reason: CloseReason, deadline: Instant },
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

/// The proxy's SASL login towards the broker.
#[derive(Debug)]
enum UpAuth {
    /// None: no SASL upstream, or the client's own exchange passes through.
    Off,
    /// Auth swap: the identity depends on the client's principal, not known yet.
    AwaitPrincipal,
    /// The identity is known; the exchange starts once the transport is up.
    Ready(SaslClient),
    /// An exchange (first or KIP-368 re-authentication) is under way: hold
    /// client requests.
    Exchanging(SaslClient),
    /// Authenticated.
    Done(SaslClient),
}

/// What the proxy does with SASL from the client.
#[derive(Debug)]
enum DownAuth {
    /// None.
    Off,
    /// The client's exchange is forwarded; raw v0 tokens are followed.
    PassThrough(RawTokens),
    /// The proxy authenticates the client.
    Terminate(Box<SaslServer>),
}

/// Most chunks handed to one vectored write.
const MAX_IOV: usize = 64;

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
    /// The walker of a Fetch response being streamed (KIP-951 tail held back).
    fetch: Option<Box<crate::rewrite::FetchStream>>,
}

/// The principal of clients nobody authenticated (seed 000).
pub const ANONYMOUS: &str = "$anonymous";

impl Session {
    /// A session for a client that just connected. With a `route` its first
    /// event asks the runtime to connect upstream; without one (SNI mode) it
    /// first reads the ClientHello and asks for a route.
    pub fn new(
        id: u64,
        now: Instant,
        wall: SystemTime,
        config: Arc<SessionConfig>,
        route: Option<Route>,
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
            UpstreamLogin::Service(client) => UpAuth::Ready(SaslClient::new(client.clone())),
            UpstreamLogin::Swap(_) => UpAuth::AwaitPrincipal,
        };
        let principal = (security.downstream_tls.is_none() && matches!(down_auth, DownAuth::Off))
            .then(|| ANONYMOUS.to_owned());
        let needs_handshake = down.has_tls()
            || security.upstream_tls.is_some()
            || matches!(down_auth, DownAuth::Terminate(_))
            || !matches!(up_auth, UpAuth::Off);
        let mut session = Session {
            id,
            route: None,
            decoder,
            down,
            up: Peer::plain(false),
            responses: Responses::with_capacity(16),
            broker_owes: VecDeque::with_capacity(16),
            held: VecDeque::new(),
            held_len: 0,
            down_auth,
            up_auth,
            principal,
            broker_authenticate_versions: None,
            next_internal_correlation_id: FIRST_INTERNAL_CORRELATION_ID,
            events: VecDeque::with_capacity(4),
            phase: Phase::Routing { asked: false },
            last_activity: now,
            handshake_deadline: needs_handshake.then(|| now + config.limits.handshake_timeout),
            anchor_wall: wall,
            anchor_instant: now,
            probe: false,
            fetch: None,
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
                session.events.push_back(Event::Route(None));
                session.phase = Phase::Routing { asked: true };
            }
            None => {}
        }
        session
    }

    /// A session without a client that asks the cluster (through `route`,
    /// with the configured upstream TLS and login) for its brokers, reports
    /// them as [`Event::Observed`], and closes.
    pub fn new_probe(
        id: u64,
        now: Instant,
        wall: SystemTime,
        config: Arc<SessionConfig>,
        route: Route,
    ) -> Session {
        let mut session = Session::new(id, now, wall, config, None);
        session.probe = true;
        session.down = Peer::plain(false);
        session.down_auth = DownAuth::Off;
        if let UpAuth::AwaitPrincipal = session.up_auth {
            session.set_principal(now, ANONYMOUS.to_owned());
        }
        session.phase = Phase::Routing { asked: false };
        session.events.clear();
        session.handle_route(now, route);
        // Metadata v4, no topics: the broker list only.
        let mut request = BytesMut::with_capacity(32);
        request.extend_from_slice(&crate::api::ApiKey::METADATA.0.to_be_bytes());
        request.extend_from_slice(&4i16.to_be_bytes());
        request.extend_from_slice(&1i32.to_be_bytes());
        crate::wire::put_string(&mut request, false, b"kafka-proxy");
        request.extend_from_slice(&0i32.to_be_bytes());
        request.extend_from_slice(&[0]);
        let mut frame = BytesMut::with_capacity(frame::SIZE_LEN + request.len());
        frame.extend_from_slice(&frame::size_prefix(request.len()));
        frame.extend_from_slice(&request);
        if let Err(reason) = session.on_client_frame(now, frame.freeze()) {
            session.close(now, reason);
        }
        session
    }

    /// True for a probe session ([`Session::new_probe`]).
    pub fn is_probe(&self) -> bool {
        self.probe
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

    /// The earliest moment [`Session::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let phase = match &self.phase {
            Phase::Connecting { deadline, .. } | Phase::Closing { deadline, .. } => return Some(*deadline),
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
        [phase, reauth, self.handshake_deadline].into_iter().flatten().min()
    }

    /// Time has reached (or passed) a deadline from `poll_timeout`.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &self.phase {
            Phase::Connecting { target, deadline } if now >= *deadline => {
                let target = target.clone();
                return self.close(now, CloseReason::ConnectTimeout { target });
            }
            Phase::Closing { deadline, .. } if now >= *deadline => return self.finish(),
            Phase::Refusing { at, .. } if now >= *at => {
                if let Phase::Refusing { reason, .. } = std::mem::replace(&mut self.phase, Phase::Open) {
                    self.close(now, reason);
                }
                return;
            }
            Phase::Closing { .. } | Phase::Refusing { .. } | Phase::Closed => return,
            _ => {}
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

    /// The route for an SNI session (answer to [`Event::Route`]); for other
    /// sessions it was given at creation.
    pub fn handle_route(&mut self, now: Instant, route: Route) {
        if !matches!(self.phase, Phase::Routing { .. }) {
            return;
        }
        let target = ConnectTarget {
            host: route.upstream.host.clone(),
            port: route.upstream.port,
            addr_override: route.addr_override,
        };
        debug!(session = self.id, listener = %route.listener, upstream = %route.upstream, "routed");
        self.route = Some(route);
        self.events.push_back(Event::Connect(target.clone()));
        self.phase = Phase::Connecting { target, deadline: now + self.config.limits.connect_timeout };
        // The ClientHello waited in the buffer for the route; go on with it.
        self.process(now, Side::Downstream);
    }

    /// The SNI name routes nowhere.
    pub fn handle_no_route(&mut self, now: Instant, name: &str) {
        self.close(now, CloseReason::NoRoute(name.to_owned()));
    }

    /// The upstream connection is established.
    pub fn handle_connected(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Connecting { .. }) {
            return;
        }
        self.up.open = true;
        self.phase = Phase::Open;
        self.last_activity = now;
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
            (Phase::Closing { .. } | Phase::Closed | Phase::Refusing { .. }, _) => false,
            (Phase::Routing { .. } | Phase::Connecting { .. }, Side::Upstream) => false,
            (Phase::Routing { asked: true }, Side::Downstream) => false,
            (_, Side::Downstream) => {
                self.down.open
                    && self.up.queued() + self.held_len < limits.max_buffered_bytes
                    && self.responses.len() < limits.max_in_flight
            }
            (Phase::Open, Side::Upstream) => self.up.open && self.down.queued() < limits.max_buffered_bytes,
        }
    }

    /// True when bytes are queued for `side` and its socket can take them.
    pub fn wants_write(&self, side: Side) -> bool {
        let peer = self.peer(side);
        peer.open && peer.has_tx()
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
            decoder.reserve(&mut peer.rx)
        };
        if let Err(error) = reserved {
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
        if !peer.open || !peer.has_tx() {
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

    /// Wall-clock time at `now`.
    fn wall(&self, now: Instant) -> SystemTime {
        self.anchor_wall + now.saturating_duration_since(self.anchor_instant)
    }

    /// True while the session still processes input.
    fn running(&self) -> bool {
        !matches!(self.phase, Phase::Closing { .. } | Phase::Closed | Phase::Refusing { .. })
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
        self.events.push_back(Event::Route(name));
        self.phase = Phase::Routing { asked: true };
        false
    }

    /// A side finished its TLS handshake.
    fn on_secured(&mut self, now: Instant, side: Side) {
        match side {
            Side::Downstream => {
                if let Some(tls) = &self.config.security.downstream_tls
                    && matches!(self.down_auth, DownAuth::Off)
                {
                    match tls.principal.principal(self.down.peer_certificates()) {
                        Ok(principal) => {
                            info!(session = self.id, %principal, "client authenticated by TLS");
                            self.set_principal(now, principal);
                        }
                        Err(e) => {
                            let principal = e.to_string();
                            self.close(
                                now,
                                CloseReason::Unauthorized {
                                    principal,
                                    why: "certificate maps to no principal",
                                },
                            );
                        }
                    }
                }
            }
            Side::Upstream => {
                debug!(session = self.id, tls = self.up.has_tls(), "upstream ready");
                self.start_login(now);
                self.release_held();
            }
        }
        self.check_established();
    }

    /// Frames everything in `side`'s frame buffer: whole frames, and large
    /// pass-through frames cut through as their bytes arrive.
    fn frames(&mut self, now: Instant, side: Side) {
        loop {
            if !self.running() {
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
                Side::Downstream => self.on_client_frame(now, frame),
                Side::Upstream => self.on_broker_frame(now, frame),
            };
            if let Err(reason) = result {
                return self.close(now, reason);
            }
        }
    }

    /// The client's identity is known (certificate, SASL, or none).
    fn set_principal(&mut self, now: Instant, principal: String) {
        self.principal = Some(principal);
        if let UpAuth::AwaitPrincipal = self.up_auth {
            let UpstreamLogin::Swap(map) = &self.config.security.upstream_login else { return };
            let who = self.principal.as_deref().unwrap_or(ANONYMOUS);
            match map.get(who) {
                Some(identity) => {
                    debug!(
                        session = self.id,
                        principal = who,
                        upstream_user = identity.username(),
                        "auth swap"
                    );
                    self.up_auth = UpAuth::Ready(SaslClient::new(identity.clone()));
                    self.start_login(now);
                }
                None => {
                    let principal = who.to_owned();
                    self.close(
                        now,
                        CloseReason::Unauthorized { principal, why: "no upstream identity (auth_swap)" },
                    )
                }
            }
        }
        self.check_established();
    }

    /// Clears the handshake deadline once every configured handshake is done.
    fn check_established(&mut self) {
        let down_done = self.down.is_secured()
            && match &self.down_auth {
                DownAuth::Terminate(server) => server.is_authenticated(),
                _ => true,
            };
        let up_done =
            self.up.open && self.up.is_secured() && matches!(self.up_auth, UpAuth::Off | UpAuth::Done(_));
        if down_done && up_done {
            self.handshake_deadline = None;
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

    /// Refuses the client: `reply` (if any) is sent, and the session closes
    /// after `delay` (Kafka delays closing after failed authentication).
    fn refuse(&mut self, now: Instant, reply: Option<Bytes>, reason: CloseReason, delay: Duration) {
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
    fn close(&mut self, now: Instant, reason: CloseReason) {
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
        if matches!(self.phase, Phase::Connecting { .. } | Phase::Routing { .. }) {
            // Nothing queued for the broker can be delivered.
            self.up.shut();
        }
        self.down.close_notify();
        self.up.close_notify();
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
