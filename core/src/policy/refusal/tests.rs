//! The refusal encoders against an independent oracle, the `kafka-protocol`
//! crate (generated from Kafka's message schemas).
//!
//! For random requests at every version the proxy answers: encode the request
//! with the oracle, refuse it with ours, decode the response with the oracle
//! (which must consume every byte) and compare it, field for field, with the
//! response Kafka sends an unauthorized principal, built here from the
//! request. A field in the wrong place, a missing one or a wrong encoding
//! cannot pass. The version table itself (ranges, flexible versions, header
//! versions) is checked against the oracle's.

use std::collections::HashSet;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, AlterPartitionReassignmentsRequest,
    AlterPartitionReassignmentsResponse, AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    BrokerId, CreateAclsRequest, CreateAclsResponse, CreatePartitionsRequest, CreatePartitionsResponse,
    CreateTopicsRequest, CreateTopicsResponse, DeleteAclsRequest, DeleteAclsResponse, DeleteGroupsRequest,
    DeleteGroupsResponse, DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, FetchRequest, FetchResponse, GroupId, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, InitProducerIdRequest, InitProducerIdResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, ProduceRequest, ProduceResponse,
    TopicName, TransactionalId, alter_configs_request, alter_configs_response,
    alter_partition_reassignments_request, alter_partition_reassignments_response,
    alter_user_scram_credentials_request, alter_user_scram_credentials_response, create_acls_request,
    create_acls_response, create_partitions_request, create_partitions_response, create_topics_request,
    create_topics_response, delete_acls_request, delete_acls_response, delete_groups_response,
    delete_records_request, delete_records_response, delete_topics_request, delete_topics_response,
    fetch_request, fetch_response, incremental_alter_configs_request, incremental_alter_configs_response,
    offset_commit_request, offset_commit_response, offset_delete_request, produce_request, produce_response,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message, StrBytes};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use crate::api::{ApiKey, ErrorCode};

use super::{Refusal, RefusalError, SPECS, refuse, spec};

const TOPIC: i16 = ErrorCode::TOPIC_AUTHORIZATION_FAILED.0;
const GROUP: i16 = ErrorCode::GROUP_AUTHORIZATION_FAILED.0;
const CLUSTER: i16 = ErrorCode::CLUSTER_AUTHORIZATION_FAILED.0;
const TRANSACTIONAL_ID: i16 = ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED.0;

fn text(s: &'static str) -> Option<StrBytes> {
    Some(StrBytes::from_static_str(s))
}

fn name() -> impl Strategy<Value = StrBytes> {
    proptest::string::string_regex("[a-zA-Z0-9._-]{0,12}").expect("regex").prop_map(StrBytes::from_string)
}

fn topic_name() -> impl Strategy<Value = TopicName> {
    name().prop_map(TopicName)
}

/// A topic id from 128 random bits (the oracle's `Uuid` type parses from text).
fn uuid<T: std::str::FromStr + std::fmt::Debug>() -> impl Strategy<Value = T>
where
    T::Err: std::fmt::Debug,
{
    any::<u128>().prop_map(|bits| format!("{bits:032x}").parse().expect("uuid"))
}

fn broker_ids() -> impl Strategy<Value = Vec<BrokerId>> {
    vec(any::<i32>().prop_map(BrokerId), 0..4)
}

/// `(version, message)` for every version of `range`.
fn versioned<T: std::fmt::Debug, S: Strategy<Value = T>>(
    range: std::ops::RangeInclusive<i16>,
    message: impl Fn(i16) -> S + Clone + 'static,
) -> impl Strategy<Value = (i16, T)> {
    range.prop_flat_map(move |v| (Just(v), message(v)))
}

/// Refuses `request` (encoded by the oracle at `version`) and decodes the
/// answer with the oracle.
fn refused<Req: Encodable, Resp: Decodable>(key: ApiKey, version: i16, request: &Req) -> Resp {
    let mut body = BytesMut::new();
    request.encode(&mut body, version).expect("the oracle encodes the request");
    match refuse(key, version, &body).expect("refused") {
        Refusal::Respond(response) => {
            let mut buf = Bytes::clone(&response);
            let decoded = Resp::decode(&mut buf, version).expect("the oracle decodes the refusal");
            assert!(buf.is_empty(), "{key} v{version}: {} bytes left undecoded", buf.len());
            decoded
        }
        Refusal::Silent => panic!("{key} v{version}: no response"),
    }
}

// ---------------------------------------------------------------------------
// The version table.

fn check_spec<Req: Message + HeaderVersion, Resp: Message + HeaderVersion>(key: ApiKey) {
    let s = spec(key).expect("listed");
    assert!(s.min >= Req::VERSIONS.min && s.min >= Resp::VERSIONS.min, "{key}: min {}", s.min);
    assert!(s.max <= Req::VERSIONS.max && s.max <= Resp::VERSIONS.max, "{key}: max {}", s.max);
    assert!(s.max >= Req::VERSIONS.max.min(Resp::VERSIONS.max), "{key}: the oracle knows newer versions");
    for v in s.min..=s.max {
        assert_eq!(s.flexible(v), Req::header_version(v) == 2, "{key} v{v}: request header");
        assert_eq!(s.flexible(v), Resp::header_version(v) == 1, "{key} v{v}: response header");
    }
}

#[test]
fn the_version_table_matches_the_oracle() {
    check_spec::<ProduceRequest, ProduceResponse>(ApiKey::PRODUCE);
    check_spec::<FetchRequest, FetchResponse>(ApiKey::FETCH);
    check_spec::<OffsetCommitRequest, OffsetCommitResponse>(ApiKey::OFFSET_COMMIT);
    check_spec::<CreateTopicsRequest, CreateTopicsResponse>(ApiKey::CREATE_TOPICS);
    check_spec::<DeleteTopicsRequest, DeleteTopicsResponse>(ApiKey::DELETE_TOPICS);
    check_spec::<DeleteRecordsRequest, DeleteRecordsResponse>(ApiKey::DELETE_RECORDS);
    check_spec::<InitProducerIdRequest, InitProducerIdResponse>(ApiKey::INIT_PRODUCER_ID);
    check_spec::<CreateAclsRequest, CreateAclsResponse>(ApiKey::CREATE_ACLS);
    check_spec::<DeleteAclsRequest, DeleteAclsResponse>(ApiKey::DELETE_ACLS);
    check_spec::<AlterConfigsRequest, AlterConfigsResponse>(ApiKey::ALTER_CONFIGS);
    check_spec::<CreatePartitionsRequest, CreatePartitionsResponse>(ApiKey::CREATE_PARTITIONS);
    check_spec::<DeleteGroupsRequest, DeleteGroupsResponse>(ApiKey::DELETE_GROUPS);
    check_spec::<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(
        ApiKey::INCREMENTAL_ALTER_CONFIGS,
    );
    check_spec::<AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse>(
        ApiKey::ALTER_PARTITION_REASSIGNMENTS,
    );
    check_spec::<OffsetDeleteRequest, OffsetDeleteResponse>(ApiKey::OFFSET_DELETE);
    check_spec::<AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse>(
        ApiKey::ALTER_USER_SCRAM_CREDENTIALS,
    );
    assert_eq!(SPECS.len(), 16);
    let keys: Vec<_> = SPECS.iter().map(|s| s.key).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "in key order");
}

#[test]
fn other_apis_and_versions_are_not_answered() {
    assert_eq!(refuse(ApiKey::METADATA, 12, &[]), Err(RefusalError::NoAnswer(ApiKey::METADATA)));
    assert_eq!(
        refuse(ApiKey::DELETE_TOPICS, 0, &[]),
        Err(RefusalError::Version { api: ApiKey::DELETE_TOPICS, version: 0 })
    );
    assert_eq!(
        refuse(ApiKey::DELETE_TOPICS, 7, &[]),
        Err(RefusalError::Version { api: ApiKey::DELETE_TOPICS, version: 7 })
    );
}

#[test]
fn truncated_requests_are_malformed_not_answered() {
    let mut request = DeleteTopicsRequest::default();
    request.topic_names = vec![TopicName(StrBytes::from_static_str("orders"))];
    request.timeout_ms = 30_000;
    let mut body = BytesMut::new();
    request.encode(&mut body, 4).expect("encode");
    // Compact array count, the name, then the timeout and the tagged fields.
    let names_end = body.len() - 5;
    for cut in 0..names_end {
        let error = refuse(ApiKey::DELETE_TOPICS, 4, &body[..cut]).expect_err("truncated");
        assert!(matches!(error, RefusalError::Malformed { version: 4, .. }), "{error}");
    }
    // The fields after the topics are not needed to answer.
    let whole = refuse(ApiKey::DELETE_TOPICS, 4, &body).expect("answered");
    assert_eq!(refuse(ApiKey::DELETE_TOPICS, 4, &body[..names_end]), Ok(whole));
}

// ---------------------------------------------------------------------------
// Produce v3–13 and Fetch v4–18.

fn produce(v: i16) -> impl Strategy<Value = ProduceRequest> {
    let partition = (any::<i32>(), option::of(vec(any::<u8>(), 0..40))).prop_map(|(index, records)| {
        let mut p = produce_request::PartitionProduceData::default();
        p.index = index;
        p.records = records.map(Bytes::from);
        p
    });
    let topic = (topic_name(), uuid(), vec(partition, 0..4)).prop_map(move |(name, id, partitions)| {
        let mut t = produce_request::TopicProduceData::default();
        if v >= 13 {
            t.topic_id = id;
        } else {
            t.name = name;
        }
        t.partition_data = partitions;
        t
    });
    (option::of(name()), prop_oneof![Just(-1i16), Just(1i16)], vec(topic, 0..4)).prop_map(
        |(transactional_id, acks, topics)| {
            let mut r = ProduceRequest::default();
            r.transactional_id = transactional_id.map(TransactionalId);
            r.acks = acks;
            r.timeout_ms = 30_000;
            r.topic_data = topics;
            r
        },
    )
}

fn expected_produce(v: i16, request: &ProduceRequest) -> ProduceResponse {
    let error = if request.transactional_id.is_some() { TRANSACTIONAL_ID } else { TOPIC };
    let mut r = ProduceResponse::default();
    r.responses = request
        .topic_data
        .iter()
        .map(|t| {
            let mut out = produce_response::TopicProduceResponse::default();
            out.name = if v >= 13 { TopicName::default() } else { t.name.clone() };
            out.topic_id = t.topic_id;
            out.partition_responses = t
                .partition_data
                .iter()
                .map(|p| {
                    let mut out = produce_response::PartitionProduceResponse::default();
                    out.index = p.index;
                    out.error_code = error;
                    out.base_offset = -1;
                    out.log_append_time_ms = -1;
                    out.log_start_offset = -1;
                    out.error_message = None;
                    out
                })
                .collect();
            out
        })
        .collect();
    r
}

proptest! {
    #[test]
    fn produce_matches_oracle((v, request) in versioned(3..=13, produce)) {
        let response: ProduceResponse = refused(ApiKey::PRODUCE, v, &request);
        prop_assert_eq!(response, expected_produce(v, &request));
    }

    #[test]
    fn produce_with_acks_0_is_not_answered((v, mut request) in versioned(3..=13, produce)) {
        request.acks = 0;
        let mut body = BytesMut::new();
        request.encode(&mut body, v).expect("encode");
        prop_assert_eq!(refuse(ApiKey::PRODUCE, v, &body), Ok(Refusal::Silent));
    }
}

fn fetch(v: i16) -> impl Strategy<Value = FetchRequest> {
    let partition = (any::<i32>(), any::<i32>(), any::<i64>(), any::<i32>(), any::<i64>(), any::<i32>())
        .prop_map(move |(index, leader_epoch, offset, last_epoch, log_start, max_bytes)| {
            let mut p = fetch_request::FetchPartition::default();
            p.partition = index;
            if v >= 9 {
                p.current_leader_epoch = leader_epoch;
            }
            p.fetch_offset = offset;
            if v >= 12 {
                p.last_fetched_epoch = last_epoch;
            }
            if v >= 5 {
                p.log_start_offset = log_start;
            }
            p.partition_max_bytes = max_bytes;
            p
        });
    let topic = (topic_name(), uuid(), vec(partition, 0..4)).prop_map(move |(name, id, partitions)| {
        let mut t = fetch_request::FetchTopic::default();
        if v >= 13 {
            t.topic_id = id;
        } else {
            t.topic = name;
        }
        t.partitions = partitions;
        t
    });
    let forgotten =
        (topic_name(), uuid(), vec(any::<i32>(), 0..3)).prop_map(move |(name, id, partitions)| {
            let mut f = fetch_request::ForgottenTopic::default();
            if v >= 13 {
                f.topic_id = id;
            } else {
                f.topic = name;
            }
            f.partitions = partitions;
            f
        });
    (vec(topic, 0..4), vec(forgotten, 0..2), any::<i32>(), any::<i32>(), name()).prop_map(
        move |(topics, forgotten, session_id, epoch, rack)| {
            let mut r = FetchRequest::default();
            r.replica_id = BrokerId(-1);
            r.max_wait_ms = 500;
            r.min_bytes = 1;
            r.max_bytes = 52_428_800;
            r.topics = topics;
            if v >= 7 {
                r.session_id = session_id;
                r.session_epoch = epoch;
                r.forgotten_topics_data = forgotten;
            }
            if v >= 11 {
                r.rack_id = rack;
            }
            r
        },
    )
}

fn expected_fetch(v: i16, request: &FetchRequest) -> FetchResponse {
    let mut r = FetchResponse::default();
    r.responses = request
        .topics
        .iter()
        .map(|t| {
            let mut out = fetch_response::FetchableTopicResponse::default();
            out.topic = if v >= 13 { TopicName::default() } else { t.topic.clone() };
            out.topic_id = t.topic_id;
            out.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut out = fetch_response::PartitionData::default();
                    out.partition_index = p.partition;
                    out.error_code = TOPIC;
                    out.high_watermark = -1;
                    out.last_stable_offset = -1;
                    out.log_start_offset = -1;
                    out.aborted_transactions = Some(Vec::new());
                    out.preferred_read_replica = BrokerId(-1);
                    out.records = Some(Bytes::new());
                    out
                })
                .collect();
            out
        })
        .collect();
    r
}

proptest! {
    #[test]
    fn fetch_matches_oracle((v, request) in versioned(4..=18, fetch)) {
        let response: FetchResponse = refused(ApiKey::FETCH, v, &request);
        prop_assert_eq!(response, expected_fetch(v, &request));
    }
}

// ---------------------------------------------------------------------------
// InitProducerId v0–5.

fn init_producer_id(v: i16) -> impl Strategy<Value = InitProducerIdRequest> {
    (option::of(name()), any::<i32>(), any::<i64>(), any::<i16>()).prop_map(
        move |(txn, timeout, id, epoch)| {
            let mut r = InitProducerIdRequest::default();
            r.transactional_id = txn.map(TransactionalId);
            r.transaction_timeout_ms = timeout;
            if v >= 3 {
                r.producer_id = id.into();
                r.producer_epoch = epoch;
            }
            r
        },
    )
}

proptest! {
    #[test]
    fn init_producer_id_matches_oracle((v, request) in versioned(0..=5, init_producer_id)) {
        let response: InitProducerIdResponse = refused(ApiKey::INIT_PRODUCER_ID, v, &request);
        let mut expected = InitProducerIdResponse::default();
        expected.error_code = if request.transactional_id.is_some() { TRANSACTIONAL_ID } else { CLUSTER };
        expected.producer_id = (-1).into();
        expected.producer_epoch = -1;
        prop_assert_eq!(response, expected);
    }
}

// ---------------------------------------------------------------------------
// Topics: CreateTopics v2–7, DeleteTopics v1–6, DeleteRecords v0–2,
// CreatePartitions v0–3.

fn create_topics(_v: i16) -> impl Strategy<Value = CreateTopicsRequest> {
    let assignment = (any::<i32>(), broker_ids()).prop_map(|(index, ids)| {
        let mut a = create_topics_request::CreatableReplicaAssignment::default();
        a.partition_index = index;
        a.broker_ids = ids;
        a
    });
    let config = (name(), option::of(name())).prop_map(|(name, value)| {
        let mut c = create_topics_request::CreatableTopicConfig::default();
        c.name = name;
        c.value = value;
        c
    });
    let topic = (topic_name(), any::<i32>(), any::<i16>(), vec(assignment, 0..3), vec(config, 0..3))
        .prop_map(|(name, partitions, rf, assignments, configs)| {
            let mut t = create_topics_request::CreatableTopic::default();
            t.name = name;
            t.num_partitions = partitions;
            t.replication_factor = rf;
            t.assignments = assignments;
            t.configs = configs;
            t
        });
    (vec(topic, 0..4), any::<bool>()).prop_map(|(topics, validate_only)| {
        let mut r = CreateTopicsRequest::default();
        r.topics = topics;
        r.timeout_ms = 60_000;
        r.validate_only = validate_only;
        r
    })
}

fn delete_topics(v: i16) -> impl Strategy<Value = DeleteTopicsRequest> {
    let state = (option::of(topic_name()), uuid()).prop_map(|(name, id)| {
        let mut s = delete_topics_request::DeleteTopicState::default();
        s.name = name;
        s.topic_id = id;
        s
    });
    (vec(state, 0..4), vec(topic_name(), 0..4)).prop_map(move |(states, names)| {
        let mut r = DeleteTopicsRequest::default();
        if v >= 6 {
            r.topics = states;
        } else {
            r.topic_names = names;
        }
        r.timeout_ms = 30_000;
        r
    })
}

fn delete_records(_v: i16) -> impl Strategy<Value = DeleteRecordsRequest> {
    let partition = (any::<i32>(), any::<i64>()).prop_map(|(index, offset)| {
        let mut p = delete_records_request::DeleteRecordsPartition::default();
        p.partition_index = index;
        p.offset = offset;
        p
    });
    let topic = (topic_name(), vec(partition, 0..4)).prop_map(|(name, partitions)| {
        let mut t = delete_records_request::DeleteRecordsTopic::default();
        t.name = name;
        t.partitions = partitions;
        t
    });
    vec(topic, 0..4).prop_map(|topics| {
        let mut r = DeleteRecordsRequest::default();
        r.topics = topics;
        r.timeout_ms = 30_000;
        r
    })
}

fn create_partitions(_v: i16) -> impl Strategy<Value = CreatePartitionsRequest> {
    let assignment = broker_ids().prop_map(|ids| {
        let mut a = create_partitions_request::CreatePartitionsAssignment::default();
        a.broker_ids = ids;
        a
    });
    let topic = (topic_name(), any::<i32>(), option::of(vec(assignment, 0..3))).prop_map(
        |(name, count, assignments)| {
            let mut t = create_partitions_request::CreatePartitionsTopic::default();
            t.name = name;
            t.count = count;
            t.assignments = assignments;
            t
        },
    );
    (vec(topic, 0..4), any::<bool>()).prop_map(|(topics, validate_only)| {
        let mut r = CreatePartitionsRequest::default();
        r.topics = topics;
        r.timeout_ms = 30_000;
        r.validate_only = validate_only;
        r
    })
}

proptest! {
    #[test]
    fn create_topics_matches_oracle((v, request) in versioned(2..=7, create_topics)) {
        let response: CreateTopicsResponse = refused(ApiKey::CREATE_TOPICS, v, &request);
        let mut expected = CreateTopicsResponse::default();
        expected.topics = request.topics.iter().map(|t| {
            let mut out = create_topics_response::CreatableTopicResult::default();
            out.name = t.name.clone();
            out.error_code = TOPIC;
            out.error_message = text("Authorization failed.");
            if v >= 5 {
                out.topic_config_error_code = TOPIC;
            }
            out
        }).collect();
        prop_assert_eq!(response, expected);
    }

    #[test]
    fn delete_topics_matches_oracle((v, request) in versioned(1..=6, delete_topics)) {
        let response: DeleteTopicsResponse = refused(ApiKey::DELETE_TOPICS, v, &request);
        let message = if v >= 5 { text("Topic authorization failed.") } else { None };
        let result = |name: Option<TopicName>, id| {
            let mut out = delete_topics_response::DeletableTopicResult::default();
            out.name = name;
            out.topic_id = id;
            out.error_code = TOPIC;
            out.error_message = message.clone();
            out
        };
        let mut expected = DeleteTopicsResponse::default();
        expected.responses = if v >= 6 {
            request.topics.iter().map(|t| result(t.name.clone(), t.topic_id)).collect()
        } else {
            request.topic_names.iter().map(|n| result(Some(n.clone()), Default::default())).collect()
        };
        prop_assert_eq!(response, expected);
    }

    #[test]
    fn delete_records_matches_oracle((v, request) in versioned(0..=2, delete_records)) {
        let response: DeleteRecordsResponse = refused(ApiKey::DELETE_RECORDS, v, &request);
        let mut expected = DeleteRecordsResponse::default();
        expected.topics = request.topics.iter().map(|t| {
            let mut out = delete_records_response::DeleteRecordsTopicResult::default();
            out.name = t.name.clone();
            out.partitions = t.partitions.iter().map(|p| {
                let mut out = delete_records_response::DeleteRecordsPartitionResult::default();
                out.partition_index = p.partition_index;
                out.low_watermark = -1;
                out.error_code = TOPIC;
                out
            }).collect();
            out
        }).collect();
        prop_assert_eq!(response, expected);
    }

    #[test]
    fn create_partitions_matches_oracle((v, request) in versioned(0..=3, create_partitions)) {
        let response: CreatePartitionsResponse = refused(ApiKey::CREATE_PARTITIONS, v, &request);
        let mut expected = CreatePartitionsResponse::default();
        expected.results = request.topics.iter().map(|t| {
            let mut out = create_partitions_response::CreatePartitionsTopicResult::default();
            out.name = t.name.clone();
            out.error_code = TOPIC;
            out.error_message = text("Topic authorization failed.");
            out
        }).collect();
        prop_assert_eq!(response, expected);
    }
}

// ---------------------------------------------------------------------------
// Configs: AlterConfigs v0–2, IncrementalAlterConfigs v0–1.

/// Resource types: topic, broker, broker logger, client metrics, group, and unknown ones.
fn resource_type() -> impl Strategy<Value = i8> {
    prop_oneof![Just(2i8), Just(4i8), Just(8i8), Just(16i8), Just(32i8), any::<i8>()]
}

fn expected_config_error(resource_type: i8) -> (i16, Option<StrBytes>) {
    match resource_type {
        2 => (TOPIC, None),
        32 => (GROUP, None),
        4 | 8 | 16 => (CLUSTER, None),
        _ => (ErrorCode::INVALID_REQUEST.0, text("Unknown resource type.")),
    }
}

fn alter_configs(_v: i16) -> impl Strategy<Value = AlterConfigsRequest> {
    let config = (name(), option::of(name())).prop_map(|(name, value)| {
        let mut c = alter_configs_request::AlterableConfig::default();
        c.name = name;
        c.value = value;
        c
    });
    let resource = (resource_type(), name(), vec(config, 0..3)).prop_map(|(kind, name, configs)| {
        let mut r = alter_configs_request::AlterConfigsResource::default();
        r.resource_type = kind;
        r.resource_name = name;
        r.configs = configs;
        r
    });
    (vec(resource, 0..4), any::<bool>()).prop_map(|(resources, validate_only)| {
        let mut r = AlterConfigsRequest::default();
        r.resources = resources;
        r.validate_only = validate_only;
        r
    })
}

fn incremental_alter_configs(_v: i16) -> impl Strategy<Value = IncrementalAlterConfigsRequest> {
    let config = (name(), any::<i8>(), option::of(name())).prop_map(|(name, op, value)| {
        let mut c = incremental_alter_configs_request::AlterableConfig::default();
        c.name = name;
        c.config_operation = op;
        c.value = value;
        c
    });
    let resource = (resource_type(), name(), vec(config, 0..3)).prop_map(|(kind, name, configs)| {
        let mut r = incremental_alter_configs_request::AlterConfigsResource::default();
        r.resource_type = kind;
        r.resource_name = name;
        r.configs = configs;
        r
    });
    (vec(resource, 0..4), any::<bool>()).prop_map(|(resources, validate_only)| {
        let mut r = IncrementalAlterConfigsRequest::default();
        r.resources = resources;
        r.validate_only = validate_only;
        r
    })
}

proptest! {
    #[test]
    fn alter_configs_matches_oracle((v, request) in versioned(0..=2, alter_configs)) {
        let response: AlterConfigsResponse = refused(ApiKey::ALTER_CONFIGS, v, &request);
        let mut expected = AlterConfigsResponse::default();
        expected.responses = request.resources.iter().map(|r| {
            let mut out = alter_configs_response::AlterConfigsResourceResponse::default();
            (out.error_code, out.error_message) = expected_config_error(r.resource_type);
            out.resource_type = r.resource_type;
            out.resource_name = r.resource_name.clone();
            out
        }).collect();
        prop_assert_eq!(response, expected);
    }

    #[test]
    fn incremental_alter_configs_matches_oracle((v, request) in versioned(0..=1, incremental_alter_configs)) {
        let response: IncrementalAlterConfigsResponse =
            refused(ApiKey::INCREMENTAL_ALTER_CONFIGS, v, &request);
        let mut expected = IncrementalAlterConfigsResponse::default();
        expected.responses = request.resources.iter().map(|r| {
            let mut out = incremental_alter_configs_response::AlterConfigsResourceResponse::default();
            (out.error_code, out.error_message) = expected_config_error(r.resource_type);
            out.resource_type = r.resource_type;
            out.resource_name = r.resource_name.clone();
            out
        }).collect();
        prop_assert_eq!(response, expected);
    }
}

// ---------------------------------------------------------------------------
// Security: CreateAcls v1–3, DeleteAcls v1–3, AlterUserScramCredentials v0.

fn create_acls(_v: i16) -> impl Strategy<Value = CreateAclsRequest> {
    let creation =
        (any::<[i8; 4]>(), name(), name(), name()).prop_map(|([kind, pattern, op, perm], res, who, host)| {
            let mut c = create_acls_request::AclCreation::default();
            c.resource_type = kind;
            c.resource_name = res;
            c.resource_pattern_type = pattern;
            c.principal = who;
            c.host = host;
            c.operation = op;
            c.permission_type = perm;
            c
        });
    vec(creation, 0..4).prop_map(|creations| {
        let mut r = CreateAclsRequest::default();
        r.creations = creations;
        r
    })
}

fn delete_acls(_v: i16) -> impl Strategy<Value = DeleteAclsRequest> {
    let filter = (any::<[i8; 4]>(), option::of(name()), option::of(name()), option::of(name())).prop_map(
        |([kind, pattern, op, perm], res, who, host)| {
            let mut f = delete_acls_request::DeleteAclsFilter::default();
            f.resource_type_filter = kind;
            f.resource_name_filter = res;
            f.pattern_type_filter = pattern;
            f.principal_filter = who;
            f.host_filter = host;
            f.operation = op;
            f.permission_type = perm;
            f
        },
    );
    vec(filter, 0..4).prop_map(|filters| {
        let mut r = DeleteAclsRequest::default();
        r.filters = filters;
        r
    })
}

/// User names from a small set, so the same user appears more than once.
fn user() -> impl Strategy<Value = StrBytes> {
    prop_oneof![Just("alice"), Just("bob"), Just("carol"), Just("")].prop_map(StrBytes::from_static_str)
}

fn alter_user_scram_credentials(_v: i16) -> impl Strategy<Value = AlterUserScramCredentialsRequest> {
    let deletion = (user(), any::<i8>()).prop_map(|(name, mechanism)| {
        let mut d = alter_user_scram_credentials_request::ScramCredentialDeletion::default();
        d.name = name;
        d.mechanism = mechanism;
        d
    });
    let upsertion = (user(), any::<i8>(), any::<i32>(), vec(any::<u8>(), 0..8), vec(any::<u8>(), 0..8))
        .prop_map(|(name, mechanism, iterations, salt, salted)| {
            let mut u = alter_user_scram_credentials_request::ScramCredentialUpsertion::default();
            u.name = name;
            u.mechanism = mechanism;
            u.iterations = iterations;
            u.salt = Bytes::from(salt);
            u.salted_password = Bytes::from(salted);
            u
        });
    (vec(deletion, 0..4), vec(upsertion, 0..4)).prop_map(|(deletions, upsertions)| {
        let mut r = AlterUserScramCredentialsRequest::default();
        r.deletions = deletions;
        r.upsertions = upsertions;
        r
    })
}

proptest! {
    #[test]
    fn create_acls_matches_oracle((v, request) in versioned(1..=3, create_acls)) {
        let response: CreateAclsResponse = refused(ApiKey::CREATE_ACLS, v, &request);
        let mut expected = CreateAclsResponse::default();
        expected.results = request.creations.iter().map(|_| {
            let mut out = create_acls_response::AclCreationResult::default();
            out.error_code = CLUSTER;
            out.error_message = text("Cluster authorization failed.");
            out
        }).collect();
        prop_assert_eq!(response, expected);
    }

    #[test]
    fn delete_acls_matches_oracle((v, request) in versioned(1..=3, delete_acls)) {
        let response: DeleteAclsResponse = refused(ApiKey::DELETE_ACLS, v, &request);
        let mut expected = DeleteAclsResponse::default();
        expected.filter_results = request.filters.iter().map(|_| {
            let mut out = delete_acls_response::DeleteAclsFilterResult::default();
            out.error_code = CLUSTER;
            out.error_message = text("Cluster authorization failed.");
            out
        }).collect();
        prop_assert_eq!(response, expected);
    }

    #[test]
    fn alter_user_scram_credentials_matches_oracle((v, request) in versioned(0..=0, alter_user_scram_credentials)) {
        let response: AlterUserScramCredentialsResponse =
            refused(ApiKey::ALTER_USER_SCRAM_CREDENTIALS, v, &request);
        let mut seen = HashSet::new();
        let users = request.deletions.iter().map(|d| d.name.clone())
            .chain(request.upsertions.iter().map(|u| u.name.clone()))
            .filter(|u| seen.insert(u.clone()));
        let mut expected = AlterUserScramCredentialsResponse::default();
        expected.results = users.map(|user| {
            let mut out = alter_user_scram_credentials_response::AlterUserScramCredentialsResult::default();
            out.user = user;
            out.error_code = CLUSTER;
            out.error_message = text("Cluster authorization failed.");
            out
        }).collect();
        prop_assert_eq!(response, expected);
    }
}

// ---------------------------------------------------------------------------
// Groups: DeleteGroups v0–2, OffsetDelete v0, OffsetCommit v2–9.

fn offset_commit(v: i16) -> impl Strategy<Value = OffsetCommitRequest> {
    let partition = (any::<i32>(), any::<i64>(), any::<i32>(), option::of(name())).prop_map(
        move |(index, offset, epoch, metadata)| {
            let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
            p.partition_index = index;
            p.committed_offset = offset;
            if v >= 6 {
                p.committed_leader_epoch = epoch;
            }
            p.committed_metadata = metadata;
            p
        },
    );
    let topic = (topic_name(), vec(partition, 0..4)).prop_map(|(name, partitions)| {
        let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
        t.name = name;
        t.partitions = partitions;
        t
    });
    (name(), any::<i32>(), name(), option::of(name()), any::<i64>(), vec(topic, 0..4)).prop_map(
        move |(group, generation, member, instance, retention, topics)| {
            let mut r = OffsetCommitRequest::default();
            r.group_id = GroupId(group);
            r.generation_id_or_member_epoch = generation;
            r.member_id = member;
            if v >= 7 {
                r.group_instance_id = instance;
            }
            if v <= 4 {
                r.retention_time_ms = retention;
            }
            r.topics = topics;
            r
        },
    )
}

fn offset_delete(_v: i16) -> impl Strategy<Value = OffsetDeleteRequest> {
    let partition = any::<i32>().prop_map(|index| {
        let mut p = offset_delete_request::OffsetDeleteRequestPartition::default();
        p.partition_index = index;
        p
    });
    let topic = (topic_name(), vec(partition, 0..4)).prop_map(|(name, partitions)| {
        let mut t = offset_delete_request::OffsetDeleteRequestTopic::default();
        t.name = name;
        t.partitions = partitions;
        t
    });
    (name(), vec(topic, 0..4)).prop_map(|(group, topics)| {
        let mut r = OffsetDeleteRequest::default();
        r.group_id = GroupId(group);
        r.topics = topics;
        r
    })
}

proptest! {
    #[test]
    fn delete_groups_matches_oracle((v, groups) in versioned(0..=2, |_| vec(name(), 0..4))) {
        let mut request = DeleteGroupsRequest::default();
        request.groups_names = groups.into_iter().map(GroupId).collect();
        let response: DeleteGroupsResponse = refused(ApiKey::DELETE_GROUPS, v, &request);
        let mut expected = DeleteGroupsResponse::default();
        expected.results = request.groups_names.iter().map(|g| {
            let mut out = delete_groups_response::DeletableGroupResult::default();
            out.group_id = g.clone();
            out.error_code = GROUP;
            out
        }).collect();
        prop_assert_eq!(response, expected);
    }

    #[test]
    fn offset_delete_matches_oracle((v, request) in versioned(0..=0, offset_delete)) {
        let response: OffsetDeleteResponse = refused(ApiKey::OFFSET_DELETE, v, &request);
        let mut expected = OffsetDeleteResponse::default();
        expected.error_code = GROUP;
        prop_assert_eq!(response, expected);
    }

    #[test]
    fn offset_commit_matches_oracle((v, request) in versioned(2..=9, offset_commit)) {
        let response: OffsetCommitResponse = refused(ApiKey::OFFSET_COMMIT, v, &request);
        let mut expected = OffsetCommitResponse::default();
        expected.topics = request.topics.iter().map(|t| {
            let mut out = offset_commit_response::OffsetCommitResponseTopic::default();
            out.name = t.name.clone();
            out.partitions = t.partitions.iter().map(|p| {
                let mut out = offset_commit_response::OffsetCommitResponsePartition::default();
                out.partition_index = p.partition_index;
                out.error_code = GROUP;
                out
            }).collect();
            out
        }).collect();
        prop_assert_eq!(response, expected);
    }
}

// ---------------------------------------------------------------------------
// AlterPartitionReassignments v0–1.

fn alter_partition_reassignments(_v: i16) -> impl Strategy<Value = AlterPartitionReassignmentsRequest> {
    let partition = (any::<i32>(), option::of(broker_ids())).prop_map(|(index, replicas)| {
        let mut p = alter_partition_reassignments_request::ReassignablePartition::default();
        p.partition_index = index;
        p.replicas = replicas;
        p
    });
    let topic = (topic_name(), vec(partition, 0..4)).prop_map(|(name, partitions)| {
        let mut t = alter_partition_reassignments_request::ReassignableTopic::default();
        t.name = name;
        t.partitions = partitions;
        t
    });
    (vec(topic, 0..4), any::<bool>()).prop_map(|(topics, allow)| {
        let mut r = AlterPartitionReassignmentsRequest::default();
        r.timeout_ms = 60_000;
        r.allow_replication_factor_change = allow;
        r.topics = topics;
        r
    })
}

fn alter_partition_reassignments_at(v: i16) -> impl Strategy<Value = AlterPartitionReassignmentsRequest> {
    alter_partition_reassignments(v).prop_map(move |mut r| {
        if v == 0 {
            r.allow_replication_factor_change = true;
        }
        r
    })
}

proptest! {
    #[test]
    fn alter_partition_reassignments_matches_oracle((v, request) in versioned(0..=1, alter_partition_reassignments_at)) {
        let response: AlterPartitionReassignmentsResponse =
            refused(ApiKey::ALTER_PARTITION_REASSIGNMENTS, v, &request);
        let message = text("Cluster authorization failed.");
        let mut expected = AlterPartitionReassignmentsResponse::default();
        expected.allow_replication_factor_change = if v >= 1 { request.allow_replication_factor_change } else { true };
        expected.error_code = CLUSTER;
        expected.error_message = message.clone();
        expected.responses = request.topics.iter().map(|t| {
            let mut out = alter_partition_reassignments_response::ReassignableTopicResponse::default();
            out.name = t.name.clone();
            out.partitions = t.partitions.iter().map(|p| {
                let mut out = alter_partition_reassignments_response::ReassignablePartitionResponse::default();
                out.partition_index = p.partition_index;
                out.error_code = CLUSTER;
                out.error_message = message.clone();
                out
            }).collect();
            out
        }).collect();
        prop_assert_eq!(response, expected);
    }
}

#[test]
fn an_answer_beyond_the_size_limit_is_not_built() {
    // DeleteGroups v2 naming 2 million one-letter groups: 4 MB of request,
    // 10 MB of answer.
    let n = 2_000_000u32;
    let mut body = Vec::with_capacity(4 * n as usize + 8);
    crate::wire::put_uvarint(&mut body, n + 1);
    for _ in 0..n {
        body.extend_from_slice(&[2, b'g']);
    }
    body.push(0);
    assert_eq!(
        refuse(ApiKey::DELETE_GROUPS, 2, &body),
        Err(RefusalError::TooLarge { api: ApiKey::DELETE_GROUPS, version: 2 })
    );
    let text = RefusalError::TooLarge { api: ApiKey::DELETE_GROUPS, version: 2 }.to_string();
    assert!(text.contains("would exceed 4194304 bytes"), "{text}");
}
