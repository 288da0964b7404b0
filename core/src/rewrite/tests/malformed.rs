//! Hostile and malformed response bodies: the rewriters refuse them with the
//! offset of the bad field, never panic, and never allocate more than the body
//! they were given. The KIP-951 hot path (Produce/Fetch without
//! `NodeEndpoints`) allocates nothing at all.
//!
//! A counting global allocator measures allocations made on the calling
//! thread while a rewrite runs. It is the allocator of the core's whole
//! unit-test binary, but counts only on a thread that armed it.

use std::borrow::Cow;
use std::cell::Cell;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{FetchResponse, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use proptest::collection::vec;
use proptest::prelude::*;

use crate::api::ApiKey;
use crate::rewrite::{
    AddressMap, Advertised, ApiVersionsPolicy, Body, RewriteError, needs_rewrite, rewrite_api_versions,
    rewrite_response,
};
use crate::wire;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

#[allow(unsafe_code, reason = "GlobalAlloc is an unsafe trait; this one forwards to the system's")]
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};

    use super::{ALLOCATED, ARMED};

    struct Counting;

    fn count(bytes: usize) {
        let _ = ARMED.try_with(|armed| {
            if armed.get() {
                let _ = ALLOCATED.try_with(|total| total.set(total.get() + bytes));
            }
        });
    }

    // SAFETY: every call is forwarded unchanged to the system allocator; the
    // wrapper only adds to a thread-local counter, which does not allocate.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count(layout.size());
            // SAFETY: same contract as the caller's.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count(layout.size());
            // SAFETY: same contract as the caller's.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count(new_size);
            // SAFETY: same contract as the caller's.
            unsafe { System.realloc(ptr, layout, new_size) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: same contract as the caller's.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;
}

/// Runs `f` and returns what it returned and the bytes it allocated.
fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    ALLOCATED.with(|a| a.set(0));
    ARMED.with(|a| a.set(true));
    let out = f();
    ARMED.with(|a| a.set(false));
    (out, ALLOCATED.with(Cell::get))
}

struct Map;

impl AddressMap for Map {
    fn advertised(&self, node_id: i32, _host: &str, _port: i32) -> Option<Advertised<'_>> {
        Some(Advertised { host: Cow::Borrowed("proxy.test"), port: 20000 + node_id })
    }
}

fn malformed(result: Result<impl std::fmt::Debug, RewriteError>) -> (usize, &'static str) {
    match result {
        Err(RewriteError::Malformed { offset, what, .. }) => (offset, what),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn rewrite(api: ApiKey, version: i16, body: &[u8]) -> (usize, &'static str) {
    let body = Bytes::copy_from_slice(body);
    let (result, allocated) = allocated_by(|| rewrite_response(api, version, &body, &Map));
    assert_eq!(allocated, 0, "{api} v{version}: refusing a malformed body allocated {allocated} bytes");
    malformed(result)
}

// ---------------------------------------------------------------------------
// Hostile array counts and lengths.

#[test]
fn hostile_broker_counts() {
    // Metadata v0: Brokers count i32::MAX with 4 bytes behind it.
    assert_eq!(rewrite(ApiKey::METADATA, 0, &[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]), (0, "brokers"));
    // Metadata v9: ThrottleTimeMs, then a compact count of u32::MAX - 1.
    assert_eq!(rewrite(ApiKey::METADATA, 9, &[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0]), (4, "brokers"));
    // A count the input could hold, but whose entries are not there.
    let mut body = BytesMut::new();
    body.put_i32(3);
    body.put_i32(1);
    wire::put_string(&mut body, false, b"kafka");
    body.put_i32(9092);
    let (offset, _) = rewrite(ApiKey::METADATA, 0, &body);
    assert_eq!(offset, body.len(), "the second broker is missing");
    // DescribeCluster v0: throttle, error, null message, cluster id "", controller, huge count.
    let body = [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f];
    assert_eq!(rewrite(ApiKey::DESCRIBE_CLUSTER, 0, &body), (12, "brokers"));
    // FindCoordinator v4: throttle, huge coordinator count.
    assert_eq!(rewrite(ApiKey::FIND_COORDINATOR, 4, &[0, 0, 0, 0, 0xff, 0xff, 0x03, 0]), (4, "coordinators"));
}

#[test]
fn hostile_counts_in_the_metadata_tail() {
    // Metadata v1 with no brokers, then ControllerId and a topic count of i32::MAX.
    let body = [0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff, 0];
    assert_eq!(rewrite(ApiKey::METADATA, 1, &body), (8, "topics"));
    // One topic with one partition whose replica list claims more ids than remain.
    let mut body = BytesMut::new();
    body.put_i32(0); // brokers
    body.put_i32(1); // controller
    body.put_i32(1); // topics
    body.put_i16(0);
    wire::put_string(&mut body, false, b"t");
    body.put_u8(0); // is_internal
    body.put_i32(1); // partitions
    body.put_slice(&[0; 10]);
    let replicas_at = body.len();
    body.put_i32(3);
    body.put_i32(1);
    body.put_slice(&[0; 4]);
    assert_eq!(rewrite(ApiKey::METADATA, 1, &body), (replicas_at, "replica_nodes"));
}

/// A Fetch v16 body: no throttle, error or session, and `topics` as given.
fn fetch_v16(topics: &[u8]) -> BytesMut {
    let mut body = BytesMut::new();
    body.put_slice(&[0; 10]);
    body.put_slice(topics);
    body
}

#[test]
fn hostile_counts_in_fetch() {
    // Topic count u32::MAX - 1.
    assert_eq!(rewrite(ApiKey::FETCH, 16, &fetch_v16(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0])), (10, "responses"));
    // One topic, one partition, a record set claiming 2 GiB.
    let mut topics = BytesMut::new();
    topics.put_u8(2);
    topics.put_slice(&[7; 16]);
    topics.put_u8(2);
    topics.put_slice(&[0; 30]);
    topics.put_u8(1); // no aborted transactions
    topics.put_i32(-1);
    let records_at = 10 + topics.len();
    wire::put_uvarint(&mut topics, 0x8000_0001);
    topics.put_slice(&[0; 8]);
    assert_eq!(rewrite(ApiKey::FETCH, 16, &fetch_v16(&topics)), (records_at, "records"));
}

#[test]
fn hostile_tagged_fields() {
    // Fetch v16 with no topics, then a tagged-field count of u32::MAX.
    let body = fetch_v16(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert_eq!(rewrite(ApiKey::FETCH, 16, &body), (11, "tagged fields"));
    // Tags out of order.
    let body = fetch_v16(&[1, 2, 3, 0, 1, 0]);
    assert_eq!(rewrite(ApiKey::FETCH, 16, &body), (11, "tagged fields"));
    // NodeEndpoints (tag 0) whose array claims more entries than its size holds,
    // with bytes after the tag that would satisfy it if the size were ignored.
    let mut tail = BytesMut::new();
    tail.put_slice(&[1, 1, 0, 2, 5, 0]);
    tail.put_slice(&[0; 64]);
    let body = fetch_v16(&tail);
    assert_eq!(rewrite(ApiKey::FETCH, 16, &body), (14, "node_endpoints"));
    // NodeEndpoints holding one endpoint and a stray byte.
    let mut data = BytesMut::new();
    data.put_u8(2);
    data.put_i32(1);
    wire::put_string(&mut data, true, b"kafka");
    data.put_i32(9092);
    data.put_u8(0); // null rack
    data.put_u8(0); // no tags
    data.put_u8(9); // stray
    let mut tail = BytesMut::new();
    tail.put_slice(&[1, 1, 0]);
    wire::put_uvarint(&mut tail, data.len() as u32);
    tail.put_slice(&data);
    let body = fetch_v16(&tail);
    let (offset, what) = rewrite(ApiKey::FETCH, 16, &body);
    assert_eq!((offset, what), (body.len() - 1, "node_endpoints size"));
}

#[test]
fn hostile_api_versions() {
    let policy = ApiVersionsPolicy::terminating_sasl();
    let cases: &[(i16, &[u8], usize, &str)] = &[
        (0, &[0, 0, 0x7f, 0xff, 0xff, 0xff], 2, "api_keys"),
        (3, &[0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f], 2, "api_keys"),
        (3, &[0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f], 7, "tagged fields"),
        // FinalizedFeaturesEpoch (tag 1) must be 8 bytes.
        (3, &[0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 7], 10, "finalized_features_epoch"),
        // ZkMigrationReady (tag 3) must be 1 byte.
        (3, &[0, 0, 1, 0, 0, 0, 0, 1, 3, 2, 1, 1], 11, "tagged field size"),
    ];
    for &(version, body, offset, what) in cases {
        let (result, allocated) = allocated_by(|| rewrite_api_versions(version, body, &policy));
        assert!(allocated <= body.len(), "v{version}: allocated {allocated} for {} bytes", body.len());
        assert_eq!(malformed(result), (offset, what), "v{version} {body:?}");
    }
}

#[test]
fn versions_outside_the_table_are_refused() {
    let body = Bytes::from_static(&[0; 16]);
    for (api, version) in [
        (ApiKey::METADATA, 14),
        (ApiKey::METADATA, -1),
        (ApiKey::FIND_COORDINATOR, 7),
        (ApiKey::DESCRIBE_CLUSTER, 3),
        (ApiKey::PRODUCE, 14),
        (ApiKey::FETCH, 19),
        (ApiKey::SHARE_FETCH, 1),
        (ApiKey::SHARE_ACKNOWLEDGE, 1),
    ] {
        assert!(needs_rewrite(api, version), "{api} v{version}");
        assert_eq!(
            rewrite_response(api, version, &body, &Map),
            Err(RewriteError::UnsupportedVersion { api, version })
        );
    }
    assert_eq!(
        rewrite_api_versions(5, &body, &ApiVersionsPolicy::passthrough()),
        Err(RewriteError::UnsupportedVersion { api: ApiKey::API_VERSIONS, version: 5 })
    );
}

#[test]
fn responses_without_addresses_are_not_rewritten() {
    let garbage = Bytes::from_static(&[0xff; 3]);
    for (api, version) in [
        (ApiKey::PRODUCE, 9),
        (ApiKey::FETCH, 15),
        (ApiKey(2), 9),
        (ApiKey::API_VERSIONS, 3),
        (ApiKey::SASL_AUTHENTICATE, 2),
    ] {
        assert!(!needs_rewrite(api, version), "{api} v{version}");
        let (result, allocated) = allocated_by(|| rewrite_response(api, version, &garbage, &Map));
        assert_eq!(result.map(|r| r.body), Ok(Body::Unchanged), "not walked: {api} v{version}");
        assert_eq!(allocated, 0);
    }
    assert!(needs_rewrite(ApiKey::PRODUCE, 10));
    assert!(needs_rewrite(ApiKey::FETCH, 16));
}

// ---------------------------------------------------------------------------
// The KIP-951 hot path allocates nothing.

fn big_fetch(version: i16) -> Bytes {
    let mut m = FetchResponse::default();
    for t in 0..4u128 {
        let mut topic = FetchableTopicResponse::default();
        topic.topic_id = format!("{t:032x}").parse().expect("uuid");
        for p in 0..8 {
            let mut partition = PartitionData::default();
            partition.partition_index = p;
            partition.records = Some(Bytes::from(vec![p as u8; 4096]));
            topic.partitions.push(partition);
        }
        m.responses.push(topic);
    }
    m.unknown_tagged_fields.insert(5, Bytes::from_static(b"other"));
    let mut buf = BytesMut::new();
    m.encode(&mut buf, version).expect("encode");
    buf.freeze()
}

fn big_produce(version: i16) -> Bytes {
    let mut m = ProduceResponse::default();
    for t in 0..4 {
        let mut topic = TopicProduceResponse::default();
        topic.name = StrBytes::from_string(format!("topic-{t}")).into();
        for p in 0..8 {
            let mut partition = PartitionProduceResponse::default();
            partition.index = p;
            partition.error_message = Some(StrBytes::from_static_str("not leader"));
            topic.partition_responses.push(partition);
        }
        m.responses.push(topic);
    }
    let mut buf = BytesMut::new();
    m.encode(&mut buf, version).expect("encode");
    buf.freeze()
}

#[test]
fn hot_path_without_node_endpoints_allocates_nothing() {
    for version in 16..=18 {
        let body = big_fetch(version);
        let (result, allocated) = allocated_by(|| rewrite_response(ApiKey::FETCH, version, &body, &Map));
        assert_eq!(result.map(|r| r.body), Ok(Body::Unchanged));
        assert_eq!(allocated, 0, "Fetch v{version}");
    }
    for version in 10..=13 {
        let body = big_produce(version);
        let (result, allocated) = allocated_by(|| rewrite_response(ApiKey::PRODUCE, version, &body, &Map));
        assert_eq!(result.map(|r| r.body), Ok(Body::Unchanged));
        assert_eq!(allocated, 0, "Produce v{version}");
    }
}

fn forwarded(original: &Bytes, body: &Body) -> Bytes {
    match body {
        Body::Unchanged => original.clone(),
        Body::Spliced { front, new, back } => {
            let mut out = BytesMut::with_capacity(body.len(original.len()));
            out.put_slice(front);
            out.put_slice(new);
            out.put_slice(back);
            assert_eq!(out.len(), body.len(original.len()));
            out.freeze()
        }
    }
}

// ---------------------------------------------------------------------------
// Garbage never panics; a refusal never allocates more than the body.

const APIS: &[ApiKey] = &[
    ApiKey::METADATA,
    ApiKey::FIND_COORDINATOR,
    ApiKey::DESCRIBE_CLUSTER,
    ApiKey::PRODUCE,
    ApiKey::FETCH,
    ApiKey::API_VERSIONS,
];

proptest! {
    #[test]
    fn garbage_is_refused_or_rewritten_consistently(
        api in proptest::sample::select(APIS),
        version in -1i16..=20,
        data in vec(any::<u8>(), 0..256),
    ) {
        let body = Bytes::from(data);
        if api == ApiKey::API_VERSIONS {
            let policy = ApiVersionsPolicy::terminating_sasl();
            let (result, allocated) = allocated_by(|| rewrite_api_versions(version, &body, &policy));
            match result {
                Ok(out) => {
                    // A rewrite is canonical: rewriting it again changes nothing.
                    // (An UNSUPPORTED_VERSION body may be read in two encodings.)
                    let view = crate::rewrite::ApiVersionsView::parse(version, &body)
                        .expect("parsed once");
                    if view.error_code().0 != 35 {
                        let again = rewrite_api_versions(version, &out, &policy).expect("again");
                        prop_assert_eq!(again, out);
                    }
                }
                Err(RewriteError::Malformed { offset, .. }) => {
                    prop_assert!(offset <= body.len());
                    prop_assert!(allocated <= body.len(), "allocated {} for {} bytes", allocated, body.len());
                }
                Err(RewriteError::UnsupportedVersion { .. }) => prop_assert!(!(0..=4).contains(&version)),
            }
        } else {
            let (result, allocated) = allocated_by(|| rewrite_response(api, version, &body, &Map));
            match result {
                Ok(rewrite) => {
                    // Rewriting is idempotent: the proxy's own addresses map to themselves.
                    let out = forwarded(&body, &rewrite.body);
                    let again = rewrite_response(api, version, &out, &Map).expect("a rewrite rewrites");
                    prop_assert_eq!(forwarded(&out, &again.body), out);
                }
                Err(RewriteError::Malformed { offset, .. }) => {
                    prop_assert!(offset <= body.len());
                    prop_assert_eq!(allocated, 0);
                }
                Err(RewriteError::UnsupportedVersion { .. }) => {}
            }
        }
    }
}
