//! Drives `kafka-proxy-core` with a minimal, single-threaded, edge-triggered
//! mio (epoll) loop: the lowest-overhead way to move bytes through the core.
//!
//! Every socket is registered once for readable and writable edges. Because
//! edges fire once, the loop remembers readiness per socket and keeps
//! reading or writing until the kernel says `WouldBlock` (or the session
//! applies back-pressure, in which case the remembered readiness is used as
//! soon as the session wants bytes again). After every input it drains the
//! session's events, flushes its queues and re-arms its timer: the core's
//! rule. There is no protocol logic here.

mod dns;
mod slab;

use kafka_proxy_sys as sys;

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use kafka_proxy_core::config::ProxyConfig;
use kafka_proxy_core::proxy::{Proxy, ProxyAction};
use kafka_proxy_core::route::ListenerId;
use kafka_proxy_core::session::{ConnectTarget, Event, ReadOutcome, Session, Side, WriteOutcome};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use tracing::{debug, error, info, info_span, warn};

use crate::dns::Resolver;
use crate::slab::Slab;

/// How long connections get to finish after a stop request.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Reads or writes on one connection before the loop serves the others.
const BUDGET: usize = 32;
/// epoll events fetched per wake-up.
const EVENTS: usize = 1024;

const WAKER: Token = Token(usize::MAX);
/// Listener tokens count down from below the waker.
const LISTENER_BASE: usize = usize::MAX - 1;
/// Listener tokens live in `[LISTENER_BASE - MAX_LISTENERS, LISTENER_BASE]`.
const MAX_LISTENERS: usize = 1 << 16;

/// Why the loop could not start.
#[derive(Debug)]
pub enum StartError {
    /// epoll or the waker could not be created.
    Poll(io::Error),
    /// A listener the configuration needs could not be bound.
    Bind {
        /// The listener.
        id: ListenerId,
        /// Its address.
        addr: SocketAddr,
        /// The operating system's error.
        error: io::Error,
    },
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Poll(e) => write!(f, "cannot create the event loop: {e}"),
            StartError::Bind { id, addr, error } => write!(f, "cannot listen on {addr} for {id}: {error}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Stops or reloads a running loop from any thread.
#[derive(Debug, Clone)]
pub struct Stopper {
    flag: Arc<AtomicBool>,
    reload: Arc<Mutex<Option<ProxyConfig>>>,
    waker: Arc<Waker>,
}

impl Stopper {
    /// Asks the loop to close every connection and return.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Hands the loop a new configuration (see [`Proxy::reload`]).
    pub fn reload(&self, config: ProxyConfig) {
        *self.reload.lock().unwrap_or_else(PoisonError::into_inner) = Some(config);
        self.wake();
    }

    fn wake(&self) {
        if let Err(e) = self.waker.wake() {
            warn!(error = %e, "cannot wake the event loop");
        }
    }
}

/// Runs the proxy on the calling thread until a [`Stopper`] (handed to
/// `on_start` once the listeners are bound) stops it.
pub fn run(proxy: Proxy, on_start: impl FnOnce(Stopper)) -> Result<(), StartError> {
    let poll = Poll::new().map_err(StartError::Poll)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(StartError::Poll)?);
    let flag = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(Mutex::new(None));
    let resolver = Resolver::new(waker.clone());
    let mut event_loop = Loop {
        poll,
        proxy,
        listeners: HashMap::new(),
        listener_slots: Slab::new(),
        conns: Slab::new(),
        timers: BTreeSet::new(),
        resolver,
        dirty: Vec::new(),
        dirty_listeners: Vec::new(),
        closed: Vec::new(),
    };
    event_loop.open_initial_listeners()?;
    on_start(Stopper { flag: flag.clone(), reload: reload.clone(), waker });
    event_loop.serve(&flag, &reload);
    Ok(())
}

/// A bound listener.
struct Listener {
    id: ListenerId,
    socket: TcpListener,
}

/// One client connection (none for a probe), its upstream connection and
/// their session.
struct Conn {
    session: Session,
    client: Option<TcpStream>,
    broker: Option<TcpStream>,
    /// The broker socket is connecting (waiting for its writable edge).
    connecting: bool,
    /// Addresses still to try for the upstream connection.
    candidates: Vec<SocketAddr>,
    /// Remembered edge readiness, per side: [client, broker].
    readable: [bool; 2],
    writable: [bool; 2],
    /// The socket is registered for writable edges too. Only while a write
    /// is blocked: otherwise every ACK from the peer would wake the loop.
    write_interest: [bool; 2],
    /// Pipes for splicing frames straight through, by source side (made on
    /// first use).
    pipes: [Option<sys::Pipe>; 2],
    /// The deadline registered in the timer set.
    timer: Option<Instant>,
    span: tracing::Span,
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Downstream => 0,
        Side::Upstream => 1,
    }
}

fn token(slot: usize, side: Side) -> Token {
    Token(slot * 2 + side_index(side))
}

fn from_token(token: Token) -> (usize, Side) {
    let side = if token.0.is_multiple_of(2) { Side::Downstream } else { Side::Upstream };
    (token.0 / 2, side)
}

struct Loop {
    poll: Poll,
    proxy: Proxy,
    listeners: HashMap<ListenerId, usize>,
    listener_slots: Slab<Listener>,
    conns: Slab<Conn>,
    timers: BTreeSet<(Instant, usize)>,
    resolver: Resolver,
    /// Connections with remembered readiness left to serve (budget ran out).
    dirty: Vec<usize>,
    /// Listeners whose accept budget ran out with connections still waiting.
    dirty_listeners: Vec<usize>,
    /// Connections to remove at the end of this iteration.
    closed: Vec<usize>,
}

impl Loop {
    fn open_initial_listeners(&mut self) -> Result<(), StartError> {
        let mut probe = false;
        while let Some(action) = self.proxy.poll_action() {
            match action {
                ProxyAction::Listen { id, addr } => {
                    let socket =
                        TcpListener::bind(addr).map_err(|error| StartError::Bind { id, addr, error })?;
                    self.add_listener(id, addr, socket).map_err(|error| StartError::Bind {
                        id,
                        addr,
                        error,
                    })?;
                }
                ProxyAction::Unlisten { .. } => {}
                ProxyAction::Probe => probe = true,
            }
        }
        if probe {
            self.start_probe();
        }
        Ok(())
    }

    fn add_listener(&mut self, id: ListenerId, addr: SocketAddr, socket: TcpListener) -> io::Result<()> {
        if self.listener_slots.len() >= MAX_LISTENERS {
            return Err(io::Error::other("too many listeners"));
        }
        let slot = self.listener_slots.insert(Listener { id, socket });
        let registered = match self.listener_slots.get_mut(slot) {
            Some(listener) => self.poll.registry().register(
                &mut listener.socket,
                Token(LISTENER_BASE - slot),
                Interest::READABLE,
            ),
            None => Err(io::Error::other("listener slot vanished")),
        };
        if let Err(e) = registered {
            self.listener_slots.remove(slot);
            return Err(e);
        }
        self.listeners.insert(id, slot);
        info!(listener = %id, %addr, "listening");
        Ok(())
    }

    /// Carries out the proxy's listener changes.
    fn apply_actions(&mut self) {
        while let Some(action) = self.proxy.poll_action() {
            match action {
                ProxyAction::Listen { id, addr } => {
                    let bound =
                        TcpListener::bind(addr).and_then(|socket| self.add_listener(id, addr, socket));
                    if let Err(error) = bound {
                        error!(listener = %id, %addr, %error, "cannot listen");
                        self.proxy.handle_listen_failed(id, &error);
                    }
                }
                ProxyAction::Unlisten { id } => {
                    if let Some(slot) = self.listeners.remove(&id)
                        && let Some(mut listener) = self.listener_slots.remove(slot)
                    {
                        let _ = self.poll.registry().deregister(&mut listener.socket);
                        info!(listener = %id, "stopped listening");
                    }
                }
                ProxyAction::Probe => self.start_probe(),
            }
        }
    }

    /// Starts the proxy's own Metadata probe of the cluster: a connection
    /// without a client.
    fn start_probe(&mut self) {
        let Some(session) = self.proxy.probe(Instant::now(), SystemTime::now()) else { return };
        let span = info_span!("probe", id = session.id());
        let slot = self.conns.insert(Conn {
            session,
            client: None,
            broker: None,
            connecting: false,
            candidates: Vec::new(),
            readable: [false; 2],
            writable: [false; 2],
            write_interest: [false; 2],
            pipes: [None, None],
            timer: None,
            span,
        });
        self.pump(slot);
    }

    fn serve(&mut self, stop: &AtomicBool, reload: &Mutex<Option<ProxyConfig>>) {
        let mut events = Events::with_capacity(EVENTS);
        let mut stopping: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if stopping.is_none() && stop.load(Ordering::SeqCst) {
                info!("shutting down");
                stopping = Some(now + SHUTDOWN_GRACE);
                self.stop_listening();
                for slot in self.conns.slots() {
                    if let Some(conn) = self.conns.get_mut(slot) {
                        conn.session.shutdown(now);
                    }
                    self.pump(slot);
                }
                self.reap();
            }
            if let Some(deadline) = stopping
                && (self.conns.is_empty() || now >= deadline)
            {
                return;
            }
            let timeout = if self.dirty.is_empty() && self.dirty_listeners.is_empty() {
                let next_timer = [self.timers.first().map(|(t, _)| *t), self.proxy.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min()
                    .map(|t| t.saturating_duration_since(now));
                match (next_timer, stopping) {
                    (Some(t), Some(d)) => Some(t.min(d.saturating_duration_since(now))),
                    (t, None) => t,
                    (None, Some(d)) => Some(d.saturating_duration_since(now)),
                }
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                error!(error = %e, "epoll failed");
                return;
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {
                        if let Some(config) = reload.lock().unwrap_or_else(PoisonError::into_inner).take() {
                            self.proxy.reload(config);
                        }
                        self.on_resolved()
                    }
                    Token(t) if (LISTENER_BASE - MAX_LISTENERS..=LISTENER_BASE).contains(&t) => {
                        self.accept(LISTENER_BASE - t)
                    }
                    t => {
                        let (slot, side) = from_token(t);
                        let Some(conn) = self.conns.get_mut(slot) else { continue };
                        let i = side_index(side);
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            conn.readable[i] = true;
                        }
                        if event.is_writable() || event.is_write_closed() || event.is_error() {
                            conn.writable[i] = true;
                        }
                        if side == Side::Upstream && conn.connecting && (conn.writable[1] || event.is_error())
                        {
                            self.finish_connect(slot);
                        } else if conn.writable[i] && conn.write_interest[i] {
                            self.set_write_interest(slot, side, false);
                        }
                        self.pump(slot);
                    }
                }
            }
            for slot in std::mem::take(&mut self.dirty) {
                self.pump(slot);
            }
            for listener_slot in std::mem::take(&mut self.dirty_listeners) {
                self.accept(listener_slot);
            }
            self.fire_timers();
            self.reap();
            let now = Instant::now();
            if self.proxy.poll_timeout().is_some_and(|t| t <= now) {
                self.proxy.handle_timeout(now);
                self.apply_actions();
            }
        }
    }

    fn stop_listening(&mut self) {
        for (_, slot) in self.listeners.drain() {
            if let Some(mut listener) = self.listener_slots.remove(slot) {
                let _ = self.poll.registry().deregister(&mut listener.socket);
            }
        }
    }

    fn accept(&mut self, listener_slot: usize) {
        for _ in 0..BUDGET {
            let Some(listener) = self.listener_slots.get(listener_slot) else { return };
            let id = listener.id;
            let (client, peer) = match listener.socket.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    warn!(listener = %id, error = %e, "accept failed");
                    return;
                }
            };
            let session = match self.proxy.accept(Instant::now(), SystemTime::now(), id, peer) {
                Ok(session) => session,
                Err(error) => {
                    warn!(listener = %id, %peer, %error, "connection refused");
                    continue;
                }
            };
            if let Err(error) = client.set_nodelay(true) {
                debug!(%error, "cannot set TCP_NODELAY on the client socket");
            }
            let span = info_span!("conn", id = session.id(), %peer, listener = %id);
            let slot = self.conns.insert(Conn {
                session,
                client: Some(client),
                broker: None,
                connecting: false,
                candidates: Vec::new(),
                readable: [false; 2],
                // A fresh connection's send buffer is empty.
                writable: [true, false],
                write_interest: [false; 2],
                pipes: [None, None],
                timer: None,
                span,
            });
            let Some(conn) = self.conns.get_mut(slot) else { continue };
            if let Some(client) = conn.client.as_mut()
                && let Err(error) =
                    self.poll.registry().register(client, token(slot, Side::Downstream), Interest::READABLE)
            {
                conn.session.handle_io_error(Instant::now(), Side::Downstream, &error);
            }
            self.pump(slot);
        }
        // Budget used up: more may be waiting, and the edge will not repeat.
        self.dirty_listeners.push(listener_slot);
    }

    /// Serves one connection: events, writes, reads, until nothing moves or
    /// its budget is spent.
    fn pump(&mut self, slot: usize) {
        let mut budget = BUDGET;
        loop {
            let Some(conn) = self.conns.get_mut(slot) else { return };
            let _entered = conn.span.clone().entered();
            let mut progress = false;
            let mut observed = Vec::new();
            let mut connect = None;
            let mut closed = None;
            while let Some(event) = conn.session.poll_event() {
                match event {
                    Event::Connect(target) => connect = Some(target),
                    Event::Observed(o) => observed.push(o),
                    Event::Route(name) => match self.proxy.route_sni(name.as_deref()) {
                        Some(route) => conn.session.handle_route(Instant::now(), route),
                        None => conn.session.handle_no_route(Instant::now(), name.as_deref().unwrap_or("")),
                    },
                    Event::Closed(reason) => closed = Some(reason),
                }
            }
            if let Some(reason) = closed {
                // The session logged failures itself (rate-limited).
                debug!(%reason, "connection closed");
                let now = Instant::now();
                for o in observed {
                    self.proxy.handle_observed(now, o);
                }
                self.apply_actions();
                self.closed.push(slot);
                return;
            }
            if !observed.is_empty() {
                let now = Instant::now();
                for o in observed {
                    self.proxy.handle_observed(now, o);
                }
                self.apply_actions();
                continue;
            }
            if let Some(target) = connect {
                self.start_connect(slot, target);
                continue;
            }
            let mut blocked = [false; 2];
            for side in [Side::Upstream, Side::Downstream] {
                // Spliced bytes already in the pipe go before anything queued.
                let (moved, full) = drain_pipe(conn, side.peer());
                progress |= moved;
                let (moved, full) = if full { (false, true) } else { flush(conn, side) };
                progress |= moved;
                blocked[side_index(side)] = full && !conn.write_interest[side_index(side)];
            }
            for side in [Side::Upstream, Side::Downstream] {
                if blocked[side_index(side)] {
                    self.set_write_interest(slot, side, true);
                }
            }
            let Some(conn) = self.conns.get_mut(slot) else { return };
            for side in [Side::Downstream, Side::Upstream] {
                let i = side_index(side);
                if !conn.readable[i] || conn.pipes[i].as_ref().is_some_and(|p| p.filled > 0) {
                    continue;
                }
                if let Some(window) = conn.session.splice_window(side) {
                    progress |= splice_in(conn, side, window);
                } else if conn.session.wants_read(side) {
                    progress |= read(conn, side);
                }
            }
            progress |= conn.session.has_events();
            if !progress {
                self.rearm_timer(slot);
                return;
            }
            budget -= 1;
            if budget == 0 {
                self.dirty.push(slot);
                self.rearm_timer(slot);
                return;
            }
        }
    }

    /// Adds or drops writable edges for one socket of a connection.
    fn set_write_interest(&mut self, slot: usize, side: Side, on: bool) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        let i = side_index(side);
        let socket = match side {
            Side::Downstream => conn.client.as_mut(),
            Side::Upstream => conn.broker.as_mut(),
        };
        let Some(socket) = socket else { return };
        let interest = if on { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
        match self.poll.registry().reregister(socket, token(slot, side), interest) {
            Ok(()) => conn.write_interest[i] = on,
            Err(error) => conn.session.handle_io_error(Instant::now(), side, &error),
        }
    }

    fn rearm_timer(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        let next = conn.session.poll_timeout();
        if next != conn.timer {
            if let Some(old) = conn.timer.take() {
                self.timers.remove(&(old, slot));
            }
            if let Some(new) = next {
                self.timers.insert((new, slot));
            }
            conn.timer = next;
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(&(when, slot)) = self.timers.first() {
            if when > now {
                return;
            }
            self.timers.remove(&(when, slot));
            if let Some(conn) = self.conns.get_mut(slot) {
                conn.timer = None;
                conn.session.handle_timeout(now);
            }
            self.pump(slot);
        }
    }

    fn start_connect(&mut self, slot: usize, target: ConnectTarget) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        let _entered = conn.span.clone().entered();
        debug!(%target, "connecting upstream");
        let direct = target.addr_override.or_else(|| target.host.parse().ok());
        match direct {
            Some(ip) => {
                conn.candidates = vec![SocketAddr::new(ip, target.port)];
                self.try_next_candidate(slot, None);
            }
            None => self.resolver.resolve(slot, conn.session.id(), target),
        }
    }

    /// DNS answers arrived (the waker fired).
    fn on_resolved(&mut self) {
        for answer in self.resolver.answers() {
            let Some(conn) = self.conns.get_mut(answer.slot) else { continue };
            if conn.session.id() != answer.session {
                continue; // The connection is gone and the slot reused.
            }
            match answer.result {
                Ok(addrs) if !addrs.is_empty() => {
                    conn.candidates = addrs;
                    conn.candidates.reverse();
                    self.try_next_candidate(answer.slot, None);
                }
                Ok(_) => conn.session.handle_connect_failed(Instant::now(), &"the name has no address"),
                Err(e) => conn.session.handle_connect_failed(Instant::now(), &e),
            }
            self.pump(answer.slot);
        }
    }

    /// Connects to the next candidate address, or reports `last_error`.
    fn try_next_candidate(&mut self, slot: usize, last_error: Option<io::Error>) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        let mut last_error = last_error;
        while let Some(addr) = conn.candidates.pop() {
            match TcpStream::connect(addr) {
                Ok(mut stream) => {
                    match self.poll.registry().register(
                        &mut stream,
                        token(slot, Side::Upstream),
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        Ok(()) => {
                            conn.broker = Some(stream);
                            conn.connecting = true;
                            conn.readable[1] = false;
                            conn.writable[1] = false;
                            // Writable edges announce the end of the connect.
                            conn.write_interest[1] = true;
                            return;
                        }
                        Err(e) => last_error = Some(e),
                    }
                }
                Err(e) => last_error = Some(e),
            }
        }
        let error = last_error.unwrap_or_else(|| io::Error::other("no address to connect to"));
        conn.session.handle_connect_failed(Instant::now(), &error);
    }

    /// The connecting broker socket signalled: connected, or failed.
    fn finish_connect(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else { return };
        let Some(stream) = conn.broker.as_mut() else { return };
        let error = match stream.take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => match stream.peer_addr() {
                Ok(_) => None,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    // Spurious wake-up: still connecting.
                    conn.writable[1] = false;
                    return;
                }
                Err(e) => Some(e),
            },
        };
        conn.connecting = false;
        match error {
            None => {
                if let Err(error) = stream.set_nodelay(true) {
                    debug!(%error, "cannot set TCP_NODELAY on the broker socket");
                }
                conn.session.handle_connected(Instant::now());
                self.set_write_interest(slot, Side::Upstream, false);
            }
            Some(e) => {
                if let Some(mut old) = conn.broker.take() {
                    let _ = self.poll.registry().deregister(&mut old);
                }
                conn.readable[1] = false;
                conn.writable[1] = false;
                self.try_next_candidate(slot, Some(e));
            }
        }
    }

    /// Removes the connections that closed during this iteration.
    fn reap(&mut self) {
        for slot in std::mem::take(&mut self.closed) {
            if let Some(mut conn) = self.conns.remove(slot) {
                let registry = self.poll.registry();
                if let Some(mut client) = conn.client.take() {
                    let _ = registry.deregister(&mut client);
                }
                if let Some(mut broker) = conn.broker.take() {
                    let _ = registry.deregister(&mut broker);
                }
                if let Some(t) = conn.timer {
                    self.timers.remove(&(t, slot));
                }
                if conn.session.is_probe() {
                    self.proxy.handle_probe_closed(Instant::now());
                    self.apply_actions();
                }
            }
        }
    }
}

/// Writes what is queued for `side` until done or the socket is full:
/// (bytes moved, the socket is full and needs a writable edge).
fn flush(conn: &mut Conn, side: Side) -> (bool, bool) {
    let i = side_index(side);
    if !conn.writable[i] || !conn.session.wants_write(side) {
        return (false, false);
    }
    let Some(mut stream) = socket(&conn.client, &conn.broker, conn.connecting, side) else {
        return (false, false);
    };
    let mut progress = false;
    for _ in 0..BUDGET {
        let mut short = false;
        let written = conn.session.write_to(Instant::now(), side, |iov| {
            let offered: usize = iov.iter().map(|s| s.len()).sum();
            let n = stream.write_vectored(iov)?;
            short = n < offered;
            Ok::<_, io::Error>(n)
        });
        match written {
            // A short write means the send buffer is full: the next write
            // would only say WouldBlock.
            Ok(WriteOutcome::Written(n)) if n > 0 && short => {
                conn.writable[i] = false;
                return (true, true);
            }
            Ok(WriteOutcome::Written(n)) if n > 0 => progress = true,
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                conn.writable[i] = false;
                return (progress, true);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                conn.session.handle_io_error(Instant::now(), side, &e);
                return (true, false);
            }
        }
    }
    (progress, false)
}

/// `side`'s socket, when connected (from the fields, so the rest of the
/// connection stays free to borrow).
fn socket<'a>(
    client: &'a Option<TcpStream>,
    broker: &'a Option<TcpStream>,
    connecting: bool,
    side: Side,
) -> Option<&'a TcpStream> {
    match side {
        Side::Downstream => client.as_ref(),
        Side::Upstream => broker.as_ref().filter(|_| !connecting),
    }
}

/// The descriptor of `side`'s socket, when connected.
fn socket_fd(conn: &Conn, side: Side) -> Option<std::os::fd::RawFd> {
    use std::os::fd::AsRawFd;
    socket(&conn.client, &conn.broker, conn.connecting, side).map(AsRawFd::as_raw_fd)
}

/// Splices up to `window` bytes of a cut-through frame from `side`'s socket
/// into its pipe, then on into the other side's socket.
fn splice_in(conn: &mut Conn, side: Side, window: usize) -> bool {
    let i = side_index(side);
    if conn.pipes[i].is_none() {
        match sys::Pipe::new() {
            Ok(pipe) => conn.pipes[i] = Some(pipe),
            Err(error) => {
                debug!(%error, "no pipe for splicing; copying instead");
                return read(conn, side);
            }
        }
    }
    let Some(source) = socket_fd(conn, side) else { return false };
    let Some(pipe) = conn.pipes[i].as_mut() else { return false };
    match pipe.fill_from(source, window) {
        Ok(0) => {
            // End of stream: let the session see it the ordinary way.
            conn.readable[i] = false;
            let _ = conn.session.read_from(Instant::now(), side, |_| Ok::<_, io::Error>(0));
            true
        }
        Ok(n) => {
            conn.session.handle_spliced(Instant::now(), side, n);
            drain_pipe(conn, side);
            true
        }
        Err(e) => read_failed(conn, side, &e),
    }
}

/// A read or splice from `side` failed: whether the connection moved (an
/// error it must see) or must wait for the next readable edge.
fn read_failed(conn: &mut Conn, side: Side, error: &io::Error) -> bool {
    match error.kind() {
        io::ErrorKind::WouldBlock => {
            conn.readable[side_index(side)] = false;
            false
        }
        io::ErrorKind::Interrupted => true,
        _ => {
            conn.session.handle_io_error(Instant::now(), side, error);
            true
        }
    }
}

/// Moves what the pipe of source `side` holds into the other side's socket:
/// (bytes moved, the socket is full).
fn drain_pipe(conn: &mut Conn, side: Side) -> (bool, bool) {
    let i = side_index(side);
    let to = side.peer();
    let j = side_index(to);
    if conn.pipes[i].as_ref().is_none_or(|p| p.filled == 0) {
        return (false, false);
    }
    if !conn.writable[j] {
        return (false, true);
    }
    let Some(dest) = socket_fd(conn, to) else { return (false, false) };
    let Some(pipe) = conn.pipes[i].as_mut() else { return (false, false) };
    match pipe.drain_into(dest) {
        Ok(n) => {
            let full = pipe.filled > 0;
            if full {
                conn.writable[j] = false;
            }
            (n > 0, full)
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            conn.writable[j] = false;
            (false, true)
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => (false, false),
        Err(e) => {
            conn.session.handle_io_error(Instant::now(), to, &e);
            (true, false)
        }
    }
}

/// Reads once from `side` into the session.
fn read(conn: &mut Conn, side: Side) -> bool {
    let i = side_index(side);
    let Some(stream) = socket(&conn.client, &conn.broker, conn.connecting, side) else { return false };
    let mut short = false;
    let outcome = conn.session.read_from(Instant::now(), side, |buf| {
        let spare = buf.capacity() - buf.len();
        let n = sys::read_into(stream, buf)?;
        short = n < spare;
        Ok::<_, io::Error>(n)
    });
    match outcome {
        // A short read drained the socket: the next read would only say
        // WouldBlock, and new data brings a new edge.
        Ok(ReadOutcome::Read(_)) if short => {
            conn.readable[i] = false;
            true
        }
        Ok(ReadOutcome::Read(_)) => true,
        Ok(ReadOutcome::Eof) => {
            conn.readable[i] = false;
            true
        }
        Ok(ReadOutcome::Paused) => false,
        Err(e) => read_failed(conn, side, &e),
    }
}
