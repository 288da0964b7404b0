//! An in-memory harness: client ↔ core ↔ fake broker, with a virtual clock.
//!
//! It plays the runtime's part exactly as the crate docs prescribe (drain
//! events after every input, write what is queued, re-arm the timer), with
//! configurable read and write sizes so scenarios can split bytes anywhere.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

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

/// The proxy's bootstrap base port in tests.
pub const BASE: u16 = 30000;

pub fn config(limits: Limits) -> ProxyConfig {
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
        security: Default::default(),
    }
}

/// One accepted connection and what each fake peer has received.
pub struct Conn {
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
            closed: None,
        }
    }
}

pub struct Harness {
    pub now: Instant,
    pub proxy: Proxy,
    pub listeners: BTreeMap<ListenerId, SocketAddr>,
    pub actions: Vec<ProxyAction>,
    pub conns: Vec<Conn>,
    /// Most bytes one read delivers.
    pub read_size: usize,
    /// Most bytes one write accepts.
    pub write_size: usize,
    /// Connect upstream as soon as asked.
    pub auto_connect: bool,
    /// Run the proxy's probe sessions (as connections without a client).
    pub run_probes: bool,
}

impl Harness {
    pub fn new(config: ProxyConfig) -> Harness {
        Harness::build(config, false)
    }

    /// A harness that runs the proxy's probe sessions (the first is `conns[0]`).
    pub fn with_probes(config: ProxyConfig) -> Harness {
        let mut h = Harness::build(config, true);
        h.drive();
        h
    }

    fn build(config: ProxyConfig, run_probes: bool) -> Harness {
        let mut h = Harness {
            now: Instant::now(),
            proxy: Proxy::new(config),
            listeners: BTreeMap::new(),
            actions: Vec::new(),
            conns: Vec::new(),
            read_size: 64 * 1024,
            write_size: usize::MAX,
            auto_connect: true,
            run_probes,
        };
        h.drain_proxy();
        h
    }

    fn drain_proxy(&mut self) {
        while let Some(action) = self.proxy.poll_action() {
            match &action {
                ProxyAction::Listen { id, addr } => {
                    self.listeners.insert(*id, *addr);
                }
                ProxyAction::Unlisten { id } => {
                    self.listeners.remove(id);
                }
                ProxyAction::Probe => {
                    if self.run_probes
                        && let Some(session) = self.proxy.probe(self.now, SystemTime::now())
                    {
                        self.conns.push(Conn::new(session));
                    }
                }
            }
            self.actions.push(action);
        }
    }

    /// A client connects to listener `id`.
    pub fn connect(&mut self, id: ListenerId) -> usize {
        assert!(self.listeners.contains_key(&id), "no listener {id}");
        let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 50000);
        let session = self.proxy.accept(self.now, SystemTime::now(), id, peer).expect("accept");
        self.conns.push(Conn::new(session));
        self.drive();
        self.conns.len() - 1
    }

    pub fn client_send(&mut self, c: usize, bytes: &[u8]) {
        self.conns[c].from_client.extend_from_slice(bytes);
        self.drive();
    }

    pub fn broker_send(&mut self, c: usize, bytes: &[u8]) {
        self.conns[c].from_broker.extend_from_slice(bytes);
        self.drive();
    }

    /// Moves the clock forward and fires due timers.
    pub fn advance(&mut self, by: Duration) {
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
    pub fn drive(&mut self) {
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
        let mut progress = false;
        let mut observed = Vec::new();
        let mut routes = Vec::new();
        let mut probe_closed = false;
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
                    Event::Observed(o) => observed.push(o),
                    Event::Route(name) => routes.push(name),
                    Event::Closed(reason) => {
                        if conn.session.is_probe() {
                            probe_closed = true;
                        }
                        conn.closed = Some(reason)
                    }
                }
            }
            let sides: &[Side] =
                if conn.closed.is_some() { &[] } else { &[Side::Downstream, Side::Upstream] };
            for &side in sides {
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
        for o in observed {
            self.proxy.handle_observed(now, o);
        }
        if probe_closed {
            self.proxy.handle_probe_closed(now);
        }
        for name in routes {
            let route = self.proxy.route_sni(name.as_deref());
            let conn = &mut self.conns[c];
            match route {
                Some(route) => conn.session.handle_route(now, route),
                None => conn.session.handle_no_route(now, name.as_deref().unwrap_or("")),
            }
            progress = true;
        }
        progress
    }
}

/// Splits a byte stream into frame bodies (size prefixes removed).
pub fn frames(mut stream: &[u8]) -> Vec<Vec<u8>> {
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
pub fn framed(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

/// A request frame: header v1 (or v2 when `flexible`) followed by `body`.
pub fn request(api_key: i16, version: i16, correlation_id: i32, flexible: bool, body: &[u8]) -> Vec<u8> {
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
pub fn produce_v8(correlation_id: i32, acks: i16, payload: &[u8]) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_i16(-1); // transactional id: null
    body.put_i16(acks);
    body.put_i32(30_000);
    body.put_slice(payload);
    request(0, 8, correlation_id, false, &body)
}

/// A response frame with header v0 and an opaque body.
pub fn response(correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut v = correlation_id.to_be_bytes().to_vec();
    v.extend_from_slice(body);
    framed(&v)
}

pub fn bytes(v: &[u8]) -> Bytes {
    Bytes::copy_from_slice(v)
}
