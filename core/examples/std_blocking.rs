//! A third transport, as documentation: `kafka-proxy-core` driven by the
//! standard library alone (plus `bytes`, which the core's API speaks).
//!
//! ```text
//! cargo run -p kafka-proxy-core --example std_blocking -- 127.0.0.1:9092 30000 127.0.0.1
//! ```
//!
//! The core owns no socket, thread or clock: a runtime feeds it inputs (a
//! connection accepted, bytes read or written, an upstream connected, time
//! passed) and carries out its outputs. **After every input, drain the
//! outputs until none is left**: for a [`Session`], `poll_event` until `None`
//! (carrying out each event), write what `write_to` offers to each side,
//! re-arm the timer from `poll_timeout`; for the [`Proxy`], `poll_action`
//! until `None`. Everything below is that rule, spelled out.
//!
//! The shape is the plainest that serves a real Kafka client (which keeps its
//! bootstrap connection open while it opens another to a broker's port): one
//! thread, non-blocking `std::net` sockets, a `Vec` of connections, and a
//! loop that gives every listener and connection a turn, sleeping 1 ms only
//! when a whole pass moved nothing. Where runtime-mio and runtime-tokio wait
//! for readiness, this one simply tries: `WouldBlock` means "next pass".
//!
//! PLAINTEXT on both sides; `port_offset` mapping: bootstrap on `BASE_PORT`,
//! broker N on `BASE_PORT + 20 + N` (opened once the cluster's Metadata names
//! it), advertised as `BIND_IP`. Left out on purpose: TLS/SASL (the core does
//! them, only the `ProxyConfig` changes), splice (copying is always correct),
//! socket options, draining (`Proxy::drain`), and connecting in the
//! background (here a connect blocks the loop, bounded by its timeout). The
//! core logs through `tracing`; with no subscriber only `eprintln!`s show.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use kafka_proxy_core::config::{HostPort, Limits, Mapping, PortOffset, ProxyConfig};
use kafka_proxy_core::proxy::{Proxy, ProxyAction};
use kafka_proxy_core::route::ListenerId;
use kafka_proxy_core::session::{ConnectTarget, Endpoint, Event, ReadOutcome, Session, Side, WriteOutcome};

const USAGE: &str =
    "usage: std_blocking UPSTREAM_HOST:PORT BASE_PORT [BIND_IP]  (e.g. 127.0.0.1:9092 30000 127.0.0.1)";
/// A pass of the loop that moved nothing sleeps this long: an idle adapter
/// costs little CPU, a busy one never sleeps.
const IDLE: Duration = Duration::from_millis(1);
/// Most bytes one socket read takes (the session may offer more room).
const READ_CHUNK: usize = 64 * 1024;
/// Brokers with a larger node id get no listener.
const MAX_BROKER_ID: i32 = 400;

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(config) = config(&args) else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let proxy = Proxy::new(config, Instant::now(), SystemTime::now());
    let mut adapter = Adapter { proxy, listeners: Vec::new(), conns: Vec::new() };
    // Creating the proxy is its first input: its actions bind the bootstrap
    // listener and spawn a probe session that asks the cluster for its brokers.
    adapter.carry_out_proxy_actions();
    if adapter.listeners.is_empty() {
        return Err(io::Error::other("cannot listen on the bootstrap port"));
    }
    adapter.run()
}

/// The command line as a [`ProxyConfig`] (what the CLI builds from YAML).
fn config(args: &[String]) -> Option<ProxyConfig> {
    let (upstream, base, bind) = match args {
        [upstream, base] => (upstream, base, "127.0.0.1"),
        [upstream, base, bind] => (upstream, base, bind.as_str()),
        _ => return None,
    };
    let (host, port) = upstream.rsplit_once(':').filter(|(host, _)| !host.is_empty())?;
    let bind_ip: IpAddr = bind.parse().ok()?;
    Some(ProxyConfig {
        bind_ip,
        mapping: Mapping::PortOffset(PortOffset {
            advertised_host: bind_ip.to_string(),
            base: base.parse().ok()?,
            max_broker_id: MAX_BROKER_ID,
        }),
        bootstrap: vec![HostPort { host: host.to_owned(), port: port.parse().ok()? }],
        resolve: vec![],
        limits: Limits::default(),
        socket: Default::default(),
        security: Default::default(),
        policy: Default::default(),
        client_id: ProxyConfig::DEFAULT_CLIENT_ID.into(),
    })
}

/// One session and its two sockets. A probe (spawned by the proxy) has no client.
struct Conn {
    session: Session,
    client: Option<TcpStream>,
    broker: Option<TcpStream>,
    /// The timer: the session's next deadline, re-armed after every input.
    deadline: Option<Instant>,
    /// `Event::Closed` was seen: the connection is dropped after this pass.
    closed: bool,
}

impl Conn {
    fn new(session: Session, client: Option<TcpStream>) -> Conn {
        Conn { session, client, broker: None, deadline: None, closed: false }
    }

    /// The session and `side`'s socket, borrowed together.
    fn side(&mut self, side: Side) -> (&mut Session, Option<&mut TcpStream>) {
        let socket = match side {
            Side::Downstream => self.client.as_mut(),
            Side::Upstream => self.broker.as_mut(),
        };
        (&mut self.session, socket)
    }
}

struct Adapter {
    proxy: Proxy,
    listeners: Vec<(ListenerId, TcpListener)>,
    /// Every live connection; sessions created during a pass wait here for the next.
    conns: Vec<Conn>,
}

impl Adapter {
    /// Serves forever (Ctrl-C or SIGTERM ends the process).
    fn run(&mut self) -> ! {
        loop {
            let mut moved = self.accept_all();
            // Input: the proxy's own timer (the next probe, after a failed one).
            let now = Instant::now();
            if self.proxy.poll_timeout().is_some_and(|deadline| now >= deadline) {
                self.proxy.handle_timeout(now);
                self.carry_out_proxy_actions();
                moved = true;
            }
            let mut conns = std::mem::take(&mut self.conns);
            for conn in &mut conns {
                moved |= self.turn(conn);
            }
            // Dropping a connection closes its sockets; probes spawned during
            // the pass (now in `self.conns`) join the list.
            conns.retain(|conn| !conn.closed);
            conns.append(&mut self.conns);
            self.conns = conns;
            if !moved {
                std::thread::sleep(IDLE);
            }
        }
    }

    /// Input: connections waiting in any listener's backlog. Each becomes a
    /// session (whose first event asks to connect upstream on its first turn).
    fn accept_all(&mut self) -> bool {
        let mut accepted = Vec::new();
        for (id, listener) in &self.listeners {
            // An error (`WouldBlock`: the backlog is empty) ends this pass's accepting.
            while let Ok((stream, peer)) = listener.accept() {
                accepted.push((*id, stream, peer));
            }
        }
        let moved = !accepted.is_empty();
        for (id, stream, peer) in accepted {
            // (A socket that cannot be made non-blocking is dropped, which closes it.)
            let Ok(stream) = nonblocking(stream) else { continue };
            match self.proxy.accept(Instant::now(), SystemTime::now(), id, peer) {
                Ok(session) => self.conns.push(Conn::new(session, Some(stream))),
                Err(error) => eprintln!("refused {peer}: {error}"),
            }
            self.carry_out_proxy_actions();
        }
        moved
    }

    /// One connection's turn: whatever moved since the last pass, each input
    /// followed by the rule ([`Adapter::settle`]).
    fn turn(&mut self, conn: &mut Conn) -> bool {
        // Writes that found a socket full are retried: without readiness
        // events, trying is how this adapter learns a socket has room.
        let mut moved = self.settle(conn);
        if !conn.closed && conn.deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            conn.session.handle_timeout(Instant::now());
            self.settle(conn);
            moved = true;
        }
        for side in [Side::Downstream, Side::Upstream] {
            if !conn.closed && read(conn, side) {
                self.settle(conn);
                moved = true;
            }
        }
        moved
    }

    /// The rule, after an input: drain the session's events (carrying each
    /// out), write what it offers to each side, re-arm the timer. Writing is
    /// an input too (a flushed close emits `Closed`), so go round again while
    /// the session has something new to say.
    fn settle(&mut self, conn: &mut Conn) -> bool {
        let mut moved = false;
        loop {
            while let Some(event) = conn.session.poll_event() {
                moved = true;
                self.carry_out(conn, event);
            }
            if conn.closed {
                return moved;
            }
            for side in [Side::Upstream, Side::Downstream] {
                moved |= write(conn, side);
            }
            if !conn.session.has_events() {
                break;
            }
        }
        conn.deadline = conn.session.poll_timeout();
        moved
    }

    /// Carries out one session event. Those that report back to the session
    /// (`handle_connected`, ...) are inputs whose events `settle` drains next.
    fn carry_out(&mut self, conn: &mut Conn, event: Event) {
        match event {
            Event::Connect(target) => match connect(&target, self.proxy.config().limits.connect_timeout) {
                Ok(stream) => {
                    conn.broker = Some(stream);
                    conn.session.handle_connected(Instant::now());
                }
                Err(error) => conn.session.handle_connect_failed(Instant::now(), &error),
            },
            Event::ShutdownWrite(side) => {
                if let (session, Some(socket)) = conn.side(side)
                    && let Err(error) = socket.shutdown(Shutdown::Write)
                    && error.kind() != io::ErrorKind::NotConnected
                {
                    session.handle_io_error(Instant::now(), side, &error);
                }
            }
            // Routing, learned brokers, probe endings: the proxy's business.
            // It may answer the session, and may ask for listeners or probes.
            Event::Proxy(event) => {
                self.proxy.handle_session_event(Instant::now(), &mut conn.session, event);
                self.carry_out_proxy_actions();
            }
            Event::Closed(reason) => {
                let what = if conn.client.is_some() { "session" } else { "probe" };
                eprintln!("{what} {} closed: {reason}", conn.session.id());
                conn.closed = true;
                conn.client = None;
                conn.broker = None;
            }
        }
    }

    /// Drains the proxy's actions. A listener that cannot be bound is
    /// reported to the proxy (which forgets it and may ask again later).
    fn carry_out_proxy_actions(&mut self) {
        while let Some(action) = self.proxy.poll_action() {
            match action {
                // std sets SO_REUSEADDR (on Unix): a restarted adapter can bind at once.
                ProxyAction::Listen { id, addr } => match TcpListener::bind(addr)
                    .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
                {
                    Ok(listener) => {
                        eprintln!("listening on {addr} ({id})");
                        self.listeners.push((id, listener));
                    }
                    Err(error) => {
                        eprintln!("cannot listen on {addr} ({id}): {error}");
                        self.proxy.handle_listen_failed(id, &error);
                    }
                },
                ProxyAction::Unlisten { id } => self.listeners.retain(|(listening, _)| *listening != id),
                // A session without a client: driven like any other.
                ProxyAction::Spawn(session) => self.conns.push(Conn::new(*session, None)),
            }
        }
    }
}

/// Input: what `side`'s socket holds, handed to the session. True when
/// bytes or the end of stream moved (or the socket failed).
fn read(conn: &mut Conn, side: Side) -> bool {
    let now = Instant::now();
    let (session, Some(socket)) = conn.side(side) else { return false };
    match session.read_from(now, side, |buf| read_into(socket, buf)) {
        Ok(ReadOutcome::Read(_) | ReadOutcome::Eof) => true,
        // Back-pressure, or not connected yet: the bytes wait in the socket.
        Ok(ReadOutcome::Paused) => false,
        Err(error) if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => false,
        Err(error) => {
            session.handle_io_error(now, side, &error);
            true
        }
    }
}

/// Reads into the spare room the session's buffer offers (never beyond it:
/// that room is the session's back-pressure). Safe code cannot read into
/// uninitialised memory, so the room is zero-filled first (no allocation).
fn read_into(socket: &mut TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    let filled = buf.len();
    buf.resize(buf.capacity().min(filled + READ_CHUNK), 0);
    let result = socket.read(buf.get_mut(filled..).unwrap_or_default());
    buf.truncate(filled + result.as_ref().map_or(0, |n| *n));
    result
}

/// Writes what the session queued for `side` (each `write_to` offers its
/// chunks for one vectored write) until nothing is left or the socket is
/// full. True when bytes moved (or the socket failed).
fn write(conn: &mut Conn, side: Side) -> bool {
    let now = Instant::now();
    let (session, Some(socket)) = conn.side(side) else { return false };
    let mut moved = false;
    loop {
        match session.write_to(now, side, |chunks| socket.write_vectored(chunks)) {
            Ok(WriteOutcome::Written(n)) if n > 0 => moved = true,
            // Nothing queued (`Idle`), or the socket took nothing.
            Ok(_) => return moved,
            // Full: the rest goes on a later pass.
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return moved,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                session.handle_io_error(now, side, &error);
                return true;
            }
        }
    }
}

/// Opens an upstream connection: every address of the target in turn, each
/// bounded by the connect timeout. It blocks the whole loop meanwhile; a real
/// runtime connects in the background and calls `handle_connected` later.
fn connect(target: &ConnectTarget, timeout: Duration) -> io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = match target.endpoint() {
        Endpoint::Addr(addr) => vec![addr],
        Endpoint::Name { host, port } => (host, port).to_socket_addrs()?.collect(),
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{target} has no address"));
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return nonblocking(stream),
            Err(error) => last = error,
        }
    }
    Err(last)
}

/// Every socket of the loop is non-blocking (Kafka's small requests also
/// want Nagle off).
fn nonblocking(stream: TcpStream) -> io::Result<TcpStream> {
    stream.set_nonblocking(true)?;
    stream.set_nodelay(true)?;
    Ok(stream)
}
