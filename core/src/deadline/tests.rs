//! The waits read from requests the independent `kafka-protocol` crate
//! encodes, at every version it knows.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteRecordsRequest, DeleteTopicsRequest, ElectLeadersRequest, FetchRequest, JoinGroupRequest,
    ListPartitionReassignmentsRequest, ProduceRequest, RequestHeader, TopicName, create_partitions_request,
    create_topics_request, delete_records_request, delete_topics_request, elect_leaders_request,
    join_group_request,
};
use kafka_protocol::protocol::{Encodable, HeaderVersion, Message, StrBytes};

use super::*;

/// Header and body of `msg` at `version`, as a client sends them.
fn body<T: Encodable + HeaderVersion>(api_key: i16, version: i16, msg: &T) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(api_key)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("oracle-client")));
    let mut buf = BytesMut::new();
    header.encode(&mut buf, T::header_version(version)).expect("header encodes");
    msg.encode(&mut buf, version).expect("request encodes");
    buf.to_vec()
}

fn versions<T: Message>() -> std::ops::RangeInclusive<i16> {
    T::VERSIONS.min..=T::VERSIONS.max
}

fn topic(name: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(name))
}

fn ms(millis: u64) -> Option<Duration> {
    Some(Duration::from_millis(millis))
}

#[test]
fn produce_timeout() {
    for v in versions::<ProduceRequest>() {
        let msg = ProduceRequest::default().with_acks(-1).with_timeout_ms(31_000);
        assert_eq!(requested_wait(ApiKey::PRODUCE, v, &body(0, v, &msg)), ms(31_000), "v{v}");
    }
}

#[test]
fn fetch_max_wait() {
    for v in versions::<FetchRequest>() {
        let msg = FetchRequest::default().with_max_wait_ms(500).with_min_bytes(1);
        let msg = if v <= 14 { msg.with_replica_id(BrokerId(-1)) } else { msg };
        assert_eq!(requested_wait(ApiKey::FETCH, v, &body(1, v, &msg)), ms(500), "v{v}");
    }
}

#[test]
fn join_group_rebalance_timeout() {
    for v in versions::<JoinGroupRequest>() {
        let protocol = join_group_request::JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(Bytes::from_static(b"meta"));
        let msg = JoinGroupRequest::default()
            .with_group_id(StrBytes::from_static_str("group-1").into())
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(300_000)
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![protocol]);
        let want = if v == 0 { 10_000 } else { 300_000 };
        assert_eq!(requested_wait(ApiKey(11), v, &body(11, v, &msg)), ms(want), "v{v}");
    }
}

#[test]
fn create_topics_timeout_after_the_topic_list() {
    for v in versions::<CreateTopicsRequest>() {
        let assignment = create_topics_request::CreatableReplicaAssignment::default()
            .with_partition_index(0)
            .with_broker_ids(vec![BrokerId(1), BrokerId(2)]);
        let config = create_topics_request::CreatableTopicConfig::default()
            .with_name(StrBytes::from_static_str("cleanup.policy"))
            .with_value(Some(StrBytes::from_static_str("compact")));
        let topic = create_topics_request::CreatableTopic::default()
            .with_name(topic("orders"))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(vec![assignment])
            .with_configs(vec![config]);
        let msg =
            CreateTopicsRequest::default().with_topics(vec![topic.clone(), topic]).with_timeout_ms(60_000);
        assert_eq!(requested_wait(ApiKey(19), v, &body(19, v, &msg)), ms(60_000), "v{v}");
    }
}

#[test]
fn delete_topics_timeout_after_either_topic_list() {
    for v in versions::<DeleteTopicsRequest>() {
        let msg = if v >= 6 {
            let state = delete_topics_request::DeleteTopicState::default().with_name(Some(topic("orders")));
            DeleteTopicsRequest::default().with_topics(vec![state])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![topic("orders"), topic("payments")])
        };
        let msg = msg.with_timeout_ms(45_000);
        assert_eq!(requested_wait(ApiKey(20), v, &body(20, v, &msg)), ms(45_000), "v{v}");
    }
}

#[test]
fn delete_records_create_partitions_elect_leaders() {
    for v in versions::<DeleteRecordsRequest>() {
        let partition = delete_records_request::DeleteRecordsPartition::default().with_offset(5);
        let topic = delete_records_request::DeleteRecordsTopic::default()
            .with_name(topic("orders"))
            .with_partitions(vec![partition]);
        let msg = DeleteRecordsRequest::default().with_topics(vec![topic]).with_timeout_ms(40_000);
        assert_eq!(requested_wait(ApiKey(21), v, &body(21, v, &msg)), ms(40_000), "DeleteRecords v{v}");
    }
    for v in versions::<CreatePartitionsRequest>() {
        let assignment = create_partitions_request::CreatePartitionsAssignment::default()
            .with_broker_ids(vec![BrokerId(1)]);
        let topic = create_partitions_request::CreatePartitionsTopic::default()
            .with_name(topic("orders"))
            .with_count(4)
            .with_assignments(Some(vec![assignment]));
        let msg = CreatePartitionsRequest::default().with_topics(vec![topic]).with_timeout_ms(41_000);
        assert_eq!(requested_wait(ApiKey(37), v, &body(37, v, &msg)), ms(41_000), "CreatePartitions v{v}");
    }
    for v in versions::<ElectLeadersRequest>() {
        let partitions = elect_leaders_request::TopicPartitions::default()
            .with_topic(topic("orders"))
            .with_partitions(vec![0, 1, 2]);
        let msg = ElectLeadersRequest::default()
            .with_topic_partitions(Some(vec![partitions]))
            .with_timeout_ms(42_000);
        assert_eq!(requested_wait(ApiKey(43), v, &body(43, v, &msg)), ms(42_000), "ElectLeaders v{v}");
    }
    for v in versions::<AlterPartitionReassignmentsRequest>() {
        let msg = AlterPartitionReassignmentsRequest::default().with_timeout_ms(43_000);
        assert_eq!(requested_wait(ApiKey(45), v, &body(45, v, &msg)), ms(43_000), "v{v}");
    }
    for v in versions::<ListPartitionReassignmentsRequest>() {
        let msg = ListPartitionReassignmentsRequest::default().with_timeout_ms(44_000);
        assert_eq!(requested_wait(ApiKey(46), v, &body(46, v, &msg)), ms(44_000), "v{v}");
    }
}

#[test]
fn the_limit_is_a_floor_and_the_grace_is_added() {
    let limit = Duration::from_secs(30);
    let fetch = body(1, 12, &FetchRequest::default().with_max_wait_ms(500));
    assert_eq!(wait_for(limit, ApiKey::FETCH, 12, &fetch), limit, "a short long-poll keeps the limit");
    let join = JoinGroupRequest::default().with_rebalance_timeout_ms(300_000);
    assert_eq!(wait_for(limit, ApiKey(11), 5, &body(11, 5, &join)), Duration::from_secs(305));
    let metadata = [0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0];
    assert_eq!(wait_for(limit, ApiKey::METADATA, 12, &metadata), limit, "no wait of its own");
}

#[test]
fn truncated_negative_and_hostile_requests_get_the_default() {
    let produce = body(0, 9, &ProduceRequest::default().with_timeout_ms(31_000));
    for cut in 0..produce.len() - 4 {
        assert_eq!(requested_wait(ApiKey::PRODUCE, 9, &produce[..cut]), None, "cut at {cut}");
    }
    let negative = body(0, 9, &ProduceRequest::default().with_timeout_ms(-1));
    assert_eq!(requested_wait(ApiKey::PRODUCE, 9, &negative), None);
    // CreateTopics v4 claiming 2^31-1 topics in a few bytes: refused without looping.
    let mut hostile = body(19, 4, &CreateTopicsRequest::default());
    let len = hostile.len();
    hostile.truncate(len - 9);
    hostile.extend_from_slice(&i32::MAX.to_be_bytes());
    assert_eq!(requested_wait(ApiKey(19), 4, &hostile), None);
}
