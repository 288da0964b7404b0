//! Randomness for SCRAM nonces and salts, injectable so tests are deterministic.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

/// The random source failed (ring reports no detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomError;

impl fmt::Display for RandomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the system random source failed")
    }
}

impl std::error::Error for RandomError {}

/// Bytes of randomness in a SCRAM nonce (base64-encoded on the wire).
pub(crate) const NONCE_BYTES: usize = 24;

/// A source of cryptographically secure random bytes.
pub trait Random: Send + Sync + fmt::Debug {
    /// Fills `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError>;

    /// A fresh SCRAM nonce: printable ASCII without `,` (RFC 5802 `c-nonce`/`s-nonce`).
    /// The default is 24 random bytes in base64; tests override it to
    /// replay published vectors.
    fn scram_nonce(&self) -> Result<String, RandomError> {
        let mut raw = [0u8; NONCE_BYTES];
        self.fill(&mut raw)?;
        Ok(STANDARD_NO_PAD.encode(raw))
    }
}

/// The operating system's generator, through `ring`.
#[derive(Debug)]
pub struct SystemRandom(ring::rand::SystemRandom);

impl Default for SystemRandom {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemRandom {
    /// A handle on the system generator.
    pub fn new() -> Self {
        SystemRandom(ring::rand::SystemRandom::new())
    }
}

impl Random for SystemRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError> {
        ring::rand::SecureRandom::fill(&self.0, dest).map_err(|_| RandomError)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Mutex;

    use super::*;

    /// A deterministic generator for tests: a counter stream, and optionally
    /// fixed nonces handed out in order.
    #[derive(Debug, Default)]
    pub(crate) struct FixedRandom {
        state: Mutex<(u8, Vec<String>)>,
    }

    impl FixedRandom {
        pub(crate) fn new() -> Self {
            Self::default()
        }

        pub(crate) fn with_nonces(nonces: &[&str]) -> Self {
            let mut list: Vec<String> = nonces.iter().map(|s| (*s).to_owned()).collect();
            list.reverse();
            FixedRandom { state: Mutex::new((0, list)) }
        }
    }

    impl Random for FixedRandom {
        fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError> {
            let mut state = self.state.lock().map_err(|_| RandomError)?;
            for b in dest {
                state.0 = state.0.wrapping_add(1);
                *b = state.0;
            }
            Ok(())
        }

        fn scram_nonce(&self) -> Result<String, RandomError> {
            let next = self.state.lock().map_err(|_| RandomError)?.1.pop();
            match next {
                Some(n) => Ok(n),
                None => {
                    let mut raw = [0u8; NONCE_BYTES];
                    self.fill(&mut raw)?;
                    Ok(STANDARD_NO_PAD.encode(raw))
                }
            }
        }
    }

    #[test]
    fn system_nonces_are_printable_and_distinct() {
        let rng = SystemRandom::new();
        let a = rng.scram_nonce().expect("nonce");
        let b = rng.scram_nonce().expect("nonce");
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| (0x21..=0x7e).contains(&c) && c != b','));
    }
}
