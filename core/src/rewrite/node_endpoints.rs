//! KIP-951 `NodeEndpoints`: Produce v10+ and Fetch v16+ responses may carry
//! broker addresses in a top-level tagged field (tag 0), after all the data.
//!
//! These are the hot-path responses, so a structural skipper walks the body
//! without allocating (record sets are skipped by their length) to the
//! top-level tagged-field buffer. Without tag 0 the response is forwarded
//! unchanged; with it, only that buffer is re-encoded and everything before it
//! is kept as a zero-copy slice.

use bytes::{BufMut, Bytes, BytesMut};

use crate::api::ApiKey;
use crate::wire;

use super::endpoint::{ArrayOut, Endpoint, advertise};
use super::reader::{Read, Reader};
use super::{AddressMap, Body, Observed, Rewrite, RewriteError};

/// First Produce version whose response can carry `NodeEndpoints`.
pub(crate) const PRODUCE_NODE_ENDPOINTS_FROM: i16 = 10;
/// First Fetch version whose response can carry `NodeEndpoints`.
pub(crate) const FETCH_NODE_ENDPOINTS_FROM: i16 = 16;

/// The tag of `NodeEndpoints` in both responses.
pub(super) const NODE_ENDPOINTS_TAG: u32 = 0;

/// Which response is being walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Carrier {
    Produce,
    Fetch,
}

impl Carrier {
    fn api(self) -> ApiKey {
        match self {
            Carrier::Produce => ApiKey::PRODUCE,
            Carrier::Fetch => ApiKey::FETCH,
        }
    }

    fn first_version(self) -> i16 {
        match self {
            Carrier::Produce => PRODUCE_NODE_ENDPOINTS_FROM,
            Carrier::Fetch => FETCH_NODE_ENDPOINTS_FROM,
        }
    }
}

/// Rewrites the `NodeEndpoints` of a Produce or Fetch response body, if it has any.
pub(crate) fn rewrite(
    carrier: Carrier,
    version: i16,
    body: &Bytes,
    map: &dyn AddressMap,
) -> Result<Rewrite, RewriteError> {
    if version < carrier.first_version() {
        return Ok(Rewrite::UNCHANGED);
    }
    rewrite_inner(carrier, version, body, map).map_err(|f| f.into_error(carrier.api(), version))
}

fn rewrite_inner(carrier: Carrier, version: i16, body: &Bytes, map: &dyn AddressMap) -> Read<Rewrite> {
    let mut r = Reader::new(body);
    match carrier {
        Carrier::Produce => skip_produce(&mut r, version)?,
        Carrier::Fetch => skip_fetch(&mut r)?,
    }
    let tags_at = r.offset();
    let tags = r.tagged_fields("tagged fields")?;
    // Tags ascend, so tag 0 can only be the first.
    if tags.iter().next().is_none_or(|f| f.tag != NODE_ENDPOINTS_TAG) {
        return Ok(Rewrite::UNCHANGED);
    }
    let tags_end = r.offset();
    let (new, seen) = rewrite_tagged_fields(carrier.api(), body, tags_at, tags_end, map)?;
    let observed = if seen.is_empty() { Observed::Nothing } else { Observed::Some(seen) };
    Ok(Rewrite {
        body: Body::Spliced { front: body.slice(..tags_at), new, back: body.slice(tags_end..) },
        observed,
    })
}

/// Produce v10–13 up to the top-level tagged fields:
/// Responses[]{Name (≤12) | TopicId (13), PartitionResponses[]{Index, ErrorCode,
/// BaseOffset, LogAppendTimeMs, LogStartOffset, RecordErrors[]{BatchIndex,
/// BatchIndexErrorMessage}, ErrorMessage}}, ThrottleTimeMs.
fn skip_produce(r: &mut Reader<'_>, version: i16) -> Read<()> {
    let topics = r.array_len(true, "responses")?;
    for _ in 0..topics {
        if version >= 13 {
            r.skip(16, "topic_id")?;
        } else {
            r.string(true, "topic name")?;
        }
        let partitions = r.array_len(true, "partition_responses")?;
        for _ in 0..partitions {
            r.skip(4 + 2 + 8 + 8 + 8, "partition response")?;
            let errors = r.array_len(true, "record_errors")?;
            for _ in 0..errors {
                r.skip(4, "batch_index")?;
                r.nullable_string(true, "batch_index_error_message")?;
                r.tagged_fields("record error tagged fields")?;
            }
            r.nullable_string(true, "error_message")?;
            r.tagged_fields("partition tagged fields")?;
        }
        r.tagged_fields("topic tagged fields")?;
    }
    r.skip(4, "throttle_time_ms")
}

/// Fetch v16–18 up to the top-level tagged fields:
/// ThrottleTimeMs, ErrorCode, SessionId, Responses[]{TopicId, Partitions[]{
/// PartitionIndex, ErrorCode, HighWatermark, LastStableOffset, LogStartOffset,
/// AbortedTransactions[]?{ProducerId, FirstOffset}, PreferredReadReplica, Records?}}.
fn skip_fetch(r: &mut Reader<'_>) -> Read<()> {
    r.skip(4 + 2 + 4, "throttle_time_ms, error_code, session_id")?;
    let topics = r.array_len(true, "responses")?;
    for _ in 0..topics {
        r.skip(16, "topic_id")?;
        let partitions = r.array_len(true, "partitions")?;
        for _ in 0..partitions {
            r.skip(4 + 2 + 8 + 8 + 8, "partition header")?;
            if let Some(aborted) = r.nullable_array_len(true, "aborted_transactions")? {
                for _ in 0..aborted {
                    r.skip(16, "aborted transaction")?;
                    r.tagged_fields("aborted transaction tagged fields")?;
                }
            }
            r.skip(4, "preferred_read_replica")?;
            r.nullable_bytes(true, "records")?;
            r.tagged_fields("partition tagged fields")?;
        }
        r.tagged_fields("topic tagged fields")?;
    }
    Ok(())
}

/// Reads the `NodeEndpoints` array stored in `body[at..at + size]`, which it
/// must fill exactly, handing each endpoint to `each`.
pub(super) fn read_endpoints<'a>(
    body: &'a [u8],
    at: usize,
    size: usize,
    mut each: impl FnMut(Endpoint<'a>),
) -> Read<usize> {
    let mut r = Reader::new(body.get(..at + size).unwrap_or_default());
    r.skip(at, "node_endpoints")?;
    let count = r.array_len(true, "node_endpoints")?;
    for _ in 0..count {
        each(Endpoint::read(&mut r, true, |r| {
            r.nullable_string(true, "node endpoint rack")?;
            r.tagged_fields("node endpoint tagged fields").map(drop)
        })?);
    }
    if !r.rest().is_empty() {
        return Err(r.fault("node_endpoints size"));
    }
    Ok(count)
}

/// Re-encodes the top-level tagged-field buffer at `body[at..end]` with tag 0
/// rewritten (dropped if no endpoint remains, as Kafka omits an empty one) and
/// every other field copied byte for byte. Returns the buffer and the endpoints seen.
fn rewrite_tagged_fields(
    api: ApiKey,
    body: &[u8],
    at: usize,
    end: usize,
    map: &dyn AddressMap,
) -> Read<(Bytes, Vec<super::Broker>)> {
    // The buffer itself was validated; find tag 0 (the first field) and check
    // its content before allocating anything.
    let mut r = Reader::new(body.get(..end).unwrap_or_default());
    r.skip(at, "tagged fields")?;
    let count = r.uvarint("tagged field count")?;
    let tag = r.uvarint("tag")?;
    if count == 0 || tag != NODE_ENDPOINTS_TAG {
        return Err(r.fault("node_endpoints tag"));
    }
    let size = r.uvarint("tagged field size")? as usize;
    let data_at = r.offset();
    let listed = read_endpoints(body, data_at, size, drop)?;
    r.skip(size, "tagged field data")?;
    let others = r.rest();

    let mut seen = Vec::with_capacity(listed);
    let mut endpoints = ArrayOut::with_capacity(size + 32 * listed);
    read_endpoints(body, data_at, size, |endpoint| {
        seen.push(endpoint.observed());
        if let Some(to) = advertise(map, api, endpoint.node_id, endpoint.host, endpoint.port) {
            endpoints.push(|out| endpoint.put_advertised(out, true, &to));
        }
    })?;
    let tag_len = endpoints.encoded_len(true);
    let tag_len_u32 = u32::try_from(tag_len).unwrap_or(u32::MAX);
    let mut new = BytesMut::with_capacity(5 + 2 + 5 + tag_len + others.len());
    if endpoints.count() > 0 {
        wire::put_uvarint(&mut new, count);
        wire::put_uvarint(&mut new, NODE_ENDPOINTS_TAG);
        wire::put_uvarint(&mut new, tag_len_u32);
        endpoints.put_into(&mut new, true);
    } else {
        // Kafka leaves an empty NodeEndpoints out.
        wire::put_uvarint(&mut new, count.saturating_sub(1));
    }
    new.put_slice(others);
    Ok((new.freeze(), seen))
}
