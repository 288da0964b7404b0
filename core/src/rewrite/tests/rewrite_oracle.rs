//! The response rewriters against an independent oracle, the `kafka-protocol`
//! crate (generated from Kafka 4.1.0's message schemas).
//!
//! For random responses at every version: encode with the oracle, rewrite with
//! ours, decode the result with the oracle, and check that only what must
//! change changed: hosts and ports, refused brokers removed, unexposable
//! coordinators turned into `COORDINATOR_NOT_AVAILABLE`. ApiVersions is checked
//! byte for byte against the oracle's own (Kafka-canonical) encoding of the
//! expected response.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, ApiVersionsResponse, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::describe_cluster_response::{DescribeClusterBroker, DescribeClusterResponse};
use kafka_protocol::messages::fetch_response::FetchResponse;
use kafka_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use kafka_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{
    self, BatchIndexAndErrorMessage, PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;

use crate::api::{self, ApiKey};
use crate::rewrite::find_coordinator::COORDINATOR_NOT_AVAILABLE_MESSAGE;
use crate::rewrite::{
    AddressMap, Advertised, ApiVersionsPolicy, ApiVersionsView, Body, Broker, Observed, Rewrite,
    rewrite_api_versions, rewrite_response, unsupported_version_body,
};

use super::oracle::{
    decode, encode, endpoints, fetch, node_endpoints, node_id, opt_text, set_uuid, text, unknown_tags,
};

// ---------------------------------------------------------------------------
// The address map under test: node n is "proxy-n.test":20000+n, except the
// ids it refuses (multiples of `refuse_multiple_of`).

#[derive(Debug, Clone, Copy)]
struct TestMap {
    refuse_multiple_of: Option<i32>,
}

impl TestMap {
    fn refuses(&self, node_id: i32) -> bool {
        self.refuse_multiple_of.is_some_and(|m| node_id.rem_euclid(m) == 0)
    }
    fn host(node_id: i32) -> StrBytes {
        StrBytes::from_string(format!("proxy-{node_id}.test"))
    }
    fn port(node_id: i32) -> i32 {
        20000 + node_id
    }
}

impl AddressMap for TestMap {
    fn advertised(&self, node_id: i32, _host: &str, _port: i32) -> Option<Advertised<'_>> {
        (!self.refuses(node_id)).then(|| Advertised {
            host: Cow::Owned(format!("proxy-{node_id}.test")),
            port: Self::port(node_id),
        })
    }
}

fn test_map() -> impl Strategy<Value = TestMap> {
    prop_oneof![
        2 => Just(TestMap { refuse_multiple_of: None }),
        1 => (2i32..5).prop_map(|m| TestMap { refuse_multiple_of: Some(m) }),
    ]
}

// ---------------------------------------------------------------------------
// Oracle helpers.

/// Encodes and decodes once, so fields a version lacks take their defaults.
fn normalise<T: Encodable + Decodable>(msg: &T, version: i16) -> (T, Bytes) {
    let bytes = encode(msg, version);
    (decode(&bytes, version), bytes)
}

/// The bytes a rewrite forwards, checking `Body::len` on the way.
fn forwarded(original: &Bytes, rewrite: &Rewrite) -> Bytes {
    let out = match &rewrite.body {
        Body::Unchanged => original.clone(),
        Body::Spliced { front, new, back } => {
            let mut out = BytesMut::new();
            out.put_slice(front);
            out.put_slice(new);
            out.put_slice(back);
            out.freeze()
        }
    };
    assert_eq!(rewrite.body.len(original.len()), out.len(), "Body::len");
    out
}

fn broker(node_id: i32, host: &StrBytes, port: i32) -> Broker {
    Broker { node_id, host: host.to_string(), port }
}

// ---------------------------------------------------------------------------
// Metadata v0–13.

fn metadata_broker(version: i16) -> impl Strategy<Value = MetadataResponseBroker> {
    (node_id(), text(20), any::<i32>(), opt_text(8), unknown_tags(version >= 9, 0)).prop_map(
        |(id, host, port, rack, tags)| {
            let mut b = MetadataResponseBroker::default();
            b.node_id = id.into();
            b.host = host;
            b.port = port;
            b.rack = rack;
            b.unknown_tagged_fields = tags;
            b
        },
    )
}

fn metadata_topic(version: i16) -> impl Strategy<Value = MetadataResponseTopic> {
    let flexible = version >= 9;
    let partition = (
        any::<i16>(),
        any::<i32>(),
        -1i32..40,
        any::<i32>(),
        vec(node_id(), 0..4),
        vec(node_id(), 0..4),
        vec(node_id(), 0..3),
        unknown_tags(flexible, 0),
    )
        .prop_map(|(err, index, leader, epoch, replicas, isr, offline, tags)| {
            let mut p = MetadataResponsePartition::default();
            p.error_code = err;
            p.partition_index = index;
            p.leader_id = leader.into();
            p.leader_epoch = epoch;
            p.replica_nodes = replicas.into_iter().map(Into::into).collect();
            p.isr_nodes = isr.into_iter().map(Into::into).collect();
            p.offline_replicas = offline.into_iter().map(Into::into).collect();
            p.unknown_tagged_fields = tags;
            p
        });
    let name = if version >= 12 { opt_text(12).boxed() } else { text(12).prop_map(Some).boxed() };
    (
        any::<i16>(),
        name,
        any::<u128>(),
        any::<bool>(),
        vec(partition, 0..3),
        any::<i32>(),
        unknown_tags(flexible, 0),
    )
        .prop_map(move |(err, name, id, internal, partitions, ops, tags)| {
            let mut t = MetadataResponseTopic::default();
            t.error_code = err;
            t.name = name.map(Into::into);
            t.topic_id = set_uuid(id);
            t.is_internal = internal;
            t.partitions = partitions;
            if version >= 8 {
                t.topic_authorized_operations = ops;
            }
            t.unknown_tagged_fields = tags;
            t
        })
}

fn metadata(version: i16) -> impl Strategy<Value = MetadataResponse> {
    let flexible = version >= 9;
    (
        any::<i32>(),
        vec(metadata_broker(version), 0..6),
        opt_text(10),
        -1i32..40,
        vec(metadata_topic(version), 0..3),
        any::<i32>(),
        prop_oneof![3 => Just(0i16), 1 => any::<i16>()],
        unknown_tags(flexible, 0),
    )
        .prop_map(move |(throttle, brokers, cluster, controller, topics, ops, err, tags)| {
            let mut m = MetadataResponse::default();
            m.throttle_time_ms = throttle;
            m.brokers = brokers;
            m.cluster_id = cluster;
            m.controller_id = controller.into();
            m.topics = topics;
            if (8..=10).contains(&version) {
                m.cluster_authorized_operations = ops;
            }
            m.error_code = err;
            m.unknown_tagged_fields = tags;
            m
        })
}

fn versioned<S: Strategy>(
    versions: std::ops::RangeInclusive<i16>,
    make: impl Fn(i16) -> S,
) -> impl Strategy<Value = (i16, S::Value)> {
    versions.prop_flat_map(move |v| (Just(v), make(v)))
}

proptest! {
    #[test]
    fn metadata_matches_oracle((version, msg) in versioned(0..=13, metadata), map in test_map()) {
        let (input, body) = normalise(&msg, version);
        let rewrite = rewrite_response(ApiKey::METADATA, version, &body, &map).expect("rewrite");
        let Body::Spliced { front, back, .. } = &rewrite.body else { panic!("metadata is always spliced") };
        prop_assert!(front.is_empty());
        prop_assert_eq!(back.as_ptr(), body[body.len() - back.len()..].as_ptr(), "tail is a zero-copy slice");
        let output: MetadataResponse = decode(&forwarded(&body, &rewrite), version);

        let mut expected = input.clone();
        expected.brokers.retain(|b| !map.refuses(b.node_id.0));
        for b in &mut expected.brokers {
            b.host = TestMap::host(b.node_id.0);
            b.port = TestMap::port(b.node_id.0);
        }
        prop_assert_eq!(&output, &expected);

        let seen: Vec<_> = input.brokers.iter().map(|b| broker(b.node_id.0, &b.host, b.port)).collect();
        let complete = !seen.is_empty() && (version < 13 || input.error_code == 0);
        let observed = if complete { Observed::All(seen) } else { Observed::Nothing };
        prop_assert_eq!(rewrite.observed, observed);
    }
}

// ---------------------------------------------------------------------------
// FindCoordinator v0–6.

fn coordinator_error() -> impl Strategy<Value = i16> {
    prop_oneof![4 => Just(0i16), 1 => Just(15i16), 1 => any::<i16>()]
}

fn coordinator_node() -> impl Strategy<Value = i32> {
    prop_oneof![5 => node_id(), 1 => Just(-1)]
}

fn find_coordinator(version: i16) -> BoxedStrategy<FindCoordinatorResponse> {
    let flexible = version >= 3;
    if version <= 3 {
        (
            any::<i32>(),
            coordinator_error(),
            opt_text(16),
            coordinator_node(),
            text(20),
            any::<i32>(),
            unknown_tags(flexible, 0),
        )
            .prop_map(|(throttle, err, message, node, host, port, tags)| {
                let mut m = FindCoordinatorResponse::default();
                m.throttle_time_ms = throttle;
                m.error_code = err;
                m.error_message = message;
                m.node_id = node.into();
                m.host = host;
                m.port = port;
                m.unknown_tagged_fields = tags;
                m
            })
            .boxed()
    } else {
        let coordinator = (
            text(12),
            coordinator_node(),
            text(20),
            any::<i32>(),
            coordinator_error(),
            opt_text(16),
            unknown_tags(true, 0),
        )
            .prop_map(|(key, node, host, port, err, message, tags)| {
                let mut c = Coordinator::default();
                c.key = key;
                c.node_id = node.into();
                c.host = host;
                c.port = port;
                c.error_code = err;
                c.error_message = message;
                c.unknown_tagged_fields = tags;
                c
            });
        (any::<i32>(), vec(coordinator, 0..5), unknown_tags(true, 0))
            .prop_map(|(throttle, coordinators, tags)| {
                let mut m = FindCoordinatorResponse::default();
                m.throttle_time_ms = throttle;
                m.coordinators = coordinators;
                m.unknown_tagged_fields = tags;
                m
            })
            .boxed()
    }
}

fn names_coordinator(error_code: i16, node_id: i32) -> bool {
    error_code == 0 && node_id != -1
}

proptest! {
    #[test]
    fn find_coordinator_matches_oracle((version, msg) in versioned(0..=6, find_coordinator), map in test_map()) {
        let (input, body) = normalise(&msg, version);
        let rewrite = rewrite_response(ApiKey::FIND_COORDINATOR, version, &body, &map).expect("rewrite");
        let output: FindCoordinatorResponse = decode(&forwarded(&body, &rewrite), version);

        let mut expected = input.clone();
        let mut seen = Vec::new();
        let unavailable = |message: &mut Option<StrBytes>, with_message: bool| {
            if with_message {
                *message = Some(StrBytes::from_static_str(COORDINATOR_NOT_AVAILABLE_MESSAGE));
            }
        };
        if version <= 3 {
            if names_coordinator(input.error_code, input.node_id.0) {
                seen.push(broker(input.node_id.0, &input.host, input.port));
                if map.refuses(input.node_id.0) {
                    expected.error_code = 15;
                    unavailable(&mut expected.error_message, version >= 1);
                    expected.node_id = (-1).into();
                    expected.host = StrBytes::from_static_str("");
                    expected.port = -1;
                } else {
                    expected.host = TestMap::host(input.node_id.0);
                    expected.port = TestMap::port(input.node_id.0);
                }
            }
        } else {
            for c in &mut expected.coordinators {
                if !names_coordinator(c.error_code, c.node_id.0) {
                    continue;
                }
                seen.push(broker(c.node_id.0, &c.host, c.port));
                if map.refuses(c.node_id.0) {
                    c.error_code = 15;
                    unavailable(&mut c.error_message, true);
                    c.node_id = (-1).into();
                    c.host = StrBytes::from_static_str("");
                    c.port = -1;
                } else {
                    c.host = TestMap::host(c.node_id.0);
                    c.port = TestMap::port(c.node_id.0);
                }
            }
        }
        prop_assert_eq!(&output, &expected);
        if seen.is_empty() {
            prop_assert_eq!(rewrite, Rewrite::UNCHANGED);
        } else {
            prop_assert_eq!(rewrite.observed, Observed::Some(seen));
        }
    }
}

// ---------------------------------------------------------------------------
// DescribeCluster v0–2.

fn describe_cluster(version: i16) -> impl Strategy<Value = DescribeClusterResponse> {
    let broker = (node_id(), text(20), any::<i32>(), opt_text(8), any::<bool>(), unknown_tags(true, 0))
        .prop_map(move |(id, host, port, rack, fenced, tags)| {
            let mut b = DescribeClusterBroker::default();
            b.broker_id = id.into();
            b.host = host;
            b.port = port;
            b.rack = rack;
            b.is_fenced = version >= 2 && fenced;
            b.unknown_tagged_fields = tags;
            b
        });
    let endpoint_type = if version >= 1 {
        prop_oneof![4 => Just(1i8), 2 => Just(2i8), 1 => any::<i8>()].boxed()
    } else {
        Just(1i8).boxed()
    };
    (
        (any::<i32>(), prop_oneof![3 => Just(0i16), 1 => any::<i16>()], opt_text(16), endpoint_type),
        (text(10), -1i32..40, vec(broker, 0..5), any::<i32>(), unknown_tags(true, 0)),
    )
        .prop_map(
            |((throttle, err, message, endpoint_type), (cluster, controller, brokers, ops, tags))| {
                let mut m = DescribeClusterResponse::default();
                m.throttle_time_ms = throttle;
                m.error_code = err;
                m.error_message = message;
                m.endpoint_type = endpoint_type;
                m.cluster_id = cluster;
                m.controller_id = controller.into();
                m.brokers = brokers;
                m.cluster_authorized_operations = ops;
                m.unknown_tagged_fields = tags;
                m
            },
        )
}

proptest! {
    #[test]
    fn describe_cluster_matches_oracle((version, msg) in versioned(0..=2, describe_cluster), map in test_map()) {
        let (input, body) = normalise(&msg, version);
        let rewrite = rewrite_response(ApiKey::DESCRIBE_CLUSTER, version, &body, &map).expect("rewrite");
        let output: DescribeClusterResponse = decode(&forwarded(&body, &rewrite), version);

        let mut expected = input.clone();
        let observed = if input.brokers.is_empty() {
            prop_assert_eq!(&rewrite, &Rewrite::UNCHANGED);
            Observed::Nothing
        } else if input.endpoint_type != 1 {
            expected.brokers.clear();
            Observed::Nothing
        } else {
            expected.brokers.retain(|b| !map.refuses(b.broker_id.0));
            for b in &mut expected.brokers {
                b.host = TestMap::host(b.broker_id.0);
                b.port = TestMap::port(b.broker_id.0);
            }
            let seen = input.brokers.iter().map(|b| broker(b.broker_id.0, &b.host, b.port)).collect();
            if input.error_code == 0 { Observed::All(seen) } else { Observed::Nothing }
        };
        prop_assert_eq!(&output, &expected);
        prop_assert_eq!(rewrite.observed, observed);
    }
}

// ---------------------------------------------------------------------------
// KIP-951 NodeEndpoints: Produce v3–13, Fetch v4–18.

fn produce(version: i16) -> impl Strategy<Value = ProduceResponse> {
    let flexible = version >= 9;
    let record_error =
        (any::<i32>(), opt_text(10), unknown_tags(flexible, 0)).prop_map(move |(i, m, tags)| {
            let mut e = BatchIndexAndErrorMessage::default();
            if version >= 8 {
                e.batch_index = i;
                e.batch_index_error_message = m;
            }
            e.unknown_tagged_fields = tags;
            e
        });
    let partition = (
        (any::<i32>(), any::<i16>(), any::<i64>(), any::<i64>(), any::<i64>()),
        (
            vec(record_error, 0..3),
            opt_text(12),
            option::of((node_id(), any::<i32>())),
            unknown_tags(flexible, 1),
        ),
    )
        .prop_map(move |((index, err, base, append, start), (errors, message, leader, tags))| {
            let mut p = PartitionProduceResponse::default();
            p.index = index;
            p.error_code = err;
            p.base_offset = base;
            p.log_append_time_ms = append;
            p.log_start_offset = start;
            if version >= 8 {
                p.record_errors = errors;
                p.error_message = message;
            }
            if let (true, Some((id, epoch))) = (version >= 10, leader) {
                p.current_leader = produce_response::LeaderIdAndEpoch::default()
                    .with_leader_id(id.into())
                    .with_leader_epoch(epoch);
            }
            p.unknown_tagged_fields = tags;
            p
        });
    let topic = (text(12), any::<u128>(), vec(partition, 0..3), unknown_tags(flexible, 0)).prop_map(
        |(name, id, partitions, tags)| {
            let mut t = TopicProduceResponse::default();
            t.name = name.into();
            t.topic_id = set_uuid(id);
            t.partition_responses = partitions;
            t.unknown_tagged_fields = tags;
            t
        },
    );
    (
        vec(topic, 0..3),
        any::<i32>(),
        endpoints(version >= 10).prop_union(endpoints(false)),
        unknown_tags(flexible, 1),
    )
        .prop_map(|(responses, throttle, endpoints, tags)| {
            let mut m = ProduceResponse::default();
            m.responses = responses;
            m.throttle_time_ms = throttle;
            m.node_endpoints = node_endpoints!(produce_response::NodeEndpoint, endpoints);
            m.unknown_tagged_fields = tags;
            m
        })
}

/// What an endpoint list must look like after the rewrite, and what it told.
fn expected_endpoints(
    map: &TestMap,
    input: &[(i32, &StrBytes, i32)],
) -> (Vec<(i32, StrBytes, i32)>, Observed) {
    let kept = input
        .iter()
        .filter(|(id, _, _)| !map.refuses(*id))
        .map(|&(id, _, _)| (id, TestMap::host(id), TestMap::port(id)))
        .collect();
    let seen: Vec<_> = input.iter().map(|&(id, host, port)| broker(id, host, port)).collect();
    (kept, if seen.is_empty() { Observed::Nothing } else { Observed::Some(seen) })
}

/// Defines `$check`: a `$response` (Produce v10+ or Fetch v16+) rewritten by ours
/// changes only in its KIP-951 `NodeEndpoints`; without them it is left unchanged.
/// (A macro: the two responses' endpoint types are distinct oracle types.)
macro_rules! node_endpoints_check {
    ($check:ident, $response:ty, $api:expr) => {
        fn $check(version: i16, msg: &$response, map: &TestMap) -> Result<(), TestCaseError> {
            let (input, body) = normalise(msg, version);
            let rewrite = rewrite_response($api, version, &body, map).expect("rewrite");
            let output: $response = decode(&forwarded(&body, &rewrite), version);
            if input.node_endpoints.is_empty() {
                prop_assert_eq!(&rewrite, &Rewrite::UNCHANGED);
                prop_assert_eq!(&output, &input);
                return Ok(());
            }
            let Body::Spliced { front, back, .. } = &rewrite.body else {
                panic!("endpoints present: spliced")
            };
            prop_assert_eq!(front.as_ptr(), body.as_ptr(), "front is a zero-copy slice");
            prop_assert!(back.is_empty());
            let parts: Vec<_> = input.node_endpoints.iter().map(|e| (e.node_id.0, &e.host, e.port)).collect();
            let (kept, observed) = expected_endpoints(map, &parts);
            let mut expected = input.clone();
            expected.node_endpoints.retain(|e| !map.refuses(e.node_id.0));
            for (e, (id, host, port)) in expected.node_endpoints.iter_mut().zip(kept) {
                prop_assert_eq!(e.node_id.0, id);
                e.host = host;
                e.port = port;
            }
            prop_assert_eq!(&output, &expected);
            prop_assert_eq!(rewrite.observed, observed);
            Ok(())
        }
    };
}

node_endpoints_check!(check_produce, ProduceResponse, ApiKey::PRODUCE);
node_endpoints_check!(check_fetch, FetchResponse, ApiKey::FETCH);

proptest! {
    #[test]
    fn produce_matches_oracle((version, msg) in versioned(3..=13, produce), map in test_map()) {
        check_produce(version, &msg, &map)?;
    }

    #[test]
    fn fetch_matches_oracle((version, msg) in versioned(4..=18, fetch), map in test_map()) {
        check_fetch(version, &msg, &map)?;
    }
}

// ---------------------------------------------------------------------------
// ApiVersions v0–4.

/// API keys worth drawing: the decoded and hidden ones, and any other.
fn api_key() -> impl Strategy<Value = i16> {
    let special: Vec<i16> =
        api::DECODED.iter().map(|d| d.key.0).chain(api::HIDDEN.iter().map(|k| k.0)).collect();
    prop_oneof![proptest::sample::select(special), 0i16..90]
}

fn policy() -> impl Strategy<Value = ApiVersionsPolicy> {
    prop_oneof![
        Just(ApiVersionsPolicy::passthrough()),
        Just(ApiVersionsPolicy::terminating_sasl()),
        vec((api_key(), 0i16..3, 0i16..6), 0..3).prop_map(|pins| ApiVersionsPolicy {
            local: pins.into_iter().map(|(k, lo, hi)| (ApiKey(k), lo, lo.max(hi))).collect(),
            ..ApiVersionsPolicy::default()
        }),
    ]
}

fn api_versions(version: i16) -> impl Strategy<Value = ApiVersionsResponse> {
    let flexible = version >= 3;
    let entry = (0i16..5, 0i16..25, unknown_tags(flexible, 0));
    let feature = (text(10), any::<i16>(), any::<i16>(), unknown_tags(true, 0));
    let features = if flexible { vec(feature, 0..3).boxed() } else { Just(Vec::new()).boxed() };
    (
        (prop_oneof![4 => Just(0i16), 1 => any::<i16>()], btree_map(api_key(), entry, 0..25), any::<i32>()),
        (
            features.clone(),
            prop_oneof![Just(-1i64), any::<i64>()],
            features,
            any::<bool>(),
            unknown_tags(flexible, 4),
        ),
    )
        .prop_map(move |((err, keys, throttle), (supported, epoch, finalized, zk, tags))| {
            let mut m = ApiVersionsResponse::default();
            m.error_code = err;
            m.api_keys = keys
                .into_iter()
                .map(|(key, (min, span, tags))| {
                    let mut a = ApiVersion::default();
                    a.api_key = key;
                    a.min_version = min;
                    a.max_version = min + span;
                    a.unknown_tagged_fields = tags;
                    a
                })
                .collect();
            m.throttle_time_ms = throttle;
            if flexible {
                m.supported_features = supported
                    .into_iter()
                    .map(|(name, min, max, tags)| {
                        let mut f = SupportedFeatureKey::default();
                        f.name = name;
                        f.min_version = min;
                        f.max_version = max;
                        f.unknown_tagged_fields = tags;
                        f
                    })
                    .collect();
                m.finalized_features_epoch = epoch;
                m.finalized_features = finalized
                    .into_iter()
                    .map(|(name, max, min, tags)| {
                        let mut f = FinalizedFeatureKey::default();
                        f.name = name;
                        f.max_version_level = max;
                        f.min_version_level = min;
                        f.unknown_tagged_fields = tags;
                        f
                    })
                    .collect();
                m.zk_migration_ready = zk;
            }
            m.unknown_tagged_fields = tags;
            m
        })
}

/// The ApiKeys a client must see: a sorted merge of the broker's keys and the
/// pins (only the broker's keys in an error reply), where a pin wins, hidden
/// keys go, and decoded keys are clamped.
fn expected_api_keys(input: &ApiVersionsResponse, policy: &ApiVersionsPolicy) -> Vec<ApiVersion> {
    let mut pins = BTreeMap::new();
    for &(key, lo, hi) in &policy.local {
        pins.entry(key.0).or_insert((lo, hi));
    }
    let broker: BTreeMap<i16, &ApiVersion> = input.api_keys.iter().map(|a| (a.api_key, a)).collect();
    let inserted = pins.keys().filter(|_| input.error_code == 0);
    let keys: BTreeSet<i16> = broker.keys().chain(inserted).copied().collect();
    let mut out = Vec::new();
    for key in keys {
        let mut entry = broker.get(&key).map_or_else(ApiVersion::default, |a| (*a).clone());
        entry.api_key = key;
        if let Some(&(lo, hi)) = pins.get(&key) {
            entry.min_version = lo;
            entry.max_version = hi;
        } else if api::HIDDEN.contains(&ApiKey(key)) {
            continue;
        } else if let Some(d) = api::decoded(ApiKey(key)) {
            entry.max_version = entry.max_version.min(d.max_version);
            if entry.min_version > entry.max_version {
                continue;
            }
        } else if ApiKey(key).name().is_none() {
            // Keys Kafka has not published are not offered.
            continue;
        }
        out.push(entry);
    }
    out
}

/// `msg` at `version` (3+) with every known tagged field written, default or
/// not, as tansu does.
fn encode_with_explicit_defaults(msg: &ApiVersionsResponse, version: i16) -> Bytes {
    let mut bare = msg.clone();
    bare.supported_features.clear();
    bare.finalized_features_epoch = -1;
    bare.finalized_features.clear();
    bare.zk_migration_ready = false;
    bare.unknown_tagged_fields.clear();
    let mut out = BytesMut::from(&encode(&bare, version)[..]);
    assert_eq!(out.last(), Some(&0), "empty tagged-field buffer");
    out.truncate(out.len() - 1);

    fn uvarint(buf: &mut BytesMut, mut v: u32) {
        while v >= 0x80 {
            buf.put_u8(v as u8 | 0x80);
            v >>= 7;
        }
        buf.put_u8(v as u8);
    }
    fn array<T: Encodable>(items: &[T], version: i16) -> BytesMut {
        let mut b = BytesMut::new();
        uvarint(&mut b, items.len() as u32 + 1);
        for i in items {
            i.encode(&mut b, version).expect("feature");
        }
        b
    }
    let mut fields: Vec<(u32, BytesMut)> = vec![
        (0, array(&msg.supported_features, version)),
        (1, BytesMut::from(&msg.finalized_features_epoch.to_be_bytes()[..])),
        (2, array(&msg.finalized_features, version)),
        (3, BytesMut::from(&[u8::from(msg.zk_migration_ready)][..])),
    ];
    fields.extend(msg.unknown_tagged_fields.iter().map(|(t, d)| (*t as u32, BytesMut::from(&d[..]))));
    uvarint(&mut out, fields.len() as u32);
    for (tag, data) in fields {
        uvarint(&mut out, tag);
        uvarint(&mut out, data.len() as u32);
        out.put_slice(&data);
    }
    out.freeze()
}

proptest! {
    #[test]
    fn api_versions_matches_oracle(
        (version, msg) in versioned(0..=4, api_versions),
        policy in policy(),
        explicit_defaults in any::<bool>(),
    ) {
        let (input, canonical) = normalise(&msg, version);
        let body = if explicit_defaults && version >= 3 {
            encode_with_explicit_defaults(&input, version)
        } else {
            canonical
        };
        let out = rewrite_api_versions(version, &body, &policy).expect("rewrite");

        let mut expected = input.clone();
        expected.api_keys = expected_api_keys(&input, &policy);
        // Byte for byte what the oracle (like Kafka) writes: default-valued
        // known tags left out, everything else kept.
        prop_assert_eq!(&out, &encode(&expected, version));
        prop_assert_eq!(decode::<ApiVersionsResponse>(&out, version), expected);

        let view = ApiVersionsView::parse(version, &body).expect("view");
        prop_assert_eq!(view.len(), input.api_keys.len());
        prop_assert_eq!(view.encoding_version(), version);
        let ranges: Vec<_> = view.iter().map(|r| (r.key.0, r.min, r.max)).collect();
        let want: Vec<_> = input.api_keys.iter().map(|a| (a.api_key, a.min_version, a.max_version)).collect();
        prop_assert_eq!(ranges, want);
    }

    #[test]
    fn api_versions_unsupported_version_is_v0(
        (_, msg) in versioned(0..=0, api_versions),
        version in 0i16..=4,
        policy in policy(),
    ) {
        // KIP-511: the broker answers UNSUPPORTED_VERSION with a v0 body,
        // whatever version the client asked for.
        let mut msg = msg;
        msg.error_code = 35;
        let (input, body) = normalise(&msg, 0);
        let out = rewrite_api_versions(version, &body, &policy).expect("rewrite");
        let mut expected = input.clone();
        expected.api_keys = expected_api_keys(&input, &policy);
        prop_assert_eq!(&out, &encode(&expected, 0));
        let view = ApiVersionsView::parse(version, &body).expect("view");
        prop_assert_eq!(view.encoding_version(), 0);
        prop_assert_eq!(view.error_code().0, 35);
    }
}

#[test]
fn proxy_reply_to_a_too_new_api_versions_request() {
    let body = unsupported_version_body();
    let msg: ApiVersionsResponse = decode(&body, 0);
    assert_eq!(msg.error_code, 35);
    let keys: Vec<_> = msg.api_keys.iter().map(|a| (a.api_key, a.min_version, a.max_version)).collect();
    assert_eq!(keys, vec![(18, 0, 4)]);
    // Our own parser reads it back whatever version the client asked for.
    let view = ApiVersionsView::parse(4, &body).expect("view");
    assert_eq!(view.encoding_version(), 0);
    let range = view.get(ApiKey::API_VERSIONS).expect("listed");
    assert_eq!(range.highest_common(0, 9), Some(4));
    assert_eq!(range.highest_common(5, 9), None);
}

#[test]
fn unsupported_version_encoded_at_the_request_version_is_accepted() {
    // Not what Kafka does, but a broker that encodes its error reply at the
    // asked version is still understood, and answered in the same encoding.
    let mut msg = ApiVersionsResponse::default();
    msg.error_code = 35;
    let mut entry = ApiVersion::default();
    entry.api_key = 18;
    entry.max_version = 9;
    msg.api_keys.push(entry.clone());
    let body = encode(&msg, 3);
    let out = rewrite_api_versions(3, &body, &ApiVersionsPolicy::passthrough()).expect("rewrite");
    entry.max_version = 4;
    msg.api_keys = vec![entry];
    assert_eq!(out, encode(&msg, 3));
}

// ---------------------------------------------------------------------------
// Truncation: every proper prefix of a valid body is refused, never forwarded
// and never a panic.

fn assert_truncations_fail(api: ApiKey, version: i16, body: &Bytes) -> Result<(), TestCaseError> {
    let map = TestMap { refuse_multiple_of: Some(3) };
    for cut in 0..body.len() {
        let prefix = body.slice(..cut);
        let result = if api == ApiKey::API_VERSIONS {
            rewrite_api_versions(version, &prefix, &ApiVersionsPolicy::terminating_sasl()).map(drop)
        } else {
            rewrite_response(api, version, &prefix, &map).map(drop)
        };
        match result {
            Err(crate::rewrite::RewriteError::Malformed { offset, .. }) => {
                prop_assert!(offset <= cut, "{api} v{version}: fault offset {offset} beyond cut {cut}");
            }
            other => {
                prop_assert!(false, "{api} v{version}: prefix of {cut}/{} bytes gave {other:?}", body.len())
            }
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn truncated_metadata_is_refused((version, msg) in versioned(0..=13, metadata)) {
        assert_truncations_fail(ApiKey::METADATA, version, &encode(&msg, version))?;
    }

    #[test]
    fn truncated_find_coordinator_is_refused((version, msg) in versioned(0..=6, find_coordinator)) {
        assert_truncations_fail(ApiKey::FIND_COORDINATOR, version, &encode(&msg, version))?;
    }

    #[test]
    fn truncated_describe_cluster_is_refused((version, msg) in versioned(0..=2, describe_cluster)) {
        assert_truncations_fail(ApiKey::DESCRIBE_CLUSTER, version, &encode(&msg, version))?;
    }

    #[test]
    fn truncated_produce_is_refused((version, msg) in versioned(10..=13, produce)) {
        assert_truncations_fail(ApiKey::PRODUCE, version, &encode(&msg, version))?;
    }

    #[test]
    fn truncated_fetch_is_refused((version, msg) in versioned(16..=18, fetch)) {
        assert_truncations_fail(ApiKey::FETCH, version, &encode(&msg, version))?;
    }

    #[test]
    fn truncated_api_versions_is_refused((version, msg) in versioned(0..=4, api_versions)) {
        let mut msg = msg;
        msg.error_code = 0;
        assert_truncations_fail(ApiKey::API_VERSIONS, version, &encode(&msg, version))?;
    }
}
