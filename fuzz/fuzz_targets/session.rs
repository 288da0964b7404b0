//! A whole session fed arbitrary bytes from both sides in arbitrary chunks,
//! with arbitrary write sizes, clock steps, splices, ends of stream and
//! drains: it never panics, its memory stays bounded by its limits, its
//! splice accounting never goes negative, and once closed it stays closed.
//! Runs with SASL termination on or off, and with or without a policy that
//! forbids APIs (some answered by the proxy, one by closing) and throttles
//! every byte (chosen by the input).
#![no_main]

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use arbitrary::Arbitrary;
use kafka_proxy_core::config::{
    DownstreamSasl, HostPort, Limits, Mapping, PortOffset, ProxyConfig, Security,
};
use kafka_proxy_core::api::ApiKey;
use kafka_proxy_core::policy::{PolicyConfig, PrincipalLimits, QuotaWindow};
use kafka_proxy_core::proxy::Proxy;
use kafka_proxy_core::route::ListenerId;
use kafka_proxy_core::sasl::{
    CredentialStore, Mechanism, ScramMechanism, Secret, ServerConfig, SystemRandom,
};
use kafka_proxy_core::session::{Event, Side};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Step {
    Client(Vec<u8>),
    Broker(Vec<u8>),
    /// Write at most this many bytes to each side (spliced bytes first).
    Drain(u16),
    Wait(u16),
    /// Splice at most this many bytes from the client (true) or broker into the pipe.
    Splice(bool, u32),
    /// The client (true) or broker closes its end.
    Eof(bool),
    /// The proxy drains.
    DrainSession,
}

#[derive(Debug, Arbitrary)]
struct Input {
    sasl: bool,
    policy: bool,
    connect: bool,
    steps: Vec<Step>,
}

const MAX_FRAME: u32 = 64 * 1024;
const MAX_BUFFERED: usize = 256 * 1024;

fn credentials() -> Arc<CredentialStore> {
    static STORE: OnceLock<Arc<CredentialStore>> = OnceLock::new();
    STORE
        .get_or_init(|| {
            let mut b = CredentialStore::builder(4096, &[ScramMechanism::Sha256]).expect("builder");
            b.password("user", Secret::new("a password the fuzzer will not guess 7f3a".into()))
                .expect("user");
            Arc::new(b.build(&SystemRandom::new()).expect("store"))
        })
        .clone()
}

/// Produce, DeleteTopics and ListOffsets (no refusal of its own) forbidden;
/// 1 kB/s each way, measured over two 100 ms windows.
fn policy() -> PolicyConfig {
    PolicyConfig {
        forbidden_api_keys: [ApiKey(0), ApiKey(2), ApiKey(20)].into_iter().collect(),
        default: PrincipalLimits {
            producer_byte_rate: Some(1000),
            consumer_byte_rate: Some(1000),
            max_connections: Some(1),
        },
        quota_window: QuotaWindow { samples: 2, size: Duration::from_millis(100) },
        ..PolicyConfig::default()
    }
}

fn proxy(sasl: bool, with_policy: bool) -> Proxy {
    let downstream_sasl = if sasl {
        let mechanisms = [Mechanism::Plain, Mechanism::Scram(ScramMechanism::Sha256)];
        DownstreamSasl::Terminate(Arc::new(ServerConfig::new(
            &mechanisms,
            credentials(),
            Arc::new(SystemRandom::new()),
        )))
    } else {
        DownstreamSasl::Off
    };
    Proxy::new(ProxyConfig {
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        mapping: Mapping::PortOffset(PortOffset {
            advertised_host: "proxy".into(),
            base: 30000,
            max_broker_id: 400,
        }),
        bootstrap: vec![HostPort { host: "broker".into(), port: 9092 }],
        resolve: vec![],
        limits: Limits { max_frame_bytes: MAX_FRAME, max_buffered_bytes: MAX_BUFFERED, ..Limits::default() },
        socket: Default::default(),
        security: Security { downstream_sasl, ..Security::default() },
        policy: if with_policy { policy() } else { PolicyConfig::default() },
        client_id: ProxyConfig::DEFAULT_CLIENT_ID.into(),
    }, Instant::now(), SystemTime::now())
}

fn index(side: Side) -> usize {
    match side {
        Side::Downstream => 0,
        Side::Upstream => 1,
    }
}

fn side(client: bool) -> Side {
    if client { Side::Downstream } else { Side::Upstream }
}

fuzz_target!(|input: Input| {
    let mut proxy = proxy(input.sasl, input.policy);
    while proxy.poll_action().is_some() {}
    let mut now = Instant::now();
    let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1);
    let Ok(mut session) = proxy.accept(now, SystemTime::now(), ListenerId::Bootstrap(0), peer) else {
        return;
    };
    let mut closed = false;
    // What the simulated pipes hold, by source side [client, broker].
    let mut piped = [0usize; 2];
    for step in input.steps.iter().take(256) {
        match step {
            Step::Client(bytes) | Step::Broker(bytes) => {
                let side = if matches!(step, Step::Client(_)) { Side::Downstream } else { Side::Upstream };
                let _ = session.read_from(now, side, |buf| {
                    let n = bytes.len().min(buf.capacity() - buf.len());
                    buf.extend_from_slice(&bytes[..n]);
                    Ok::<_, Infallible>(n)
                });
            }
            Step::Drain(limit) => {
                for side in [Side::Downstream, Side::Upstream] {
                    let n = session.pending_splice(side).min(usize::from(*limit));
                    if n > 0 {
                        piped[index(side.peer())] -= n;
                        session.handle_unspliced(now, side, n);
                    }
                    let _ = session.write_to(now, side, |iov| {
                        Ok::<_, Infallible>(
                            iov.iter().map(|s| s.len()).sum::<usize>().min(usize::from(*limit)),
                        )
                    });
                }
            }
            Step::Splice(client, n) => {
                let from = side(*client);
                if let Some(window) = session.splice_window(from) {
                    let n = window.min(*n as usize);
                    session.handle_spliced(now, from, n);
                    piped[index(from)] += n;
                }
            }
            Step::Eof(client) => {
                if session.wants_read(side(*client)) {
                    session.handle_eof(now, side(*client));
                }
            }
            Step::DrainSession => session.drain(now),
            Step::Wait(ms) => {
                now += Duration::from_millis(u64::from(*ms));
                if session.poll_timeout().is_some_and(|t| t <= now) {
                    session.handle_timeout(now);
                }
            }
        }
        while let Some(event) = session.poll_event() {
            match event {
                Event::Connect(_) => {
                    if input.connect {
                        session.handle_connected(now);
                    } else {
                        session.handle_connect_failed(now, &"refused");
                    }
                }
                Event::Proxy(event) => {
                    proxy.handle_session_event(now, &mut session, event);
                    while proxy.poll_action().is_some() {}
                }
                Event::ShutdownWrite(_) => {}
                Event::Closed(_) => {
                    assert!(!closed, "closed twice");
                    closed = true;
                }
            }
        }
        // Receive buffers hold at most one frame being assembled plus one read;
        // queues are bounded by the back-pressure limit plus what one read
        // can release.
        let bound = 4 * (MAX_FRAME as usize) + 2 * MAX_BUFFERED + 1024 * 1024;
        assert!(session.buffered_bytes() <= bound, "{} > {bound}", session.buffered_bytes());
        // The session never asks for more spliced bytes than the pipes hold.
        for to in [Side::Downstream, Side::Upstream] {
            let pending = session.pending_splice(to);
            assert!(pending <= piped[index(to.peer())], "pending {pending} > piped");
            // A closed side drops what its pipe holds (a runtime closes the pipe with it).
            piped[index(to.peer())] = pending;
        }
    }
    if closed {
        assert!(!session.wants_read(Side::Downstream) && !session.wants_read(Side::Upstream));
    }
});
