//! What the oracle tests share: field strategies, the Fetch response
//! strategy for any version, and encoding/decoding through the independent
//! `kafka-protocol` implementation.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{
    self, AbortedTransaction, FetchResponse, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;

/// Encodes `msg` at `version` with the oracle.
pub(super) fn encode<T: Encodable>(msg: &T, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    msg.encode(&mut buf, version).expect("oracle encodes the generated message");
    buf.freeze()
}

/// Decodes `bytes` at `version` with the oracle, which must consume them all.
pub(super) fn decode<T: Decodable>(bytes: &[u8], version: i16) -> T {
    let mut buf = Bytes::copy_from_slice(bytes);
    let msg = T::decode(&mut buf, version).expect("oracle decodes the body");
    assert!(buf.is_empty(), "oracle left {} bytes undecoded", buf.len());
    msg
}

/// Host-name-like text of up to `max` characters.
pub(super) fn text(max: usize) -> impl Strategy<Value = StrBytes> {
    proptest::string::string_regex(&format!("[a-z0-9.-]{{0,{max}}}"))
        .expect("regex")
        .prop_map(StrBytes::from_string)
}

pub(super) fn opt_text(max: usize) -> impl Strategy<Value = Option<StrBytes>> {
    option::of(text(max))
}

/// Unknown tagged fields (flexible versions only), with tags from `from`.
pub(super) fn unknown_tags(flexible: bool, from: i32) -> BoxedStrategy<BTreeMap<i32, Bytes>> {
    if flexible {
        btree_map(from..from + 6, vec(any::<u8>(), 0..6).prop_map(Bytes::from), 0..3).boxed()
    } else {
        Just(BTreeMap::new()).boxed()
    }
}

pub(super) fn node_id() -> impl Strategy<Value = i32> {
    0i32..40
}

/// A topic id from 128 random bits (the oracle's `Uuid` parses from text).
pub(super) fn set_uuid<T: std::str::FromStr>(bits: u128) -> T
where
    T::Err: std::fmt::Debug,
{
    format!("{bits:032x}").parse().expect("uuid")
}

/// Node endpoints as (id, host, port, rack, tags), shared by Produce and Fetch.
pub(super) type EndpointParts = (i32, StrBytes, i32, Option<StrBytes>, BTreeMap<i32, Bytes>);

/// Builds a `Vec` of `$endpoint` (Produce's or Fetch's `NodeEndpoint`: two
/// distinct oracle types with the same fields) from [`EndpointParts`].
macro_rules! node_endpoints {
    ($endpoint:ty, $parts:expr) => {
        $parts
            .into_iter()
            .map(|(id, host, port, rack, tags)| {
                let mut e = <$endpoint>::default();
                e.node_id = id.into();
                e.host = host;
                e.port = port;
                e.rack = rack;
                e.unknown_tagged_fields = tags;
                e
            })
            .collect()
    };
}
pub(crate) use node_endpoints;

/// One to four endpoints when `present`, else none.
pub(super) fn endpoints(present: bool) -> BoxedStrategy<Vec<EndpointParts>> {
    if present {
        vec((node_id(), text(20), any::<i32>(), opt_text(8), unknown_tags(true, 0)), 1..5).boxed()
    } else {
        Just(Vec::new()).boxed()
    }
}

/// A record set: mostly small, sometimes a few kilobytes (so streamed bodies
/// span many reads), or null.
fn records() -> impl Strategy<Value = Option<Bytes>> {
    option::of(
        prop_oneof![4 => vec(any::<u8>(), 0..300), 1 => vec(any::<u8>(), 0..3000)].prop_map(Bytes::from),
    )
}

/// A Fetch response with every field `version` has (v4+).
pub(super) fn fetch(version: i16) -> impl Strategy<Value = FetchResponse> {
    let flexible = version >= 12;
    let aborted =
        (any::<i64>(), any::<i64>(), unknown_tags(flexible, 0)).prop_map(|(producer, first, tags)| {
            let mut a = AbortedTransaction::default();
            a.producer_id = producer.into();
            a.first_offset = first;
            a.unknown_tagged_fields = tags;
            a
        });
    let partition = (
        (any::<i32>(), any::<i16>(), any::<i64>(), any::<i64>(), any::<i64>()),
        (option::of(vec(aborted, 0..3)), -1i32..40, records()),
        (
            option::of((any::<i32>(), any::<i64>())),
            option::of((node_id(), any::<i32>())),
            option::of((any::<i32>(), any::<i64>())),
            unknown_tags(flexible, 3),
        ),
    )
        .prop_map(
            move |(
                (index, err, hw, lso, start),
                (aborted, replica, records),
                (diverging, leader, snapshot, tags),
            )| {
                let mut p = PartitionData::default();
                p.partition_index = index;
                p.error_code = err;
                p.high_watermark = hw;
                p.last_stable_offset = lso;
                p.log_start_offset = start;
                p.aborted_transactions = aborted;
                if version >= 11 {
                    p.preferred_read_replica = replica.into();
                }
                p.records = records;
                if flexible {
                    if let Some((epoch, end)) = diverging {
                        p.diverging_epoch =
                            fetch_response::EpochEndOffset::default().with_epoch(epoch).with_end_offset(end);
                    }
                    if let Some((id, epoch)) = leader {
                        p.current_leader = fetch_response::LeaderIdAndEpoch::default()
                            .with_leader_id(id.into())
                            .with_leader_epoch(epoch);
                    }
                    if let Some((epoch, end)) = snapshot {
                        p.snapshot_id =
                            fetch_response::SnapshotId::default().with_epoch(epoch).with_end_offset(end);
                    }
                }
                p.unknown_tagged_fields = tags;
                p
            },
        );
    let topic = (text(12), any::<u128>(), vec(partition, 0..3), unknown_tags(flexible, 0)).prop_map(
        |(name, id, partitions, tags)| {
            let mut t = FetchableTopicResponse::default();
            t.topic = name.into();
            t.topic_id = set_uuid(id);
            t.partitions = partitions;
            t.unknown_tagged_fields = tags;
            t
        },
    );
    (
        (any::<i32>(), any::<i16>(), any::<i32>()),
        vec(topic, 0..3),
        endpoints(version >= 16).prop_union(endpoints(false)),
        unknown_tags(flexible, 1),
    )
        .prop_map(move |((throttle, err, session), responses, endpoints, tags)| {
            let mut m = FetchResponse::default();
            m.throttle_time_ms = throttle;
            if version >= 7 {
                m.error_code = err;
                m.session_id = session;
            }
            m.responses = responses;
            m.node_endpoints = node_endpoints!(fetch_response::NodeEndpoint, endpoints);
            m.unknown_tagged_fields = tags;
            m
        })
}
