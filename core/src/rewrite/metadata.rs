//! Metadata v0–13: the broker list comes first, so only `ThrottleTimeMs` and
//! `Brokers[]` are re-encoded; the topics and everything after them are
//! forwarded as a zero-copy slice.
//!
//! The tail is still walked (without allocating) so that a truncated or
//! malformed response is refused rather than forwarded, and so the v13
//! top-level `ErrorCode` is known: an error response is not a complete broker
//! list.

use bytes::{BufMut, Bytes, BytesMut};

use crate::api::ApiKey;

use super::endpoint::{ArrayOut, Endpoint, advertise};
use super::reader::{Read, Reader};
use super::{AddressMap, Body, Observed, Rewrite, RewriteError};

const API: ApiKey = ApiKey::METADATA;

/// Rewrites every broker address in a Metadata response body (`version` 0–13).
pub(crate) fn rewrite(version: i16, body: &Bytes, map: &dyn AddressMap) -> Result<Rewrite, RewriteError> {
    let flexible = version >= 9;
    let fault = |f: super::reader::Fault| f.into_error(API, version);

    // Pass 1: validate the whole body without allocating.
    let mut r = Reader::new(body);
    if version >= 3 {
        r.skip(4, "throttle_time_ms").map_err(fault)?;
    }
    let brokers_at = r.offset();
    let count = r.array_len(flexible, "brokers").map_err(fault)?;
    for _ in 0..count {
        read_broker(&mut r, version).map_err(fault)?;
    }
    let tail_at = r.offset();
    let error_code = skip_tail(&mut r, version).map_err(fault)?;

    // Pass 2: re-encode the prefix.
    let mut r = Reader::new(body.get(..tail_at).unwrap_or_default());
    r.skip(brokers_at, "throttle_time_ms").map_err(fault)?;
    r.array_len(flexible, "brokers").map_err(fault)?;
    let mut seen = Vec::with_capacity(count);
    let mut kept = ArrayOut::with_capacity(tail_at.saturating_sub(brokers_at) + 32 * count);
    for _ in 0..count {
        let broker = read_broker(&mut r, version).map_err(fault)?;
        seen.push(broker.observed());
        if let Some(to) = advertise(map, API, broker.node_id, broker.host, broker.port) {
            kept.push(|out| broker.put_advertised(out, flexible, &to));
        }
    }
    let mut new = BytesMut::with_capacity(brokers_at + kept.encoded_len(flexible));
    new.put_slice(body.get(..brokers_at).unwrap_or_default());
    kept.put_into(&mut new, flexible);

    // An error response, or one naming no broker (the broker that answered is
    // always a member), is not the complete list.
    let observed = if error_code != 0 || seen.is_empty() { Observed::Nothing } else { Observed::All(seen) };
    Ok(Rewrite {
        body: Body::Spliced { front: Bytes::new(), new: new.freeze(), back: body.slice(tail_at..) },
        observed,
    })
}

/// `Brokers[]` entry: NodeId, Host, Port, Rack (v1+), tagged fields (v9+).
fn read_broker<'a>(r: &mut Reader<'a>, version: i16) -> Read<Endpoint<'a>> {
    let flexible = version >= 9;
    Endpoint::read(r, flexible, |r| {
        if version >= 1 {
            r.nullable_string(flexible, "broker rack")?;
        }
        r.skip_tagged_fields_if(flexible, "broker tagged fields")
    })
}

/// Walks everything after the broker list; returns the v13 top-level error code (0 before v13).
fn skip_tail(r: &mut Reader<'_>, version: i16) -> Read<i16> {
    let flexible = version >= 9;
    if version >= 2 {
        r.nullable_string(flexible, "cluster_id")?;
    }
    if version >= 1 {
        r.skip(4, "controller_id")?;
    }
    let topics = r.array_len(flexible, "topics")?;
    for _ in 0..topics {
        r.skip(2, "topic error_code")?;
        r.nullable_string(flexible, "topic name")?;
        // TopicId (v10+), IsInternal (v1+).
        let fixed = if version >= 10 {
            17
        } else if version >= 1 {
            1
        } else {
            0
        };
        r.skip(fixed, "topic id and is_internal")?;
        let partitions = r.array_len(flexible, "partitions")?;
        for _ in 0..partitions {
            // ErrorCode, PartitionIndex, LeaderId, LeaderEpoch (v7+).
            r.skip(if version >= 7 { 14 } else { 10 }, "partition")?;
            r.skip_i32_array(flexible, "replica_nodes")?;
            r.skip_i32_array(flexible, "isr_nodes")?;
            if version >= 5 {
                r.skip_i32_array(flexible, "offline_replicas")?;
            }
            r.skip_tagged_fields_if(flexible, "partition tagged fields")?;
        }
        if version >= 8 {
            r.skip(4, "topic_authorized_operations")?;
        }
        r.skip_tagged_fields_if(flexible, "topic tagged fields")?;
    }
    if (8..=10).contains(&version) {
        r.skip(4, "cluster_authorized_operations")?;
    }
    let error_code = if version >= 13 { r.i16("error_code")? } else { 0 };
    r.skip_tagged_fields_if(flexible, "tagged fields")?;
    Ok(error_code)
}
