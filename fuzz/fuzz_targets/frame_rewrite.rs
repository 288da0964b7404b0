//! Arbitrary bytes as a broker response stream for an arbitrary API and
//! version: framing and rewriting never panic, a rewritten body is exactly
//! as long as the rewriter said, and rewriting is stable (a rewritten body
//! rewrites to itself).
#![no_main]

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use kafka_proxy_core::api::ApiKey;
use kafka_proxy_core::fuzzing::{
    AddressMap, Advertised, ApiVersionsPolicy, ApiVersionsView, Body, FrameDecoder, max_version,
    needs_rewrite, rewrite_api_versions, rewrite_response,
};
use libfuzzer_sys::fuzz_target;

/// Advertises even node ids as `proxy:(20000 + id)` and refuses odd ones.
struct Map;

impl AddressMap for Map {
    fn advertised(&self, node_id: i32, _host: &str, _port: i32) -> Option<Advertised<'_>> {
        (node_id % 2 == 0).then(|| Advertised { host: Cow::Borrowed("proxy"), port: 20_000i32.wrapping_add(node_id) })
    }
}

const APIS: [ApiKey; 6] = [
    ApiKey::METADATA,
    ApiKey::FIND_COORDINATOR,
    ApiKey::DESCRIBE_CLUSTER,
    ApiKey::PRODUCE,
    ApiKey::FETCH,
    ApiKey::API_VERSIONS,
];

fn flatten(body: &Body, original: &Bytes) -> Bytes {
    match body {
        Body::Unchanged => original.clone(),
        Body::Spliced { front, new, back } => {
            let mut out = BytesMut::with_capacity(front.len() + new.len() + back.len());
            out.extend_from_slice(front);
            out.extend_from_slice(new);
            out.extend_from_slice(back);
            out.freeze()
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [selector, version, stream @ ..] = data else { return };
    let api = APIS[usize::from(*selector) % APIS.len()];
    let max = max_version(api).unwrap_or(0);
    let version = i16::from(*version) % (max + 2);
    let decoder = FrameDecoder::new(64 * 1024);
    let mut buf = BytesMut::from(stream);
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        let body = frame.slice(4..);
        if api == ApiKey::API_VERSIONS {
            if let Ok(out) = rewrite_api_versions(version, &body, &ApiVersionsPolicy::terminating_sasl()) {
                let view = ApiVersionsView::parse(version, &out);
                assert!(view.is_ok() || ApiVersionsView::parse(0, &out).is_ok(), "our own output must parse");
            }
            continue;
        }
        let _ = needs_rewrite(api, version);
        if let Ok(result) = rewrite_response(api, version, &body, &Map) {
            let out = flatten(&result.body, &body);
            assert_eq!(out.len(), result.body.len(body.len()), "length as computed");
            let again = rewrite_response(api, version, &out, &Map).expect("our own output must rewrite");
            assert_eq!(flatten(&again.body, &out), out, "rewriting is stable");
        }
    }
});
