//! Tests of the SaslHandshake / SaslAuthenticate codecs, with kafka-protocol as the oracle.

use bytes::Buf;
use kafka_protocol::messages::{
    RequestHeader, ResponseHeader, SaslAuthenticateRequest as KpAuthReq,
    SaslAuthenticateResponse as KpAuthResp, SaslHandshakeRequest as KpHsReq,
    SaslHandshakeResponse as KpHsResp,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use proptest::prelude::*;

use super::*;

/// Splits a frame into its size-checked payload.
fn payload(frame: &Bytes) -> Bytes {
    let mut f = frame.clone();
    let size = f.get_i32();
    assert_eq!(size as usize, f.len(), "size prefix matches");
    f
}

#[test]
fn handshake_request_round_trips_through_the_oracle() {
    for version in 0..=1 {
        let frame = SaslHandshakeRequest { mechanism: b"SCRAM-SHA-512" }.encode_frame(7, version, CLIENT_ID);
        let mut p = payload(&frame);
        let header = RequestHeader::decode(&mut p, 1).expect("header");
        assert_eq!(header.request_api_key, 17);
        assert_eq!(header.request_api_version, version);
        assert_eq!(header.correlation_id, 7);
        assert_eq!(header.client_id.as_deref(), Some(CLIENT_ID));
        let body = p.clone();
        let req = KpHsReq::decode(&mut p, version).expect("body");
        assert_eq!(req.mechanism.as_str(), "SCRAM-SHA-512");
        assert_eq!(
            SaslHandshakeRequest::decode(&body, version).map(|r| r.mechanism),
            Ok(&b"SCRAM-SHA-512"[..])
        );
    }
}

#[test]
fn authenticate_request_round_trips_through_the_oracle() {
    for version in 0..=2 {
        let frame = SaslAuthenticateRequest { auth_bytes: b"\0u\0p" }.encode_frame(-3, version, CLIENT_ID);
        let mut p = payload(&frame);
        let header_version = if version >= 2 { 2 } else { 1 };
        let header = RequestHeader::decode(&mut p, header_version).expect("header");
        assert_eq!((header.request_api_key, header.correlation_id), (36, -3));
        let body = p.clone();
        let req = KpAuthReq::decode(&mut p, version).expect("body");
        assert_eq!(&req.auth_bytes[..], b"\0u\0p");
        assert!(p.is_empty());
        assert_eq!(SaslAuthenticateRequest::decode(&body, version).map(|r| r.auth_bytes), Ok(&b"\0u\0p"[..]));
    }
}

#[test]
fn responses_decode_with_the_oracle() {
    let frame = SaslHandshakeResponse {
        error_code: ErrorCode::UNSUPPORTED_SASL_MECHANISM,
        mechanisms: vec![b"PLAIN", b"SCRAM-SHA-256"],
    }
    .encode_frame(9);
    let mut p = payload(&frame);
    assert_eq!(ResponseHeader::decode(&mut p, 0).expect("header").correlation_id, 9);
    let body = p.clone();
    let resp = KpHsResp::decode(&mut p, 1).expect("body");
    assert_eq!(resp.error_code, 33);
    let names: Vec<&str> = resp.mechanisms.iter().map(StrBytes::as_str).collect();
    assert_eq!(names, ["PLAIN", "SCRAM-SHA-256"]);
    let ours = SaslHandshakeResponse::decode(&body, 1).expect("ours");
    assert_eq!(ours.mechanisms, vec![&b"PLAIN"[..], b"SCRAM-SHA-256"]);

    for version in 0..=2 {
        let frame = SaslAuthenticateResponse {
            error_code: ErrorCode::SASL_AUTHENTICATION_FAILED,
            error_message: Some(b"nope"),
            auth_bytes: b"v=abc",
            session_lifetime_ms: 1234,
        }
        .encode_frame(11, version);
        let mut p = payload(&frame);
        let header_version = if version >= 2 { 1 } else { 0 };
        assert_eq!(ResponseHeader::decode(&mut p, header_version).expect("header").correlation_id, 11);
        let body = p.clone();
        let resp = KpAuthResp::decode(&mut p, version).expect("body");
        assert!(p.is_empty(), "v{version} fully consumed");
        assert_eq!(resp.error_code, 58);
        assert_eq!(resp.error_message.as_ref().map(StrBytes::as_str), Some("nope"));
        assert_eq!(&resp.auth_bytes[..], b"v=abc");
        let expected_lifetime = if version >= 1 { 1234 } else { 0 };
        assert_eq!(resp.session_lifetime_ms, expected_lifetime);
        let ours = SaslAuthenticateResponse::decode(&body, version).expect("ours");
        assert_eq!(ours.session_lifetime_ms, expected_lifetime);
        assert_eq!(ours.auth_bytes, b"v=abc");
    }
}

#[test]
fn oracle_encoded_requests_decode() {
    let mut req = KpAuthReq::default();
    req.auth_bytes = Bytes::from_static(b"n,,n=user,r=abc");
    for version in 0..=2 {
        let mut buf = BytesMut::new();
        req.encode(&mut buf, version).expect("encode");
        assert_eq!(
            SaslAuthenticateRequest::decode(&buf, version).map(|r| r.auth_bytes),
            Ok(&b"n,,n=user,r=abc"[..])
        );
    }
}

#[test]
fn versions_and_garbage_are_refused() {
    assert!(matches!(
        SaslHandshakeRequest::decode(&[0, 1, b'X'], 2),
        Err(DecodeError::UnsupportedVersion { version: 2, .. })
    ));
    assert!(matches!(
        SaslAuthenticateRequest::decode(&[0, 0, 0, 5, 1], 0),
        Err(DecodeError::Malformed { .. })
    ));
    assert!(matches!(
        SaslHandshakeRequest::decode(&[0, 1, b'X', 0], 1),
        Err(DecodeError::TrailingBytes { .. })
    ));
}

#[test]
fn authenticate_version_choice() {
    assert_eq!(pick_authenticate_version(None), Some(1));
    assert_eq!(pick_authenticate_version(Some((0, 5))), Some(2));
    assert_eq!(pick_authenticate_version(Some((0, 0))), Some(0));
    assert_eq!(pick_authenticate_version(Some((3, 5))), None);
}

#[test]
fn raw_tokens_are_size_prefixed() {
    assert_eq!(&raw_token_frame(b"abc")[..], &[0, 0, 0, 3, b'a', b'b', b'c']);
    assert_eq!(&raw_token_frame(b"")[..], &[0, 0, 0, 0]);
}

proptest! {
    #[test]
    fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64), version in -1i16..4) {
        let _ = SaslHandshakeRequest::decode(&data, version);
        let _ = SaslHandshakeResponse::decode(&data, version);
        let _ = SaslAuthenticateRequest::decode(&data, version);
        let _ = SaslAuthenticateResponse::decode(&data, version);
        let _ = split_response_header(&data, version > 1);
    }
}
