//! The epoll loop: listeners, connections, timers, DNS answers and the
//! control handle, on one thread.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use kafka_proxy_core::proxy::Proxy;
use kafka_proxy_core::route::ListenerId;
use kafka_proxy_core::sasl::{AuthRequest, Verdict};
use kafka_proxy_core::session::{ConnectTarget, Endpoint, Session, Side};
use kafka_proxy_runtime::actions::{self, Host};
use kafka_proxy_runtime::auth::Authenticator;
use kafka_proxy_runtime::{
    Control, DrainCuts, RunError, RunOptions, Telemetry, Watch, connection_refused, net, observe_proxy,
};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use std::sync::mpsc::{Receiver, Sender, channel};
use tracing::{debug, error, info, info_span, warn};

use crate::conn::{self, BUDGET, Conn};
use crate::dns::Resolver;
use crate::slab::Slab;

/// epoll events fetched per wake-up.
const EVENTS: usize = 1024;

const WAKER: Token = Token(usize::MAX);
/// Listener tokens count down from below the waker.
const LISTENER_BASE: usize = usize::MAX - 1;
/// Listener tokens live in `[LISTENER_BASE - MAX_LISTENERS, LISTENER_BASE]`.
const MAX_LISTENERS: usize = 1 << 16;

pub(crate) fn token(slot: usize, side: Side) -> Token {
    Token(slot * 2 + conn::side_index(side))
}

fn from_token(token: Token) -> (usize, Side) {
    let side = if token.0.is_multiple_of(2) { Side::Downstream } else { Side::Upstream };
    (token.0 / 2, side)
}

/// A bound listener.
struct Listener {
    id: ListenerId,
    socket: TcpListener,
}

/// How the loop ends.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// Serving.
    No,
    /// Draining: connections finish what they forwarded; at `deadline` the
    /// rest are shut down.
    Draining { deadline: Instant },
    /// Every connection is closing; the loop ends when none is left.
    Stopping,
}

/// Everything but the proxy: sockets, sessions, timers. Split from the
/// proxy so both can be borrowed at once.
pub(crate) struct Io {
    pub(crate) poll: Poll,
    listeners: HashMap<ListenerId, usize>,
    listener_slots: Slab<Listener>,
    /// Listeners being closed by a drain: their backlog is accepted first.
    retiring: Vec<Listener>,
    /// Boxed: the slab's vector then grows by a pointer per connection, not
    /// by a whole `Conn`, and leaves no large freed copies behind.
    pub(crate) conns: Slab<Box<Conn>>,
    timers: BTreeSet<(Instant, usize)>,
    resolver: Resolver,
    /// Connections with remembered readiness left to serve (budget ran out),
    /// or new ones to start.
    dirty: Vec<usize>,
    /// Listeners whose accept budget ran out with connections still waiting.
    dirty_listeners: Vec<usize>,
    /// Connections to remove at the end of this iteration.
    pub(crate) closed: Vec<usize>,
    /// Checks PLAIN logins sessions hand out; verdicts come back on
    /// `verdicts` and wake the loop.
    authenticator: Option<Arc<dyn Authenticator>>,
    verdicts: (Sender<VerdictFor>, Receiver<VerdictFor>),
    waker: Arc<Waker>,
}

/// A verdict for the session `session` in `slot`.
struct VerdictFor {
    slot: usize,
    session: u64,
    request: u64,
    verdict: Verdict,
}

/// The loop: the proxy and its I/O.
pub(crate) struct Loop {
    proxy: Proxy,
    io: Io,
    /// Metrics and readiness, when exported.
    telemetry: Option<Arc<Telemetry>>,
    /// What a drain deadline cut.
    cuts: DrainCuts,
}

impl Host for Io {
    fn listen(&mut self, id: ListenerId, addr: SocketAddr, listener: std::net::TcpListener) {
        if let Err(error) = self.add_listener(id, TcpListener::from_std(listener)) {
            error!(listener = %id, %addr, %error, "cannot watch the listener");
        }
    }

    fn unlisten(&mut self, id: ListenerId) {
        if let Some(slot) = self.listeners.remove(&id)
            && let Some(mut listener) = self.listener_slots.remove(slot)
        {
            let _ = self.poll.registry().deregister(&mut listener.socket);
            self.retiring.push(listener);
        }
    }

    fn spawn(&mut self, session: Session) {
        let span = info_span!("probe", id = session.id());
        let watch = Watch::new(None, None, span.clone());
        let slot = self.conns.insert(Box::new(Conn::new(session, None, span, watch)));
        self.dirty.push(slot);
    }
}

impl Io {
    fn add_listener(&mut self, id: ListenerId, socket: TcpListener) -> io::Result<()> {
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
        Ok(())
    }
}

impl Loop {
    /// Creates epoll, binds the proxy's first listeners and registers the
    /// waker with `control`.
    pub(crate) fn start(proxy: Proxy, options: &RunOptions, control: &Control) -> Result<Loop, RunError> {
        let poll = Poll::new().map_err(|error| RunError::Start { what: "epoll instance", error })?;
        let waker = Arc::new(
            Waker::new(poll.registry(), WAKER)
                .map_err(|error| RunError::Start { what: "event loop waker", error })?,
        );
        let resolver = Resolver::new(waker.clone());
        let mut event_loop = Loop {
            proxy,
            io: Io {
                poll,
                listeners: HashMap::new(),
                listener_slots: Slab::new(),
                retiring: Vec::new(),
                conns: Slab::new(),
                timers: BTreeSet::new(),
                resolver,
                dirty: Vec::new(),
                dirty_listeners: Vec::new(),
                closed: Vec::new(),
                authenticator: options.authenticator.clone(),
                verdicts: channel(),
                waker: waker.clone(),
            },
            telemetry: options.telemetry.clone(),
            cuts: DrainCuts::default(),
        };
        let reuse_port = event_loop.proxy.config().socket.reuse_port;
        actions::apply_initial(&mut event_loop.proxy, &mut event_loop.io, reuse_port)?;
        if let Some(telemetry) = &event_loop.telemetry {
            telemetry.status().set_listening();
        }
        observe_proxy(event_loop.telemetry.as_deref(), &event_loop.proxy);
        control.set_waker(move || {
            if let Err(e) = waker.wake() {
                warn!(error = %e, "cannot wake the event loop");
            }
        });
        Ok(event_loop)
    }

    /// Serves until stopped, or until a drain ends.
    pub(crate) fn serve(mut self, control: &Control) {
        let mut events = Events::with_capacity(EVENTS);
        let mut ending = Ending::No;
        loop {
            ending = self.take_commands(control, ending);
            let now = Instant::now();
            if let Ending::Draining { deadline } = ending
                && now >= deadline
            {
                let left = self.io.conns.len();
                warn!(connections = left, "drain deadline reached: closing the connections still open");
                for slot in self.io.conns.slots() {
                    if let Some(conn) = self.io.conns.get(slot) {
                        let _entered = conn.span.enter();
                        self.cuts.cut(&conn.session);
                    }
                }
                self.cuts.summary();
                ending = self.stop_all();
            }
            if !matches!(ending, Ending::No) && self.io.conns.is_empty() {
                return;
            }
            self.apply_actions();
            let timeout = if self.io.dirty.is_empty() && self.io.dirty_listeners.is_empty() {
                let mut next = [self.io.timers.first().map(|(t, _)| *t), self.proxy.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min();
                if let Ending::Draining { deadline } = ending {
                    next = Some(next.map_or(deadline, |t| t.min(deadline)));
                }
                next.map(|t| t.saturating_duration_since(now))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.io.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                error!(error = %e, "epoll failed");
                return;
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {
                        self.on_resolved();
                        self.on_verdicts();
                    }
                    Token(t) if (LISTENER_BASE - MAX_LISTENERS..=LISTENER_BASE).contains(&t) => {
                        self.accept(LISTENER_BASE - t)
                    }
                    t => {
                        let (slot, side) = from_token(t);
                        let Some(conn) = self.io.conns.get_mut(slot) else { continue };
                        let i = conn::side_index(side);
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            conn.readable[i] = true;
                        }
                        if event.is_read_closed() || event.is_error() {
                            // The peer's end of stream (or an error) is waiting
                            // behind whatever it sent last: read until it shows.
                            conn.read_closed[i] = true;
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
            for slot in std::mem::take(&mut self.io.dirty) {
                self.pump(slot);
            }
            for listener_slot in std::mem::take(&mut self.io.dirty_listeners) {
                self.accept(listener_slot);
            }
            self.fire_timers();
            self.reap();
            let now = Instant::now();
            if self.proxy.poll_timeout().is_some_and(|t| t <= now) {
                self.proxy.handle_timeout(now);
            }
        }
    }

    /// Applies what the control handle asked for since the last look.
    fn take_commands(&mut self, control: &Control, ending: Ending) -> Ending {
        let commands = control.take();
        if let Some(config) = commands.reload {
            self.proxy.reload(config);
            observe_proxy(self.telemetry.as_deref(), &self.proxy);
        }
        let mut ending = ending;
        if let Some(timeout) = commands.drain
            && matches!(ending, Ending::No)
        {
            info!(connections = self.io.conns.len(), timeout_ms = timeout.as_millis() as u64, "draining");
            let now = Instant::now();
            self.proxy.drain();
            self.apply_actions();
            for slot in self.io.conns.slots() {
                if let Some(conn) = self.io.conns.get_mut(slot) {
                    let _entered = conn.span.enter();
                    conn.session.drain(now);
                }
                self.pump(slot);
            }
            self.reap();
            ending = Ending::Draining { deadline: now + timeout };
        }
        if commands.stop && !matches!(ending, Ending::Stopping) {
            info!(connections = self.io.conns.len(), "stopping");
            ending = self.stop_all();
        }
        ending
    }

    /// Closes every listener and shuts every session down.
    fn stop_all(&mut self) -> Ending {
        self.proxy.drain();
        self.apply_actions();
        self.io.retiring.clear();
        let now = Instant::now();
        for slot in self.io.conns.slots() {
            if let Some(conn) = self.io.conns.get_mut(slot) {
                let _entered = conn.span.enter();
                conn.session.shutdown(now);
            }
            self.pump(slot);
        }
        self.reap();
        Ending::Stopping
    }

    /// Carries out the proxy's actions; listeners a drain closed have their
    /// backlog accepted first (those clients get a clean close, not a reset).
    fn apply_actions(&mut self) {
        let reuse_port = self.proxy.config().socket.reuse_port;
        actions::apply(&mut self.proxy, &mut self.io, reuse_port);
        observe_proxy(self.telemetry.as_deref(), &self.proxy);
        for listener in std::mem::take(&mut self.io.retiring) {
            for _ in 0..EVENTS {
                match listener.socket.accept() {
                    Ok((client, peer)) => self.serve_client(listener.id, client, peer),
                    Err(_) => break,
                }
            }
        }
    }

    fn accept(&mut self, listener_slot: usize) {
        for _ in 0..BUDGET {
            let Some(listener) = self.io.listener_slots.get(listener_slot) else { return };
            let id = listener.id;
            match listener.socket.accept() {
                Ok((client, peer)) => self.serve_client(id, client, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    warn!(listener = %id, error = %e, "accept failed");
                    return;
                }
            }
        }
        // Budget used up: more may be waiting, and the edge will not repeat.
        self.io.dirty_listeners.push(listener_slot);
    }

    /// Starts serving an accepted client.
    fn serve_client(&mut self, id: ListenerId, mut client: TcpStream, peer: SocketAddr) {
        let session = match self.proxy.accept(Instant::now(), SystemTime::now(), id, peer) {
            Ok(session) => session,
            Err(error) => {
                // Dropping `client` closes it at once.
                connection_refused(self.telemetry.as_deref(), &self.proxy, id, peer, &error);
                return;
            }
        };
        if let Err(error) = net::configure(&client, &self.proxy.config().socket) {
            debug!(%error, "cannot set socket options on the client socket");
        }
        let span =
            info_span!("conn", id = session.id(), %peer, listener = %id, client_id = tracing::field::Empty);
        let watch = Watch::new(self.telemetry.as_ref(), Some(id), span.clone());
        let slot = self.io.conns.insert(Box::new(Conn::new(session, None, span, watch)));
        let registered =
            self.io.poll.registry().register(&mut client, token(slot, Side::Downstream), Interest::READABLE);
        let Some(conn) = self.io.conns.get_mut(slot) else { return };
        conn.client = Some(client);
        // A fresh connection's send buffer is empty.
        conn.writable[0] = true;
        if let Err(error) = registered {
            conn.session.handle_io_error(Instant::now(), Side::Downstream, &error);
        }
        self.pump(slot);
    }

    /// Serves one connection until nothing moves or its budget is spent.
    fn pump(&mut self, slot: usize) {
        let mut budget = BUDGET;
        loop {
            let Some(conn) = self.io.conns.get_mut(slot) else { return };
            let _entered = conn.span.clone().entered();
            let step = conn::step(conn, &mut self.proxy);
            drop(_entered);
            if step.proxy_changed {
                self.apply_actions();
            }
            if step.closed {
                self.io.closed.push(slot);
                return;
            }
            if let Some(request) = step.authenticate {
                self.start_authenticate(slot, request);
            }
            if let Some(target) = step.connect {
                self.start_connect(slot, target);
                continue;
            }
            for side in [Side::Upstream, Side::Downstream] {
                if step.blocked[conn::side_index(side)] {
                    self.set_write_interest(slot, side, true);
                }
            }
            if !step.progress {
                self.rearm_timer(slot);
                return;
            }
            budget -= 1;
            if budget == 0 {
                self.io.dirty.push(slot);
                self.rearm_timer(slot);
                return;
            }
        }
    }

    /// Adds or drops writable edges for one socket of a connection.
    fn set_write_interest(&mut self, slot: usize, side: Side, on: bool) {
        let Some(conn) = self.io.conns.get_mut(slot) else { return };
        let i = conn::side_index(side);
        if conn.write_interest[i] == on {
            return;
        }
        let socket = match side {
            Side::Downstream => conn.client.as_mut(),
            Side::Upstream => conn.broker.as_mut(),
        };
        let Some(socket) = socket else { return };
        let interest = if on { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
        match self.io.poll.registry().reregister(socket, token(slot, side), interest) {
            Ok(()) => conn.write_interest[i] = on,
            Err(error) => conn.session.handle_io_error(Instant::now(), side, &error),
        }
    }

    fn rearm_timer(&mut self, slot: usize) {
        let Some(conn) = self.io.conns.get_mut(slot) else { return };
        let next = conn.deadline();
        if next != conn.timer {
            if let Some(old) = conn.timer.take() {
                self.io.timers.remove(&(old, slot));
            }
            if let Some(new) = next {
                self.io.timers.insert((new, slot));
            }
            conn.timer = next;
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(&(when, slot)) = self.io.timers.first() {
            if when > now {
                return;
            }
            self.io.timers.remove(&(when, slot));
            if let Some(conn) = self.io.conns.get_mut(slot) {
                conn.timer = None;
                let _entered = conn.span.enter();
                conn.session.handle_timeout(now);
            }
            self.pump(slot);
        }
    }

    fn start_connect(&mut self, slot: usize, target: ConnectTarget) {
        let Some(conn) = self.io.conns.get_mut(slot) else { return };
        debug!(parent: &conn.span, %target, "connecting upstream");
        match target.endpoint() {
            Endpoint::Addr(addr) => {
                conn.candidates = vec![addr];
                self.try_next_candidate(slot, None);
            }
            Endpoint::Name { host, port } => self.io.resolver.resolve(slot, conn.session.id(), host, port),
        }
    }

    /// Hands a login to the external authenticator; its verdict comes back
    /// through the channel and the waker.
    fn start_authenticate(&mut self, slot: usize, request: AuthRequest) {
        let Some(conn) = self.io.conns.get(slot) else { return };
        let session = conn.session.id();
        let (sender, waker) = (self.io.verdicts.0.clone(), self.io.waker.clone());
        let id = request.id;
        let done = Box::new(move |verdict| {
            if sender.send(VerdictFor { slot, session, request: id, verdict }).is_ok()
                && let Err(e) = waker.wake()
            {
                warn!(error = %e, "cannot wake the event loop after a verdict");
            }
        });
        kafka_proxy_runtime::auth::authenticate(self.io.authenticator.as_ref(), request, done);
    }

    /// Verdicts arrived (the waker fired).
    fn on_verdicts(&mut self) {
        let arrived: Vec<VerdictFor> = self.io.verdicts.1.try_iter().collect();
        for v in arrived {
            let Some(conn) = self.io.conns.get_mut(v.slot) else { continue };
            if conn.session.id() != v.session {
                continue; // The connection is gone and the slot reused.
            }
            conn.session.handle_verdict(Instant::now(), v.request, v.verdict);
            self.pump(v.slot);
        }
    }

    /// DNS answers arrived (the waker fired; it also brings control commands,
    /// which the loop takes at the top of every round).
    fn on_resolved(&mut self) {
        for answer in self.io.resolver.answers() {
            let Some(conn) = self.io.conns.get_mut(answer.slot) else { continue };
            if conn.session.id() != answer.session {
                continue; // The connection is gone and the slot reused.
            }
            let span = conn.span.clone();
            let _entered = span.enter();
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
        let Some(conn) = self.io.conns.get_mut(slot) else { return };
        let mut last_error = last_error;
        while let Some(addr) = conn.candidates.pop() {
            match TcpStream::connect(addr) {
                Ok(mut stream) => {
                    match self.io.poll.registry().register(
                        &mut stream,
                        token(slot, Side::Upstream),
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        Ok(()) => {
                            conn.broker = Some(stream);
                            conn.connecting = true;
                            conn.readable[1] = false;
                            conn.writable[1] = false;
                            conn.read_closed[1] = false;
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
        let Some(conn) = self.io.conns.get_mut(slot) else { return };
        let span = conn.span.clone();
        let _entered = span.enter();
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
                if let Err(error) = net::configure(stream, &self.proxy.config().socket) {
                    debug!(%error, "cannot set socket options on the broker socket");
                }
                conn.session.handle_connected(Instant::now());
                self.set_write_interest(slot, Side::Upstream, false);
            }
            Some(e) => {
                if let Some(mut old) = conn.broker.take() {
                    let _ = self.io.poll.registry().deregister(&mut old);
                }
                conn.readable[1] = false;
                conn.writable[1] = false;
                conn.read_closed[1] = false;
                self.try_next_candidate(slot, Some(e));
            }
        }
    }

    /// Removes the connections that closed during this iteration.
    fn reap(&mut self) {
        for slot in std::mem::take(&mut self.io.closed) {
            if let Some(mut conn) = self.io.conns.remove(slot) {
                let registry = self.io.poll.registry();
                if let Some(mut client) = conn.client.take() {
                    let _ = registry.deregister(&mut client);
                }
                if let Some(mut broker) = conn.broker.take() {
                    let _ = registry.deregister(&mut broker);
                }
                if let Some(t) = conn.timer {
                    self.io.timers.remove(&(t, slot));
                }
            }
        }
    }
}
