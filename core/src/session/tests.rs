//! In-memory sessions with TLS and SASL: a client and a broker speaking real
//! TLS (rustls) and real SASL (this crate's own client and server state
//! machines) on each side of a [`Session`], with a virtual clock.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::*;
use crate::config::{DownstreamTls, HostPort, PortOffset, UpstreamTls};
use crate::frame::FrameDecoder;
use crate::route::ListenerId;
use crate::route::port_offset::PortOffsetMap;
use crate::sasl::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use crate::sasl::server::ServerConfig as SaslServerConfig;
use crate::sasl::test_support::{self, JwtSigner};
use crate::sasl::{ClientConfig, ClientError, Mechanism, RequestRef, ScramMechanism, Secret, SystemRandom};
use crate::tls::config::{ClientAuth, TlsVersions};
use crate::tls::principal::PrincipalMapper;
use crate::tls::test_util::{self, End};

/// A test peer speaking plaintext Kafka frames, optionally over TLS.
struct TestPeer {
    tls: Option<End>,
    /// Plaintext received, not yet taken as frames.
    received: BytesMut,
    /// Wire bytes for the session.
    outbox: Vec<u8>,
}

impl TestPeer {
    fn plain() -> TestPeer {
        TestPeer { tls: None, received: BytesMut::new(), outbox: Vec::new() }
    }

    fn tls(session: RustlsSession) -> TestPeer {
        TestPeer { tls: Some(End::new(session)), received: BytesMut::new(), outbox: Vec::new() }
    }

    fn flush_tls(&mut self) {
        if let Some(end) = &mut self.tls {
            self.received.extend_from_slice(&end.plaintext.split());
            self.outbox.extend_from_slice(&end.outgoing.split());
        }
    }

    fn send(&mut self, plain: &[u8]) {
        match &mut self.tls {
            None => self.outbox.extend_from_slice(plain),
            Some(end) => {
                end.write(&[plain]).expect("test peer write");
                self.flush_tls();
            }
        }
    }

    fn deliver(&mut self, wire: &[u8]) {
        match &mut self.tls {
            None => self.received.extend_from_slice(wire),
            Some(end) => {
                end.incoming.extend_from_slice(wire);
                let _ = end.process();
                self.flush_tls();
            }
        }
    }

    fn frames(&mut self) -> Vec<Bytes> {
        let decoder = FrameDecoder::new(u32::MAX >> 1);
        let mut out = Vec::new();
        while let Ok(Some(f)) = decoder.decode(&mut self.received) {
            out.push(f);
        }
        out
    }
}

struct Net {
    now: Instant,
    session: Session,
    client: TestPeer,
    broker: TestPeer,
    broker_tls: Option<Arc<rustls::ServerConfig>>,
    closed: Option<CloseReason>,
}

fn session_config(security: Security) -> Arc<SessionConfig> {
    let api_versions = match security.downstream_sasl {
        DownstreamSasl::Terminate(_) => ApiVersionsPolicy::terminating_sasl(),
        _ => ApiVersionsPolicy::passthrough(),
    };
    Arc::new(SessionConfig {
        limits: Limits::default(),
        address_map: Arc::new(PortOffsetMap::new(PortOffset {
            advertised_host: "proxy".into(),
            base: 30000,
            max_broker_id: 400,
            advertised_base: 30000,
        })),
        api_versions,
        linger: Duration::from_secs(1),
        security,
        warnings: Default::default(),
        policy: Arc::new(crate::policy::state::PolicyState::new(Default::default(), Instant::now())),
        client_id: "kafka-proxy".into(),
        cluster: Default::default(),
        throttle: Default::default(),
        forward_proxy: None,
    })
}

impl Net {
    fn new(security: Security, client: TestPeer, broker_tls: Option<Arc<rustls::ServerConfig>>) -> Net {
        let now = Instant::now();
        let route = Route {
            listener: ListenerId::Bootstrap(0),
            upstream: HostPort { host: "localhost".into(), port: 9092 },
            addr_override: None,
        };
        let peer = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 40000)));
        let session = Session::new(1, now, test_support::wall(), session_config(security), Some(route), peer);
        let mut net = Net { now, session, client, broker: TestPeer::plain(), broker_tls, closed: None };
        if let Some(end) = &mut net.client.tls {
            let _ = end.process(); // ClientHello
        }
        net.client.flush_tls();
        net.pump();
        net
    }

    /// Moves bytes and events until nothing moves (bounded).
    fn pump(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            while let Some(event) = self.session.poll_event() {
                moved = true;
                match event {
                    Event::Connect(_) => {
                        if let Some(cfg) = &self.broker_tls {
                            self.broker = TestPeer::tls(RustlsSession::server(cfg.clone()).expect("server"));
                        }
                        self.session.handle_connected(self.now);
                    }
                    Event::Closed(reason) => self.closed = Some(reason),
                    // The test client closes as soon as it reads end of stream.
                    Event::ShutdownWrite(side) => self.session.handle_eof(self.now, side),
                    Event::Proxy(_) => {}
                    Event::Authenticate(request) => panic!("no external authenticator here: {request:?}"),
                }
            }
            for (side, peer) in [(Side::Downstream, &mut self.client), (Side::Upstream, &mut self.broker)] {
                let mut out = Vec::new();
                let _ = self.session.write_to(self.now, side, |iov| {
                    let n = iov.iter().map(|s| s.len()).sum();
                    for s in iov {
                        out.extend_from_slice(s);
                    }
                    Ok::<_, std::convert::Infallible>(n)
                });
                if !out.is_empty() {
                    moved = true;
                    peer.deliver(&out);
                }
                if !peer.outbox.is_empty() && self.session.wants_read(side) {
                    let wire = std::mem::take(&mut peer.outbox);
                    let _ = self.session.read_from(self.now, side, |buf| {
                        buf.extend_from_slice(&wire);
                        Ok::<_, std::convert::Infallible>(wire.len())
                    });
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
        panic!("net did not settle");
    }

    fn client_send(&mut self, frame: &[u8]) {
        self.client.send(frame);
        self.pump();
    }

    fn broker_send(&mut self, frame: &[u8]) {
        self.broker.send(frame);
        self.pump();
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        if self.session.poll_timeout().is_some_and(|t| t <= self.now) {
            self.session.handle_timeout(self.now);
        }
        self.pump();
    }

    /// Answers the proxy's SASL requests with `server` until the broker sees
    /// something else; returns the other frames, in order.
    fn broker_serves_sasl(&mut self, server: &mut SaslServer) -> Vec<Bytes> {
        let mut others = Vec::new();
        for _ in 0..10 {
            let frames = self.broker.frames();
            if frames.is_empty() {
                break;
            }
            for frame in frames {
                let body = &frame[4..];
                let h = crate::header::peek_request(body).expect("header");
                if h.api_key == ApiKey::SASL_HANDSHAKE || h.api_key == ApiKey::SASL_AUTHENTICATE {
                    let d = crate::api::decoded(h.api_key).expect("decoded");
                    let start =
                        crate::header::request_header_len(body, crate::api::is_flexible(d, h.api_version))
                            .expect("header");
                    let request = RequestRef {
                        api_key: h.api_key,
                        version: h.api_version,
                        correlation_id: h.correlation_id,
                        body: &body[start..],
                    };
                    match server.on_request(request, self.now, test_support::wall()) {
                        crate::sasl::server::ServerStep::Reply(r)
                        | crate::sasl::server::ServerStep::Authenticated { reply: r, .. } => {
                            self.broker.send(&r)
                        }
                        crate::sasl::server::ServerStep::Failed { reply, .. } => {
                            if let Some(r) = reply {
                                self.broker.send(&r)
                            }
                        }
                        crate::sasl::server::ServerStep::Verify(r) => {
                            panic!("fake broker verifies locally: {r:?}")
                        }
                    }
                } else {
                    others.push(frame);
                }
            }
            self.pump();
        }
        others
    }
}

fn request(api: ApiKey, version: i16, correlation_id: i32, flexible: bool, body: &[u8]) -> Vec<u8> {
    let mut v = BytesMut::new();
    v.put_i16(api.0);
    v.put_i16(version);
    v.put_i32(correlation_id);
    v.put_i16(4);
    v.put_slice(b"test");
    if flexible {
        v.put_u8(0);
    }
    v.put_slice(body);
    let mut f = (v.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(&v);
    f
}

fn response(correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut v = correlation_id.to_be_bytes().to_vec();
    v.extend_from_slice(body);
    let mut f = (v.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(&v);
    f
}

/// The correlation id of a response frame.
fn correlation(frame: &Bytes) -> i32 {
    let mut b = &frame[4..8];
    b.get_i32()
}

/// The correlation id of a request frame.
fn request_correlation(frame: &Bytes) -> i32 {
    let mut b = &frame[8..12];
    b.get_i32()
}

/// Does a whole SASL exchange as a Kafka client would, through the net
/// (SaslAuthenticate v2 when `flexible`, v1 otherwise); a failure gives the
/// error code the proxy answered with.
fn client_login(net: &mut Net, mechanism: Mechanism, user: &str, password: &str) -> Result<(), i16> {
    client_login_at(net, mechanism, user, password, true)
}

fn client_login_at(
    net: &mut Net,
    mechanism: Mechanism,
    user: &str,
    password: &str,
    flexible: bool,
) -> Result<(), i16> {
    let config = Arc::new(
        ClientConfig::new(mechanism, user, Secret::new(password.into()), Arc::new(SystemRandom::new()))
            .expect("client config"),
    );
    let mut client = crate::sasl::SaslClient::new(config);
    let mut next = 100;
    let first = client.start(next, Some((0, if flexible { 2 } else { 1 }))).expect("start");
    net.client_send(&first);
    for _ in 0..6 {
        let frames = net.client.frames();
        let Some(frame) = frames.into_iter().last() else { return Err(-1) };
        let pending = client.pending().expect("pending");
        let body = &frame[4..];
        let start = if pending.response_header_flexible() { 5 } else { 4 };
        next += 1;
        match client.on_response(correlation(&frame), &body[start..], next, net.now) {
            crate::sasl::ClientStep::Send(r) => net.client_send(&r),
            crate::sasl::ClientStep::Authenticated(_) => return Ok(()),
            crate::sasl::ClientStep::Failed(_) => {
                let code = &body[start..start + 2];
                return Err(i16::from_be_bytes([code[0], code[1]]));
            }
        }
    }
    Err(-1)
}

fn terminate(mechanisms: &[Mechanism]) -> DownstreamSasl {
    let mut cfg = SaslServerConfig::new(mechanisms, test_support::store(), Arc::new(SystemRandom::new()));
    cfg.session_lifetime = None;
    DownstreamSasl::Terminate(Arc::new(cfg))
}

fn service(mechanism: Mechanism, user: &str, password: &str) -> Arc<ClientConfig> {
    Arc::new(
        ClientConfig::new(mechanism, user, Secret::new(password.into()), Arc::new(SystemRandom::new()))
            .expect("client config"),
    )
}

fn broker_sasl(mechanisms: &[Mechanism], lifetime: Option<Duration>) -> SaslServer {
    let mut cfg = SaslServerConfig::new(mechanisms, test_support::store(), Arc::new(SystemRandom::new()));
    cfg.session_lifetime = lifetime;
    SaslServer::new(Arc::new(cfg))
}

const SCRAM256: Mechanism = Mechanism::Scram(ScramMechanism::Sha256);
const SCRAM512: Mechanism = Mechanism::Scram(ScramMechanism::Sha512);

#[test]
fn terminated_sasl_then_requests_flow() {
    for mechanism in [Mechanism::Plain, SCRAM256, SCRAM512] {
        let security = Security {
            downstream_sasl: terminate(&[Mechanism::Plain, SCRAM256, SCRAM512]),
            ..Security::default()
        };
        let mut net = Net::new(security, TestPeer::plain(), None);
        client_login(&mut net, mechanism, "alice", "alice-secret").expect("login");
        assert_eq!(net.session.principal(), Some("alice"));
        assert!(net.broker.frames().is_empty(), "SASL stays at the proxy");
        net.client_send(&request(ApiKey(2), 1, 7, false, b"list-offsets"));
        let at_broker = net.broker.frames();
        assert_eq!(at_broker.len(), 1, "{mechanism:?}");
        net.broker_send(&response(7, b"offsets"));
        assert_eq!(net.client.frames().iter().map(correlation).collect::<Vec<_>>(), vec![7]);
    }
}

#[test]
fn wrong_password_gets_58_then_closes_after_the_delay() {
    let security = Security { downstream_sasl: terminate(&[Mechanism::Plain]), ..Security::default() };
    let mut net = Net::new(security, TestPeer::plain(), None);
    let failure = client_login(&mut net, Mechanism::Plain, "alice", "wrong").expect_err("refused");
    assert_eq!(failure, 58, "SASL_AUTHENTICATION_FAILED");
    assert!(net.closed.is_none(), "the close waits for Kafka's delay");
    net.advance(Duration::from_millis(100));
    assert!(matches!(net.closed, Some(CloseReason::Refused(_))), "{:?}", net.closed);
}

#[test]
fn request_before_authentication_is_refused() {
    let security = Security { downstream_sasl: terminate(&[Mechanism::Plain]), ..Security::default() };
    let mut net = Net::new(security, TestPeer::plain(), None);
    net.client_send(&request(ApiKey::METADATA, 12, 1, true, &[1, 0, 0]));
    assert!(net.broker.frames().is_empty(), "nothing reaches the broker");
    net.advance(Duration::from_millis(100));
    let Some(CloseReason::Refused(reason)) = &net.closed else { panic!("{:?}", net.closed) };
    assert_eq!(reason.error_code(), Some(crate::api::ErrorCode::ILLEGAL_SASL_STATE));
}

#[test]
fn api_versions_before_authentication_pins_the_proxys_sasl_versions() {
    let security = Security { downstream_sasl: terminate(&[Mechanism::Plain]), ..Security::default() };
    let mut net = Net::new(security, TestPeer::plain(), None);
    net.client_send(&request(ApiKey::API_VERSIONS, 0, 1, false, b""));
    let forwarded = net.broker.frames();
    assert_eq!(forwarded.len(), 1, "ApiVersions goes to the broker before authentication");
    // A broker without SASL: ApiVersions v0 listing only Metadata 0..12.
    let mut body = BytesMut::new();
    body.put_i16(0);
    body.put_i32(1);
    body.put_i16(3);
    body.put_i16(0);
    body.put_i16(12);
    net.broker_send(&response(1, &body));
    let reply = net.client.frames().pop().expect("reply");
    let view = crate::rewrite::ApiVersionsView::parse(0, &reply[8..]).expect("parse");
    let handshake = view.get(ApiKey::SASL_HANDSHAKE).expect("pinned");
    assert_eq!((handshake.min, handshake.max), (0, 1));
    let authenticate = view.get(ApiKey::SASL_AUTHENTICATE).expect("pinned");
    assert_eq!((authenticate.min, authenticate.max), (0, 2));
}

#[test]
fn service_login_completes_before_client_requests_reach_the_broker() {
    for mechanism in [Mechanism::Plain, SCRAM256, SCRAM512] {
        let security = Security {
            upstream_login: UpstreamLogin::Service(service(mechanism, "bob", "bob-secret")),
            ..Security::default()
        };
        let mut net = Net::new(security, TestPeer::plain(), None);
        net.client_send(&request(ApiKey::API_VERSIONS, 0, 1, false, b""));
        let mut broker = broker_sasl(&[Mechanism::Plain, SCRAM256, SCRAM512], None);
        let others = net.broker_serves_sasl(&mut broker);
        assert!(broker.is_authenticated(), "{mechanism:?}");
        assert_eq!(broker.principal().map(|p| p.name().to_owned()), Some("bob".into()));
        assert_eq!(
            others.iter().map(request_correlation).collect::<Vec<_>>(),
            vec![1],
            "then the held request"
        );
    }
}

#[test]
fn service_login_failure_closes() {
    let security = Security {
        upstream_login: UpstreamLogin::Service(service(Mechanism::Plain, "bob", "not-bobs")),
        ..Security::default()
    };
    let mut net = Net::new(security, TestPeer::plain(), None);
    // The first request earns the client its upstream connection.
    net.client_send(&request(ApiKey::API_VERSIONS, 0, 1, false, b""));
    let mut broker = broker_sasl(&[Mechanism::Plain], None);
    net.broker_serves_sasl(&mut broker);
    assert!(matches!(net.closed, Some(CloseReason::UpstreamLogin(_))), "{:?}", net.closed);
}

#[test]
fn auth_swap_logs_in_as_the_mapped_identity() {
    let mut map = std::collections::BTreeMap::new();
    map.insert("alice".to_owned(), service(SCRAM256, "bob", "bob-secret"));
    let security = Security {
        downstream_sasl: terminate(&[Mechanism::Plain]),
        upstream_login: UpstreamLogin::Swap(Arc::new(map)),
        ..Security::default()
    };
    let mut net = Net::new(security.clone(), TestPeer::plain(), None);
    client_login(&mut net, Mechanism::Plain, "alice", "alice-secret").expect("alice logs in");
    net.client_send(&request(ApiKey(2), 1, 9, false, b"x"));
    let mut broker = broker_sasl(&[SCRAM256], None);
    let others = net.broker_serves_sasl(&mut broker);
    assert_eq!(broker.principal().map(|p| p.name().to_owned()), Some("bob".into()), "alice is bob upstream");
    assert_eq!(others.iter().map(request_correlation).collect::<Vec<_>>(), vec![9]);

    // bob has valid credentials at the proxy but no mapping: 58.
    let mut net = Net::new(security, TestPeer::plain(), None);
    let failure =
        client_login_at(&mut net, Mechanism::Plain, "bob", "bob-secret", false).expect_err("no mapping");
    assert_eq!(failure, 58);
    net.advance(Duration::from_millis(100));
    assert!(matches!(net.closed, Some(CloseReason::Unauthorized { .. })), "{:?}", net.closed);
}

#[test]
fn upstream_reauthentication_holds_new_requests_only() {
    let security = Security {
        upstream_login: UpstreamLogin::Service(service(SCRAM256, "bob", "bob-secret")),
        ..Security::default()
    };
    let mut net = Net::new(security, TestPeer::plain(), None);
    let mut broker = broker_sasl(&[SCRAM256], Some(Duration::from_secs(10)));
    // The first request earns the upstream connection; it follows the login.
    net.client_send(&request(ApiKey(2), 1, 1, false, b"before"));
    let others = net.broker_serves_sasl(&mut broker);
    assert_eq!(others.len(), 1, "in flight across the re-authentication");
    // 85–95% of the 10 s lifetime, at least 1 s before its end: re-authentication starts.
    net.advance(Duration::from_millis(9_600));
    net.client_send(&request(ApiKey(2), 1, 2, false, b"after"));
    // The broker answers the old request first, then the SASL exchange.
    net.broker_send(&response(1, b"one"));
    let others = net.broker_serves_sasl(&mut broker);
    assert_eq!(
        others.iter().map(request_correlation).collect::<Vec<_>>(),
        vec![2],
        "held until re-authenticated"
    );
    assert_eq!(net.client.frames().iter().map(correlation).collect::<Vec<_>>(), vec![1]);
    assert!(net.closed.is_none());
}

#[test]
fn downstream_session_lifetime_expires_and_reauthenticates() {
    let mut cfg =
        SaslServerConfig::new(&[Mechanism::Plain], test_support::store(), Arc::new(SystemRandom::new()));
    cfg.session_lifetime = Some(Duration::from_secs(5));
    let security =
        Security { downstream_sasl: DownstreamSasl::Terminate(Arc::new(cfg)), ..Security::default() };
    let mut net = Net::new(security.clone(), TestPeer::plain(), None);
    client_login(&mut net, Mechanism::Plain, "alice", "alice-secret").expect("login");
    net.advance(Duration::from_secs(4));
    client_login(&mut net, Mechanism::Plain, "alice", "alice-secret").expect("re-authentication mid-stream");
    net.advance(Duration::from_secs(4));
    net.client_send(&request(ApiKey(2), 1, 3, false, b"x"));
    assert!(net.closed.is_none(), "the new session runs from the re-authentication");
    net.advance(Duration::from_secs(2));
    net.client_send(&request(ApiKey(2), 1, 4, false, b"x"));
    assert!(matches!(net.closed, Some(CloseReason::Refused(_))), "expired: {:?}", net.closed);
}

#[test]
fn oauthbearer_tokens_are_validated() {
    let signer = JwtSigner::new();
    let validator = crate::sasl::oauthbearer::JwtValidator::new(
        signer.key_set(),
        crate::sasl::oauthbearer::JwtRules {
            issuer: Some("https://issuer.test".into()),
            audiences: vec!["kafka".into()],
            required_scopes: vec![],
            clock_skew: Duration::from_secs(30),
            ..Default::default()
        },
    );
    let mut cfg = SaslServerConfig::new(
        &[Mechanism::OAuthBearer],
        test_support::store(),
        Arc::new(SystemRandom::new()),
    );
    cfg.oauthbearer = Some(Arc::new(validator));
    let security =
        Security { downstream_sasl: DownstreamSasl::Terminate(Arc::new(cfg)), ..Security::default() };
    let now = test_support::NOW_SECS;
    for (exp, ok) in [(now + 600, true), (now - 600, false)] {
        let token = signer.token(&serde_json::json!({
            "sub": "carol", "iss": "https://issuer.test", "aud": "kafka", "iat": now - 10, "exp": exp,
        }));
        let mut net = Net::new(security.clone(), TestPeer::plain(), None);
        net.client_send(&SaslHandshakeRequest { mechanism: b"OAUTHBEARER" }.encode_frame(1, 1, "t"));
        let initial = crate::sasl::oauthbearer::client_initial_response(&token);
        net.client_send(&SaslAuthenticateRequest { auth_bytes: initial.expose() }.encode_frame(2, 1, "t"));
        let replies = net.client.frames();
        let last = replies.last().expect("reply");
        assert_eq!(i16::from_be_bytes([last[8], last[9]]), 0, "success, or Kafka's JSON challenge");
        if ok {
            assert_eq!(net.session.principal(), Some("carol"));
        } else {
            assert!(String::from_utf8_lossy(last).contains("invalid_token"), "RFC 7628 challenge");
            assert!(net.session.principal().is_none());
            // The client acknowledges the challenge with 0x01; then 58.
            net.client_send(&SaslAuthenticateRequest { auth_bytes: &[1] }.encode_frame(3, 1, "t"));
            let last = net.client.frames().pop().expect("failure");
            assert_eq!(i16::from_be_bytes([last[8], last[9]]), 58, "expired token refused");
        }
        // The metrics see the mechanism and, for a refusal, why.
        let failure = if ok { None } else { Some("token_expired") };
        let expected = AuthOutcome { side: Side::Downstream, mechanism: "OAUTHBEARER", failure };
        assert_eq!(net.session.take_stats().auth, vec![expected]);
    }
}

#[test]
fn upstream_oauthbearer_without_a_token_is_counted_as_no_token() {
    use crate::sasl::oauthbearer::{EndpointTrust, Sources, TokenEndpoint};
    let store = Sources::new().token(TokenEndpoint {
        url: "https://idp.test/token".into(),
        client_id: "svc-client".into(),
        client_secret: Secret::new("svc-secret".into()),
        scope: None,
        trust: EndpointTrust::SystemRoots,
    });
    let login = ClientConfig::oauthbearer(store, Arc::new(SystemRandom::new()));
    let security =
        Security { upstream_login: UpstreamLogin::Service(Arc::new(login)), ..Security::default() };
    let mut net = Net::new(security, TestPeer::plain(), None);
    net.client_send(&request(ApiKey::API_VERSIONS, 0, 1, false, b""));
    let mut broker = broker_sasl(&[Mechanism::OAuthBearer], None);
    net.broker_serves_sasl(&mut broker);
    assert!(matches!(net.closed, Some(CloseReason::UpstreamLogin(ClientError::NoToken))), "{:?}", net.closed);
    let expected = AuthOutcome { side: Side::Upstream, mechanism: "OAUTHBEARER", failure: Some("no_token") };
    assert_eq!(net.session.take_stats().auth, vec![expected]);
}

fn tls_security(mtls: bool, upstream: bool) -> Security {
    let client_auth =
        if mtls { ClientAuth::Required { ca_certs: test_util::CA, crls: &[] } } else { ClientAuth::None };
    Security {
        downstream_tls: Some(DownstreamTls {
            config: test_util::server_cfg(client_auth, TlsVersions::default()),
            principal: Arc::new(PrincipalMapper::default()),
        }),
        upstream_tls: upstream.then(|| UpstreamTls {
            config: test_util::client_cfg(test_util::CA, None, TlsVersions::default()),
        }),
        ..Security::default()
    }
}

fn tls_client(identity: Option<(&[u8], &[u8])>) -> TestPeer {
    let cfg = test_util::client_cfg(test_util::CA, identity, TlsVersions::default());
    TestPeer::tls(RustlsSession::client(cfg, test_util::name("localhost")).expect("client"))
}

#[test]
fn tls_on_both_sides_carries_and_rewrites() {
    let broker_cfg = test_util::server_cfg(ClientAuth::None, TlsVersions::default());
    let mut net = Net::new(tls_security(false, true), tls_client(None), Some(broker_cfg));
    assert_eq!(net.session.principal(), Some(ANONYMOUS), "one-way TLS");
    // Metadata v12 with one broker: rewritten through two TLS layers.
    net.client_send(&request(ApiKey::METADATA, 12, 5, true, &[1, 0, 0]));
    assert_eq!(net.broker.frames().len(), 1);
    let mut body = BytesMut::new();
    body.put_u8(0); // response header tags
    body.put_i32(0); // throttle
    crate::wire::put_array_len(&mut body, true, Some(1));
    body.put_i32(111);
    crate::wire::put_string(&mut body, true, b"kafka-111.internal");
    body.put_i32(9092);
    crate::wire::put_nullable_string(&mut body, true, None);
    body.put_u8(0);
    crate::wire::put_nullable_string(&mut body, true, Some(b"cluster"));
    body.put_i32(111);
    crate::wire::put_array_len(&mut body, true, Some(0));
    body.put_u8(0);
    net.broker_send(&response(5, &body));
    let reply = net.client.frames().pop().expect("metadata");
    let text = String::from_utf8_lossy(&reply);
    assert!(text.contains("proxy") && !text.contains("internal"), "only proxy addresses reach the client");
    assert!(net.closed.is_none(), "{:?}", net.closed);
}

#[test]
fn mtls_principal_comes_from_the_certificate() {
    let mut net = Net::new(
        tls_security(true, false),
        tls_client(Some((test_util::CLIENT1, test_util::CLIENT1_KEY))),
        None,
    );
    assert_eq!(net.session.principal(), Some("client1"));
    net.client_send(&request(ApiKey(2), 1, 1, false, b"x"));
    assert_eq!(net.broker.frames().len(), 1);
}

#[test]
fn requested_certificates_count_only_clients_that_present_one() {
    let security = |tls: &Security| Security {
        downstream_tls: Some(DownstreamTls {
            config: test_util::server_cfg(
                ClientAuth::Requested { ca_certs: test_util::CA, crls: &[] },
                TlsVersions::default(),
            ),
            principal: Arc::new(PrincipalMapper::default()),
        }),
        ..tls.clone()
    };
    let base = tls_security(false, false);
    let identity = Some((test_util::CLIENT1, test_util::CLIENT1_KEY));
    for (client, principal, counted) in [(identity, "client1", 1), (None, ANONYMOUS, 0)] {
        let mut net = Net::new(security(&base), tls_client(client), None);
        assert_eq!(net.session.principal(), Some(principal));
        let expected = AuthOutcome { side: Side::Downstream, mechanism: "MTLS", failure: None };
        assert_eq!(net.session.take_stats().auth, vec![expected; counted], "{principal}");
    }
}

#[test]
fn untrusted_client_certificate_is_refused() {
    let net = Net::new(
        tls_security(true, false),
        tls_client(Some((test_util::OTHER_CLIENT1, test_util::OTHER_CLIENT1_KEY))),
        None,
    );
    assert!(matches!(net.closed, Some(CloseReason::Tls { side: Side::Downstream, .. })), "{:?}", net.closed);
    assert!(net.session.principal().is_none());
}

#[test]
fn plaintext_client_on_a_tls_listener_is_refused() {
    let mut net = Net::new(tls_security(false, false), TestPeer::plain(), None);
    net.client_send(&request(ApiKey::API_VERSIONS, 3, 1, true, b""));
    let Some(CloseReason::Tls { error, .. }) = &net.closed else { panic!("{:?}", net.closed) };
    assert!(matches!(error, TlsError::NotTls { .. }));
}

#[test]
fn pass_through_follows_raw_v0_scram_tokens() {
    let security = Security { downstream_sasl: DownstreamSasl::PassThrough, ..Security::default() };
    let mut net = Net::new(security, TestPeer::plain(), None);
    let mut broker = broker_sasl(&[SCRAM256], None);
    // SaslHandshake v0, then raw tokens without Kafka headers.
    net.client_send(&SaslHandshakeRequest { mechanism: b"SCRAM-SHA-256" }.encode_frame(1, 0, "t"));
    let handshake = net.broker.frames().pop().expect("forwarded");
    let start = 4 + crate::header::request_header_len(&handshake[4..], false).expect("header");
    let handshake_request = RequestRef {
        api_key: ApiKey::SASL_HANDSHAKE,
        version: 0,
        correlation_id: 1,
        body: &handshake[start..],
    };
    let crate::sasl::server::ServerStep::Reply(reply) =
        broker.on_request(handshake_request, net.now, test_support::wall())
    else {
        panic!("handshake")
    };
    net.broker_send(&reply);
    assert_eq!(net.client.frames().len(), 1);
    let scram = crate::sasl::scram::ScramClient::new(
        ScramMechanism::Sha256,
        "alice",
        Secret::new("alice-secret".into()),
        "fixed-nonce-0123456789".into(),
    );
    let (scram, first) = scram.client_first();
    let raw = |token: &[u8]| {
        let mut f = (token.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(token);
        f
    };
    net.client_send(&raw(&first));
    let token = net.broker.frames().pop().expect("raw token forwarded");
    let step = broker.on_raw_token(&token[4..], net.now, test_support::wall());
    let crate::sasl::server::ServerStep::Reply(server_first) = step else { panic!("{step:?}") };
    net.broker_send(&server_first);
    let server_first = net.client.frames().pop().expect("raw reply forwarded");
    let (scram, final_message) = scram.server_first(&server_first[4..]).expect("final");
    net.client_send(&raw(&final_message));
    let token = net.broker.frames().pop().expect("second raw token");
    let step = broker.on_raw_token(&token[4..], net.now, test_support::wall());
    let crate::sasl::server::ServerStep::Authenticated { reply, .. } = step else { panic!("{step:?}") };
    net.broker_send(&reply);
    let server_final = net.client.frames().pop().expect("final raw reply forwarded");
    scram.server_final(&server_final[4..]).expect("server signature verifies");
    // Back to Kafka framing.
    net.client_send(&request(ApiKey(2), 1, 2, false, b"x"));
    net.broker.frames();
    net.broker_send(&response(2, b"ok"));
    assert_eq!(net.client.frames().iter().map(correlation).collect::<Vec<_>>(), vec![2]);
    assert!(net.closed.is_none(), "{:?}", net.closed);
    let _ = SystemTime::now();
}

/// An idle plaintext session is mostly this struct (its buffers and queues
/// are given back once it has been quiet for `BUFFER_IDLE`): the bound
/// fails when someone bloats it.
/// Rarely used state (TLS, SASL, a Fetch being streamed, a deferred token)
/// belongs behind a `Box` or an `Option<Box<_>>`. The bound is where the
/// struct stands with the policy and metrics state every session carries and
/// the external authenticator's client address and pending reply (issue 13).
#[test]
fn session_struct_stays_small() {
    let size = std::mem::size_of::<Session>();
    assert!(size <= 1184, "Session is {size} bytes; box rarely used state to keep it at most 1184");
}
