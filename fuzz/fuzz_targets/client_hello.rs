//! The ClientHello SNI peek on arbitrary bytes: never panics, only ever
//! reports a valid lower-case DNS name, and once a prefix of the input is
//! decided, more bytes never change the answer.
#![no_main]
use kafka_proxy_core::fuzzing::{SniPeek, peek_sni};
use libfuzzer_sys::fuzz_target;

/// An independent check of what `peek_sni` promises a name is: lower-case
/// ASCII labels of 1..=63 letters, digits, '-' or '_', not starting or ending
/// with '-', 253 bytes at most, no trailing dot.
fn is_dns_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        })
}

fuzz_target!(|data: &[u8]| {
    let whole = peek_sni(data);
    if let SniPeek::Sni(name) = &whole {
        assert!(is_dns_name(name), "invalid name {name:?}");
    }
    for cut in [data.len() / 2, data.len().saturating_sub(1)] {
        let Some(prefix) = data.get(..cut) else { continue };
        let early = peek_sni(prefix);
        if early != SniPeek::NeedMore {
            assert_eq!(early, whole, "a decided prefix changed its answer");
        }
    }
});
