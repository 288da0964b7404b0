//! The SCRAM primitives over SHA-256 / SHA-512: H, HMAC, Hi (PBKDF2) and the
//! derived keys, with results in a fixed-size [`Digest`] (no allocation).

use std::fmt;

use hmac::digest::Digest as _;
use hmac::{EagerHash, Hmac, KeyInit, Mac};
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::{ScramError, ScramMechanism};
use crate::sasl::secret::Secret;

/// Largest digest (SHA-512).
const MAX_DIGEST: usize = 64;

/// A hash or HMAC output: 32 bytes for SHA-256, 64 for SHA-512. `Debug` shows
/// only the length, as a digest is often a key.
#[derive(Clone, PartialEq, Eq)]
pub struct Digest {
    bytes: [u8; MAX_DIGEST],
    len: usize,
}

impl Digest {
    /// Copies `bytes` (at most 64).
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Digest> {
        let mut out = [0u8; MAX_DIGEST];
        out.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(Digest { bytes: out, len: bytes.len() })
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    /// `self XOR other` over the shorter length.
    pub(super) fn xor(&self, other: &[u8]) -> Digest {
        let mut out = self.clone();
        for (a, b) in out.bytes.iter_mut().zip(other).take(self.len) {
            *a ^= b;
        }
        out
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({} bytes)", self.len)
    }
}

fn copy(bytes: &[u8]) -> Digest {
    // Digest outputs are at most 64 bytes, so this never falls back.
    Digest::from_slice(bytes).unwrap_or(Digest { bytes: [0; MAX_DIGEST], len: 0 })
}

fn mac_with<D: EagerHash>(key: &[u8], parts: &[&[u8]]) -> Result<Digest, ScramError> {
    let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key).map_err(|_| ScramError::Hmac)?;
    for part in parts {
        mac.update(part);
    }
    Ok(copy(&mac.finalize().into_bytes()))
}

fn pbkdf2_with<D: EagerHash>(
    password: &[u8],
    salt: &[u8],
    rounds: u32,
    out: &mut [u8],
) -> Result<(), ScramError> {
    pbkdf2::pbkdf2::<Hmac<D>>(password, salt, rounds, out).map_err(|_| ScramError::Hmac)
}

/// `H(data)`.
pub(crate) fn hash(mechanism: ScramMechanism, data: &[u8]) -> Digest {
    match mechanism {
        ScramMechanism::Sha256 => copy(&Sha256::digest(data)),
        ScramMechanism::Sha512 => copy(&Sha512::digest(data)),
    }
}

/// `HMAC(key, parts[0] || parts[1] || ...)`.
pub(crate) fn hmac(mechanism: ScramMechanism, key: &[u8], parts: &[&[u8]]) -> Result<Digest, ScramError> {
    match mechanism {
        ScramMechanism::Sha256 => mac_with::<Sha256>(key, parts),
        ScramMechanism::Sha512 => mac_with::<Sha512>(key, parts),
    }
}

/// `SaltedPassword = Hi(password, salt, iterations)` (PBKDF2 with HMAC).
pub(super) fn salted_password(
    mechanism: ScramMechanism,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Result<Secret<Digest>, ScramError> {
    let mut out = [0u8; MAX_DIGEST];
    let len = mechanism.digest_len();
    let buf = out.get_mut(..len).ok_or(ScramError::Hmac)?;
    match mechanism {
        ScramMechanism::Sha256 => pbkdf2_with::<Sha256>(password, salt, iterations, buf)?,
        ScramMechanism::Sha512 => pbkdf2_with::<Sha512>(password, salt, iterations, buf)?,
    }
    Ok(Secret::new(Digest { bytes: out, len }))
}

/// `ClientKey = HMAC(SaltedPassword, "Client Key")`.
pub(super) fn client_key(mechanism: ScramMechanism, salted: &Digest) -> Result<Secret<Digest>, ScramError> {
    hmac(mechanism, salted.as_bytes(), &[b"Client Key"]).map(Secret::new)
}

/// `ServerKey = HMAC(SaltedPassword, "Server Key")`.
pub(super) fn server_key(mechanism: ScramMechanism, salted: &Digest) -> Result<Digest, ScramError> {
    hmac(mechanism, salted.as_bytes(), &[b"Server Key"])
}

/// Constant-time equality (lengths are public).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}
