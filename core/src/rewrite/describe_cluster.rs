//! DescribeCluster v0–2 (all flexible): the `Brokers[]` array is re-encoded,
//! the fields before and after it are forwarded as zero-copy slices.
//!
//! A response describing controllers (KIP-919 `EndpointType` 2) names nodes
//! the proxy cannot route to, so its broker list is emptied: no address leaks.

use bytes::{Bytes, BytesMut};

use crate::api::ApiKey;

use super::endpoint::{ArrayOut, Endpoint, advertise};
use super::reader::{Read, Reader};
use super::{AddressMap, Body, Observed, Rewrite, RewriteError};

const API: ApiKey = ApiKey::DESCRIBE_CLUSTER;

/// `EndpointType` of a response listing brokers (the only kind v0 has).
const ENDPOINT_TYPE_BROKER: i8 = 1;

/// Rewrites the broker addresses in a DescribeCluster response body (`version` 0–2).
pub(crate) fn rewrite(version: i16, body: &Bytes, map: &dyn AddressMap) -> Result<Rewrite, RewriteError> {
    rewrite_inner(version, body, map).map_err(|f| f.into_error(API, version))
}

fn rewrite_inner(version: i16, body: &Bytes, map: &dyn AddressMap) -> Read<Rewrite> {
    // Pass 1: validate the whole body.
    let mut r = Reader::new(body);
    r.skip(4, "throttle_time_ms")?;
    let error_code = r.i16("error_code")?;
    r.nullable_string(true, "error_message")?;
    let endpoint_type = if version >= 1 { r.i8("endpoint_type")? } else { ENDPOINT_TYPE_BROKER };
    r.string(true, "cluster_id")?;
    r.skip(4, "controller_id")?;
    let array_at = r.offset();
    let count = r.array_len(true, "brokers")?;
    for _ in 0..count {
        read_broker(&mut r, version)?;
    }
    let back_at = r.offset();
    r.skip(4, "cluster_authorized_operations")?;
    r.tagged_fields("tagged fields")?;

    if count == 0 {
        return Ok(Rewrite::UNCHANGED);
    }
    let spliced =
        |new: Bytes| Body::Spliced { front: body.slice(..array_at), new, back: body.slice(back_at..) };
    if endpoint_type != ENDPOINT_TYPE_BROKER {
        // Controllers (or a kind this proxy does not know): never advertise them.
        tracing::warn!(
            endpoint_type,
            count,
            "DescribeCluster listed non-broker endpoints; sent an empty list"
        );
        return Ok(Rewrite { body: spliced(Bytes::from_static(&[1])), observed: Observed::Nothing });
    }

    // Pass 2: re-encode the broker list.
    let mut r = Reader::new(body.get(..back_at).unwrap_or_default());
    r.skip(array_at, "brokers")?;
    r.array_len(true, "brokers")?;
    let mut seen = Vec::with_capacity(count);
    let mut kept = ArrayOut::with_capacity(back_at - array_at + 32 * count);
    for _ in 0..count {
        let broker = read_broker(&mut r, version)?;
        seen.push(broker.observed());
        if let Some(to) = advertise(map, API, broker.node_id, broker.host, broker.port) {
            kept.push(|out| broker.put_advertised(out, true, &to));
        }
    }
    let mut new = BytesMut::with_capacity(kept.encoded_len(true));
    kept.put_into(&mut new, true);
    let observed = if error_code != 0 { Observed::Nothing } else { Observed::All(seen) };
    Ok(Rewrite { body: spliced(new.freeze()), observed })
}

/// `Brokers[]` entry: BrokerId, Host, Port, Rack, IsFenced (v2+), tagged fields.
fn read_broker<'a>(r: &mut Reader<'a>, version: i16) -> Read<Endpoint<'a>> {
    Endpoint::read(r, true, |r| {
        r.nullable_string(true, "broker rack")?;
        if version >= 2 {
            r.skip(1, "broker is_fenced")?;
        }
        r.skip_tagged_fields_if(true, "broker tagged fields")
    })
}
