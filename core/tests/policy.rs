//! The policy through the in-memory harness (client ↔ core ↔ fake broker,
//! virtual clock): forbidden APIs answered by the proxy in request order,
//! or the connection closed; byte-rate quotas carried in `throttle_time_ms`
//! with the client muted meanwhile; connection limits per process, address
//! and principal; reloads. Responses are decoded with the `kafka-protocol`
//! oracle.

#![allow(clippy::unwrap_used)]

// The harness is shared with the other scenario files; not every helper is used here.
#[allow(dead_code)]
mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use common::*;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    DeleteTopicsRequest, DeleteTopicsResponse, FetchResponse, ProduceRequest, ProduceResponse, TopicName,
    fetch_response, produce_request,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_proxy_core::api::ApiKey;
use kafka_proxy_core::config::{DownstreamSasl, Limits, ProxyConfig, Security};
use kafka_proxy_core::policy::{
    ApiSet, ConnectionLimit, PolicyConfig, PrincipalLimits, PrincipalPolicy, QuotaWindow, RefusalError,
};
use kafka_proxy_core::proxy::AcceptError;
use kafka_proxy_core::route::ListenerId;
use kafka_proxy_core::sasl::{CredentialStore, Mechanism, Secret, ServerConfig, SystemRandom};
use kafka_proxy_core::session::{BUFFER_IDLE, CloseReason, ForbiddenClose, PolicyRefusal, QuotaThrottles};

const ANONYMOUS: &str = "$anonymous";

fn keys(keys: &[ApiKey]) -> ApiSet {
    keys.iter().copied().collect()
}

fn with_policy(policy: PolicyConfig) -> ProxyConfig {
    ProxyConfig { policy, ..config(Limits::default()) }
}

fn forbid_for(principal: &str, forbidden: &[ApiKey]) -> PolicyConfig {
    let mut policy = PolicyConfig::default();
    policy.principals.insert(
        principal.into(),
        PrincipalPolicy { forbidden_api_keys: keys(forbidden), ..Default::default() },
    );
    policy
}

fn encode<T: Encodable>(msg: &T, version: i16) -> Vec<u8> {
    let mut buf = BytesMut::new();
    msg.encode(&mut buf, version).unwrap();
    buf.to_vec()
}

fn decode<T: Decodable>(body: &[u8], version: i16) -> T {
    let mut buf = Bytes::copy_from_slice(body);
    let msg = T::decode(&mut buf, version).unwrap();
    assert!(buf.is_empty(), "{} bytes left", buf.len());
    msg
}

/// A DeleteTopics v4 request (flexible) for `names`.
fn delete_topics(correlation_id: i32, names: &[&'static str]) -> Vec<u8> {
    let mut r = DeleteTopicsRequest::default();
    r.topic_names = names.iter().map(|n| TopicName(StrBytes::from_static_str(n))).collect();
    r.timeout_ms = 30_000;
    request(20, 4, correlation_id, true, &encode(&r, 4))
}

/// A Produce v8 request of one partition carrying `records` bytes.
fn produce(correlation_id: i32, acks: i16, records: usize) -> Vec<u8> {
    let mut p = produce_request::PartitionProduceData::default();
    p.index = 0;
    p.records = Some(Bytes::from(vec![7u8; records]));
    let mut t = produce_request::TopicProduceData::default();
    t.name = TopicName(StrBytes::from_static_str("orders"));
    t.partition_data = vec![p];
    let mut r = ProduceRequest::default();
    r.acks = acks;
    r.timeout_ms = 30_000;
    r.topic_data = vec![t];
    request(0, 8, correlation_id, false, &encode(&r, 8))
}

/// The broker's Produce v8 response, with its own `throttle_time_ms`.
fn produce_response(correlation_id: i32, throttle_ms: i32) -> Vec<u8> {
    let mut p = PartitionProduceResponse::default();
    p.base_offset = 10;
    let mut t = TopicProduceResponse::default();
    t.name = TopicName(StrBytes::from_static_str("orders"));
    t.partition_responses = vec![p];
    let mut r = ProduceResponse::default();
    r.responses = vec![t];
    r.throttle_time_ms = throttle_ms;
    response(correlation_id, &encode(&r, 8))
}

/// A Fetch v11 request for one partition.
fn fetch(correlation_id: i32) -> Vec<u8> {
    let mut p = kafka_protocol::messages::fetch_request::FetchPartition::default();
    p.partition_max_bytes = 1 << 20;
    let mut t = kafka_protocol::messages::fetch_request::FetchTopic::default();
    t.topic = TopicName(StrBytes::from_static_str("orders"));
    t.partitions = vec![p];
    let mut r = kafka_protocol::messages::FetchRequest::default();
    r.replica_id = (-1).into();
    r.max_bytes = 1 << 20;
    r.topics = vec![t];
    request(1, 11, correlation_id, false, &encode(&r, 11))
}

/// The broker's Fetch v11 response carrying `records` bytes.
fn fetch_response(correlation_id: i32, records: usize) -> Vec<u8> {
    let mut p = fetch_response::PartitionData::default();
    p.high_watermark = 100;
    p.records = Some(Bytes::from(vec![1u8; records]));
    let mut t = fetch_response::FetchableTopicResponse::default();
    t.topic = TopicName(StrBytes::from_static_str("orders"));
    t.partitions = vec![p];
    let mut r = FetchResponse::default();
    r.responses = vec![t];
    response(correlation_id, &encode(&r, 11))
}

fn correlation_ids(stream: &[u8]) -> Vec<i32> {
    frames(stream).iter().map(|f| i32::from_be_bytes(f[..4].try_into().unwrap())).collect()
}

#[test]
fn a_forbidden_request_is_answered_in_order_and_never_reaches_the_broker() {
    let policy =
        PolicyConfig { forbidden_api_keys: keys(&[ApiKey::DELETE_TOPICS]), ..PolicyConfig::default() };
    let mut h = Harness::new(with_policy(policy));
    let c = h.connect(ListenerId::Bootstrap(0));
    let mut pipelined = request(2, 1, 1, false, b"list-offsets");
    pipelined.extend(delete_topics(2, &["orders", "payments"]));
    pipelined.extend(request(2, 1, 3, false, b"list-offsets"));
    h.client_send(c, &pipelined);
    let mut expected_upstream = request(2, 1, 1, false, b"list-offsets");
    expected_upstream.extend(request(2, 1, 3, false, b"list-offsets"));
    assert_eq!(h.conns[c].to_broker, expected_upstream, "DeleteTopics is not forwarded");
    assert!(h.conns[c].to_client.is_empty(), "the refusal waits for the response before it");
    h.broker_send(c, &response(1, b"one"));
    h.broker_send(c, &response(3, b"three"));
    assert_eq!(correlation_ids(&h.conns[c].to_client), [1, 2, 3]);
    let refusal = &frames(&h.conns[c].to_client)[1];
    assert_eq!(refusal[4], 0, "flexible response header: empty tagged fields");
    let decoded: DeleteTopicsResponse = decode(&refusal[5..], 4);
    let errors: Vec<(String, i16)> =
        decoded.responses.iter().map(|r| (r.name.as_ref().unwrap().0.to_string(), r.error_code)).collect();
    assert_eq!(errors, [("orders".to_owned(), 29), ("payments".to_owned(), 29)]);
    assert!(h.conns[c].closed.is_none());
    let stats = h.conns[c].session.take_stats();
    assert_eq!(
        stats.policy_refusals,
        [PolicyRefusal { api_key: ApiKey::DELETE_TOPICS, reason: "authorization_error", count: 1 }]
    );
}

#[test]
fn a_principal_forbidden_to_produce_gets_topic_authorization_failed() {
    let mut h = Harness::new(with_policy(forbid_for(ANONYMOUS, &[ApiKey::PRODUCE])));
    let c = h.connect(ListenerId::Bootstrap(0));
    h.client_send(c, &produce(4, -1, 100));
    assert!(h.conns[c].to_broker.is_empty());
    let reply = &frames(&h.conns[c].to_client)[0];
    let decoded: ProduceResponse = decode(&reply[4..], 8);
    assert_eq!(decoded.responses[0].partition_responses[0].error_code, 29);
    assert_eq!(decoded.responses[0].partition_responses[0].base_offset, -1);
}

#[test]
fn an_unlisted_principal_is_unaffected() {
    let mut h = Harness::new(with_policy(forbid_for("alice", &[ApiKey::PRODUCE, ApiKey::DELETE_TOPICS])));
    let c = h.connect(ListenerId::Bootstrap(0));
    let mut requests = produce(1, -1, 100);
    requests.extend(delete_topics(2, &["orders"]));
    h.client_send(c, &requests);
    assert_eq!(h.conns[c].to_broker, requests, "$anonymous is not alice");
}

#[test]
fn a_large_forbidden_produce_is_read_whole_and_answered() {
    let mut h = Harness::new(with_policy(forbid_for(ANONYMOUS, &[ApiKey::PRODUCE])));
    let c = h.connect(ListenerId::Bootstrap(0));
    h.read_size = 16 * 1024;
    h.client_send(c, &produce(9, 1, 300 * 1024));
    assert!(h.conns[c].to_broker.is_empty(), "not one byte is cut through");
    let reply = &frames(&h.conns[c].to_client)[0];
    let decoded: ProduceResponse = decode(&reply[4..], 8);
    assert_eq!(decoded.responses[0].partition_responses[0].error_code, 29);
    assert!(h.conns[c].session.buffered_bytes() < 400 * 1024);
}

#[test]
fn a_forbidden_produce_with_acks_0_closes_the_connection() {
    let mut h = Harness::new(with_policy(forbid_for(ANONYMOUS, &[ApiKey::PRODUCE])));
    let c = h.connect(ListenerId::Bootstrap(0));
    h.client_send(c, &produce(4, 0, 100));
    assert!(h.conns[c].to_broker.is_empty());
    assert!(h.conns[c].to_client.is_empty(), "acks=0 gets no response");
    assert_eq!(
        h.conns[c].closed,
        Some(CloseReason::Forbidden {
            principal: ANONYMOUS.into(),
            api: ApiKey::PRODUCE,
            why: ForbiddenClose::NoResponse
        })
    );
    assert_eq!(
        h.conns[c].session.take_stats().policy_refusals,
        [PolicyRefusal { api_key: ApiKey::PRODUCE, reason: "closed", count: 1 }]
    );
}

#[test]
fn a_forbidden_api_without_its_own_refusal_closes_the_connection() {
    let mut h = Harness::new(with_policy(forbid_for(ANONYMOUS, &[ApiKey(2)])));
    let c = h.connect(ListenerId::Bootstrap(0));
    h.client_send(c, &request(2, 1, 1, false, b"list-offsets"));
    assert!(h.conns[c].to_broker.is_empty());
    assert_eq!(
        h.conns[c].closed,
        Some(CloseReason::Forbidden {
            principal: ANONYMOUS.into(),
            api: ApiKey(2),
            why: ForbiddenClose::Unanswerable(RefusalError::NoAnswer(ApiKey(2)))
        })
    );
    let text = h.conns[c].closed.as_ref().unwrap().to_string();
    assert!(text.contains("ListOffsets(2)") && text.contains("forbids"), "{text}");
}

#[test]
fn forbidden_apis_are_advertised_only_at_versions_the_proxy_can_refuse() {
    let mut h = Harness::new(with_policy(forbid_for("alice", &[ApiKey::DELETE_TOPICS])));
    let c = h.connect(ListenerId::Bootstrap(0));
    h.client_send(c, &request(18, 0, 1, false, b""));
    // ApiVersions v0: Produce 0-11, DeleteTopics 0-6, Metadata 0-12.
    let body = [0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 11, 0, 20, 0, 0, 0, 6, 0, 3, 0, 0, 0, 12];
    h.broker_send(c, &response(1, &body));
    let reply = &frames(&h.conns[c].to_client)[0];
    // DeleteTopics from v1 (the oldest version the proxy refuses), the rest as the broker said.
    let expected = [0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 11, 0, 20, 0, 1, 0, 6, 0, 3, 0, 0, 0, 12];
    assert_eq!(&reply[4..], &expected[..]);
}

fn quota_config(producer: Option<u64>, consumer: Option<u64>) -> ProxyConfig {
    let mut policy = PolicyConfig {
        quota_window: QuotaWindow { samples: 2, size: Duration::from_secs(1) },
        ..PolicyConfig::default()
    };
    policy.default =
        PrincipalLimits { producer_byte_rate: producer, consumer_byte_rate: consumer, max_connections: None };
    with_policy(policy)
}

#[test]
fn a_producer_over_its_quota_is_told_the_throttle_and_not_read_meanwhile() {
    let mut h = Harness::new(quota_config(Some(10_000), None));
    let c = h.connect(ListenerId::Bootstrap(0));
    // 30 KB against 10 KB/s measured over at least one second: ~2 s to wait,
    // from when the request was read.
    h.client_send(c, &produce(1, -1, 30_000));
    assert_eq!(frames(&h.conns[c].to_broker).len(), 1, "the request itself goes through");
    assert!(!h.conns[c].session.wants_read(kafka_proxy_core::session::Side::Downstream), "muted at once");
    let read_at = h.now;
    h.advance(Duration::from_millis(100));
    h.broker_send(c, &produce_response(1, 0));
    let reply = &frames(&h.conns[c].to_client)[0];
    let decoded: ProduceResponse = decode(&reply[4..], 8);
    assert!((1_900..=2_100).contains(&decoded.throttle_time_ms), "{}", decoded.throttle_time_ms);
    assert_eq!(decoded.responses[0].partition_responses[0].base_offset, 10, "the rest is the broker's");
    let throttle = Duration::from_millis(decoded.throttle_time_ms as u64);
    // Muted: the next request waits in the socket.
    assert!(!h.conns[c].session.wants_read(kafka_proxy_core::session::Side::Downstream));
    h.client_send(c, &request(2, 1, 2, false, b"list-offsets"));
    assert_eq!(frames(&h.conns[c].to_broker).len(), 1);
    // (Past the moment the quiet session gives its buffers back.)
    h.advance(BUFFER_IDLE * 3 / 2);
    assert_eq!(h.conns[c].session.poll_timeout(), Some(read_at + throttle), "not extended by the response");
    h.advance(throttle - Duration::from_millis(101) - BUFFER_IDLE * 3 / 2);
    assert_eq!(frames(&h.conns[c].to_broker).len(), 1);
    h.advance(Duration::from_millis(1));
    assert_eq!(frames(&h.conns[c].to_broker).len(), 2, "read again once the throttle ends");
    let stats = h.conns[c].session.take_stats();
    assert_eq!(stats.produce_throttles, QuotaThrottles { count: 1, millis: throttle.as_millis() as u64 });
    assert_eq!(stats.fetch_throttles, QuotaThrottles::default());
}

#[test]
fn the_brokers_larger_throttle_is_kept() {
    let mut h = Harness::new(quota_config(Some(10_000), None));
    let c = h.connect(ListenerId::Bootstrap(0));
    h.client_send(c, &produce(1, -1, 30_000));
    h.broker_send(c, &produce_response(1, 9_000));
    let decoded: ProduceResponse = decode(&frames(&h.conns[c].to_client)[0][4..], 8);
    assert_eq!(decoded.throttle_time_ms, 9_000);
}

#[test]
fn a_producer_within_its_quota_is_untouched() {
    let mut h = Harness::new(quota_config(Some(1_000_000), None));
    let c = h.connect(ListenerId::Bootstrap(0));
    h.client_send(c, &produce(1, -1, 30_000));
    let response = produce_response(1, 0);
    h.broker_send(c, &response);
    assert_eq!(h.conns[c].to_client, response, "byte for byte");
    assert!(h.conns[c].session.wants_read(kafka_proxy_core::session::Side::Downstream));
}

#[test]
fn a_throttled_acks_0_producer_is_muted_without_a_response() {
    let mut h = Harness::new(quota_config(Some(10_000), None));
    let c = h.connect(ListenerId::Bootstrap(0));
    h.client_send(c, &produce(1, 0, 30_000));
    assert_eq!(h.conns[c].session.in_flight(), 0);
    assert!(!h.conns[c].session.wants_read(kafka_proxy_core::session::Side::Downstream));
    h.advance(Duration::from_secs(3));
    assert!(h.conns[c].session.wants_read(kafka_proxy_core::session::Side::Downstream));
    assert_eq!(h.conns[c].session.take_stats().produce_throttles.count, 1, "counted without a response");
}

#[test]
fn a_consumer_over_its_quota_gets_the_throttle_in_its_fetch_response() {
    for (records, read_size) in [(20_000, 64 * 1024), (200_000, 16 * 1024)] {
        let mut h = Harness::new(quota_config(None, Some(10_000)));
        h.read_size = read_size;
        let c = h.connect(ListenerId::Bootstrap(0));
        h.client_send(c, &fetch(1));
        h.broker_send(c, &fetch_response(1, records));
        let reply = &frames(&h.conns[c].to_client)[0];
        let decoded: FetchResponse = decode(&reply[4..], 11);
        // Measured over one (padded) second: (rate - quota) / quota × 1 s, at most 2 s.
        let expected = ((records as f64 / 10_000.0 - 1.0) * 1000.0) as i32;
        if expected < 2_000 {
            assert!(
                (expected..expected + 50).contains(&decoded.throttle_time_ms),
                "{}",
                decoded.throttle_time_ms
            );
        } else {
            assert_eq!(decoded.throttle_time_ms, 2_000, "capped at the whole window span");
        }
        assert_eq!(decoded.responses[0].partitions[0].records.as_ref().unwrap().len(), records);
        assert!(!h.conns[c].session.wants_read(kafka_proxy_core::session::Side::Downstream));
        let stats = h.conns[c].session.take_stats();
        assert_eq!(
            stats.fetch_throttles,
            QuotaThrottles { count: 1, millis: decoded.throttle_time_ms as u64 },
            "whole or cut through, counted once"
        );
    }
}

#[test]
fn connection_limits_refuse_at_accept_and_free_slots_on_close() {
    let config = ProxyConfig {
        limits: Limits { max_connections: Some(3), max_connections_per_ip: Some(2), ..Limits::default() },
        ..config(Limits::default())
    };
    let mut h = Harness::new(config);
    let peer = |last: u8| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), 40000);
    let accept = |h: &mut Harness, last: u8| {
        h.proxy.accept(h.now, SystemTime::now(), ListenerId::Bootstrap(0), peer(last))
    };
    let a1 = accept(&mut h, 1).unwrap();
    let a2 = accept(&mut h, 1).unwrap();
    let refused = accept(&mut h, 1).unwrap_err();
    assert_eq!(refused, AcceptError::ConnectionLimit(ConnectionLimit::PerIp { ip: peer(1).ip(), limit: 2 }));
    assert!(refused.logged_by_proxy());
    let b1 = accept(&mut h, 2).unwrap();
    assert_eq!(
        accept(&mut h, 3).unwrap_err(),
        AcceptError::ConnectionLimit(ConnectionLimit::Process { limit: 3 })
    );
    drop(a1);
    let _a3 = accept(&mut h, 1).expect("a closed session frees its slot");
    let stats = h.proxy.stats();
    assert_eq!((stats.connections, stats.over_max_connections, stats.over_max_connections_per_ip), (3, 1, 1));
    drop((a2, b1));
}

#[test]
fn an_anonymous_principal_over_max_connections_is_closed() {
    let mut policy = PolicyConfig::default();
    policy.principals.insert(
        ANONYMOUS.into(),
        PrincipalPolicy {
            limits: PrincipalLimits { max_connections: Some(1), ..Default::default() },
            ..Default::default()
        },
    );
    let mut h = Harness::new(with_policy(policy));
    let first = h.connect(ListenerId::Bootstrap(0));
    assert!(h.conns[first].closed.is_none());
    let second = h.connect(ListenerId::Bootstrap(0));
    assert_eq!(
        h.conns[second].closed,
        Some(CloseReason::PrincipalConnectionLimit { principal: ANONYMOUS.into(), limit: 1 })
    );
    assert_eq!(h.conns[second].session.take_stats().principal_limit_refusals, 1);
    assert_eq!(h.conns[first].session.take_stats().principal_limit_refusals, 0);
}

/// PLAIN authentication terminated by the proxy for alice and bob.
fn sasl_config(policy: PolicyConfig) -> ProxyConfig {
    let mut store = CredentialStore::builder(4096, &[]).unwrap();
    store.password("alice", Secret::new("alice-secret".into())).unwrap();
    store.password("bob", Secret::new("bob-secret".into())).unwrap();
    let random = Arc::new(SystemRandom::new());
    let store = Arc::new(store.build(&*random).unwrap());
    let mut server = ServerConfig::new(&[Mechanism::Plain], store, random);
    server.failure_delay = Duration::from_millis(100);
    let security =
        Security { downstream_sasl: DownstreamSasl::Terminate(Arc::new(server)), ..Security::default() };
    ProxyConfig { security, policy, ..config(Limits::default()) }
}

/// SaslHandshake v1 (PLAIN) and SaslAuthenticate v2 for `user`.
fn login(user: &str, password: &str) -> Vec<u8> {
    let mut v = request(17, 1, 1, false, b"\0\x05PLAIN");
    let token = format!("\0{user}\0{password}");
    let mut body = vec![token.len() as u8 + 1];
    body.extend_from_slice(token.as_bytes());
    body.push(0);
    v.extend(request(36, 2, 2, true, &body));
    v
}

#[test]
fn per_principal_policy_follows_the_sasl_principal() {
    let mut h = Harness::new(sasl_config(forbid_for("alice", &[ApiKey::PRODUCE])));
    let alice = h.connect(ListenerId::Bootstrap(0));
    let bob = h.connect(ListenerId::Bootstrap(0));
    h.client_send(alice, &login("alice", "alice-secret"));
    h.client_send(bob, &login("bob", "bob-secret"));
    assert_eq!(h.conns[alice].session.principal(), Some("alice"));
    assert_eq!(h.conns[bob].session.principal(), Some("bob"));
    h.client_send(alice, &produce(3, -1, 100));
    h.client_send(bob, &produce(3, -1, 100));
    assert!(h.conns[alice].to_broker.is_empty(), "alice's Produce is refused");
    assert_eq!(h.conns[bob].to_broker, produce(3, -1, 100), "bob's goes through");
    let reply = frames(&h.conns[alice].to_client).pop().unwrap();
    let decoded: ProduceResponse = decode(&reply[4..], 8);
    assert_eq!(decoded.responses[0].partition_responses[0].error_code, 29);
}

#[test]
fn a_sasl_principal_over_max_connections_fails_authentication_with_a_message() {
    let policy = PolicyConfig {
        default: PrincipalLimits { max_connections: Some(1), ..Default::default() },
        ..PolicyConfig::default()
    };
    let mut h = Harness::new(sasl_config(policy));
    let first = h.connect(ListenerId::Bootstrap(0));
    h.client_send(first, &login("alice", "alice-secret"));
    let second = h.connect(ListenerId::Bootstrap(0));
    h.client_send(second, &login("alice", "alice-secret"));
    let other = h.connect(ListenerId::Bootstrap(0));
    h.client_send(other, &login("bob", "bob-secret"));
    assert_eq!(h.conns[other].session.principal(), Some("bob"), "the limit is per principal");
    let replies = frames(&h.conns[second].to_client);
    let authenticate = replies.last().unwrap();
    // SaslAuthenticate v2 response: header tags, error code, message.
    assert_eq!(i16::from_be_bytes([authenticate[5], authenticate[6]]), 58, "SASL_AUTHENTICATION_FAILED");
    let text = String::from_utf8_lossy(authenticate);
    assert!(text.contains("alice already holds 1 connection"), "{text}");
    h.advance(Duration::from_millis(100));
    assert_eq!(
        h.conns[second].closed,
        Some(CloseReason::PrincipalConnectionLimit { principal: "alice".into(), limit: 1 })
    );
    let stats = h.conns[second].session.take_stats();
    assert_eq!(stats.principal_limit_refusals, 1);
    assert_eq!(stats.auth.last().and_then(|a| a.failure), Some("max_connections"));
    // Once the first connection is gone, alice may connect again.
    h.conns.swap_remove(first);
    let again = h.connect(ListenerId::Bootstrap(0));
    h.client_send(again, &login("alice", "alice-secret"));
    assert_eq!(h.conns[again].session.principal(), Some("alice"));
    assert!(h.conns[again].closed.is_none());
}

#[test]
fn a_reload_applies_the_new_policy_to_open_connections_and_keeps_the_windows() {
    let mut h = Harness::new(quota_config(Some(10_000), None));
    let c = h.connect(ListenerId::Bootstrap(0));
    h.client_send(c, &produce(1, -1, 9_000));
    h.broker_send(c, &produce_response(1, 0));
    let decoded: ProduceResponse = decode(&frames(&h.conns[c].to_client)[0][4..], 8);
    assert_eq!(decoded.throttle_time_ms, 0, "9 KB over the padded second is within 10 KB/s");

    let mut next = quota_config(Some(10_000), None);
    next.policy.forbidden_api_keys = keys(&[ApiKey::DELETE_TOPICS]);
    h.proxy.reload(next);
    h.client_send(c, &delete_topics(2, &["orders"]));
    let refusal = frames(&h.conns[c].to_client).pop().unwrap();
    let decoded: DeleteTopicsResponse = decode(&refusal[5..], 4);
    assert_eq!(decoded.responses[0].error_code, 29, "the open connection follows the new rules");

    // The window carried over: 10 KB more within the same second is ~9 KB over.
    h.client_send(c, &produce(3, -1, 10_000));
    h.broker_send(c, &produce_response(3, 0));
    let decoded: ProduceResponse = decode(&frames(&h.conns[c].to_client).pop().unwrap()[4..], 8);
    assert!((850..=1_000).contains(&decoded.throttle_time_ms), "{}", decoded.throttle_time_ms);
}

#[test]
fn without_a_policy_every_byte_passes_unchanged() {
    let mut h = Harness::new(config(Limits::default()));
    let c = h.connect(ListenerId::Bootstrap(0));
    let mut requests = produce(1, -1, 30_000);
    requests.extend(delete_topics(2, &["orders"]));
    h.client_send(c, &requests);
    assert_eq!(h.conns[c].to_broker, requests);
    let mut responses = produce_response(1, 0);
    responses.extend(response(2, b"\0deleted"));
    h.broker_send(c, &responses);
    assert_eq!(h.conns[c].to_client, responses);
    assert_eq!(h.proxy.stats().connections, 1);
    let stats = h.conns[c].session.take_stats();
    assert!(stats.policy_refusals.is_empty() && stats.produce_throttles == QuotaThrottles::default());
}
