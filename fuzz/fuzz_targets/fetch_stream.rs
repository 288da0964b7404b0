//! Arbitrary bytes as a Fetch v16–18 response body, fed to the streaming
//! walker in arbitrary pieces (as the session does: forwarded bytes removed,
//! the rest kept, more appended): it never panics, never forwards past the
//! body, and a completed stream has exactly the body's length.
#![no_main]

use std::borrow::Cow;

use arbitrary::Arbitrary;
use kafka_proxy_core::fuzzing::{AddressMap, Advertised, Body, FetchStream};
use libfuzzer_sys::fuzz_target;

/// Advertises even node ids under a short name, refuses odd ones.
struct Map;

impl AddressMap for Map {
    fn advertised(&self, node_id: i32, _host: &str, _port: i32) -> Option<Advertised<'_>> {
        (node_id % 2 == 0).then(|| Advertised { host: Cow::Borrowed("p"), port: 1 })
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    version: u8,
    cuts: Vec<u16>,
    body: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let version = 16 + i16::from(input.version % 3);
    let Ok(mut stream) = FetchStream::new(version, input.body.len()) else { return };
    let mut pending: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut out = 0usize;
    let mut cuts = input.cuts.iter().map(|c| usize::from(*c).max(1)).chain(std::iter::repeat(usize::MAX));
    for _ in 0..10_000 {
        if fed < input.body.len() {
            let n = cuts.next().unwrap_or(usize::MAX).min(input.body.len() - fed);
            pending.extend_from_slice(&input.body[fed..fed + n]);
            fed += n;
        }
        if stream.at_tail() {
            match stream.rewrite_tail(&pending, &Map) {
                Ok(Some(rewrite)) => {
                    let tail = stream.tail_len().expect("at the tail");
                    let new_len = match &rewrite.body {
                        Body::Unchanged => tail,
                        Body::Spliced { front, new, back } => front.len() + new.len() + back.len(),
                    };
                    assert_eq!(new_len, tail, "the tail keeps its length");
                    out += new_len;
                    assert_eq!(out, input.body.len(), "a completed stream is exactly the body");
                    return;
                }
                Ok(None) if fed < input.body.len() => continue,
                Ok(None) | Err(_) => return,
            }
        }
        match stream.advance(&pending) {
            Ok(n) => {
                assert!(n <= pending.len());
                pending.drain(..n);
                out += n;
                assert!(out <= input.body.len(), "never past the body");
                if n == 0 && fed == input.body.len() && !stream.at_tail() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
});
