//! FindCoordinator v0–6: one coordinator (v0–3) or a batch of them (v4+, KIP-699).
//!
//! Entries that carry an error (or `NodeId` −1) hold no address and stay as
//! they are. A coordinator the proxy cannot expose becomes
//! `COORDINATOR_NOT_AVAILABLE` with no address, so the client retries later
//! instead of learning where the real broker is.

use bytes::{BufMut, Bytes, BytesMut};

use crate::api::{ApiKey, ErrorCode};
use crate::wire;

use super::endpoint::advertise;
use super::reader::{Read, Reader};
use super::{AddressMap, Body, Broker, Observed, Rewrite, RewriteError};

const API: ApiKey = ApiKey::FIND_COORDINATOR;

/// Kafka's message for `COORDINATOR_NOT_AVAILABLE`, sent with the error the
/// proxy substitutes for a coordinator it cannot expose.
pub(crate) const COORDINATOR_NOT_AVAILABLE_MESSAGE: &str = "The coordinator is not available.";

/// Rewrites the coordinator address(es) in a FindCoordinator response body (`version` 0–6).
pub(crate) fn rewrite(version: i16, body: &Bytes, map: &dyn AddressMap) -> Result<Rewrite, RewriteError> {
    let result = if version >= 4 { rewrite_batched(body, map) } else { rewrite_single(version, body, map) };
    result.map_err(|f| f.into_error(API, version))
}

/// True for an entry that names a coordinator (no error, a real node id).
fn names_coordinator(error_code: i16, node_id: i32) -> bool {
    error_code == 0 && node_id != -1
}

/// v0–3: ThrottleTimeMs (v1+), ErrorCode, ErrorMessage (v1+), NodeId, Host, Port, tagged fields (v3).
fn rewrite_single(version: i16, body: &Bytes, map: &dyn AddressMap) -> Read<Rewrite> {
    let flexible = version >= 3;
    let mut r = Reader::new(body);
    if version >= 1 {
        r.skip(4, "throttle_time_ms")?;
    }
    let error_at = r.offset();
    let error_code = r.i16("error_code")?;
    if version >= 1 {
        r.nullable_string(flexible, "error_message")?;
    }
    let node_at = r.offset();
    let node_id = r.i32("node_id")?;
    let host = r.string(flexible, "host")?;
    let port = r.i32("port")?;
    let back_at = r.offset();
    r.skip_tagged_fields_if(flexible, "tagged fields")?;

    if !names_coordinator(error_code, node_id) {
        return Ok(Rewrite::UNCHANGED);
    }
    let observed =
        Observed::Some(vec![Broker { node_id, host: String::from_utf8_lossy(host).into_owned(), port }]);
    let (front_end, new) = match advertise(map, API, node_id, host, port) {
        Some(to) => {
            let mut new = BytesMut::with_capacity(8 + wire::string_size(flexible, true, Some(to.host.len())));
            new.put_i32(node_id);
            wire::put_string(&mut new, flexible, to.host.as_bytes());
            new.put_i32(to.port);
            (node_at, new)
        }
        None => {
            let mut new = BytesMut::with_capacity(64);
            new.put_i16(ErrorCode::COORDINATOR_NOT_AVAILABLE.0);
            if version >= 1 {
                wire::put_string(&mut new, flexible, COORDINATOR_NOT_AVAILABLE_MESSAGE.as_bytes());
            }
            put_no_address(&mut new, flexible);
            (error_at, new)
        }
    };
    Ok(Rewrite {
        body: Body::Spliced {
            front: body.slice(..front_end),
            new: new.freeze(),
            back: body.slice(back_at..),
        },
        observed,
    })
}

/// NodeId −1, Host "", Port −1: what Kafka sends when there is no coordinator.
fn put_no_address(out: &mut BytesMut, flexible: bool) {
    out.put_i32(-1);
    wire::put_string(out, flexible, b"");
    out.put_i32(-1);
}

/// One `Coordinators[]` entry (v4+).
#[derive(Debug, Clone, Copy)]
struct Coordinator<'a> {
    /// The encoded `Key` field.
    key: &'a [u8],
    node_id: i32,
    host: &'a [u8],
    port: i32,
    error_code: i16,
    /// The encoded `ErrorCode`, `ErrorMessage` and tagged fields.
    trailer: &'a [u8],
    /// The whole encoded entry.
    whole: &'a [u8],
}

impl<'a> Coordinator<'a> {
    fn read(r: &mut Reader<'a>) -> Read<Self> {
        let start = r.offset();
        r.string(true, "coordinator key")?;
        let key = r.since(start);
        let node_id = r.i32("coordinator node_id")?;
        let host = r.string(true, "coordinator host")?;
        let port = r.i32("coordinator port")?;
        let trailer_at = r.offset();
        let error_code = r.i16("coordinator error_code")?;
        r.nullable_string(true, "coordinator error_message")?;
        r.skip_tagged_fields_if(true, "coordinator tagged fields")?;
        Ok(Coordinator {
            key,
            node_id,
            host,
            port,
            error_code,
            trailer: r.since(trailer_at),
            whole: r.since(start),
        })
    }
}

/// v4–6: ThrottleTimeMs, Coordinators[]{Key, NodeId, Host, Port, ErrorCode, ErrorMessage}, tagged fields.
fn rewrite_batched(body: &Bytes, map: &dyn AddressMap) -> Read<Rewrite> {
    // Pass 1: validate, count the entries that name a coordinator.
    let mut r = Reader::new(body);
    r.skip(4, "throttle_time_ms")?;
    let array_at = r.offset();
    let count = r.array_len(true, "coordinators")?;
    let entries_at = r.offset();
    let mut named = 0usize;
    for _ in 0..count {
        let c = Coordinator::read(&mut r)?;
        named += usize::from(names_coordinator(c.error_code, c.node_id));
    }
    let back_at = r.offset();
    r.tagged_fields("tagged fields")?;
    if named == 0 {
        return Ok(Rewrite::UNCHANGED);
    }

    // Pass 2: the count is unchanged; rewrite the entries that name a coordinator.
    let mut r = Reader::new(body.get(..back_at).unwrap_or_default());
    r.skip(entries_at, "coordinators")?;
    let mut seen = Vec::with_capacity(named);
    let mut new = BytesMut::with_capacity(back_at - array_at + 48 * named);
    new.put_slice(body.get(array_at..entries_at).unwrap_or_default());
    for _ in 0..count {
        let c = Coordinator::read(&mut r)?;
        if !names_coordinator(c.error_code, c.node_id) {
            new.put_slice(c.whole);
            continue;
        }
        seen.push(Broker {
            node_id: c.node_id,
            host: String::from_utf8_lossy(c.host).into_owned(),
            port: c.port,
        });
        new.put_slice(c.key);
        match advertise(map, API, c.node_id, c.host, c.port) {
            Some(to) => {
                new.put_i32(c.node_id);
                wire::put_string(&mut new, true, to.host.as_bytes());
                new.put_i32(to.port);
                new.put_slice(c.trailer);
            }
            None => {
                put_no_address(&mut new, true);
                new.put_i16(ErrorCode::COORDINATOR_NOT_AVAILABLE.0);
                wire::put_string(&mut new, true, COORDINATOR_NOT_AVAILABLE_MESSAGE.as_bytes());
                let mut t = Reader::new(c.trailer);
                t.skip(2, "coordinator error_code")?;
                t.nullable_string(true, "coordinator error_message")?;
                new.put_slice(t.rest());
            }
        }
    }
    Ok(Rewrite {
        body: Body::Spliced { front: body.slice(..array_at), new: new.freeze(), back: body.slice(back_at..) },
        observed: Observed::Some(seen),
    })
}
