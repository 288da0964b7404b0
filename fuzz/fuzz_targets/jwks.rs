//! JWKS documents as an identity provider's endpoint may serve them, and
//! tokens checked against what they yield: arbitrary bytes never panic,
//! and a key set, once parsed, is never empty.
#![no_main]
use std::time::{Duration, UNIX_EPOCH};

use kafka_proxy_core::sasl::oauthbearer::{JwtRules, JwtValidator, KeySet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte splits the input: a JWKS document, then a token.
    let Some((&split, rest)) = data.split_first() else { return };
    let cut = usize::from(split).min(rest.len()) * rest.len() / 256;
    let (document, token) = rest.split_at(cut.min(rest.len()));
    let Ok(text) = std::str::from_utf8(document) else { return };
    let Ok(keys) = KeySet::from_jwks(text) else { return };
    assert!(!keys.keys().is_empty(), "a parsed key set holds a key");
    let validator = JwtValidator::new(keys, JwtRules::default());
    if let Ok(token) = std::str::from_utf8(token) {
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let _ = kafka_proxy_core::fuzzing::validate_token(&validator, token, wall);
    }
});
