//! Request and response header peeks.
//!
//! Every request starts `RequestApiKey int16, RequestApiVersion int16,
//! CorrelationId int32`, whatever its header version; `ClientId` (v1+, a
//! classic nullable string even in flexible v2) and the v2 tagged fields
//! follow. Responses start with the correlation id only. The proxy reads
//! these fixed prefixes for every frame and the full header only where it
//! must look into the body.

use crate::api::{self, ApiKey};
use crate::wire;

/// The fixed prefix of every request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestHeader {
    /// The API.
    pub api_key: ApiKey,
    /// The API version.
    pub api_version: i16,
    /// The id the response will carry.
    pub correlation_id: i32,
}

/// Why a header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// The frame ends inside the header.
    Truncated,
    /// The header's client id or tagged fields do not decode.
    Malformed,
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::Truncated => f.write_str("frame ends inside the header"),
            HeaderError::Malformed => f.write_str("malformed header"),
        }
    }
}

impl std::error::Error for HeaderError {}

/// Reads the fixed request-header prefix from a frame body.
pub(crate) fn peek_request(body: &[u8]) -> Result<RequestHeader, HeaderError> {
    let fixed = body.first_chunk::<8>().ok_or(HeaderError::Truncated)?;
    let [k0, k1, v0, v1, c0, c1, c2, c3] = *fixed;
    Ok(RequestHeader {
        api_key: ApiKey(i16::from_be_bytes([k0, k1])),
        api_version: i16::from_be_bytes([v0, v1]),
        correlation_id: i32::from_be_bytes([c0, c1, c2, c3]),
    })
}

/// Length of a request header v1 (`flexible == false`) or v2 (`true`),
/// i.e. where the request body starts.
pub(crate) fn request_header_len(body: &[u8], flexible: bool) -> Result<usize, HeaderError> {
    let rest = body.get(8..).ok_or(HeaderError::Truncated)?;
    let (rest, _client_id) = wire::nullable_string(rest, false).map_err(|_| HeaderError::Malformed)?;
    let (rest, _) = wire::tagged_fields_if(rest, flexible).map_err(|_| HeaderError::Malformed)?;
    Ok(body.len() - rest.len())
}

/// The client id of a request header v1+ (`None` when null, empty or
/// malformed); every request header but ControlledShutdown v0's has one.
pub(crate) fn client_id(body: &[u8]) -> Option<&[u8]> {
    let rest = body.get(8..)?;
    let (_, id) = wire::nullable_string(rest, false).ok()?;
    id.filter(|id| !id.is_empty())
}

/// The correlation id at the front of a response body.
pub(crate) fn peek_response(body: &[u8]) -> Result<i32, HeaderError> {
    body.first_chunk::<4>().map(|c| i32::from_be_bytes(*c)).ok_or(HeaderError::Truncated)
}

/// Length of a response header v0 (`tagged == false`) or v1 (`true`).
pub(crate) fn response_header_len(body: &[u8], tagged: bool) -> Result<usize, HeaderError> {
    let rest = body.get(4..).ok_or(HeaderError::Truncated)?;
    let (rest, _) = wire::tagged_fields_if(rest, tagged).map_err(|_| HeaderError::Malformed)?;
    Ok(body.len() - rest.len())
}

/// The `Acks` of a Produce request (`body` is the whole frame body, header
/// included). `acks == 0` requests get no response.
pub(crate) fn produce_acks(body: &[u8], version: i16) -> Result<i16, HeaderError> {
    let produce = api::decoded(ApiKey::PRODUCE).ok_or(HeaderError::Malformed)?;
    let flexible = api::is_flexible(produce, version);
    let start = request_header_len(body, flexible)?;
    let rest = body.get(start..).ok_or(HeaderError::Truncated)?;
    let rest = if version >= 3 {
        wire::nullable_string(rest, flexible).map_err(|_| HeaderError::Truncated)?.0
    } else {
        rest
    };
    wire::i16(rest).map(|(_, acks)| acks).map_err(|_| HeaderError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn request(api: i16, version: i16, corr: i32, client: Option<&[u8]>, flexible: bool) -> Vec<u8> {
        let mut v = Vec::new();
        v.put_i16(api);
        v.put_i16(version);
        v.put_i32(corr);
        wire::put_nullable_string(&mut v, false, client);
        wire::put_empty_tagged_fields_if(&mut v, flexible);
        v
    }

    #[test]
    fn peeks_fixed_prefix() {
        let body = request(3, 12, 77, Some(b"rdkafka"), true);
        let h = peek_request(&body).expect("valid");
        assert_eq!(h, RequestHeader { api_key: ApiKey::METADATA, api_version: 12, correlation_id: 77 });
        assert_eq!(request_header_len(&body, true), Ok(body.len()));
        assert_eq!(request_header_len(&body[..body.len() - 1], true), Err(HeaderError::Malformed));
        assert_eq!(peek_request(&body[..7]), Err(HeaderError::Truncated));
    }

    #[test]
    fn produce_acks_in_every_layout() {
        // v0–v2: acks first.
        let mut v2 = request(0, 2, 1, None, false);
        v2.put_i16(-1);
        assert_eq!(produce_acks(&v2, 2), Ok(-1));
        // v3–v8: transactional id (classic), then acks.
        let mut v8 = request(0, 8, 1, Some(b"c"), false);
        wire::put_nullable_string(&mut v8, false, Some(b"txn"));
        v8.put_i16(0);
        assert_eq!(produce_acks(&v8, 8), Ok(0));
        // v9+: flexible header and compact transactional id.
        let mut v9 = request(0, 11, 1, Some(b"c"), true);
        wire::put_nullable_string(&mut v9, true, None);
        v9.put_i16(1);
        assert_eq!(produce_acks(&v9, 11), Ok(1));
        assert_eq!(produce_acks(&v9[..v9.len() - 1], 11), Err(HeaderError::Truncated));
    }

    #[test]
    fn response_headers() {
        let body = [0, 0, 0, 9, 0, 1, 2];
        assert_eq!(peek_response(&body), Ok(9));
        assert_eq!(response_header_len(&body, false), Ok(4));
        assert_eq!(response_header_len(&body, true), Ok(5));
        assert_eq!(peek_response(&body[..3]), Err(HeaderError::Truncated));
    }
}
