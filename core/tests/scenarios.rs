//! Deterministic scenarios through the in-memory harness (client ↔ core ↔
//! fake broker, virtual clock).

// The message builders beside the tests are test code too (clippy's
// `allow-*-in-tests` covers only the `#[test]` functions themselves).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::Action;
use common::*;
use kafka_proxy_core::config::Limits;
use kafka_proxy_core::route::ListenerId;
use kafka_proxy_core::session::BUFFER_IDLE;
use kafka_proxy_core::session::FrameError;
use kafka_proxy_core::session::{CloseReason, ProtocolError, Side};

fn pipelined(h: &mut Harness) {
    let c = h.connect(ListenerId::Bootstrap(0));
    assert_eq!(h.conns[c].connect, None, "no broker connection before the first request");
    // ListOffsets, Produce acks=0, Produce acks=1, Produce acks=0, Heartbeat, pipelined in one write.
    let mut requests = Vec::new();
    requests.extend(request(2, 1, 1, false, b"list-offsets"));
    requests.extend(produce_v8(2, 0, b"fire-and-forget"));
    requests.extend(produce_v8(3, 1, b"acknowledged"));
    requests.extend(produce_v8(4, 0, b"fire-and-forget-2"));
    requests.extend(request(12, 4, 5, true, b"heartbeat"));
    h.client_send(c, &requests);
    assert_eq!(
        h.conns[c].connect.as_ref().map(|t| (t.host.as_str(), t.port)),
        Some(("kafka-0.internal", 9092))
    );
    assert_eq!(h.conns[c].to_broker, requests, "requests reach the broker byte for byte, in order");
    assert_eq!(h.conns[c].session.in_flight(), 3, "acks=0 produce expects no response");
    // The broker answers only the three that expect a response.
    let mut responses = Vec::new();
    responses.extend(response(1, b"offsets"));
    responses.extend(response(3, b"produced"));
    responses.extend(response(5, b"\0heartbeat"));
    h.broker_send(c, &responses);
    assert_eq!(h.conns[c].to_client, responses, "responses reach the client byte for byte");
    assert_eq!(h.conns[c].session.in_flight(), 0);
    assert!(h.conns[c].closed.is_none());
}

#[test]
fn pipelined_requests_with_acks0_produce() {
    let mut h = Harness::new(config(Limits::default()));
    pipelined(&mut h);
}

#[test]
fn pipelined_requests_under_tiny_reads_and_writes() {
    for (read, write) in [(1, 1), (3, 7), (5, 2), (13, 64 * 1024)] {
        let mut h = Harness::new(config(Limits::default()));
        h.read_size = read;
        h.write_size = write;
        pipelined(&mut h);
    }
}

#[test]
fn oversize_frame_closes_with_bounded_memory() {
    let limits = Limits { max_frame_bytes: 1024 * 1024, ..Limits::default() };
    let mut h = Harness::new(config(limits));
    let c = h.connect(ListenerId::Bootstrap(0));
    let mut hostile = (512 * 1024 * 1024i32).to_be_bytes().to_vec();
    hostile.extend_from_slice(&[0u8; 100]);
    h.client_send(c, &hostile);
    assert_eq!(
        h.conns[c].closed,
        Some(CloseReason::Frame {
            side: Side::Downstream,
            error: FrameError::TooLarge { size: 512 * 1024 * 1024, max: 1024 * 1024 },
        })
    );
    assert!(h.conns[c].session.buffered_bytes() <= 256 * 1024, "{}", h.conns[c].session.buffered_bytes());
    assert!(h.conns[c].to_broker.is_empty(), "nothing of the hostile frame is forwarded");
}

#[test]
fn response_out_of_request_order_closes() {
    let mut h = Harness::new(config(Limits::default()));
    let c = h.connect(ListenerId::Bootstrap(0));
    h.client_send(c, &request(2, 1, 1, false, b"x"));
    h.broker_send(c, &response(99, b"stray"));
    assert_eq!(
        h.conns[c].closed,
        Some(CloseReason::Protocol {
            side: Side::Upstream,
            error: ProtocolError::OutOfOrder { got: 99, expected: 1 },
        })
    );
    assert!(h.conns[c].to_client.is_empty(), "the stray response is not forwarded");
}

#[test]
fn response_to_nothing_closes() {
    let mut h = Harness::new(config(Limits::default()));
    let c = h.connect(ListenerId::Bootstrap(0));
    h.client_send(c, &request(2, 1, 1, false, b"x"));
    let mut replies = response(1, b"answered");
    replies.extend(response(5, b"unsolicited"));
    h.broker_send(c, &replies);
    assert_eq!(
        h.conns[c].closed,
        Some(CloseReason::Protocol {
            side: Side::Upstream,
            error: ProtocolError::UnexpectedResponse { correlation_id: 5 },
        })
    );
}

#[test]
fn local_answers_keep_request_order() {
    let mut h = Harness::new(config(Limits::default()));
    let c = h.connect(ListenerId::Bootstrap(0));
    let mut pipelined = request(2, 1, 1, false, b"list-offsets");
    pipelined.extend(request(18, 9, 2, true, b"future api versions"));
    pipelined.extend(request(2, 1, 3, false, b"list-offsets"));
    h.client_send(c, &pipelined);
    assert!(h.conns[c].to_client.is_empty(), "the local answer waits for response 1");
    h.broker_send(c, &response(1, b"one"));
    let ids: Vec<i32> = frames(&h.conns[c].to_client)
        .iter()
        .map(|f| i32::from_be_bytes(f[..4].try_into().unwrap()))
        .collect();
    assert_eq!(ids, vec![1, 2]);
    h.broker_send(c, &response(3, b"three"));
    let ids: Vec<i32> = frames(&h.conns[c].to_client)
        .iter()
        .map(|f| i32::from_be_bytes(f[..4].try_into().unwrap()))
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
}

#[test]
fn future_api_versions_request_is_answered_locally() {
    let mut h = Harness::new(config(Limits::default()));
    let c = h.connect(ListenerId::Bootstrap(0));
    h.client_send(c, &request(18, 9, 7, true, b"future"));
    assert!(h.conns[c].to_broker.is_empty(), "never reaches a broker that might answer in v9");
    let replies = frames(&h.conns[c].to_client);
    assert_eq!(replies.len(), 1);
    let body = &replies[0];
    assert_eq!(&body[..4], &7i32.to_be_bytes(), "correlation id echoed, header v0");
    assert_eq!(&body[4..6], &35i16.to_be_bytes(), "UNSUPPORTED_VERSION");
    assert!(h.conns[c].closed.is_none());
}

#[test]
fn request_above_advertised_version_closes() {
    let mut h = Harness::new(config(Limits::default()));
    let c = h.connect(ListenerId::Bootstrap(0));
    h.client_send(c, &request(3, 99, 1, true, b""));
    assert!(matches!(
        h.conns[c].closed,
        Some(CloseReason::Protocol {
            side: Side::Downstream,
            error: ProtocolError::VersionNotAdvertised { .. }
        })
    ));
}

#[test]
fn connect_timeout_closes_after_the_configured_time() {
    let mut h = Harness::new(config(Limits::default()));
    h.auto_connect = false;
    let c = h.connect(ListenerId::Bootstrap(0));
    h.client_send(c, &request(2, 1, 1, false, b"queued while connecting"));
    h.advance(Duration::from_secs(14));
    assert!(h.conns[c].closed.is_none());
    h.advance(Duration::from_secs(1));
    assert!(matches!(h.conns[c].closed, Some(CloseReason::ConnectTimeout { .. })));
}

#[test]
fn client_eof_flushes_queued_requests_then_closes() {
    let mut h = Harness::new(config(Limits::default()));
    h.write_size = 0; // the broker socket is momentarily full
    let c = h.connect(ListenerId::Bootstrap(0));
    let req = produce_v8(1, 0, b"last words");
    h.client_send(c, &req);
    assert!(h.conns[c].to_broker.is_empty());
    // The client hangs up: an empty read is end of stream.
    let now = h.now;
    let out = h.conns[c].session.read_from(now, Side::Downstream, |_| Ok::<_, std::convert::Infallible>(0));
    assert!(out.is_ok());
    h.drive();
    assert!(h.conns[c].closed.is_none(), "still flushing");
    h.write_size = usize::MAX;
    h.drive();
    assert_eq!(h.conns[c].to_broker, req, "queued acks=0 produce delivered before closing");
    assert_eq!(h.conns[c].closed, Some(CloseReason::PeerClosed(Side::Downstream)));
}

#[test]
fn stalled_broker_applies_back_pressure_to_the_client() {
    let limits = Limits { max_buffered_bytes: 256 * 1024, ..Limits::default() };
    let mut h = Harness::new(config(limits));
    h.write_size = 0;
    let c = h.connect(ListenerId::Bootstrap(0));
    let payload = vec![7u8; 16 * 1024];
    let mut stream = Vec::new();
    for corr in 0..256 {
        stream.extend(produce_v8(corr, 1, &payload));
    }
    h.client_send(c, &stream);
    let held = h.conns[c].session.buffered_bytes();
    assert!(!h.conns[c].from_client.is_empty(), "the proxy stopped reading the client");
    assert!(held < 256 * 1024 + 2 * 64 * 1024 + 32 * 1024, "memory stays bounded: {held}");
    assert!(!h.conns[c].session.wants_read(Side::Downstream));
    // The broker drains: everything flows.
    h.write_size = usize::MAX;
    h.drive();
    assert!(h.conns[c].from_client.is_empty());
    assert_eq!(h.conns[c].to_broker, stream);
}

#[test]
fn idle_connections_close() {
    let mut h =
        Harness::new(config(Limits { idle_timeout: Some(Duration::from_secs(60)), ..Limits::default() }));
    let c = h.connect(ListenerId::Bootstrap(0));
    h.advance(Duration::from_secs(59));
    assert!(h.conns[c].closed.is_none());
    h.advance(Duration::from_secs(1));
    assert_eq!(h.conns[c].closed, Some(CloseReason::IdleTimeout));
}

#[test]
fn drained_connections_hold_no_buffer_and_regrow_on_traffic() {
    let mut h = Harness::new(config(Limits::default()));
    h.read_size = 4096;
    let c = h.connect(ListenerId::Bootstrap(0));
    // One round trip: the buffers are kept for the next request until the
    // connection has been quiet for BUFFER_IDLE, then given back.
    h.client_send(c, &request(12, 4, 1, true, b"heartbeat"));
    h.broker_send(c, &response(1, b"\0heartbeat"));
    assert_eq!(h.conns[c].to_client, response(1, b"\0heartbeat"));
    let kept = h.conns[c].session.buffered_bytes();
    assert!(kept > 0, "just after a round trip the buffers are kept");
    h.advance(BUFFER_IDLE - Duration::from_millis(1));
    assert_eq!(h.conns[c].session.buffered_bytes(), kept, "nothing is released before the idle period");
    // (The deadline is rounded up to a tick of half the idle period.)
    h.advance(BUFFER_IDLE / 2 + Duration::from_millis(1));
    assert_eq!(h.conns[c].session.buffered_bytes(), 0, "an idle connection holds no buffer");
    let next = h.conns[c].session.poll_timeout().expect("the idle timeout");
    assert!(
        next > h.now + Duration::from_secs(60),
        "released: no timer due soon ({:?} from now)",
        next - h.now
    );
    // Half of a 48 KiB request: its bytes are kept (in a buffer sized for
    // the frame) until the rest arrives.
    let produce = produce_v8(2, 1, &vec![7u8; 48 * 1024]);
    let (head, tail) = produce.split_at(10_000);
    h.client_send(c, head);
    let held = h.conns[c].session.buffered_bytes();
    assert!(held >= produce.len(), "the partial frame's buffer grew to the frame ({held} bytes)");
    h.client_send(c, tail);
    assert_eq!(&h.conns[c].to_broker[h.conns[c].to_broker.len() - produce.len()..], &produce[..]);
    // A response larger than one read arrives in pieces and leaves whole.
    let answer = response(2, &vec![9u8; 20 * 1024]);
    h.broker_send(c, &answer);
    assert!(h.conns[c].to_client.ends_with(&answer), "the response reached the client intact");
    h.advance(BUFFER_IDLE * 3 / 2);
    assert_eq!(h.conns[c].session.buffered_bytes(), 0, "quiet again: nothing is held");
    assert!(h.conns[c].closed.is_none());
}

#[test]
fn busy_connections_keep_their_buffers_between_requests() {
    let mut h = Harness::new(config(Limits::default()));
    let c = h.connect(ListenerId::Bootstrap(0));
    h.client_send(c, &request(12, 4, 1, true, b"heartbeat"));
    h.broker_send(c, &response(1, b"\0heartbeat"));
    let held = h.conns[c].session.buffered_bytes();
    assert!(held > 0);
    // A request every half idle period, for four idle periods: the buffers
    // are reused in place, never given back and allocated again.
    for id in 2..10 {
        h.advance(BUFFER_IDLE / 2);
        assert_eq!(
            h.conns[c].session.buffered_bytes(),
            held,
            "request {id}: nothing released between requests"
        );
        h.client_send(c, &request(12, 4, id, true, b"heartbeat"));
        h.broker_send(c, &response(id, b"\0heartbeat"));
        assert!(h.conns[c].to_client.ends_with(&response(id, b"\0heartbeat")));
        assert_eq!(h.conns[c].session.buffered_bytes(), held, "request {id}: the same buffers carried it");
    }
    h.advance(BUFFER_IDLE * 3 / 2);
    assert_eq!(h.conns[c].session.buffered_bytes(), 0, "quiet: the buffers are given back");
    assert!(h.conns[c].closed.is_none());
}

#[test]
fn bootstrap_listeners_open_at_start() {
    let h = Harness::new(config(Limits::default()));
    assert_eq!(
        h.actions,
        vec![
            Action::Listen { id: ListenerId::Bootstrap(0), addr: "127.0.0.1:30000".parse().unwrap() },
            Action::Spawn,
        ]
    );
}

mod metadata {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::BrokerId;
    use kafka_protocol::messages::metadata_response::{MetadataResponse, MetadataResponseBroker};
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    fn metadata_response(correlation_id: i32, brokers: &[(i32, &str, i32)]) -> Vec<u8> {
        let response = MetadataResponse::default()
            .with_brokers(
                brokers
                    .iter()
                    .map(|(id, host, port)| {
                        MetadataResponseBroker::default()
                            .with_node_id(BrokerId(*id))
                            .with_host(StrBytes::from_string(host.to_string()))
                            .with_port(*port)
                    })
                    .collect(),
            )
            .with_cluster_id(Some(StrBytes::from_static_str("cluster")));
        let mut body = BytesMut::new();
        body.extend_from_slice(&correlation_id.to_be_bytes());
        body.extend_from_slice(&[0]); // response header v1: no tagged fields
        response.encode(&mut body, 12).unwrap();
        framed(&body)
    }

    fn client_view(frame: &[u8]) -> Vec<(i32, String, i32)> {
        let mut body = bytes(&frame[5..]);
        let decoded = MetadataResponse::decode(&mut body, 12).unwrap();
        decoded.brokers.iter().map(|b| (b.node_id.0, b.host.to_string(), b.port)).collect()
    }

    #[test]
    fn metadata_adds_then_removes_a_broker() {
        let mut h = Harness::new(config(Limits::default()));
        let c = h.connect(ListenerId::Bootstrap(0));
        h.client_send(c, &request(3, 12, 1, true, &[1, 0, 0]));
        h.broker_send(
            c,
            &metadata_response(1, &[(111, "kafka-111.internal", 9092), (112, "kafka-112.internal", 9092)]),
        );
        let seen = client_view(&frames(&h.conns[c].to_client)[0]);
        assert_eq!(
            seen,
            vec![
                (111, "127.0.0.1".to_string(), i32::from(BASE) + 131),
                (112, "127.0.0.1".to_string(), i32::from(BASE) + 132)
            ],
            "clients only ever see proxy addresses"
        );
        assert!(h.listeners.contains_key(&ListenerId::Broker(111)));
        assert!(h.listeners.contains_key(&ListenerId::Broker(112)));
        // A client can now reach broker 112 through its own listener.
        let c112 = h.connect(ListenerId::Broker(112));
        h.client_send(c112, &request(2, 1, 1, false, b"x"));
        assert_eq!(
            h.conns[c112].connect.as_ref().map(|t| (t.host.as_str(), t.port)),
            Some(("kafka-112.internal", 9092))
        );
        // Broker 112 leaves the cluster.
        h.client_send(c, &request(3, 12, 2, true, &[1, 0, 0]));
        h.broker_send(c, &metadata_response(2, &[(111, "kafka-111.internal", 9092)]));
        assert_eq!(h.actions.last(), Some(&Action::Unlisten { id: ListenerId::Broker(112) }));
        assert!(!h.listeners.contains_key(&ListenerId::Broker(112)));
        assert!(h.listeners.contains_key(&ListenerId::Broker(111)));
        assert!(
            h.proxy
                .accept(
                    h.now,
                    std::time::SystemTime::now(),
                    ListenerId::Broker(112),
                    "127.0.0.1:1".parse().unwrap()
                )
                .is_err()
        );
    }

    #[test]
    fn broker_ids_beyond_max_are_not_exposed() {
        let mut h = Harness::new(config(Limits::default()));
        let c = h.connect(ListenerId::Bootstrap(0));
        h.client_send(c, &request(3, 12, 1, true, &[1, 0, 0]));
        h.broker_send(
            c,
            &metadata_response(1, &[(111, "kafka-111.internal", 9092), (401, "kafka-401.internal", 9092)]),
        );
        let seen = client_view(&frames(&h.conns[c].to_client)[0]);
        assert_eq!(
            seen,
            vec![(111, "127.0.0.1".to_string(), i32::from(BASE) + 131)],
            "no leak of broker 401"
        );
        assert!(!h.listeners.contains_key(&ListenerId::Broker(401)));
        assert!(h.conns[c].closed.is_none());
    }

    #[test]
    fn a_started_proxy_probes_the_cluster_for_its_brokers() {
        let mut h = Harness::with_probes(config(Limits::default()));
        let probe = 0;
        assert!(h.conns[probe].session.is_probe());
        let asked = frames(&h.conns[probe].to_broker);
        assert_eq!(asked.len(), 2, "ApiVersions, then Metadata");
        assert_eq!(&asked[0][..4], &[0, 18, 0, 0], "ApiVersions v0");
        assert_eq!(&asked[1][..4], &[0, 3, 0, 4], "Metadata v4");
        assert!(!h.listeners.contains_key(&ListenerId::Broker(111)));
        h.broker_send(probe, &api_versions_v0_response(0, &[(3, 0, 12), (18, 0, 4)]));
        assert!(h.conns[probe].closed.is_none(), "the probe waits for its Metadata answer");
        let mut reply = metadata_response(1, &[(111, "kafka-111.internal", 9092)]);
        // The probe asked with v4 (classic header, no tags): re-encode for that.
        reply = {
            let response = MetadataResponse::decode(&mut bytes(&reply[9..]), 12).unwrap();
            let mut body = BytesMut::new();
            body.extend_from_slice(&1i32.to_be_bytes());
            response.encode(&mut body, 4).unwrap();
            framed(&body)
        };
        h.broker_send(probe, &reply);
        assert!(
            h.listeners.contains_key(&ListenerId::Broker(111)),
            "broker port open before any client: {:?} {:?}",
            h.conns[probe].closed,
            h.actions
        );
        assert_eq!(h.conns[probe].closed, Some(CloseReason::ProbeComplete));
        assert_eq!(h.proxy.poll_timeout(), None, "no further probe");
    }

    #[test]
    fn a_failed_probe_is_retried_with_backoff() {
        let mut h = Harness::with_probes(config(Limits::default()));
        let now = h.now;
        let broker_gone = |h: &mut Harness, c: usize| {
            let now = h.now;
            let _ =
                h.conns[c].session.read_from(now, Side::Upstream, |_| Ok::<_, std::convert::Infallible>(0));
            h.drive();
        };
        broker_gone(&mut h, 0);
        assert_eq!(h.conns[0].closed, Some(CloseReason::PeerClosed(Side::Upstream)));
        assert_eq!(h.proxy.poll_timeout(), Some(now + Duration::from_secs(1)));
        h.advance(Duration::from_secs(1));
        assert_eq!(h.conns.len(), 2, "a second probe");
        let now = h.now;
        broker_gone(&mut h, 1);
        assert_eq!(h.proxy.poll_timeout(), Some(now + Duration::from_secs(2)), "the pause doubles");
    }

    /// `static` mapping, external brokers and advertised overrides (the Go
    /// proxy's `--bootstrap-server-mapping`, `--external-server-mapping`,
    /// `--dynamic-listeners-disable`).
    mod mappings {
        use super::*;
        use kafka_proxy_core::config::{
            DynamicListeners, ExternalBroker, HostPort, Mapping, ProxyConfig, StaticBroker, StaticMapping,
        };

        fn hp(host: &str, port: u16) -> HostPort {
            HostPort { host: host.into(), port }
        }

        fn static_config(dynamic: Option<DynamicListeners>, external: Vec<ExternalBroker>) -> ProxyConfig {
            let mut cfg = config(Limits::default());
            cfg.bootstrap = vec![hp("kafka-0.internal", 9092)];
            cfg.mapping = Mapping::Static(StaticMapping {
                brokers: vec![
                    StaticBroker {
                        upstream: hp("kafka-0.internal", 9092),
                        listen: "127.0.0.1:32400".parse().unwrap(),
                        advertised: hp("kafka-0.nat.example.com", 19092),
                    },
                    StaticBroker {
                        upstream: hp("kafka-1.internal", 9092),
                        listen: "127.0.0.1:32401".parse().unwrap(),
                        advertised: hp("127.0.0.1", 32401),
                    },
                ],
                dynamic,
            });
            cfg.external = external;
            cfg
        }

        fn dynamic() -> DynamicListeners {
            DynamicListeners {
                bind_ip: "127.0.0.2".parse().unwrap(),
                first_port: 32500,
                advertised_host: "proxy.example.com".into(),
                advertised_first_port: 42500,
                max_broker_id: 10,
            }
        }

        #[test]
        fn static_listeners_open_at_start_and_forward_to_their_broker() {
            let mut h = Harness::new(static_config(None, vec![]));
            assert_eq!(
                &h.actions[..2],
                &[
                    Action::Listen { id: ListenerId::Static(0), addr: "127.0.0.1:32400".parse().unwrap() },
                    Action::Listen { id: ListenerId::Static(1), addr: "127.0.0.1:32401".parse().unwrap() },
                ]
            );
            let c = h.connect(ListenerId::Static(1));
            h.client_send(c, &request(18, 3, 1, true, &[0, 0, 0]));
            let target = h.conns[c].connect.clone().unwrap();
            assert_eq!((target.host.as_str(), target.port), ("kafka-1.internal", 9092));
        }

        #[test]
        fn clients_are_told_the_advertised_addresses_and_unmapped_brokers_are_left_out() {
            let mut h = Harness::new(static_config(None, vec![]));
            let c = h.connect(ListenerId::Static(0));
            h.client_send(c, &request(3, 12, 1, true, &[1, 0, 0]));
            h.broker_send(
                c,
                &metadata_response(
                    1,
                    &[
                        (0, "kafka-0.internal", 9092),
                        (1, "KAFKA-1.internal", 9092),
                        (2, "kafka-2.internal", 9092),
                    ],
                ),
            );
            let seen = client_view(&frames(&h.conns[c].to_client)[0]);
            assert_eq!(
                seen,
                vec![(0, "kafka-0.nat.example.com".to_string(), 19092), (1, "127.0.0.1".to_string(), 32401)],
                "advertised host and port differ from the bound ones; broker 2 is refused, not leaked"
            );
            let listens = h.actions.iter().filter(|a| matches!(a, Action::Listen { .. })).count();
            assert_eq!(listens, 2, "no dynamic listener: {:?}", h.actions);
            assert!(h.proxy.knows_cluster());
        }

        #[test]
        fn dynamic_listeners_open_by_node_id_for_unmapped_brokers() {
            let mut h = Harness::new(static_config(Some(dynamic()), vec![]));
            let c = h.connect(ListenerId::Static(0));
            h.client_send(c, &request(3, 12, 1, true, &[1, 0, 0]));
            h.broker_send(
                c,
                &metadata_response(
                    1,
                    &[
                        (0, "kafka-0.internal", 9092),
                        (3, "kafka-3.internal", 9092),
                        (11, "kafka-11.internal", 9092),
                    ],
                ),
            );
            let seen = client_view(&frames(&h.conns[c].to_client)[0]);
            assert_eq!(
                seen,
                vec![
                    (0, "kafka-0.nat.example.com".to_string(), 19092),
                    (3, "proxy.example.com".to_string(), 42503)
                ],
                "broker 11 is beyond max_broker_id"
            );
            assert_eq!(h.listeners.get(&ListenerId::Broker(3)), Some(&"127.0.0.2:32503".parse().unwrap()));
            assert!(
                !h.listeners.contains_key(&ListenerId::Broker(0)),
                "a listed broker has its static listener"
            );
            assert!(!h.listeners.contains_key(&ListenerId::Broker(11)));
            let c3 = h.connect(ListenerId::Broker(3));
            h.client_send(c3, &request(18, 3, 1, true, &[0, 0, 0]));
            let target = h.conns[c3].connect.clone().unwrap();
            assert_eq!((target.host.as_str(), target.port), ("kafka-3.internal", 9092));
        }

        #[test]
        fn external_brokers_are_advertised_without_a_listener_in_every_mode() {
            let external = vec![ExternalBroker {
                upstream: hp("kafka-2.internal", 9092),
                advertised: hp("lb.example.com", 32402),
            }];
            // static, with dynamic listeners: the external entry wins over them.
            let mut h = Harness::new(static_config(Some(dynamic()), external.clone()));
            let c = h.connect(ListenerId::Static(0));
            h.client_send(c, &request(3, 12, 1, true, &[1, 0, 0]));
            h.broker_send(c, &metadata_response(1, &[(2, "kafka-2.internal", 9092)]));
            let seen = client_view(&frames(&h.conns[c].to_client)[0]);
            assert_eq!(seen, vec![(2, "lb.example.com".to_string(), 32402)]);
            assert!(!h.listeners.contains_key(&ListenerId::Broker(2)));
            // port_offset
            let mut cfg = config(Limits::default());
            cfg.external = external;
            let mut h = Harness::new(cfg);
            let c = h.connect(ListenerId::Bootstrap(0));
            h.client_send(c, &request(3, 12, 1, true, &[1, 0, 0]));
            h.broker_send(
                c,
                &metadata_response(1, &[(1, "kafka-1.internal", 9092), (2, "kafka-2.internal", 9092)]),
            );
            let seen = client_view(&frames(&h.conns[c].to_client)[0]);
            assert_eq!(
                seen,
                vec![
                    (1, "127.0.0.1".to_string(), i32::from(BASE) + 21),
                    (2, "lb.example.com".to_string(), 32402)
                ]
            );
            assert!(h.listeners.contains_key(&ListenerId::Broker(1)));
            assert!(!h.listeners.contains_key(&ListenerId::Broker(2)), "another server listens for it");
        }

        #[test]
        fn port_offset_advertises_shifted_ports_but_binds_its_own() {
            let mut cfg = config(Limits::default());
            let Mapping::PortOffset(p) = &mut cfg.mapping else { unreachable!() };
            p.advertised_base = 40000;
            let mut h = Harness::new(cfg);
            let c = h.connect(ListenerId::Bootstrap(0));
            h.client_send(c, &request(3, 12, 1, true, &[1, 0, 0]));
            h.broker_send(c, &metadata_response(1, &[(5, "kafka-5.internal", 9092)]));
            let seen = client_view(&frames(&h.conns[c].to_client)[0]);
            assert_eq!(seen, vec![(5, "127.0.0.1".to_string(), 40025)]);
            assert_eq!(
                h.listeners.get(&ListenerId::Broker(5)),
                Some(&format!("127.0.0.1:{}", BASE + 25).parse().unwrap())
            );
        }

        #[test]
        fn a_reload_never_moves_static_listeners() {
            let mut h = Harness::new(static_config(None, vec![]));
            let mut changed = static_config(Some(dynamic()), vec![]);
            changed.limits.idle_timeout = None;
            let ignored = h.proxy.reload(changed);
            assert_eq!(ignored, vec!["broker_mapping"]);
            let external = vec![ExternalBroker { upstream: hp("a", 1), advertised: hp("b", 2) }];
            assert_eq!(h.proxy.reload(static_config(None, external)), vec!["broker_mapping.external"]);
        }
    }
}

mod cut_through {
    use super::*;

    #[test]
    fn large_requests_flow_through_in_pieces_with_small_buffers() {
        let mut h = Harness::new(config(Limits::default()));
        h.read_size = 32 * 1024;
        let c = h.connect(ListenerId::Bootstrap(0));
        let payload: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
        let req = produce_v8(1, 1, &payload);
        let mut peak = 0;
        for piece in req.chunks(100_000) {
            h.client_send(c, piece);
            peak = peak.max(h.conns[c].session.buffered_bytes());
        }
        assert_eq!(h.conns[c].to_broker, req, "byte for byte");
        assert!(peak < 1024 * 1024, "a 2 MB request never sits whole in the proxy: peak {peak}");
        h.broker_send(c, &response(1, b"ok"));
        assert_eq!(frames(&h.conns[c].to_client).len(), 1);
        assert!(h.conns[c].closed.is_none());
    }

    #[test]
    fn local_answers_never_land_inside_a_response_being_cut_through() {
        let mut h = Harness::new(config(Limits::default()));
        let c = h.connect(ListenerId::Bootstrap(0));
        // ListOffsets (pass-through), then an ApiVersions v9 the proxy answers itself.
        let mut reqs = request(2, 1, 1, false, b"x");
        reqs.extend(request(18, 9, 2, true, b""));
        h.client_send(c, &reqs);
        let big: Vec<u8> = (0..500_000u32).map(|i| (i % 7) as u8).collect();
        let resp = response(1, &big);
        h.broker_send(c, &resp[..200_000]);
        assert_eq!(h.conns[c].to_client.len(), 200_000, "forwarded before its end arrived");
        h.broker_send(c, &resp[200_000..]);
        let got = frames(&h.conns[c].to_client);
        assert_eq!(got.len(), 2, "the big response whole, then the local answer");
        assert_eq!(got[0].len(), resp.len() - 4);
        assert_eq!(&got[1][..4], &2i32.to_be_bytes());
    }

    #[test]
    fn the_rest_of_a_cut_through_frame_may_be_spliced_past_the_session() {
        let mut h = Harness::new(config(Limits::default()));
        let c = h.connect(ListenerId::Bootstrap(0));
        let req = produce_v8(1, 1, &vec![3u8; 1_000_000]);
        assert_eq!(h.conns[c].session.splice_window(Side::Downstream), None, "between frames: no");
        h.client_send(c, &req[..100_000]);
        let rest = req.len() - 100_000;
        assert_eq!(h.conns[c].session.splice_window(Side::Downstream), Some(rest));
        // The runtime moves the rest socket to pipe (here: by hand).
        let now = h.now;
        h.conns[c].session.handle_spliced(now, Side::Downstream, rest - 10);
        assert_eq!(h.conns[c].session.splice_window(Side::Downstream), None, "the pipe is not empty");
        assert!(!h.conns[c].session.wants_read(Side::Downstream), "nothing more until the pipe drains");
        assert_eq!(h.conns[c].session.pending_splice(Side::Upstream), rest - 10);
        // Pipe to broker socket.
        h.conns[c].to_broker.extend_from_slice(&req[100_000..req.len() - 10]);
        h.conns[c].session.handle_unspliced(now, Side::Upstream, rest - 10);
        assert_eq!(h.conns[c].session.pending_splice(Side::Upstream), 0);
        assert_eq!(h.conns[c].session.splice_window(Side::Downstream), None, "below the splice minimum");
        h.client_send(c, &req[req.len() - 10..]);
        assert_eq!(h.conns[c].to_broker, req);
        // The frame ended: framing resumes with the next one, and its response matches.
        h.client_send(c, &request(2, 1, 2, false, b"next"));
        h.broker_send(c, &response(1, b"produced"));
        h.broker_send(c, &response(2, b"offsets"));
        assert_eq!(frames(&h.conns[c].to_client).len(), 2);
        assert!(h.conns[c].closed.is_none());
    }

    #[test]
    fn acks0_large_produce_expects_no_response() {
        let mut h = Harness::new(config(Limits::default()));
        let c = h.connect(ListenerId::Bootstrap(0));
        let req = produce_v8(1, 0, &vec![9u8; 300_000]);
        h.client_send(c, &req[..100_000]);
        h.client_send(c, &req[100_000..]);
        assert_eq!(h.conns[c].to_broker, req);
        assert_eq!(h.conns[c].session.in_flight(), 0);
        // The next request/response pair still matches.
        h.client_send(c, &request(2, 1, 7, false, b"y"));
        h.broker_send(c, &response(7, b"z"));
        assert_eq!(frames(&h.conns[c].to_client).len(), 1);
        assert!(h.conns[c].closed.is_none());
    }
}

mod fetch_stream {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::fetch_response::{
        FetchResponse, FetchableTopicResponse, NodeEndpoint, PartitionData,
    };
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    fn fetch_v16(correlation_id: i32, records: usize, endpoint_host: Option<&str>) -> Vec<u8> {
        let mut p = PartitionData::default();
        p.partition_index = 0;
        p.high_watermark = 10;
        p.records = Some(Bytes::from(vec![0x5a; records]));
        let mut t = FetchableTopicResponse::default();
        t.topic_id = Default::default();
        t.partitions = vec![p];
        let mut m = FetchResponse::default();
        m.responses = vec![t];
        if let Some(host) = endpoint_host {
            let mut e = NodeEndpoint::default();
            e.node_id = 111.into();
            e.host = StrBytes::from_string(host.to_string());
            e.port = 9092;
            m.node_endpoints = vec![e];
        }
        let mut body = BytesMut::new();
        body.extend_from_slice(&correlation_id.to_be_bytes());
        body.extend_from_slice(&[0]);
        m.encode(&mut body, 16).unwrap();
        framed(&body)
    }

    fn decode(frame: &[u8]) -> FetchResponse {
        FetchResponse::decode(&mut bytes(&frame[5..]), 16).unwrap()
    }

    #[test]
    fn large_fetch_streams_with_node_endpoints_rewritten_in_place() {
        let mut h = Harness::new(config(Limits::default()));
        let c = h.connect(ListenerId::Bootstrap(0));
        h.client_send(c, &request(1, 16, 3, true, b"fetch"));
        let resp = fetch_v16(3, 2_000_000, Some("kafka-111.a-long-internal-name.example"));
        let mut peak = 0;
        for piece in resp.chunks(50_000) {
            h.broker_send(c, piece);
            peak = peak.max(h.conns[c].session.buffered_bytes());
        }
        let got = frames(&h.conns[c].to_client);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len(), resp.len() - 4, "same length: the size prefix went out first");
        let out = decode(&got[0]);
        assert_eq!(out.node_endpoints.len(), 1);
        assert_eq!(out.node_endpoints[0].host.as_str(), "127.0.0.1");
        assert_eq!(out.node_endpoints[0].port, i32::from(BASE) + 131);
        assert_eq!(out.responses, decode(&resp[4..]).responses, "records untouched");
        assert!(peak < 700_000, "a 2 MB response never sat whole in the proxy: peak {peak}");
        assert!(h.listeners.contains_key(&ListenerId::Broker(111)), "the endpoint was learned");
        assert!(h.conns[c].closed.is_none());
    }

    #[test]
    fn longer_advertised_names_are_dropped_not_leaked() {
        let mut cfg = config(Limits::default());
        let kafka_proxy_core::config::Mapping::PortOffset(p) = &mut cfg.mapping else { unreachable!() };
        p.advertised_host = "a-proxy-host-name-longer-than-the-broker-one.example.com".into();
        let mut h = Harness::new(cfg);
        let c = h.connect(ListenerId::Bootstrap(0));
        h.client_send(c, &request(1, 16, 3, true, b"fetch"));
        let resp = fetch_v16(3, 200_000, Some("b1"));
        h.broker_send(c, &resp[..100_000]);
        h.broker_send(c, &resp[100_000..]);
        let got = frames(&h.conns[c].to_client);
        assert_eq!(got[0].len(), resp.len() - 4);
        assert!(decode(&got[0]).node_endpoints.is_empty(), "dropped: clients refresh Metadata instead");
        assert!(!String::from_utf8_lossy(&got[0]).contains("b1\0"));
    }

    #[test]
    fn fetch_without_endpoints_passes_byte_for_byte() {
        let mut h = Harness::new(config(Limits::default()));
        let c = h.connect(ListenerId::Bootstrap(0));
        h.client_send(c, &request(1, 16, 3, true, b"fetch"));
        h.client_send(c, &request(18, 9, 4, true, b"")); // answered locally, after the fetch
        let resp = fetch_v16(3, 300_000, None);
        h.read_size = 7_000;
        h.broker_send(c, &resp);
        let got = frames(&h.conns[c].to_client);
        assert_eq!(got.len(), 2);
        assert_eq!(&got[0][..], &resp[4..]);
        assert_eq!(&got[1][..4], &4i32.to_be_bytes());
    }
}

mod splice {
    use super::*;

    /// A client that pipelines small and large Produce requests, and a broker
    /// that answers with small and large responses: the bytes each side
    /// receives are the same whether the runtime copies or splices.
    fn exchange(splice: bool, read_size: usize, write_size: usize) -> (Vec<u8>, Vec<u8>) {
        let mut h = Harness::new(config(Limits::default()));
        h.splice = splice;
        h.read_size = read_size;
        h.write_size = write_size;
        let c = h.connect(ListenerId::Bootstrap(0));
        let mut client = Vec::new();
        for (i, size) in [100usize, 700_000, 3, 200_000, 40_000].into_iter().enumerate() {
            client.extend(produce_v8(i as i32 + 1, 1, &vec![i as u8; size]));
        }
        for chunk in client.chunks(150_001) {
            h.client_send(c, chunk);
        }
        let mut broker = Vec::new();
        for (i, size) in [10usize, 500_000, 70_000, 1, 90_000].into_iter().enumerate() {
            broker.extend(response(i as i32 + 1, &vec![0x40 + i as u8; size]));
        }
        for chunk in broker.chunks(99_999) {
            h.broker_send(c, chunk);
        }
        assert_eq!(h.conns[c].to_broker, client, "every request reached the broker, in order");
        assert_eq!(h.conns[c].to_client, broker, "every response reached the client, in order");
        assert!(h.conns[c].closed.is_none());
        assert!(h.conns[c].pipes.iter().all(Vec::is_empty));
        (std::mem::take(&mut h.conns[c].to_broker), std::mem::take(&mut h.conns[c].to_client))
    }

    #[test]
    fn splicing_and_copying_deliver_the_same_bytes() {
        for (read, write) in [(64 * 1024, usize::MAX), (17_000, 5_000), (1 << 20, 123_457)] {
            assert_eq!(
                exchange(true, read, write),
                exchange(false, read, write),
                "read {read} write {write}"
            );
        }
    }

    #[test]
    fn the_pipe_goes_first_and_pauses_its_source() {
        let mut h = Harness::new(config(Limits::default()));
        let c = h.connect(ListenerId::Bootstrap(0));
        let req = produce_v8(1, 1, &vec![5u8; 300_000]);
        h.client_send(c, &req[..70_000]);
        let now = h.now;
        let rest = req.len() - 70_000;
        assert_eq!(h.conns[c].session.splice_window(Side::Downstream), Some(rest));
        h.conns[c].session.handle_spliced(now, Side::Downstream, rest);
        assert!(!h.conns[c].session.wants_read(Side::Downstream), "source paused while piped");
        assert!(h.conns[c].session.wants_write(Side::Upstream), "the pipe counts as data to write");
        let mut offered = 0;
        let out = h.conns[c]
            .session
            .write_to(now, Side::Upstream, |iov| {
                offered = iov.len();
                Ok::<_, std::convert::Infallible>(0)
            })
            .unwrap();
        assert_eq!(
            out,
            kafka_proxy_core::session::WriteOutcome::Idle,
            "nothing queued may overtake the pipe"
        );
        assert_eq!(offered, 0);
        h.conns[c].session.handle_unspliced(now, Side::Upstream, rest);
        assert!(h.conns[c].session.wants_read(Side::Downstream));
    }
}

mod drain {
    use super::*;

    #[test]
    fn drain_closes_listeners_and_refuses_new_clients() {
        let mut h = Harness::new(config(Limits::default()));
        assert!(h.listeners.contains_key(&ListenerId::Bootstrap(0)));
        h.proxy.drain();
        h.drive();
        assert!(h.listeners.is_empty(), "every listener closed");
        assert!(h.actions.contains(&Action::Unlisten { id: ListenerId::Bootstrap(0) }));
        assert!(h.proxy.is_draining());
        // A client still in the closed listener's backlog is accepted and
        // sent away cleanly (half-close, then linger), never reset.
        let peer = "127.0.0.1:1".parse().unwrap();
        let late =
            h.proxy.accept(h.now, std::time::SystemTime::now(), ListenerId::Bootstrap(0), peer).unwrap();
        assert!(late.is_draining());
        let unknown = h.proxy.accept(h.now, std::time::SystemTime::now(), ListenerId::Broker(7), peer);
        assert!(unknown.is_err(), "only listeners that existed");
    }

    #[test]
    fn an_idle_connection_closes_at_once_with_a_lingering_close() {
        let mut h = Harness::new(config(Limits::default()));
        h.clients_close_on_fin = false;
        let c = h.connect(ListenerId::Bootstrap(0));
        let now = h.now;
        h.conns[c].session.drain(now);
        h.drive();
        assert!(h.conns[c].client_shut_write, "the client is told with a FIN, not a reset");
        assert!(h.conns[c].closed.is_none(), "lingering until the client closes");
        // What the client still sends is read and dropped.
        h.client_send(c, &request(2, 0, 9, false, b"late"));
        assert!(h.conns[c].to_broker.is_empty());
        h.client_close(c);
        assert_eq!(h.conns[c].closed, Some(CloseReason::Drained));
    }

    #[test]
    fn responses_to_forwarded_requests_are_delivered_first() {
        let mut h = Harness::new(config(Limits::default()));
        h.clients_close_on_fin = false;
        let c = h.connect(ListenerId::Bootstrap(0));
        h.client_send(c, &request(2, 1, 1, false, b"a"));
        h.client_send(c, &request(2, 1, 2, false, b"b"));
        let now = h.now;
        h.conns[c].session.drain(now);
        h.drive();
        assert!(!h.conns[c].client_shut_write, "two responses are still owed");
        // A request sent after the drain began is not taken.
        h.client_send(c, &request(2, 1, 3, false, b"c"));
        assert_eq!(frames(&h.conns[c].to_broker).len(), 2);
        h.broker_send(c, &response(1, b"A"));
        assert!(!h.conns[c].client_shut_write);
        h.broker_send(c, &response(2, b"B"));
        assert_eq!(frames(&h.conns[c].to_client).len(), 2, "both responses delivered");
        assert!(h.conns[c].client_shut_write, "closed at the request boundary");
        h.client_close(c);
        assert_eq!(h.conns[c].closed, Some(CloseReason::Drained));
    }

    #[test]
    fn a_half_received_request_is_completed_and_answered() {
        let mut h = Harness::new(config(Limits::default()));
        let c = h.connect(ListenerId::Bootstrap(0));
        let req = request(2, 1, 1, false, b"metadata please");
        h.client_send(c, &req[..7]);
        let now = h.now;
        h.conns[c].session.drain(now);
        h.drive();
        assert!(!h.conns[c].client_shut_write);
        h.client_send(c, &req[7..]);
        assert_eq!(h.conns[c].to_broker, req, "the request was completed and forwarded");
        h.broker_send(c, &response(1, b"answer"));
        assert_eq!(frames(&h.conns[c].to_client).len(), 1);
        assert!(h.conns[c].client_shut_write);
    }

    #[test]
    fn lingering_ends_at_the_linger_time() {
        let mut h = Harness::new(config(Limits::default()));
        h.clients_close_on_fin = false;
        let c = h.connect(ListenerId::Bootstrap(0));
        let now = h.now;
        h.conns[c].session.drain(now);
        h.drive();
        assert!(h.conns[c].closed.is_none());
        h.advance(Duration::from_secs(6));
        assert_eq!(h.conns[c].closed, Some(CloseReason::Drained));
    }

    #[test]
    fn shutdown_does_not_wait_for_responses() {
        let mut h = Harness::new(config(Limits::default()));
        let c = h.connect(ListenerId::Bootstrap(0));
        h.client_send(c, &request(2, 1, 1, false, b"a"));
        let now = h.now;
        h.conns[c].session.shutdown(now);
        h.drive();
        assert_eq!(h.conns[c].closed, Some(CloseReason::Shutdown));
        assert!(!h.conns[c].client_shut_write);
    }
}

mod lingering {
    use super::*;

    #[test]
    fn a_socket_error_while_lingering_ends_the_session_at_once() {
        let mut h = Harness::new(config(Limits::default()));
        h.clients_close_on_fin = false;
        let c = h.connect(ListenerId::Bootstrap(0));
        let now = h.now;
        h.conns[c].session.drain(now);
        h.drive();
        assert!(h.conns[c].client_shut_write);
        assert!(h.conns[c].closed.is_none());
        h.conns[c].session.handle_io_error(now, Side::Downstream, &"connection reset by peer");
        h.drive();
        assert_eq!(h.conns[c].closed, Some(CloseReason::Drained), "no wait for the linger time");
    }

    #[test]
    fn a_closing_session_half_closes_the_client_and_reads_until_it_closes() {
        let mut h = Harness::new(config(Limits::default()));
        h.clients_close_on_fin = false;
        let c = h.connect(ListenerId::Bootstrap(0));
        h.client_send(c, &request(2, 1, 1, false, b"a"));
        h.broker_send(c, &response(1, b"A"));
        // The broker goes away: the client is told at once with a FIN after
        // everything already answered, not a reset.
        let now = h.now;
        h.conns[c].session.handle_eof(now, Side::Upstream);
        h.drive();
        assert_eq!(frames(&h.conns[c].to_client).len(), 1, "the response went out first");
        assert!(h.conns[c].client_shut_write, "half-closed at once");
        assert!(h.conns[c].closed.is_none(), "reading what the client still sends");
        h.client_send(c, &request(2, 1, 2, false, b"late"));
        h.client_close(c);
        assert_eq!(h.conns[c].closed, Some(CloseReason::PeerClosed(Side::Upstream)));
    }

    #[test]
    fn a_shutdown_does_not_linger() {
        let mut h = Harness::new(config(Limits::default()));
        h.clients_close_on_fin = false;
        let c = h.connect(ListenerId::Bootstrap(0));
        let now = h.now;
        h.conns[c].session.shutdown(now);
        h.drive();
        assert!(!h.conns[c].client_shut_write);
        assert_eq!(h.conns[c].closed, Some(CloseReason::Shutdown));
    }
}

/// What a hostile client may not do: cost the broker a connection before it
/// earned one, hold a connection open by trickling a request, send API keys
/// Kafka does not define, or try passwords at line rate.
mod hostile {
    use super::*;

    #[test]
    fn idle_and_partial_clients_open_no_broker_connection() {
        let mut h = Harness::new(config(Limits::default()));
        let idle = h.connect(ListenerId::Bootstrap(0));
        let partial = h.connect(ListenerId::Bootstrap(0));
        h.client_send(partial, &request(2, 1, 1, false, b"x")[..10]);
        h.advance(Duration::from_secs(5));
        assert_eq!(h.conns[idle].connect, None);
        assert_eq!(h.conns[partial].connect, None);
        // The first complete request earns the connection, and is delivered.
        h.client_send(partial, &request(2, 1, 1, false, b"x")[10..]);
        assert!(h.conns[partial].connect.is_some());
        assert_eq!(frames(&h.conns[partial].to_broker).len(), 1);
    }

    #[test]
    fn a_trickling_request_is_closed_at_its_deadline() {
        let limits = Limits { request_read_timeout: Some(Duration::from_secs(10)), ..Limits::default() };
        let mut h = Harness::new(config(limits));
        let c = h.connect(ListenerId::Bootstrap(0));
        let req = request(2, 1, 1, false, b"slowly, one byte at a time");
        // One byte every 2 s: the idle timeout never fires, the read deadline does.
        for byte in req.iter().take(5) {
            h.client_send(c, &[*byte]);
            h.advance(Duration::from_secs(2));
        }
        assert_eq!(
            h.conns[c].closed,
            Some(CloseReason::RequestReadTimeout { limit: Duration::from_secs(10) })
        );
        assert!(h.conns[c].to_broker.is_empty());
    }

    #[test]
    fn a_steady_stream_of_requests_never_trips_the_read_deadline() {
        let limits = Limits { request_read_timeout: Some(Duration::from_secs(10)), ..Limits::default() };
        let mut h = Harness::new(config(limits));
        h.read_size = 7; // every read ends inside a request
        let c = h.connect(ListenerId::Bootstrap(0));
        for i in 0..30 {
            let mut two = request(2, 1, 2 * i, false, b"one");
            two.extend(request(2, 1, 2 * i + 1, false, b"two"));
            h.client_send(c, &two);
            let mut answers = response(2 * i, b"1");
            answers.extend(response(2 * i + 1, b"2"));
            h.broker_send(c, &answers);
            h.advance(Duration::from_secs(3));
        }
        assert!(h.conns[c].closed.is_none(), "{:?}", h.conns[c].closed);
        assert_eq!(frames(&h.conns[c].to_client).len(), 60);
    }

    #[test]
    fn unknown_api_keys_and_garbage_headers_never_reach_the_broker() {
        let mut h = Harness::new(config(Limits::default()));
        let unknown = h.connect(ListenerId::Bootstrap(0));
        h.client_send(unknown, &request(31_000, 0, 1, false, b"???"));
        assert_eq!(
            h.conns[unknown].closed,
            Some(CloseReason::Protocol {
                side: Side::Downstream,
                error: ProtocolError::UnknownApi { api: kafka_proxy_core::api::ApiKey(31_000), version: 0 },
            })
        );
        let negative = h.connect(ListenerId::Bootstrap(0));
        h.client_send(negative, &request(3, -4, 1, false, b""));
        assert!(matches!(h.conns[negative].closed, Some(CloseReason::Protocol { .. })));
        let garbage = h.connect(ListenerId::Bootstrap(0));
        // Metadata v1 whose client id claims 300 bytes the frame does not hold.
        h.client_send(garbage, &framed(&[0, 3, 0, 1, 0, 0, 0, 1, 1, 44, b'x']));
        assert!(matches!(h.conns[garbage].closed, Some(CloseReason::Protocol { .. })));
        for c in [unknown, negative, garbage] {
            assert_eq!(h.conns[c].connect, None, "no broker connection for garbage");
            assert!(h.conns[c].to_broker.is_empty());
        }
    }

    #[test]
    fn a_sasl_proxy_answers_api_versions_and_connects_only_after_login() {
        let mut h = Harness::with_probes(sasl_config(Limits::default()));
        // The probe learns the broker's ApiVersions (and brokers).
        h.broker_send(0, &api_versions_v0_response(0, &[(3, 0, 12), (18, 0, 4), (36, 0, 2)]));
        let c = h.connect(ListenerId::Bootstrap(0));
        h.client_send(c, &request(18, 0, 1, false, b""));
        let answer = frames(&h.conns[c].to_client);
        assert_eq!(answer.len(), 1, "ApiVersions answered by the proxy");
        assert_eq!(error_code(&framed(&answer[0])), 0);
        assert_eq!(h.conns[c].connect, None, "no broker connection before authentication");
        // A wrong password: refused, still no broker connection.
        let wrong = h.connect(ListenerId::Bootstrap(0));
        h.client_send(wrong, &plain_login(1, "alice", "guess"));
        h.advance(Duration::from_secs(1));
        assert!(matches!(h.conns[wrong].closed, Some(CloseReason::Refused(_))));
        assert_eq!(h.conns[wrong].connect, None);
        // The right one: connected after the login.
        h.client_send(c, &plain_login(2, "alice", "alice-secret"));
        assert!(h.conns[c].connect.is_some(), "authenticated: the upstream connection opens");
        h.client_send(c, &request(2, 1, 4, false, b"x"));
        assert_eq!(frames(&h.conns[c].to_broker).len(), 1, "only the client's request: no SASL upstream");
    }

    #[test]
    fn failed_logins_from_one_address_are_spaced_out() {
        let mut h = Harness::new(sasl_config(Limits::default()));
        // Eight connections from one address guess at once; each retries
        // as soon as its answer comes (the harness clock runs 10 s).
        let conns: Vec<usize> = (0..8).map(|_| h.connect(ListenerId::Bootstrap(0))).collect();
        let mut answers = 0;
        let mut seen = vec![0usize; conns.len()];
        let mut live = conns.clone();
        for round in 0..100 {
            for &c in &live {
                if h.conns[c].to_client.is_empty() && h.conns[c].from_client.is_empty() && round == 0 {
                    h.client_send(c, &plain_login(1, "alice", "guess"));
                }
            }
            h.advance(Duration::from_millis(100));
            let mut next = Vec::new();
            for (i, &c) in conns.iter().enumerate() {
                let got = frames(&h.conns[c].to_client).len();
                answers += got.saturating_sub(seen[i]);
                seen[i] = got;
                if h.conns[c].closed.is_some() && live.contains(&c) {
                    // The brute forcer reconnects at once and guesses again.
                    let again = h.connect(ListenerId::Bootstrap(0));
                    h.client_send(again, &plain_login(1, "alice", "guess"));
                    next.push(again);
                } else if live.contains(&c) {
                    next.push(c);
                }
            }
            live = next;
        }
        let failures = h.proxy.stats().login_throttle.failures;
        assert!(failures < 200, "{failures} wrong passwords checked in 10 s: not throttled");
        assert!(failures >= 8, "the flood is slowed, not blocked: {failures}");
        assert!(h.proxy.stats().login_throttle.delayed > 0);
        let _ = answers;
        // A correct user from another address is not held back.
        let ok = h.connect_from(ListenerId::Bootstrap(0), "10.9.9.9:1000".parse().unwrap());
        h.client_send(ok, &plain_login(1, "alice", "alice-secret"));
        let replies = frames(&h.conns[ok].to_client);
        assert_eq!(replies.len(), 2, "handshake and authenticate answered at once");
        assert_eq!(error_code(&framed(&replies[1])), 0);
    }
}

mod earned_connection_deadlines {
    use super::*;
    use kafka_proxy_core::config::UpstreamLogin;
    use kafka_proxy_core::sasl::{ClientConfig, Mechanism, Secret, SystemRandom};
    use std::sync::Arc;

    #[test]
    fn a_quiet_client_meets_the_idle_timeout_not_the_upstream_handshake_timeout() {
        let mut config = config(Limits::default());
        let login = ClientConfig::new(
            Mechanism::Plain,
            "svc",
            Secret::new("pw".into()),
            Arc::new(SystemRandom::new()),
        )
        .unwrap();
        config.security.upstream_login = UpstreamLogin::Service(Arc::new(login));
        let mut h = Harness::new(config);
        let quiet = h.connect(ListenerId::Bootstrap(0));
        h.advance(Duration::from_secs(30));
        assert!(h.conns[quiet].closed.is_none(), "{:?}", h.conns[quiet].closed);
        // Once connected, the proxy's own login must finish within the handshake timeout.
        h.client_send(quiet, &request(2, 1, 1, false, b"x"));
        assert!(h.conns[quiet].connect.is_some());
        h.advance(Duration::from_secs(11));
        assert_eq!(h.conns[quiet].closed, Some(CloseReason::HandshakeTimeout));
    }
}

/// Upstream connections through a SOCKS5 or HTTP CONNECT forward proxy: the
/// runtime connects to the proxy, the session opens the tunnel, then Kafka
/// (and TLS/SASL, when configured) flows through it.
mod forward_proxy {
    use super::*;
    use kafka_proxy_core::egress::{ForwardProxy, ForwardProxyKind, ProxyCredentials, TunnelError};
    use kafka_proxy_core::sasl::SecretString;
    use kafka_proxy_core::session::Endpoint;

    fn through(kind: ForwardProxyKind, credentials: Option<ProxyCredentials>) -> Harness {
        let mut cfg = config(Limits::default());
        cfg.forward_proxy = Some(ForwardProxy { kind, host: "127.0.0.1".into(), port: 1080, credentials });
        Harness::new(cfg)
    }

    #[test]
    fn socks5_tunnel_then_kafka_with_requests_held_meanwhile() {
        let creds = ProxyCredentials { username: "u".into(), password: SecretString::new("p".into()) };
        let mut h = through(ForwardProxyKind::Socks5, Some(creds));
        let c = h.connect(ListenerId::Bootstrap(0));
        let api_versions = request(18, 3, 7, true, &[0, 0, 0]);
        h.client_send(c, &api_versions);
        let target = h.conns[c].connect.clone().unwrap();
        assert_eq!(target.endpoint(), Endpoint::Addr("127.0.0.1:1080".parse().unwrap()));
        assert_eq!(target.to_string(), "kafka-0.internal:9092 via socks5://127.0.0.1:1080");
        assert_eq!(h.conns[c].to_broker, vec![5, 2, 0, 2], "method selection first; the request waits");
        h.broker_send(c, &[5, 2]);
        assert_eq!(&h.conns[c].to_broker[4..], b"\x01\x01u\x01p");
        h.broker_send(c, &[1, 0]);
        let mut connect = vec![5, 1, 0, 3, 16];
        connect.extend_from_slice(b"kafka-0.internal");
        connect.extend_from_slice(&9092u16.to_be_bytes());
        assert_eq!(&h.conns[c].to_broker[9..], &connect[..]);
        let sent = h.conns[c].to_broker.len();
        h.broker_send(c, &[5, 0, 0, 1, 127, 0, 0, 1, 4, 0]);
        assert_eq!(&h.conns[c].to_broker[sent..], &api_versions[..], "then the held request, untouched");
        assert!(h.conns[c].closed.is_none());
    }

    #[test]
    fn http_connect_refusal_closes_with_the_proxy_status() {
        let mut h = through(ForwardProxyKind::HttpConnect, None);
        let c = h.connect(ListenerId::Bootstrap(0));
        h.client_send(c, &request(18, 3, 1, true, &[0, 0, 0]));
        assert_eq!(
            h.conns[c].to_broker,
            b"CONNECT kafka-0.internal:9092 HTTP/1.1\r\nHost: kafka-0.internal:9092\r\n\r\n".to_vec()
        );
        h.broker_send(c, b"HTTP/1.1 403 Access violation\r\n\r\n");
        let Some(CloseReason::Tunnel { target, error }) = h.conns[c].closed.clone() else {
            panic!("{:?}", h.conns[c].closed)
        };
        assert_eq!(error, TunnelError::HttpStatus { code: 403, reason: "Access violation".into() });
        assert_eq!(
            CloseReason::Tunnel { target, error }.to_string(),
            "cannot connect to broker kafka-0.internal:9092 via http://127.0.0.1:1080: the HTTP proxy refused CONNECT: 403 Access violation"
        );
    }

    #[test]
    fn a_silent_proxy_is_bounded_by_the_connect_timeout() {
        let mut h = through(ForwardProxyKind::Socks5, None);
        let c = h.connect(ListenerId::Bootstrap(0));
        h.client_send(c, &request(18, 3, 1, true, &[0, 0, 0]));
        h.advance(Limits::default().connect_timeout - Duration::from_millis(1));
        assert!(h.conns[c].closed.is_none());
        h.advance(Duration::from_millis(1));
        assert!(
            matches!(h.conns[c].closed, Some(CloseReason::ConnectTimeout { .. })),
            "{:?}",
            h.conns[c].closed
        );
    }

    #[test]
    fn http_connect_tunnel_carries_the_probe() {
        let mut cfg = config(Limits::default());
        cfg.forward_proxy = Some(ForwardProxy {
            kind: ForwardProxyKind::HttpConnect,
            host: "proxy".into(),
            port: 3128,
            credentials: None,
        });
        let mut h = Harness::with_probes(cfg);
        let probe = 0;
        assert!(h.conns[probe].to_broker.starts_with(b"CONNECT kafka-0.internal:9092 HTTP/1.1\r\n"));
        let len = h.conns[probe].to_broker.len();
        h.broker_send(probe, b"HTTP/1.1 200 Connection established\r\n\r\n");
        let asked = frames(&h.conns[probe].to_broker[len..]);
        assert!(
            asked.iter().any(|r| r[..4] == [0, 3, 0, 4]),
            "the probe's Metadata request goes through the tunnel: {asked:?}"
        );
    }
}

/// PLAIN logins checked by an external authenticator: the session asks with
/// `Event::Authenticate`, holds the client's SaslAuthenticate, and answers
/// it from the verdict, or fails it when none comes in time.
mod external_auth {
    use std::sync::Arc;

    use super::*;
    use kafka_proxy_core::config::{DownstreamSasl, Security};
    use kafka_proxy_core::sasl::{
        CredentialStore, ExternalPlain, Mechanism, ServerConfig, SystemRandom, Verdict,
    };

    const TIMEOUT: Duration = Duration::from_secs(3);

    fn harness() -> Harness {
        let random = Arc::new(SystemRandom::new());
        let mut builder = CredentialStore::builder(4096, &[]).unwrap();
        builder.password("local", kafka_proxy_core::sasl::SecretString::new("local-pw".into())).unwrap();
        let store = Arc::new(builder.build(&*random).unwrap());
        let mut server = ServerConfig::new(&[Mechanism::Plain], store, random);
        server.external = Some(ExternalPlain { timeout: TIMEOUT });
        let mut cfg = config(Limits::default());
        cfg.security =
            Security { downstream_sasl: DownstreamSasl::Terminate(Arc::new(server)), ..Security::default() };
        Harness::new(cfg)
    }

    fn handshake(h: &mut Harness, c: usize) {
        let mut body = 5i16.to_be_bytes().to_vec();
        body.extend_from_slice(b"PLAIN");
        h.client_send(c, &request(17, 1, 1, false, &body));
        assert_eq!(frames(&h.conns[c].to_client).len(), 1, "SaslHandshake answered");
    }

    fn authenticate(h: &mut Harness, c: usize, user: &str, password: &str) {
        let token = format!("\0{user}\0{password}");
        let mut body = (token.len() as i32).to_be_bytes().to_vec();
        body.extend_from_slice(token.as_bytes());
        h.client_send(c, &request(36, 1, 2, false, &body));
    }

    /// The error code of the SaslAuthenticate response, if it arrived.
    fn authenticate_error(h: &Harness, c: usize) -> Option<i16> {
        let frames = frames(&h.conns[c].to_client);
        let reply = frames.get(1)?;
        assert_eq!(&reply[..4], &2i32.to_be_bytes(), "correlation id");
        Some(i16::from_be_bytes([reply[4], reply[5]]))
    }

    #[test]
    fn an_allowed_login_gets_the_backends_principal_then_requests_flow() {
        let mut h = harness();
        let c = h.connect(ListenerId::Bootstrap(0));
        handshake(&mut h, c);
        authenticate(&mut h, c, "alice", "right");
        let asked = h.conns[c].verify.clone();
        assert_eq!(asked.len(), 1);
        assert_eq!((asked[0].user.as_str(), asked[0].password.expose().as_str()), ("alice", "right"));
        assert_eq!(asked[0].client, Some("127.0.0.1:50000".parse().unwrap()));
        assert_eq!(authenticate_error(&h, c), None, "held until the verdict");
        // What the client sends meanwhile waits too.
        let metadata = request(3, 12, 3, true, &[1, 0, 0]);
        h.client_send(c, &metadata);
        assert!(h.conns[c].to_broker.is_empty());
        h.verdict(c, asked[0].id, Verdict::Allow { principal: Some("User-A".into()) });
        assert_eq!(authenticate_error(&h, c), Some(0));
        assert_eq!(h.conns[c].session.principal(), Some("User-A"));
        assert_eq!(h.conns[c].to_broker, metadata, "then the held request goes on");
    }

    #[test]
    fn a_denied_login_is_58_and_closes() {
        let mut h = harness();
        let c = h.connect(ListenerId::Bootstrap(0));
        handshake(&mut h, c);
        authenticate(&mut h, c, "alice", "wrong");
        let id = h.conns[c].verify[0].id;
        h.verdict(c, id + 7, Verdict::Allow { principal: None });
        assert_eq!(authenticate_error(&h, c), None, "a stale verdict is ignored");
        h.verdict(c, id, Verdict::Deny { reason: Some("invalid credentials".into()) });
        assert_eq!(authenticate_error(&h, c), Some(58));
        h.advance(Duration::from_millis(100));
        assert!(matches!(h.conns[c].closed, Some(CloseReason::Refused(_))), "{:?}", h.conns[c].closed);
    }

    #[test]
    fn a_backend_that_never_answers_fails_the_login_within_the_timeout() {
        let mut h = harness();
        let c = h.connect(ListenerId::Bootstrap(0));
        handshake(&mut h, c);
        authenticate(&mut h, c, "alice", "pw");
        h.advance(TIMEOUT - Duration::from_millis(1));
        assert_eq!(authenticate_error(&h, c), None);
        h.advance(Duration::from_millis(1));
        assert_eq!(authenticate_error(&h, c), Some(58));
        let closed = format!("{:?}", h.conns[c].closed);
        let id = h.conns[c].verify[0].id;
        h.verdict(c, id, Verdict::Allow { principal: None });
        assert_eq!(frames(&h.conns[c].to_client).len(), 2, "a late verdict changes nothing");
        h.advance(Duration::from_millis(100));
        assert!(matches!(h.conns[c].closed, Some(CloseReason::Refused(_))), "{closed}");
    }

    #[test]
    fn a_failing_backend_is_58_and_local_users_stay_local() {
        let mut h = harness();
        let c = h.connect(ListenerId::Bootstrap(0));
        handshake(&mut h, c);
        authenticate(&mut h, c, "alice", "pw");
        let id = h.conns[c].verify[0].id;
        h.verdict(c, id, Verdict::Error("plugin exited".into()));
        assert_eq!(authenticate_error(&h, c), Some(58));
        let c = h.connect(ListenerId::Bootstrap(0));
        handshake(&mut h, c);
        authenticate(&mut h, c, "local", "local-pw");
        assert!(h.conns[c].verify.is_empty(), "a local user never reaches the backend");
        assert_eq!(authenticate_error(&h, c), Some(0));
    }
}

mod request_deadline {
    use super::*;
    use bytes::BufMut;

    fn limits() -> Limits {
        Limits { request_timeout: Duration::from_secs(30), ..Limits::default() }
    }

    fn timed_out(h: &Harness, c: usize) -> Option<(i32, Duration)> {
        match &h.conns[c].closed {
            Some(CloseReason::RequestTimeout { correlation_id, waited, .. }) => {
                Some((*correlation_id, *waited))
            }
            _ => None,
        }
    }

    /// A Fetch v12 request asking the broker to wait `max_wait_ms`.
    fn fetch_v12(correlation_id: i32, max_wait_ms: i32) -> Vec<u8> {
        let mut body = Vec::new();
        body.put_i32(-1); // replica id
        body.put_i32(max_wait_ms);
        body.put_i32(1); // min bytes
        request(1, 12, correlation_id, true, &body)
    }

    #[test]
    fn a_silent_broker_closes_the_pair_at_the_deadline() {
        let mut h = Harness::new(config(limits()));
        let c = h.connect(ListenerId::Bootstrap(0));
        h.client_send(c, &request(2, 1, 5, false, b"list-offsets"));
        h.advance(Duration::from_secs(29));
        assert!(h.conns[c].closed.is_none(), "within the deadline");
        h.advance(Duration::from_secs(2));
        let Some(CloseReason::RequestTimeout { broker, api, version, correlation_id, .. }) =
            &h.conns[c].closed
        else {
            panic!("expected a request timeout, got {:?}", h.conns[c].closed);
        };
        assert_eq!((broker.as_str(), api.0, *version, *correlation_id), ("kafka-0.internal:9092", 2, 1, 5));
        let text = h.conns[c].closed.as_ref().unwrap().to_string();
        assert!(text.contains("kafka-0.internal:9092") && text.contains("ListOffsets(2)"), "{text}");
        assert!(text.contains("correlation id 5"), "{text}");
    }

    #[test]
    fn a_long_poll_gets_what_it_asks_for_plus_grace() {
        let mut h = Harness::new(config(limits()));
        let c = h.connect(ListenerId::Bootstrap(0));
        h.client_send(c, &fetch_v12(1, 40_000));
        h.advance(Duration::from_secs(44));
        assert!(h.conns[c].closed.is_none(), "the broker may hold a 40 s long poll");
        h.advance(Duration::from_secs(2));
        assert_eq!(timed_out(&h, c).map(|(id, _)| id), Some(1));
    }

    #[test]
    fn answers_restart_the_clock_of_the_next_request() {
        let mut h = Harness::new(config(limits()));
        let c = h.connect(ListenerId::Bootstrap(0));
        h.client_send(c, &request(2, 1, 1, false, b"a"));
        h.client_send(c, &request(2, 1, 2, false, b"b"));
        h.advance(Duration::from_secs(25));
        h.broker_send(c, &response(1, b"A"));
        h.advance(Duration::from_secs(25));
        assert!(h.conns[c].closed.is_none(), "the broker serves one request at a time: 2 waits from 25 s");
        h.advance(Duration::from_secs(6));
        let (id, waited) = timed_out(&h, c).expect("request 2 timed out");
        assert_eq!(id, 2);
        assert!(waited >= Duration::from_secs(30) && waited < Duration::from_secs(32), "{waited:?}");
    }

    #[test]
    fn a_client_that_does_not_read_holds_the_deadline() {
        let limits = Limits { max_buffered_bytes: 1024, ..limits() };
        let mut h = Harness::new(config(limits));
        let c = h.connect(ListenerId::Bootstrap(0));
        h.client_send(c, &request(2, 1, 1, false, b"a"));
        h.client_send(c, &request(2, 1, 2, false, b"b"));
        h.write_size = 0; // the client stops reading
        h.broker_send(c, &response(1, &[7; 4096]));
        h.advance(Duration::from_secs(100));
        assert!(h.conns[c].closed.is_none(), "back-pressure, not a silent broker");
        h.write_size = usize::MAX;
        h.drive();
        h.advance(Duration::from_secs(29));
        assert!(h.conns[c].closed.is_none(), "the clock restarted when the client read");
        h.advance(Duration::from_secs(2));
        assert_eq!(timed_out(&h, c).map(|(id, _)| id), Some(2));
    }

    #[test]
    fn a_cut_through_request_waits_from_its_last_byte() {
        let mut h = Harness::new(config(limits()));
        let c = h.connect(ListenerId::Bootstrap(0));
        let big = produce_v8(3, 1, &vec![1u8; 200 * 1024]);
        h.client_send(c, &big[..100 * 1024]);
        h.advance(Duration::from_secs(20));
        h.client_send(c, &big[100 * 1024..]);
        assert_eq!(h.conns[c].to_broker.len(), big.len(), "forwarded in pieces");
        h.advance(Duration::from_secs(30));
        assert!(h.conns[c].closed.is_none(), "35 s (timeout_ms 30 s + grace) from the last byte");
        h.broker_send(c, &response(3, b"ok"));
        let stats = h.conns[c].session.take_stats();
        let produce = stats.apis.iter().find(|a| a.api_key.0 == 0).unwrap();
        assert_eq!(produce.requests, 1);
        assert_eq!(produce.latency.count(), 1);
        assert_eq!(produce.latency.sum_micros, 30_000_000, "latency from the last byte in");
    }
}

mod stats {
    use super::*;

    #[test]
    fn requests_bytes_latency_and_sides_are_counted_then_reset() {
        let mut h = Harness::new(config(Limits::default()));
        let c = h.connect(ListenerId::Bootstrap(0));
        let produce = produce_v8(1, 1, b"record");
        let list = request(2, 1, 2, false, b"list");
        h.client_send(c, &produce);
        h.client_send(c, &list);
        assert_eq!(h.conns[c].session.client_id(), Some("test"), "from the request header");
        h.advance(Duration::from_millis(3));
        let answers = [response(1, b"produced"), response(2, b"offsets")].concat();
        h.broker_send(c, &answers);
        let stats = h.conns[c].session.take_stats();
        assert_eq!(stats.upstream_connects, 1);
        assert_eq!(stats.request_bytes, (produce.len() + list.len()) as u64);
        assert_eq!(stats.response_bytes, answers.len() as u64);
        assert_eq!(stats.client.copied_in, stats.request_bytes, "plaintext: socket bytes are frames");
        assert_eq!(stats.broker.copied_out, stats.request_bytes);
        assert_eq!(stats.broker.copied_in, stats.response_bytes);
        assert_eq!(stats.client.copied_out, stats.response_bytes);
        let apis: Vec<(i16, i16, u64, u64)> =
            stats.apis.iter().map(|a| (a.api_key.0, a.version, a.requests, a.latency.count())).collect();
        assert_eq!(apis, vec![(0, 8, 1, 1), (2, 1, 1, 1)]);
        // 3 ms lands in the (2.5 ms, 5 ms] bucket.
        assert_eq!(stats.apis[0].latency.buckets[3], 1);
        assert!(stats.auth.is_empty());
        assert!(!h.conns[c].session.has_stats(), "taken and reset");
        assert!(h.conns[c].session.take_stats().is_empty());
    }

    #[test]
    fn spliced_bytes_are_counted_apart_from_copied_ones() {
        let mut h = Harness::new(config(Limits::default()));
        h.splice = true;
        let c = h.connect(ListenerId::Bootstrap(0));
        let big = produce_v8(3, 1, &vec![1u8; 512 * 1024]);
        h.client_send(c, &big);
        let stats = h.conns[c].session.take_stats();
        assert_eq!(h.conns[c].to_broker, big);
        assert!(stats.client.spliced_in > 0, "{stats:?}");
        assert_eq!(stats.client.copied_in + stats.client.spliced_in, big.len() as u64);
        assert_eq!(stats.broker.spliced_out, stats.client.spliced_in);
        assert_eq!(stats.request_bytes, big.len() as u64);
    }

    #[test]
    fn the_proxy_counts_listeners_brokers_reloads_and_refusals() {
        let mut h = Harness::new(config(Limits::default()));
        let s = h.proxy.stats();
        assert_eq!((s.listeners, s.brokers, s.draining, s.probes_cluster, s.reloads), (1, 0, false, true, 0));
        h.proxy.reload(config(Limits::default()));
        let peer = "127.0.0.1:1".parse().unwrap();
        let _ = h.proxy.accept(h.now, std::time::SystemTime::now(), ListenerId::Broker(9), peer);
        h.proxy.drain();
        h.drive();
        let s = h.proxy.stats();
        assert_eq!((s.listeners, s.draining, s.reloads, s.refused_accepts), (0, true, 1, 1));
    }

    #[test]
    fn the_probe_uses_the_configured_client_id() {
        let mut cfg = config(Limits::default());
        cfg.client_id = "platform-proxy-7".into();
        let h = Harness::with_probes(cfg);
        let probe = &h.conns[0];
        assert!(probe.session.is_probe());
        let sent = frames(&probe.to_broker);
        assert_eq!(sent.len(), 2, "ApiVersions, then Metadata");
        for request in &sent {
            assert_eq!(&request[8..10], &16i16.to_be_bytes());
            assert_eq!(&request[10..26], b"platform-proxy-7");
        }
    }
}
