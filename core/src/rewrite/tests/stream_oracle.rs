//! The streaming Fetch rewriter against the `kafka-protocol` oracle.
//!
//! Random Fetch v16–18 responses are fed to [`FetchStream`] the way a session
//! would: in random chunks, forwarded bytes removed from the buffer, the rest
//! kept, new bytes appended (and the next frame's bytes right behind the
//! body). What goes out must have the original length, decode with the
//! oracle, and differ from the input only in `NodeEndpoints` (rewritten, or
//! left out when the rewrite would not fit) and one padding field. Hostile and
//! truncated bodies are refused when the whole-buffer rewriter refuses them
//! (and also when bytes follow the top-level tagged fields), never with a
//! panic, and the walker never holds more than a partial varint before the tail.

use std::borrow::Cow;
use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{self, FetchResponse, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::produce_response::{self, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

use crate::api::ApiKey;
use crate::rewrite::fetch_stream::MAX_TAIL_LEN;
use crate::rewrite::same_size_tail::rewrite_tail_same_size;
use crate::rewrite::{
    AddressMap, Advertised, Body, Broker, FetchStream, Observed, Rewrite, RewriteError, rewrite_response,
};
use crate::wire;

use super::oracle::{self, decode, encode, set_uuid};

// ---------------------------------------------------------------------------
// The address map: node n is "p<n>." padded with 'x' to `host_len`, port
// 20000+n, except the ids it refuses. Host lengths around the generated ones
// make rewritten endpoints shorter, equal and longer.

#[derive(Debug, Clone, Copy)]
struct StreamMap {
    refuse_multiple_of: Option<i32>,
    host_len: usize,
}

impl StreamMap {
    fn refuses(&self, node_id: i32) -> bool {
        self.refuse_multiple_of.is_some_and(|m| node_id.rem_euclid(m) == 0)
    }
    fn host(&self, node_id: i32) -> String {
        let mut host = format!("p{node_id}.");
        while host.len() < self.host_len {
            host.push('x');
        }
        host
    }
    fn port(node_id: i32) -> i32 {
        20000 + node_id
    }
}

impl AddressMap for StreamMap {
    fn advertised(&self, node_id: i32, _host: &str, _port: i32) -> Option<Advertised<'_>> {
        (!self.refuses(node_id))
            .then(|| Advertised { host: Cow::Owned(self.host(node_id)), port: Self::port(node_id) })
    }
}

fn stream_map() -> impl Strategy<Value = StreamMap> {
    (prop_oneof![3 => Just(None), 1 => (2i32..5).prop_map(Some)], 0usize..40)
        .prop_map(|(refuse_multiple_of, host_len)| StreamMap { refuse_multiple_of, host_len })
}

// ---------------------------------------------------------------------------
// Fetch v16–18 generator (the oracle tests' generator, plus snapshot ids and
// larger record sets).

/// A Fetch response of a version with KIP-951 endpoints (v16–18).
fn fetch() -> impl Strategy<Value = (i16, FetchResponse)> {
    (16i16..=18).prop_flat_map(|version| oracle::fetch(version).prop_map(move |m| (version, m)))
}

/// The length of the top-level tagged fields, by the oracle: the same message
/// without topics is 10 fixed bytes, an empty array (1 byte) and the tail.
fn oracle_tail_len(msg: &FetchResponse, version: i16) -> usize {
    let mut bare = msg.clone();
    bare.responses.clear();
    encode(&bare, version).len() - 11
}

// ---------------------------------------------------------------------------
// The session's part: feed chunks, forward what the walker releases, keep the
// rest, and rewrite the tail once it is complete.

/// What streaming one body produced.
struct Streamed {
    forwarded: Vec<u8>,
    tail_at: usize,
    tail: Vec<u8>,
    rewrite: Rewrite,
}

impl Streamed {
    /// The bytes the client receives.
    fn output(&self) -> Vec<u8> {
        let mut out = self.forwarded.clone();
        match &self.rewrite.body {
            Body::Unchanged => out.extend_from_slice(&self.tail),
            Body::Spliced { front, new, back } => {
                out.extend_from_slice(front);
                out.extend_from_slice(new);
                out.extend_from_slice(back);
            }
        }
        out
    }
}

/// Streams `body` (followed by `next_frame`, which must never be consumed)
/// in chunks of the sizes in `chunks`, cycled.
fn stream(
    version: i16,
    body: &[u8],
    next_frame: &[u8],
    chunks: &[usize],
    map: &dyn AddressMap,
) -> Result<Streamed, RewriteError> {
    let mut wire_bytes = body.to_vec();
    wire_bytes.extend_from_slice(next_frame);
    let mut stream = FetchStream::new(version, body.len())?;
    let mut held: Vec<u8> = Vec::new();
    let mut forwarded = Vec::new();
    let mut sent = 0;
    for &chunk in chunks.iter().cycle() {
        let end = (sent + chunk.max(1)).min(wire_bytes.len());
        held.extend_from_slice(wire_bytes.get(sent..end).unwrap_or_default());
        sent = end;
        let n = stream.advance(&held)?;
        forwarded.extend_from_slice(&held[..n]);
        held.drain(..n);
        assert_eq!(stream.advance(&held), Ok(0), "a call takes everything it can");
        assert_eq!(stream.offset(), forwarded.len());
        assert!(forwarded.len() <= body.len(), "walker went past the body");
        if !stream.at_tail() {
            assert!(held.len() <= 4, "held {} bytes that are not the tail", held.len());
        } else if let Some(rewrite) = stream.rewrite_tail(&held, map)? {
            let tail_at = forwarded.len();
            let tail = held.get(..body.len() - tail_at).expect("tail held").to_vec();
            return Ok(Streamed { forwarded, tail_at, tail, rewrite });
        }
        assert!(sent < wire_bytes.len(), "the whole body arrived, but the walker is not done");
    }
    unreachable!("chunks is not empty")
}

fn chunks() -> impl Strategy<Value = Vec<usize>> {
    vec(prop_oneof![6 => 1usize..8, 3 => 8usize..64, 1 => 64usize..5000], 1..24)
}

/// Unknown tags the rewrite added: at most one, above every tag the input
/// had, with zeroed data.
fn added_pad(input: &BTreeMap<i32, Bytes>, output: &BTreeMap<i32, Bytes>) -> Result<usize, TestCaseError> {
    let added: Vec<_> = output.iter().filter(|(tag, _)| !input.contains_key(tag)).collect();
    prop_assert!(added.len() <= 1, "more than one field added: {added:?}");
    for (tag, data) in &added {
        let max_input = input.keys().max().copied().unwrap_or(0);
        prop_assert!(**tag > max_input, "pad tag {tag} not above {max_input}");
        prop_assert!(data.iter().all(|&b| b == 0), "pad data not zero");
    }
    for (tag, data) in input {
        prop_assert_eq!(output.get(tag), Some(data), "unknown tag {} changed", tag);
    }
    Ok(added.len())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn streamed_fetch_matches_oracle(
        (version, msg) in fetch(),
        map in stream_map(),
        chunks in chunks(),
        next_frame in vec(any::<u8>(), 0..8),
    ) {
        let body = encode(&msg, version);
        let input: FetchResponse = decode(&body, version);
        let out = stream(version, &body, &next_frame, &chunks, &map).expect("valid body streams");

        // The walker stops where the oracle and the whole-buffer skipper put the tail.
        prop_assert_eq!(out.tail_at, body.len() - oracle_tail_len(&input, version));
        let whole = rewrite_response(ApiKey::FETCH, version, &body, &map).expect("whole-buffer rewrite");
        if let Body::Spliced { front, .. } = &whole.body {
            prop_assert_eq!(front.len(), out.tail_at);
        }
        // Everything before the tail goes out untouched, and the size stays.
        prop_assert_eq!(&out.forwarded[..], &body[..out.tail_at]);
        let output = out.output();
        prop_assert_eq!(output.len(), body.len());
        prop_assert_eq!(out.rewrite.body.len(out.tail.len()), out.tail.len());

        if input.node_endpoints.is_empty() {
            prop_assert_eq!(&out.rewrite, &Rewrite::UNCHANGED);
            return Ok(());
        }
        let seen: Vec<_> = input
            .node_endpoints
            .iter()
            .map(|e| Broker { node_id: e.node_id.0, host: e.host.to_string(), port: e.port })
            .collect();
        prop_assert_eq!(&out.rewrite.observed, &Observed::Some(seen));

        let mut mapped = input.node_endpoints.clone();
        mapped.retain(|e| !map.refuses(e.node_id.0));
        for e in &mut mapped {
            e.host = StrBytes::from_string(map.host(e.node_id.0));
            e.port = StreamMap::port(e.node_id.0);
        }
        // Kept when its minimal encoding fits in the original tail.
        let mut kept_msg = input.clone();
        kept_msg.node_endpoints = mapped.clone();
        let fits = oracle_tail_len(&kept_msg, version) <= out.tail.len();
        let output: FetchResponse = decode(&output, version);
        let mut expected = input.clone();
        expected.node_endpoints = if fits { mapped } else { Vec::new() };
        let pads = added_pad(&input.unknown_tagged_fields, &output.unknown_tagged_fields)?;
        let mut output = output;
        output.unknown_tagged_fields.retain(|tag, _| input.unknown_tagged_fields.contains_key(tag));
        prop_assert_eq!(&output, &expected);
        if !fits {
            prop_assert_eq!(pads, 1, "a dropped NodeEndpoints leaves room for a pad");
        }
    }

    #[test]
    fn hostile_bytes_never_panic_nor_pile_up(
        version in 16i16..=18,
        bytes in vec(any::<u8>(), 0..400),
        body_len in prop_oneof![0usize..400, Just(usize::MAX / 2)],
        chunks in chunks(),
    ) {
        let map = StreamMap { refuse_multiple_of: Some(3), host_len: 5 };
        if let Ok(mut s) = FetchStream::new(version, body_len) {
            let mut held: Vec<u8> = Vec::new();
            let mut sent = 0;
            for &chunk in chunks.iter().cycle() {
                if sent >= bytes.len() {
                    break;
                }
                let end = (sent + chunk).min(bytes.len());
                held.extend_from_slice(&bytes[sent..end]);
                sent = end;
                let Ok(n) = s.advance(&held) else { break };
                prop_assert!(n <= held.len());
                held.drain(..n);
                if s.at_tail() {
                    prop_assert!(s.tail_len().is_some_and(|l| l <= MAX_TAIL_LEN));
                    let _ = s.rewrite_tail(&held, &map);
                    break;
                }
                prop_assert!(held.len() <= 4, "held {} bytes", held.len());
            }
        }
    }

    #[test]
    fn damaged_bodies_are_refused_as_by_the_whole_buffer_rewriter(
        (version, msg) in fetch(),
        damage in vec((any::<prop::sample::Index>(), any::<u8>()), 1..3),
        cut in option::of(any::<prop::sample::Index>()),
        chunks in chunks(),
    ) {
        let map = StreamMap { refuse_multiple_of: Some(3), host_len: 9 };
        let mut body = encode(&msg, version).to_vec();
        for (at, byte) in damage {
            let i = at.index(body.len());
            body[i] = byte;
        }
        if let Some(cut) = cut {
            body.truncate(cut.index(body.len()));
        }
        let whole = rewrite_response(ApiKey::FETCH, version, &Bytes::from(body.clone()), &map);
        let streamed = stream(version, &body, &[], &chunks, &map);
        match (&whole, &streamed) {
            (Ok(_), Ok(out)) => prop_assert_eq!(out.output().len(), body.len()),
            (Err(_), Err(RewriteError::Malformed { offset, .. })) => prop_assert!(*offset <= body.len()),
            // The one difference: the whole-buffer rewriter forwards bytes
            // after the top-level tagged fields; the walker, which must know
            // where the body ends, refuses them.
            (Ok(_), Err(RewriteError::Malformed { what: "bytes after the tagged fields", .. })) => {}
            _ => prop_assert!(false, "whole-buffer {:?}, streamed {:?}", whole.map(drop), streamed.map(|_| ())),
        }
    }
}

#[test]
fn every_truncation_is_refused() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let map = StreamMap { refuse_multiple_of: None, host_len: 12 };
    for _ in 0..24 {
        let (version, msg) = fetch().new_tree(&mut runner).expect("tree").current();
        let body = encode(&msg, version);
        for cut in 0..body.len() {
            let result = stream(version, &body[..cut], &body[cut..], &[7, 1, 300], &map);
            assert!(
                matches!(result, Err(RewriteError::Malformed { .. })),
                "v{version}: prefix of {cut}/{} bytes streamed",
                body.len()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Hostile counts and lengths are refused before their bytes are forwarded.

/// A v16 body prefix: header, one topic, its id, one partition, its header,
/// null aborted transactions, preferred replica.
fn partition_prefix() -> Vec<u8> {
    let mut body = vec![0u8; 10];
    body.push(2);
    body.extend([1u8; 16]);
    body.push(2);
    body.extend([0u8; 30]);
    body.push(0);
    body.extend([0u8; 4]);
    body
}

fn refused_at(body_len: usize, bytes: &[u8]) -> (usize, &'static str) {
    let mut s = FetchStream::new(16, body_len).expect("stream");
    match s.advance(bytes) {
        Err(RewriteError::Malformed { offset, what, .. }) => (offset, what),
        other => panic!("accepted: {other:?}"),
    }
}

#[test]
fn hostile_counts_and_lengths_are_refused_up_front() {
    // A topic count beyond the body.
    let mut body = vec![0u8; 10];
    wire::put_uvarint(&mut body, 1_000_000);
    assert_eq!(refused_at(1000, &body), (10, "responses"));
    // Null topics.
    assert_eq!(refused_at(1000, &[0u8; 11]), (10, "responses"));
    // A record set longer than the body: nothing of it is forwarded.
    let mut body = partition_prefix();
    let at = body.len();
    wire::put_uvarint(&mut body, 2_000_000_001);
    assert_eq!(refused_at(1_000_000, &body), (at, "records"));
    // A tagged field longer than the body.
    let mut body = partition_prefix();
    body.push(1);
    let at = body.len();
    body.extend([1, 0]);
    wire::put_uvarint(&mut body, 50_000);
    assert_eq!(refused_at(at + 100, &body), (at + 2, "partition tagged fields"));
    // Tags out of order.
    let mut body = partition_prefix();
    body.push(1);
    let at = body.len();
    body.extend([2, 5, 0, 5, 0]);
    assert_eq!(refused_at(at + 100, &body), (at + 3, "partition tagged fields"));
    // A tail longer than the proxy holds.
    let mut body = vec![0u8; 10];
    body.push(1);
    let limit = MAX_TAIL_LEN;
    assert_eq!(refused_at(11 + limit + 1, &body), (11, "tagged fields"));
    let mut s = FetchStream::new(16, 11 + limit).expect("stream");
    assert_eq!(s.advance(&body), Ok(11));
    assert_eq!(s.tail_len(), Some(limit));
}

#[test]
fn a_huge_record_set_streams_through_without_being_held() {
    // 64 MiB of records announced, fed in 64 KiB reads: each read is
    // forwarded whole and nothing piles up.
    let records = 64usize << 20;
    let mut body = partition_prefix();
    wire::put_uvarint(&mut body, records as u32 + 1);
    let head = body.len();
    let body_len = head + records + 2 + 1;
    let mut s = FetchStream::new(16, body_len).expect("stream");
    assert_eq!(s.advance(&body), Ok(head));
    let read = vec![0x5au8; 64 << 10];
    for _ in 0..records / read.len() {
        assert_eq!(s.advance(&read), Ok(read.len()));
    }
    assert_eq!(s.advance(&[0, 0, 0, 0xff]), Ok(2), "partition and topic tags, then the tail");
    assert_eq!(s.tail_len(), Some(1));
}

// ---------------------------------------------------------------------------
// The same-size rewrite, case by case, checked with the oracle.

struct Renamed(&'static str);

impl AddressMap for Renamed {
    fn advertised(&self, _node_id: i32, _host: &str, port: i32) -> Option<Advertised<'_>> {
        Some(Advertised { host: Cow::Borrowed(self.0), port })
    }
}

fn fetch_with_endpoint(host: &'static str) -> FetchResponse {
    let mut e = fetch_response::NodeEndpoint::default();
    e.node_id = 3.into();
    e.host = StrBytes::from_static_str(host);
    e.port = 9092;
    e.rack = Some(StrBytes::from_static_str("rack-a"));
    let mut partition = PartitionData::default();
    partition.records = Some(Bytes::from_static(b"some records"));
    partition.current_leader =
        fetch_response::LeaderIdAndEpoch::default().with_leader_id(3.into()).with_leader_epoch(7);
    let mut topic = FetchableTopicResponse::default();
    topic.topic_id = set_uuid(42);
    topic.partitions = vec![partition];
    let mut m = FetchResponse::default();
    m.responses = vec![topic];
    m.node_endpoints = vec![e];
    m.unknown_tagged_fields.insert(4, Bytes::from_static(b"keep"));
    m
}

/// Streams the response in 3-byte reads; returns the output, decoded, and the tail offset.
fn stream_case(msg: &FetchResponse, map: &dyn AddressMap) -> (Vec<u8>, FetchResponse, usize) {
    let body = encode(msg, 17);
    let out = stream(17, &body, b"next", &[3], map).expect("stream");
    let output = out.output();
    assert_eq!(output.len(), body.len());
    assert_eq!(
        out.rewrite.observed,
        Observed::Some(vec![Broker { node_id: 3, host: msg.node_endpoints[0].host.to_string(), port: 9092 }])
    );
    let decoded = decode(&output, 17);
    (output, decoded, out.tail_at)
}

#[test]
fn same_length_host_changes_only_the_host() {
    let msg = fetch_with_endpoint("kafka-3.internal");
    let (output, decoded, _) = stream_case(&msg, &Renamed("proxy-3.example."));
    let mut expected = msg.clone();
    expected.node_endpoints[0].host = StrBytes::from_static_str("proxy-3.example.");
    assert_eq!(decoded, expected);
    assert_eq!(output, encode(&expected, 17).to_vec(), "byte for byte the canonical encoding");
}

#[test]
fn one_byte_shorter_uses_a_non_minimal_varint() {
    let msg = fetch_with_endpoint("kafka-3.internal");
    let (output, decoded, tail_at) = stream_case(&msg, &Renamed("proxy-3.example"));
    let mut expected = msg.clone();
    expected.node_endpoints[0].host = StrBytes::from_static_str("proxy-3.example");
    assert_eq!(decoded, expected, "no pad field: the decoded response is exact");
    // Count 2, tag 0, then NodeEndpoints' size in two bytes.
    let tail = &output[tail_at..];
    assert_eq!(tail[..2], [2, 0]);
    assert!(tail[2] & 0x80 != 0 && tail[3] == 0, "size {:02x?} written non-minimally", &tail[2..4]);
}

#[test]
fn two_bytes_shorter_adds_an_empty_pad_field() {
    let msg = fetch_with_endpoint("kafka-3.internal");
    let (_, decoded, _) = stream_case(&msg, &Renamed("proxy-3.exampl"));
    let mut expected = msg.clone();
    expected.node_endpoints[0].host = StrBytes::from_static_str("proxy-3.exampl");
    expected.unknown_tagged_fields.insert(5, Bytes::new());
    assert_eq!(decoded, expected);
}

#[test]
fn much_shorter_pads_with_zeros() {
    let msg = fetch_with_endpoint("kafka-3.internal.cluster.example.com");
    let (_, decoded, _) = stream_case(&msg, &Renamed("p"));
    let mut expected = msg.clone();
    expected.node_endpoints[0].host = StrBytes::from_static_str("p");
    let pad = decoded.unknown_tagged_fields.get(&5).expect("pad field").clone();
    assert!(!pad.is_empty() && pad.iter().all(|&b| b == 0));
    expected.unknown_tagged_fields.insert(5, pad);
    assert_eq!(decoded, expected);
}

#[test]
fn longer_than_original_drops_node_endpoints() {
    let msg = fetch_with_endpoint("k3");
    let (output, decoded, _) = stream_case(&msg, &Renamed("proxy-3.a-long-advertised-name.example.com"));
    assert!(decoded.node_endpoints.is_empty(), "no address leaks");
    assert!(!String::from_utf8_lossy(&output).contains("k3"));
    let mut expected = msg.clone();
    expected.node_endpoints.clear();
    let pad = decoded.unknown_tagged_fields.get(&5).expect("pad field").clone();
    expected.unknown_tagged_fields.insert(5, pad);
    assert_eq!(decoded, expected);
}

#[test]
fn produce_tails_use_the_same_rewrite() {
    let mut e = produce_response::NodeEndpoint::default();
    e.node_id = 2.into();
    e.host = StrBytes::from_static_str("kafka-2.internal");
    e.port = 9093;
    let mut msg = ProduceResponse::default();
    msg.throttle_time_ms = 5;
    msg.node_endpoints = vec![e];
    for (host, keeps) in [("proxy-2", true), ("a-proxy-host-name-longer-than-the-original", false)] {
        let body = encode(&msg, 11);
        // No topics: an empty array (1 byte), ThrottleTimeMs (4), then the tail.
        let tail_at = 5;
        let rewrite = rewrite_tail_same_size(ApiKey::PRODUCE, 11, tail_at, &body[tail_at..], &Renamed(host))
            .expect("rewrite");
        let Body::Spliced { new, .. } = &rewrite.body else { panic!("spliced") };
        let mut output = body[..tail_at].to_vec();
        output.extend_from_slice(new);
        assert_eq!(output.len(), body.len());
        let decoded: ProduceResponse = decode(&output, 11);
        assert_eq!(decoded.throttle_time_ms, 5);
        let hosts: Vec<_> = decoded.node_endpoints.iter().map(|e| e.host.to_string()).collect();
        assert_eq!(hosts, if keeps { vec![host.to_string()] } else { Vec::new() });
    }
}

#[test]
fn responses_without_node_endpoints_are_forwarded_unchanged() {
    let mut msg = fetch_with_endpoint("kafka-3");
    msg.node_endpoints.clear();
    let body = encode(&msg, 16);
    let out = stream(16, &body, &[], &[1], &Renamed("p")).expect("stream");
    assert_eq!(out.rewrite, Rewrite::UNCHANGED);
    assert_eq!(out.output(), body.to_vec());
}

#[test]
fn bytes_after_the_body_stay_with_the_next_frame() {
    let msg = fetch_with_endpoint("kafka-3.internal");
    let body = encode(&msg, 18);
    let mut s = FetchStream::new(18, body.len()).expect("stream");
    let mut all = body.to_vec();
    all.extend_from_slice(&[0xff; 64]);
    let n = s.advance(&all).expect("advance");
    assert!(s.at_tail());
    let tail_len = s.tail_len().expect("tail");
    assert_eq!(n + tail_len, body.len());
    let rewrite = s.rewrite_tail(&all[n..], &Renamed("proxy")).expect("rewrite").expect("complete");
    assert_eq!(rewrite.body.len(tail_len), tail_len);
    let mut buf = BytesMut::new();
    buf.put_slice(&all[..n]);
    if let Body::Spliced { new, .. } = &rewrite.body {
        buf.put_slice(new);
    }
    let decoded: FetchResponse = decode(&buf, 18);
    assert_eq!(decoded.responses, msg.responses);
}
