//! The data path: Produce, Fetch and InitProducerId.
//!
//! Produce is refused per partition with `TOPIC_AUTHORIZATION_FAILED`, or with
//! `TRANSACTIONAL_ID_AUTHORIZATION_FAILED` when it carries a transactional id
//! (Kafka checks that first); with `acks=0` nothing is answered. Fetch is
//! refused per partition with `TOPIC_AUTHORIZATION_FAILED` and no records.
//! InitProducerId is refused with `TRANSACTIONAL_ID_AUTHORIZATION_FAILED` for
//! a transactional producer and `CLUSTER_AUTHORIZATION_FAILED` (no idempotent
//! write) for an idempotent one.

use crate::api::ErrorCode;
use crate::rewrite::reader::Read;

use super::{Answer, Exchange};

const TOPIC: ErrorCode = ErrorCode::TOPIC_AUTHORIZATION_FAILED;
const TRANSACTIONAL_ID: ErrorCode = ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED;

/// The first Produce and Fetch versions that name topics by id (KIP-516).
const PRODUCE_TOPIC_IDS_FROM: i16 = 13;
const FETCH_TOPIC_IDS_FROM: i16 = 13;

/// Produce v3–13.
pub(super) fn produce(x: &mut Exchange<'_>) -> Read<Answer> {
    let v = x.version;
    let transactional = x.nullable_string("transactional_id")?.is_some();
    if x.r.i16("acks")? == 0 {
        return Ok(Answer::Silent);
    }
    x.r.skip(4, "timeout_ms")?;
    let error = if transactional { TRANSACTIONAL_ID } else { TOPIC };
    let flexible = x.flexible();
    let by_id = v >= PRODUCE_TOPIC_IDS_FROM;
    x.topics("topic_data", by_id, "partition_data", |x| {
        let index = x.r.i32("index")?;
        x.r.nullable_bytes(flexible, "records")?;
        x.skip_tags("partition tagged fields")?;
        x.out.i32(index);
        x.out.error(error);
        x.out.i64(-1); // base_offset
        x.out.i64(-1); // log_append_time_ms
        if v >= 5 {
            x.out.i64(-1); // log_start_offset
        }
        if v >= 8 {
            x.out.array_len(0); // record_errors
            x.out.nullable_string(None); // error_message
        }
        x.out.tags();
        Ok(())
    })?;
    x.out.i32(0); // throttle_time_ms
    x.out.tags();
    Ok(Answer::Written)
}

/// Fetch v4–18: every partition refused, with no records. The request's
/// fields after its topics (forgotten topics, rack) are not needed.
pub(super) fn fetch(x: &mut Exchange<'_>) -> Read<Answer> {
    let v = x.version;
    if v <= 14 {
        x.r.skip(4, "replica_id")?;
    }
    x.r.skip(4 + 4 + 4 + 1, "max_wait_ms, min_bytes, max_bytes, isolation_level")?;
    if v >= 7 {
        x.r.skip(4 + 4, "session_id, session_epoch")?;
    }
    x.out.i32(0); // throttle_time_ms
    if v >= 7 {
        x.out.error(ErrorCode::NONE);
        x.out.i32(0); // session_id: no fetch session
    }
    x.topics("topics", v >= FETCH_TOPIC_IDS_FROM, "partitions", |x| {
        let index = x.r.i32("partition")?;
        let fixed =
            8 + 4 + if v >= 9 { 4 } else { 0 } + if v >= 12 { 4 } else { 0 } + if v >= 5 { 8 } else { 0 };
        x.r.skip(fixed, "partition fetch state")?;
        x.skip_tags("partition tagged fields")?;
        x.out.i32(index);
        x.out.error(TOPIC);
        x.out.i64(-1); // high_watermark
        x.out.i64(-1); // last_stable_offset
        if v >= 5 {
            x.out.i64(-1); // log_start_offset
        }
        x.out.array_len(0); // aborted_transactions
        if v >= 11 {
            x.out.i32(-1); // preferred_read_replica
        }
        x.out.empty_bytes(); // records
        x.out.tags();
        Ok(())
    })?;
    x.out.tags();
    Ok(Answer::Written)
}

/// InitProducerId v0–5.
pub(super) fn init_producer_id(x: &mut Exchange<'_>) -> Read<Answer> {
    let transactional = x.nullable_string("transactional_id")?.is_some();
    x.r.skip(4, "transaction_timeout_ms")?;
    if x.version >= 3 {
        x.r.skip(8 + 2, "producer_id, producer_epoch")?;
    }
    x.skip_tags("tagged fields")?;
    x.out.i32(0); // throttle_time_ms
    x.out.error(if transactional { TRANSACTIONAL_ID } else { ErrorCode::CLUSTER_AUTHORIZATION_FAILED });
    x.out.i64(-1); // producer_id
    x.out.i16(-1); // producer_epoch
    x.out.tags();
    Ok(Answer::Written)
}
