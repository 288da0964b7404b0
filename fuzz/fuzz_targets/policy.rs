//! Arbitrary bytes as the body of a forbidden request of every API the
//! policy refuses with its own response, at every version (and beyond):
//! refusing never panics, an answered request's response is bounded by the
//! request's size, and unanswerable versions are errors. Arbitrary bytes as
//! a Produce or Fetch response: raising its throttle never panics and
//! changes at most four bytes.
#![no_main]

use arbitrary::Arbitrary;
use kafka_proxy_core::api::ApiKey;
use kafka_proxy_core::fuzzing::{raise_throttle, refusable, refuse};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    api: u8,
    version: i8,
    throttle_ms: u32,
    body: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let apis = refusable();
    let (api, min, max) = apis[usize::from(input.api) % apis.len()];
    let version = i16::from(input.version);
    match refuse(api, version, &input.body) {
        Ok(Some(len)) => {
            assert!((min..=max).contains(&version));
            // Bounded by the refusal size limit (plus the last entity written).
            assert!(len <= 4 * 1024 * 1024 + 1024, "{api} v{version}: {len} bytes");
            assert!(len <= 512 + input.body.len() * 48, "{api} v{version}: {len} bytes from {}", input.body.len());
        }
        Ok(None) => assert_eq!(api, ApiKey(0), "only Produce (acks=0) goes unanswered"),
        Err(_) => {}
    }
    for api in [ApiKey(0), ApiKey(1)] {
        let mut body = input.body.clone();
        if raise_throttle(api, version, &mut body, input.throttle_ms) {
            let changed = body.iter().zip(&input.body).filter(|(a, b)| a != b).count();
            assert!(changed <= 4);
        } else {
            assert_eq!(body, input.body);
        }
    }
});
