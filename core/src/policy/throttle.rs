//! Where a Produce or Fetch response carries `throttle_time_ms`, and setting
//! it: the proxy's throttle goes to the client in the broker's own field
//! (the larger of the two wins), as Kafka's broker sends its own (KIP-219).

use std::time::Duration;

use crate::api::ApiKey;
use crate::rewrite::reader::{Read, Reader};

/// The first Produce and Fetch versions whose responses carry `throttle_time_ms`.
const PRODUCE_THROTTLE_FROM: i16 = 1;
const FETCH_THROTTLE_FROM: i16 = 1;

/// The offset of `throttle_time_ms` in a response body (after the response
/// header) of `api` at `version`, when it has one. Fetch carries it first;
/// Produce after its responses, which are walked (no record data is in a
/// Produce response, so the walk is short).
pub(crate) fn offset(api: ApiKey, version: i16, body: &[u8]) -> Read<Option<usize>> {
    match api {
        ApiKey::FETCH if version >= FETCH_THROTTLE_FROM => Ok(Some(0)),
        ApiKey::PRODUCE if version >= PRODUCE_THROTTLE_FROM => produce_offset(version, body).map(Some),
        _ => Ok(None),
    }
}

/// Produce v1–13: Responses[]{Name | TopicId (13), PartitionResponses[]{Index,
/// ErrorCode, BaseOffset, LogAppendTimeMs (2+), LogStartOffset (5+),
/// RecordErrors[] (8+), ErrorMessage (8+)}}, then ThrottleTimeMs.
fn produce_offset(version: i16, body: &[u8]) -> Read<usize> {
    let flexible = version >= 9;
    let mut r = Reader::new(body);
    for _ in 0..r.array_len(flexible, "responses")? {
        if version >= 13 {
            r.skip(16, "topic_id")?;
        } else {
            r.string(flexible, "topic name")?;
        }
        for _ in 0..r.array_len(flexible, "partition_responses")? {
            let fixed = 4 + 2 + 8 + if version >= 2 { 8 } else { 0 } + if version >= 5 { 8 } else { 0 };
            r.skip(fixed, "partition response")?;
            if version >= 8 {
                for _ in 0..r.array_len(flexible, "record_errors")? {
                    r.skip(4, "batch_index")?;
                    r.nullable_string(flexible, "batch_index_error_message")?;
                    r.skip_tagged_fields_if(flexible, "record error tagged fields")?;
                }
                r.nullable_string(flexible, "error_message")?;
            }
            r.skip_tagged_fields_if(flexible, "partition tagged fields")?;
        }
        r.skip_tagged_fields_if(flexible, "topic tagged fields")?;
    }
    let at = r.offset();
    r.skip(4, "throttle_time_ms")?;
    Ok(at)
}

/// Raises the `throttle_time_ms` at `at` in `body` to `throttle` (never
/// lowers the broker's own); false when `at` is not inside `body`.
pub(crate) fn raise(body: &mut [u8], at: usize, throttle: Duration) -> bool {
    let Some(field) = body.get_mut(at..).and_then(|rest| rest.first_chunk_mut::<4>()) else { return false };
    let ours = i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX);
    let theirs = i32::from_be_bytes(*field);
    *field = ours.max(theirs).to_be_bytes();
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::produce_response::{
        BatchIndexAndErrorMessage, PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::{FetchResponse, TopicName};
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    fn produce_response(throttle: i32) -> ProduceResponse {
        let mut error = BatchIndexAndErrorMessage::default();
        error.batch_index = 3;
        error.batch_index_error_message = Some(StrBytes::from_static_str("bad"));
        let mut partition = PartitionProduceResponse::default();
        partition.index = 7;
        partition.base_offset = 42;
        partition.log_start_offset = 1;
        let mut topic = TopicProduceResponse::default();
        topic.name = TopicName(StrBytes::from_static_str("orders"));
        topic.partition_responses = vec![partition.clone(), partition];
        let mut r = ProduceResponse::default();
        r.responses = vec![topic.clone(), topic];
        r.throttle_time_ms = throttle;
        r
    }

    #[test]
    fn produce_throttle_is_found_and_raised_at_every_version() {
        for version in 3..=13i16 {
            let mut response = produce_response(250);
            if version >= 8 {
                for t in &mut response.responses {
                    for p in &mut t.partition_responses {
                        p.record_errors = vec![BatchIndexAndErrorMessage::default()];
                        p.error_message = Some(StrBytes::from_static_str("oops"));
                    }
                }
            }
            let mut body = BytesMut::new();
            response.encode(&mut body, version).expect("encode");
            let at = offset(ApiKey::PRODUCE, version, &body).expect("walks").expect("has one");
            assert!(raise(&mut body, at, Duration::from_millis(900)));
            let decoded = ProduceResponse::decode(&mut body.clone().freeze(), version).expect("decode");
            assert_eq!(decoded.throttle_time_ms, 900, "v{version}");
            assert!(raise(&mut body, at, Duration::from_millis(10)));
            let decoded = ProduceResponse::decode(&mut body.freeze(), version).expect("decode");
            assert_eq!(decoded.throttle_time_ms, 900, "v{version}: the larger throttle wins");
        }
    }

    #[test]
    fn fetch_throttle_comes_first() {
        let mut response = FetchResponse::default();
        response.throttle_time_ms = 5;
        let mut body = BytesMut::new();
        response.encode(&mut body, 12).expect("encode");
        assert_eq!(offset(ApiKey::FETCH, 12, &body), Ok(Some(0)));
        assert!(raise(&mut body, 0, Duration::from_secs(2)));
        assert_eq!(FetchResponse::decode(&mut body.freeze(), 12).expect("decode").throttle_time_ms, 2000);
        assert_eq!(offset(ApiKey::FETCH, 0, &[]), Ok(None));
        assert_eq!(offset(ApiKey::METADATA, 12, &[]), Ok(None));
        assert!(!raise(&mut [0u8; 3], 0, Duration::from_secs(1)));
    }

    #[test]
    fn truncated_produce_responses_are_faults() {
        let mut body = BytesMut::new();
        produce_response(0).encode(&mut body, 9).expect("encode");
        for cut in 0..body.len() - 1 {
            if body.len() - cut > 1 {
                assert!(offset(ApiKey::PRODUCE, 9, &body[..cut]).is_err(), "cut at {cut}");
            }
        }
    }
}
