//! An in-memory harness: client ↔ core ↔ fake broker, with a virtual clock.
//!
//! It plays the runtime's part exactly as the crate docs prescribe (drain
//! events after every input, write what is queued, re-arm the timer), with
//! configurable read and write sizes so scenarios can split bytes anywhere.
// Test support, not `#[test]` functions, so clippy's `allow-*-in-tests` does
// not reach it: it fails a scenario by panicking, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_proxy_core::config::{HostPort, Limits, Mapping, PortOffset, ProxyConfig};
use kafka_proxy_core::proxy::{Proxy, ProxyAction};
use kafka_proxy_core::route::ListenerId;
use kafka_proxy_core::session::{
    CloseReason, ConnectTarget, Event, ReadOutcome, Session, Side, WriteOutcome,
};

/// A proxy action as the harness saw it (sessions are not comparable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Listen {
        id: ListenerId,
        addr: SocketAddr,
    },
    Unlisten {
        id: ListenerId,
    },
    /// The proxy started a session of its own (a probe).
    Spawn,
}

/// The proxy's bootstrap base port in tests.
pub(crate) const BASE: u16 = 30000;

pub(crate) fn config(limits: Limits) -> ProxyConfig {
    ProxyConfig {
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        mapping: Mapping::PortOffset(PortOffset {
            advertised_host: "127.0.0.1".into(),
            base: BASE,
            max_broker_id: 400,
        }),
        bootstrap: vec![HostPort { host: "kafka-0.internal".into(), port: 9092 }],
        resolve: vec![],
        limits,
        socket: Default::default(),
        security: Default::default(),
        policy: Default::default(),
        client_id: ProxyConfig::DEFAULT_CLIENT_ID.into(),
    }
}

/// One accepted connection and what each fake peer has received.
pub(crate) struct Conn {
    pub session: Session,
    /// Bytes the proxy wrote to the client.
    pub to_client: Vec<u8>,
    /// Bytes the proxy wrote to the broker.
    pub to_broker: Vec<u8>,
    /// Bytes the client sent that the proxy has not read yet.
    pub from_client: Vec<u8>,
    /// Bytes the broker sent that the proxy has not read yet.
    pub from_broker: Vec<u8>,
    pub connect: Option<ConnectTarget>,
    /// The session half-closed the client connection (a drain's lingering close).
    pub client_shut_write: bool,
    /// The client has closed its end: once `from_client` is read, reads see end of stream.
    pub client_eof: bool,
    /// Simulated splice pipes, by source side [client, broker].
    pub pipes: [Vec<u8>; 2],
    pub closed: Option<CloseReason>,
}

impl Conn {
    /// A connection just accepted (or a probe just started): nothing moved yet.
    fn new(session: Session) -> Conn {
        Conn {
            session,
            to_client: Vec::new(),
            to_broker: Vec::new(),
            from_client: Vec::new(),
            from_broker: Vec::new(),
            connect: None,
            client_shut_write: false,
            client_eof: false,
            pipes: [Vec::new(), Vec::new()],
            closed: None,
        }
    }
}

pub(crate) struct Harness {
    pub now: Instant,
    pub proxy: Proxy,
    pub listeners: BTreeMap<ListenerId, SocketAddr>,
    pub actions: Vec<Action>,
    pub conns: Vec<Conn>,
    /// Most bytes one read delivers.
    pub read_size: usize,
    /// Most bytes one write accepts.
    pub write_size: usize,
    /// Connect upstream as soon as asked.
    pub auto_connect: bool,
    /// Run the proxy's probe sessions (as connections without a client).
    pub run_probes: bool,
    /// Move what the session allows through simulated splice pipes, as a
    /// runtime with `splice(2)` does.
    pub splice: bool,
    /// Clients close their end as soon as the proxy half-closes (false: they
    /// keep the connection open and the session lingers).
    pub clients_close_on_fin: bool,
}

impl Harness {
    pub(crate) fn new(config: ProxyConfig) -> Harness {
        Harness::build(config, false)
    }

    /// A harness that runs the proxy's probe sessions (the first is `conns[0]`).
    pub(crate) fn with_probes(config: ProxyConfig) -> Harness {
        let mut h = Harness::build(config, true);
        h.drive();
        h
    }

    fn build(config: ProxyConfig, run_probes: bool) -> Harness {
        let mut h = Harness {
            now: Instant::now(),
            proxy: Proxy::new(config, Instant::now(), SystemTime::now()),
            listeners: BTreeMap::new(),
            actions: Vec::new(),
            conns: Vec::new(),
            read_size: 64 * 1024,
            write_size: usize::MAX,
            auto_connect: true,
            run_probes,
            splice: false,
            clients_close_on_fin: true,
        };
        h.drain_proxy();
        h
    }

    fn drain_proxy(&mut self) {
        while let Some(action) = self.proxy.poll_action() {
            let seen = match action {
                ProxyAction::Listen { id, addr } => {
                    self.listeners.insert(id, addr);
                    Action::Listen { id, addr }
                }
                ProxyAction::Unlisten { id } => {
                    self.listeners.remove(&id);
                    Action::Unlisten { id }
                }
                ProxyAction::Spawn(session) => {
                    if self.run_probes {
                        self.conns.push(Conn::new(*session));
                    }
                    Action::Spawn
                }
            };
            self.actions.push(seen);
        }
    }

    /// A client connects to listener `id`.
    pub(crate) fn connect(&mut self, id: ListenerId) -> usize {
        self.connect_from(id, SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 50000))
    }

    /// A client connects to listener `id` from `peer`.
    pub(crate) fn connect_from(&mut self, id: ListenerId, peer: SocketAddr) -> usize {
        assert!(self.listeners.contains_key(&id), "no listener {id}");
        let session = self.proxy.accept(self.now, SystemTime::now(), id, peer).expect("accept");
        self.conns.push(Conn::new(session));
        self.drive();
        self.conns.len() - 1
    }

    pub(crate) fn client_send(&mut self, c: usize, bytes: &[u8]) {
        self.conns[c].from_client.extend_from_slice(bytes);
        self.drive();
    }

    /// The client closes its connection (after what it sent is read).
    pub(crate) fn client_close(&mut self, c: usize) {
        self.conns[c].client_eof = true;
        self.drive();
    }

    pub(crate) fn broker_send(&mut self, c: usize, bytes: &[u8]) {
        self.conns[c].from_broker.extend_from_slice(bytes);
        self.drive();
    }

    /// Moves the clock forward and fires due timers.
    pub(crate) fn advance(&mut self, by: Duration) {
        self.now += by;
        if self.proxy.poll_timeout().is_some_and(|t| t <= self.now) {
            self.proxy.handle_timeout(self.now);
            self.drain_proxy();
        }
        for conn in &mut self.conns {
            if conn.session.poll_timeout().is_some_and(|t| t <= self.now) {
                conn.session.handle_timeout(self.now);
            }
        }
        self.drive();
    }

    /// Runs every connection until nothing moves (bounded).
    pub(crate) fn drive(&mut self) {
        for _round in 0..10_000 {
            let mut progress = false;
            for c in 0..self.conns.len() {
                progress |= self.step(c);
            }
            self.drain_proxy();
            if !progress {
                return;
            }
        }
        panic!("harness did not settle");
    }

    fn step(&mut self, c: usize) -> bool {
        let now = self.now;
        let (read_size, write_size, auto_connect) = (self.read_size, self.write_size, self.auto_connect);
        let splice = self.splice;
        let mut progress = false;
        {
            let conn = &mut self.conns[c];
            while let Some(event) = conn.session.poll_event() {
                progress = true;
                match event {
                    Event::Connect(target) => {
                        conn.connect = Some(target);
                        if auto_connect {
                            conn.session.handle_connected(now);
                        }
                    }
                    Event::Proxy(event) => self.proxy.handle_session_event(now, &mut conn.session, event),
                    Event::ShutdownWrite(Side::Downstream) => {
                        conn.client_shut_write = true;
                        // A well-behaved client closes once it reads end of stream.
                        conn.client_eof |= self.clients_close_on_fin;
                    }
                    Event::ShutdownWrite(Side::Upstream) => {}
                    Event::Closed(reason) => conn.closed = Some(reason),
                }
            }
            let sides: &[Side] =
                if conn.closed.is_some() { &[] } else { &[Side::Downstream, Side::Upstream] };
            for &side in sides {
                // Spliced bytes for this side go first (the session holds its queue back).
                let pending = conn.session.pending_splice(side);
                if pending > 0 {
                    let pipe = &mut conn.pipes[index(side.peer())];
                    let n = pending.min(pipe.len()).min(write_size);
                    let sink = match side {
                        Side::Downstream => &mut conn.to_client,
                        Side::Upstream => &mut conn.to_broker,
                    };
                    sink.extend(pipe.drain(..n));
                    conn.session.handle_unspliced(now, side, n);
                    progress |= n > 0;
                }
                loop {
                    let sink = match side {
                        Side::Downstream => &mut conn.to_client,
                        Side::Upstream => &mut conn.to_broker,
                    };
                    let out = conn
                        .session
                        .write_to(now, side, |iov| {
                            let mut n = 0;
                            for s in iov {
                                let take = s.len().min(write_size - n);
                                sink.extend_from_slice(&s[..take]);
                                n += take;
                                if n == write_size {
                                    break;
                                }
                            }
                            Ok::<_, Infallible>(n)
                        })
                        .unwrap();
                    match out {
                        WriteOutcome::Written(n) if n > 0 => progress = true,
                        _ => break,
                    }
                }
                let source = match side {
                    Side::Downstream => &mut conn.from_client,
                    Side::Upstream => &mut conn.from_broker,
                };
                if splice
                    && !source.is_empty()
                    && let Some(window) = conn.session.splice_window(side)
                {
                    let n = window.min(source.len()).min(read_size);
                    conn.pipes[index(side)].extend(source.drain(..n));
                    conn.session.handle_spliced(now, side, n);
                    progress = true;
                    continue;
                }
                if source.is_empty() && side == Side::Downstream && conn.client_eof {
                    if conn.session.wants_read(side) {
                        let out = conn.session.read_from(now, side, |_| Ok::<_, Infallible>(0)).unwrap();
                        progress |= out == ReadOutcome::Eof;
                    }
                    continue;
                }
                if !source.is_empty() {
                    let out = conn
                        .session
                        .read_from(now, side, |buf: &mut BytesMut| {
                            let spare = buf.capacity() - buf.len();
                            let n = source.len().min(read_size).min(spare);
                            buf.extend_from_slice(&source[..n]);
                            source.drain(..n);
                            Ok::<_, Infallible>(n)
                        })
                        .unwrap();
                    if let ReadOutcome::Read(_) = out {
                        progress = true;
                    }
                }
            }
        }
        progress
    }
}

fn index(side: Side) -> usize {
    match side {
        Side::Downstream => 0,
        Side::Upstream => 1,
    }
}

/// Splits a byte stream into frame bodies (size prefixes removed).
pub(crate) fn frames(mut stream: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while stream.len() >= 4 {
        let n = i32::from_be_bytes(stream[..4].try_into().unwrap()) as usize;
        out.push(stream[4..4 + n].to_vec());
        stream = &stream[4 + n..];
    }
    assert!(stream.is_empty(), "trailing partial frame");
    out
}

/// Wraps a body in a size prefix.
pub(crate) fn framed(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

/// A request frame: header v1 (or v2 when `flexible`) followed by `body`.
pub(crate) fn request(
    api_key: i16,
    version: i16,
    correlation_id: i32,
    flexible: bool,
    body: &[u8],
) -> Vec<u8> {
    let mut v = BytesMut::new();
    v.put_i16(api_key);
    v.put_i16(version);
    v.put_i32(correlation_id);
    v.put_i16(4);
    v.put_slice(b"test");
    if flexible {
        v.put_u8(0);
    }
    v.put_slice(body);
    framed(&v)
}

/// A Produce v8 request (classic encoding) with the given acks.
pub(crate) fn produce_v8(correlation_id: i32, acks: i16, payload: &[u8]) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_i16(-1); // transactional id: null
    body.put_i16(acks);
    body.put_i32(30_000);
    body.put_slice(payload);
    request(0, 8, correlation_id, false, &body)
}

/// A response frame with header v0 and an opaque body.
pub(crate) fn response(correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut v = correlation_id.to_be_bytes().to_vec();
    v.extend_from_slice(body);
    framed(&v)
}

pub(crate) fn bytes(v: &[u8]) -> Bytes {
    Bytes::copy_from_slice(v)
}

/// An ApiVersions v0 response (header v0): no error, the given ranges.
pub(crate) fn api_versions_v0_response(correlation_id: i32, ranges: &[(i16, i16, i16)]) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_i16(0);
    body.put_i32(ranges.len() as i32);
    for &(key, min, max) in ranges {
        body.put_i16(key);
        body.put_i16(min);
        body.put_i16(max);
    }
    response(correlation_id, &body)
}

/// A proxy that authenticates clients itself (SASL PLAIN: `alice` /
/// `alice-secret`) in front of a plaintext broker.
pub(crate) fn sasl_config(limits: Limits) -> ProxyConfig {
    use kafka_proxy_core::config::DownstreamSasl;
    use kafka_proxy_core::sasl::{CredentialStore, Mechanism, Secret, ServerConfig, SystemRandom};
    use std::sync::Arc;
    let random = Arc::new(SystemRandom::new());
    let mut store = CredentialStore::builder(4096, &[]).unwrap();
    store.password("alice", Secret::new("alice-secret".to_owned())).unwrap();
    let store = Arc::new(store.build(random.as_ref()).unwrap());
    let server = ServerConfig::new(&[Mechanism::Plain], store, random);
    let mut config = config(limits);
    config.security.downstream_sasl = DownstreamSasl::Terminate(Arc::new(server));
    config
}

/// SaslHandshake v1 for PLAIN, then SaslAuthenticate v1 with `user`/`password`.
pub(crate) fn plain_login(correlation_id: i32, user: &str, password: &str) -> Vec<u8> {
    let mut handshake = BytesMut::new();
    handshake.put_i16(5);
    handshake.put_slice(b"PLAIN");
    let mut out = request(17, 1, correlation_id, false, &handshake);
    let token = format!("\0{user}\0{password}");
    let mut auth = BytesMut::new();
    auth.put_i32(token.len() as i32);
    auth.put_slice(token.as_bytes());
    out.extend(request(36, 1, correlation_id + 1, false, &auth));
    out
}

/// The error code of a response whose body starts with one (header v0).
pub(crate) fn error_code(frame: &[u8]) -> i16 {
    i16::from_be_bytes([frame[8], frame[9]])
}
