//! SaslHandshake (v0–1) and SaslAuthenticate (v0–2) codecs.
//!
//! Requests are decoded from the body that follows the request header (the
//! session parses headers and hands over a [`RequestRef`]); responses and the
//! proxy's own requests are encoded as complete frames (`int32` size, header,
//! body) in one buffer, ready to transmit. SaslAuthenticate v2 is flexible:
//! request header v2 and response header v1, both with tagged fields.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::api::{ApiKey, ErrorCode};
use crate::wire;

/// The client id the proxy puts in its own requests to brokers.
pub(crate) const CLIENT_ID: &str = "kafka-proxy";

/// Highest SaslHandshake version understood (v1 introduced SaslAuthenticate framing).
pub(crate) const HANDSHAKE_MAX_VERSION: i16 = 1;

/// Highest SaslAuthenticate version understood (v1: `SessionLifetimeMs`, v2: flexible).
pub(crate) const AUTHENTICATE_MAX_VERSION: i16 = 2;

/// First flexible SaslAuthenticate version.
const AUTHENTICATE_FLEXIBLE_FROM: i16 = 2;

/// A request as the session hands it over: the header fields it parsed and the
/// body that follows the header (including, for flexible versions, the body's
/// trailing tagged fields, but not the header's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(fuzzing), expect(unreachable_pub, reason = "public through the cfg(fuzzing) facade"))]
pub struct RequestRef<'a> {
    /// `RequestApiKey`.
    pub api_key: ApiKey,
    /// `RequestApiVersion`.
    pub version: i16,
    /// `CorrelationId`, echoed in the response.
    pub correlation_id: i32,
    /// The bytes after the request header.
    pub body: &'a [u8],
}

/// Why a SASL message could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// A version this codec does not know.
    UnsupportedVersion {
        /// The API.
        api_key: ApiKey,
        /// The version received.
        version: i16,
    },
    /// The body ended early or held an invalid length.
    Malformed {
        /// The API.
        api_key: ApiKey,
        /// The field being read.
        field: &'static str,
    },
    /// Bytes were left after the last field of a request.
    TrailingBytes {
        /// The API.
        api_key: ApiKey,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnsupportedVersion { api_key, version } => {
                write!(f, "unsupported version {version} of {api_key}")
            }
            DecodeError::Malformed { api_key, field } => write!(f, "malformed {api_key}: bad {field}"),
            DecodeError::TrailingBytes { api_key } => write!(f, "malformed {api_key}: trailing bytes"),
        }
    }
}

impl std::error::Error for DecodeError {}

fn malformed(
    api_key: ApiKey,
    field: &'static str,
) -> impl FnOnce(nom::Err<nom::error::Error<&[u8]>>) -> DecodeError {
    move |_| DecodeError::Malformed { api_key, field }
}

fn check_version(api_key: ApiKey, version: i16, max: i16) -> Result<(), DecodeError> {
    if (0..=max).contains(&version) {
        Ok(())
    } else {
        Err(DecodeError::UnsupportedVersion { api_key, version })
    }
}

fn authenticate_flexible(version: i16) -> bool {
    version >= AUTHENTICATE_FLEXIBLE_FROM
}

/// Starts a frame: a size placeholder, filled in by [`finish_frame`].
fn start_frame(capacity: usize) -> BytesMut {
    let mut buf = BytesMut::with_capacity(capacity + 4);
    buf.put_i32(0);
    buf
}

/// Writes the frame size into the placeholder and freezes the frame.
fn finish_frame(mut buf: BytesMut) -> Bytes {
    let size = i32::try_from(buf.len().saturating_sub(4)).unwrap_or(i32::MAX);
    if let Some(prefix) = buf.get_mut(..4) {
        prefix.copy_from_slice(&size.to_be_bytes());
    }
    buf.freeze()
}

/// Writes a request header: v1 (`ClientId` as a classic nullable string) or,
/// when `flexible`, v2 (the same plus an empty tagged-field buffer).
fn put_request_header(
    buf: &mut BytesMut,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    flexible: bool,
) {
    buf.put_i16(api_key.0);
    buf.put_i16(version);
    buf.put_i32(correlation_id);
    // ClientId keeps its int16 length even in header v2 (KIP-482, for ApiVersions).
    wire::put_nullable_string(buf, false, Some(client_id.as_bytes()));
    wire::put_empty_tagged_fields_if(buf, flexible);
}

/// Writes a response header: v0 (correlation id) or, when `flexible`, v1.
fn put_response_header(buf: &mut BytesMut, correlation_id: i32, flexible: bool) {
    buf.put_i32(correlation_id);
    wire::put_empty_tagged_fields_if(buf, flexible);
}

/// A raw SASL token as exchanged after SaslHandshake v0: a size prefix and the
/// token, no Kafka header.
pub(crate) fn raw_token_frame(token: &[u8]) -> Bytes {
    let mut buf = start_frame(token.len());
    buf.put_slice(token);
    finish_frame(buf)
}

/// `SaslHandshakeRequest` (v0–1): the mechanism the client wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SaslHandshakeRequest<'a> {
    /// `Mechanism`, as sent (Kafka compares names byte for byte).
    pub mechanism: &'a [u8],
}

impl<'a> SaslHandshakeRequest<'a> {
    /// Decodes the request body at `version`.
    pub(crate) fn decode(body: &'a [u8], version: i16) -> Result<Self, DecodeError> {
        let key = ApiKey::SASL_HANDSHAKE;
        check_version(key, version, HANDSHAKE_MAX_VERSION)?;
        let (rest, mechanism) = wire::string(body, false).map_err(malformed(key, "Mechanism"))?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes { api_key: key });
        }
        Ok(SaslHandshakeRequest { mechanism })
    }

    /// Encodes a complete request frame (header v1).
    pub(crate) fn encode_frame(&self, correlation_id: i32, version: i16, client_id: &str) -> Bytes {
        let mut buf = start_frame(10 + client_id.len() + 2 + self.mechanism.len());
        put_request_header(&mut buf, ApiKey::SASL_HANDSHAKE, version, correlation_id, client_id, false);
        wire::put_string(&mut buf, false, self.mechanism);
        finish_frame(buf)
    }
}

/// `SaslHandshakeResponse` (v0–1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SaslHandshakeResponse<'a> {
    /// `ErrorCode`: 0, 33 (unsupported mechanism) or 34 (illegal state).
    pub error_code: ErrorCode,
    /// `Mechanisms`: what the broker has enabled.
    pub mechanisms: Vec<&'a [u8]>,
}

impl<'a> SaslHandshakeResponse<'a> {
    /// Decodes the response body (after the v0 response header) at `version`.
    pub(crate) fn decode(body: &'a [u8], version: i16) -> Result<Self, DecodeError> {
        let key = ApiKey::SASL_HANDSHAKE;
        check_version(key, version, HANDSHAKE_MAX_VERSION)?;
        let (rest, error_code) = wire::i16(body).map_err(malformed(key, "ErrorCode"))?;
        let (mut rest, count) = wire::array_len(rest, false).map_err(malformed(key, "Mechanisms"))?;
        let mut mechanisms = Vec::with_capacity(count);
        for _ in 0..count {
            let (r, m) = wire::string(rest, false).map_err(malformed(key, "Mechanisms"))?;
            mechanisms.push(m);
            rest = r;
        }
        Ok(SaslHandshakeResponse { error_code: ErrorCode(error_code), mechanisms })
    }

    /// Encodes a complete response frame (header v0).
    pub(crate) fn encode_frame(&self, correlation_id: i32) -> Bytes {
        let names: usize = self.mechanisms.iter().map(|m| 2 + m.len()).sum();
        let mut buf = start_frame(4 + 2 + 4 + names);
        put_response_header(&mut buf, correlation_id, false);
        buf.put_i16(self.error_code.0);
        wire::put_array_len(&mut buf, false, Some(self.mechanisms.len()));
        for m in &self.mechanisms {
            wire::put_string(&mut buf, false, m);
        }
        finish_frame(buf)
    }
}

/// `SaslAuthenticateRequest` (v0–2): one SASL token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SaslAuthenticateRequest<'a> {
    /// `AuthBytes`: the mechanism's token (may hold a secret).
    pub auth_bytes: &'a [u8],
}

impl<'a> SaslAuthenticateRequest<'a> {
    /// Decodes the request body at `version`.
    pub(crate) fn decode(body: &'a [u8], version: i16) -> Result<Self, DecodeError> {
        let key = ApiKey::SASL_AUTHENTICATE;
        check_version(key, version, AUTHENTICATE_MAX_VERSION)?;
        let flexible = authenticate_flexible(version);
        let (rest, auth_bytes) = wire::bytes(body, flexible).map_err(malformed(key, "AuthBytes"))?;
        let (rest, _) = wire::tagged_fields_if(rest, flexible).map_err(malformed(key, "TaggedFields"))?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes { api_key: key });
        }
        Ok(SaslAuthenticateRequest { auth_bytes })
    }

    /// Encodes a complete request frame (header v1, or v2 for flexible versions).
    pub(crate) fn encode_frame(&self, correlation_id: i32, version: i16, client_id: &str) -> Bytes {
        let flexible = authenticate_flexible(version);
        let mut buf = start_frame(11 + client_id.len() + 5 + self.auth_bytes.len() + 1);
        put_request_header(&mut buf, ApiKey::SASL_AUTHENTICATE, version, correlation_id, client_id, flexible);
        wire::put_bytes(&mut buf, flexible, self.auth_bytes);
        wire::put_empty_tagged_fields_if(&mut buf, flexible);
        finish_frame(buf)
    }
}

/// `SaslAuthenticateResponse` (v0–2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SaslAuthenticateResponse<'a> {
    /// `ErrorCode`: 0, or 58 when authentication failed.
    pub error_code: ErrorCode,
    /// `ErrorMessage`: safe to show the client, never a secret.
    pub error_message: Option<&'a [u8]>,
    /// `AuthBytes`: the server's token.
    pub auth_bytes: &'a [u8],
    /// `SessionLifetimeMs` (v1+; 0 = no limit). Ignored when encoding v0.
    pub session_lifetime_ms: i64,
}

impl<'a> SaslAuthenticateResponse<'a> {
    /// Decodes the response body (after the response header: v0, or v1 for v2) at `version`.
    pub(crate) fn decode(body: &'a [u8], version: i16) -> Result<Self, DecodeError> {
        let key = ApiKey::SASL_AUTHENTICATE;
        check_version(key, version, AUTHENTICATE_MAX_VERSION)?;
        let flexible = authenticate_flexible(version);
        let (rest, error_code) = wire::i16(body).map_err(malformed(key, "ErrorCode"))?;
        let (rest, error_message) =
            wire::nullable_string(rest, flexible).map_err(malformed(key, "ErrorMessage"))?;
        let (rest, auth_bytes) = wire::bytes(rest, flexible).map_err(malformed(key, "AuthBytes"))?;
        let (rest, session_lifetime_ms) = if version >= 1 {
            wire::i64(rest).map_err(malformed(key, "SessionLifetimeMs"))?
        } else {
            (rest, 0)
        };
        wire::tagged_fields_if(rest, flexible).map_err(malformed(key, "TaggedFields"))?;
        Ok(SaslAuthenticateResponse {
            error_code: ErrorCode(error_code),
            error_message,
            auth_bytes,
            session_lifetime_ms,
        })
    }

    /// Encodes a complete response frame (header v0, or v1 for flexible versions).
    pub(crate) fn encode_frame(&self, correlation_id: i32, version: i16) -> Bytes {
        let flexible = authenticate_flexible(version);
        let message_len = self.error_message.map_or(0, <[u8]>::len);
        let mut buf = start_frame(5 + 2 + 5 + message_len + 5 + self.auth_bytes.len() + 8 + 1);
        put_response_header(&mut buf, correlation_id, flexible);
        buf.put_i16(self.error_code.0);
        wire::put_nullable_string(&mut buf, flexible, self.error_message);
        wire::put_bytes(&mut buf, flexible, self.auth_bytes);
        if version >= 1 {
            buf.put_i64(self.session_lifetime_ms);
        }
        wire::put_empty_tagged_fields_if(&mut buf, flexible);
        finish_frame(buf)
    }
}

/// The highest SaslAuthenticate version both the proxy and a broker support,
/// given the broker's ApiVersions range; v1 when the range is unknown. `None`
/// when the ranges do not meet.
pub(crate) fn pick_authenticate_version(broker_range: Option<(i16, i16)>) -> Option<i16> {
    match broker_range {
        None => Some(1),
        Some((min, max)) => {
            let best = max.min(AUTHENTICATE_MAX_VERSION);
            (best >= min.max(0)).then_some(best)
        }
    }
}

/// The correlation id and the rest of a response frame (without its size),
/// given the response header version (`flexible` = header v1).
#[cfg(test)]
pub(crate) fn split_response_header(frame: &[u8], flexible: bool) -> Result<(i32, &[u8]), DecodeError> {
    let bad = |_| DecodeError::Malformed { api_key: ApiKey(-1), field: "ResponseHeader" };
    let (rest, correlation_id) = wire::i32(frame).map_err(bad)?;
    let (rest, _) = wire::tagged_fields_if(rest, flexible).map_err(bad)?;
    Ok((correlation_id, rest))
}

/// True when SaslAuthenticate `version` uses response header v1.
pub(crate) fn authenticate_response_header_flexible(version: i16) -> bool {
    authenticate_flexible(version)
}

#[cfg(test)]
mod tests;
