//! Request deadlines: how long the broker may take to answer a request.
//!
//! A broker that stops answering must not hold a client until the idle
//! timeout: every request forwarded to it gets a wait, `limits.request_timeout`
//! by default. Some requests ask the broker to wait themselves (a Fetch long
//! poll, a Produce waiting for replication, a JoinGroup waiting for the
//! rebalance, an admin operation's `TimeoutMs`); their wait is what they ask
//! plus [`GRACE`], so the proxy never cuts an answer the broker is allowed to
//! give late. Only the few fields needed are read, from the request's front
//! (or, for admin requests whose `TimeoutMs` follows their topic list, by
//! skipping that list); a request that does not parse gets the default.

use std::time::Duration;

use crate::api::ApiKey;
use crate::header;
use crate::wire::{self, PResult};

/// Added to the wait a request asks for: the broker answers at the end of
/// that wait, and the answer still has to travel (Kafka's own clients allow
/// 5 s past a JoinGroup's rebalance timeout).
pub(crate) const GRACE: Duration = Duration::from_secs(5);

/// How long the broker may take to answer the request in `body` (the frame
/// body, header included): `limit`, or longer when the request asks for it.
pub(crate) fn wait_for(limit: Duration, api_key: ApiKey, version: i16, body: &[u8]) -> Duration {
    match requested_wait(api_key, version, body) {
        Some(asked) => limit.max(asked + GRACE),
        None => limit,
    }
}

/// The wait the request itself asks the broker for, if it carries one.
pub(crate) fn requested_wait(api_key: ApiKey, version: i16, body: &[u8]) -> Option<Duration> {
    let shape = Shape::of(api_key)?;
    let flexible = version >= shape.flexible_from;
    let start = header::request_header_len(body, flexible).ok()?;
    let fields = body.get(start..)?;
    let millis = (shape.timeout)(fields, version, flexible).ok()?.1;
    u64::try_from(millis).ok().filter(|ms| *ms > 0).map(Duration::from_millis)
}

/// Reads a request's wait in milliseconds from its body (after the header),
/// given the version and whether it is flexible.
type ReadWait = fn(&[u8], i16, bool) -> PResult<'_, i32>;

/// Where one API keeps its wait.
struct Shape {
    /// First flexible version (request header v2, compact encodings).
    flexible_from: i16,
    /// Reads the wait.
    timeout: ReadWait,
}

impl Shape {
    fn of(api_key: ApiKey) -> Option<Shape> {
        let (flexible_from, timeout): (i16, ReadWait) = match api_key.0 {
            0 => (9, produce),
            1 => (12, fetch),
            11 => (6, join_group),
            19 => (5, create_topics),
            20 => (4, delete_topics),
            21 => (2, delete_records),
            37 => (2, create_partitions),
            43 => (2, elect_leaders),
            // AlterPartitionReassignments, ListPartitionReassignments: TimeoutMs first.
            45 | 46 => (0, |input, _, _| wire::i32(input)),
            _ => return None,
        };
        Some(Shape { flexible_from, timeout })
    }
}

/// Produce: `TransactionalId` (v3+), `Acks`, `TimeoutMs`.
fn produce(input: &[u8], version: i16, flexible: bool) -> PResult<'_, i32> {
    let input = if version >= 3 { wire::nullable_string(input, flexible)?.0 } else { input };
    let (input, _acks) = wire::i16(input)?;
    wire::i32(input)
}

/// Fetch: `ReplicaId` (v0–14), then `MaxWaitMs`.
fn fetch(input: &[u8], version: i16, _flexible: bool) -> PResult<'_, i32> {
    let input = if version <= 14 { wire::i32(input)?.0 } else { input };
    wire::i32(input)
}

/// JoinGroup: `GroupId`, `SessionTimeoutMs`, then `RebalanceTimeoutMs` (v1+;
/// v0 rebalances within the session timeout).
fn join_group(input: &[u8], version: i16, flexible: bool) -> PResult<'_, i32> {
    let (input, _group) = wire::string(input, flexible)?;
    let (input, session_timeout) = wire::i32(input)?;
    if version == 0 { Ok((input, session_timeout)) } else { wire::i32(input) }
}

/// CreateTopics: `Topics[Name, NumPartitions, ReplicationFactor,
/// Assignments[PartitionIndex, BrokerIds[int32]], Configs[Name, Value?]]`, `TimeoutMs`.
fn create_topics(input: &[u8], _version: i16, flexible: bool) -> PResult<'_, i32> {
    let input = skip_array(input, flexible, |input| {
        let (input, _name) = wire::string(input, flexible)?;
        let (input, _partitions) = wire::i32(input)?;
        let (input, _replication) = wire::i16(input)?;
        let input = skip_array(input, flexible, |input| {
            let (input, _index) = wire::i32(input)?;
            let input = skip_int32_array(input, flexible)?;
            tags(input, flexible)
        })?;
        let input = skip_array(input, flexible, |input| {
            let (input, _name) = wire::string(input, flexible)?;
            let (input, _value) = wire::nullable_string(input, flexible)?;
            tags(input, flexible)
        })?;
        tags(input, flexible)
    })?;
    wire::i32(input)
}

/// DeleteTopics: `TopicNames[string]` (v0–5) or `Topics[Name?, TopicId]`
/// (v6+), then `TimeoutMs`.
fn delete_topics(input: &[u8], version: i16, flexible: bool) -> PResult<'_, i32> {
    let input = if version >= 6 {
        skip_array(input, flexible, |input| {
            let (input, _name) = wire::nullable_string(input, flexible)?;
            let input = input.get(16..).ok_or_else(incomplete)?;
            tags(input, flexible)
        })?
    } else {
        skip_array(input, flexible, |input| Ok(wire::string(input, flexible)?.0))?
    };
    wire::i32(input)
}

/// DeleteRecords: `Topics[Name, Partitions[PartitionIndex, Offset]]`, `TimeoutMs`.
fn delete_records(input: &[u8], _version: i16, flexible: bool) -> PResult<'_, i32> {
    let input = skip_array(input, flexible, |input| {
        let (input, _name) = wire::string(input, flexible)?;
        let input = skip_array(input, flexible, |input| {
            let input = input.get(12..).ok_or_else(incomplete)?;
            tags(input, flexible)
        })?;
        tags(input, flexible)
    })?;
    wire::i32(input)
}

/// CreatePartitions: `Topics[Name, Count, Assignments?[BrokerIds[int32]]]`, `TimeoutMs`.
fn create_partitions(input: &[u8], _version: i16, flexible: bool) -> PResult<'_, i32> {
    let input = skip_array(input, flexible, |input| {
        let (input, _name) = wire::string(input, flexible)?;
        let (input, _count) = wire::i32(input)?;
        let input = skip_array(input, flexible, |input| {
            let input = skip_int32_array(input, flexible)?;
            tags(input, flexible)
        })?;
        tags(input, flexible)
    })?;
    wire::i32(input)
}

/// ElectLeaders: `ElectionType` (v1+), `TopicPartitions?[Topic, Partitions[int32]]`, `TimeoutMs`.
fn elect_leaders(input: &[u8], version: i16, flexible: bool) -> PResult<'_, i32> {
    let input = if version >= 1 { wire::i8(input)?.0 } else { input };
    let input = skip_array(input, flexible, |input| {
        let (input, _topic) = wire::string(input, flexible)?;
        let input = skip_int32_array(input, flexible)?;
        tags(input, flexible)
    })?;
    wire::i32(input)
}

/// Skips a (nullable) array whose elements `element` skips. Every element
/// consumes at least one byte or fails, so a hostile count costs at most one
/// step per byte of the request.
fn skip_array<'a>(
    input: &'a [u8],
    flexible: bool,
    element: impl Fn(&'a [u8]) -> Result<&'a [u8], nom::Err<nom::error::Error<&'a [u8]>>>,
) -> Result<&'a [u8], nom::Err<nom::error::Error<&'a [u8]>>> {
    let (mut input, len) = wire::nullable_array_len(input, flexible)?;
    for _ in 0..len.unwrap_or(0) {
        let rest = element(input)?;
        if rest.len() >= input.len() {
            return Err(incomplete());
        }
        input = rest;
    }
    Ok(input)
}

/// Skips an array of int32.
fn skip_int32_array(input: &[u8], flexible: bool) -> Result<&[u8], nom::Err<nom::error::Error<&[u8]>>> {
    let (input, len) = wire::nullable_array_len(input, flexible)?;
    let bytes = len.unwrap_or(0).checked_mul(4).ok_or_else(incomplete)?;
    input.get(bytes..).ok_or_else(incomplete)
}

/// Skips a structure's tagged fields (flexible versions only).
fn tags(input: &[u8], flexible: bool) -> Result<&[u8], nom::Err<nom::error::Error<&[u8]>>> {
    Ok(wire::tagged_fields_if(input, flexible)?.0)
}

fn incomplete<'a>() -> nom::Err<nom::error::Error<&'a [u8]>> {
    nom::Err::Error(nom::error::Error::new(&[][..], nom::error::ErrorKind::Eof))
}

#[cfg(test)]
mod tests;
