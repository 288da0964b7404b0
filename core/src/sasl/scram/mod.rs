//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), both sides.
//!
//! Kafka's profile: no channel binding (`n,,` / `c=biws`), an authzid is
//! allowed only when it equals the user, the `tokenauth` extension (delegation
//! tokens) is refused, at least 4096 iterations. Keys are compared in
//! constant time. The server side needs no PBKDF2 work per login: it keeps
//! `StoredKey`/`ServerKey` only.

mod attributes;
mod client;
pub(crate) mod crypto;
mod server;

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

pub(crate) use attributes::unescape_username;
pub(crate) use client::{ScramClient, ScramClientFinalSent, ScramClientFirstSent};
pub use crypto::Digest;
pub(crate) use server::{ScramLookup, ScramServer, ScramServerFirstSent};

use super::random::{Random, RandomError};
use super::secret::Secret;

/// Kafka's (and RFC 7677's) minimum iteration count.
pub(crate) const MIN_ITERATIONS: u32 = 4096;

/// Largest iteration count the proxy accepts: Kafka parses `i=` as a signed
/// 32-bit integer, and a client must not let a broker make it spin forever.
pub(crate) const MAX_ITERATIONS: u32 = i32::MAX as u32;

/// Largest iteration count the proxy's client computes for a broker: bounds
/// the CPU a hostile broker can make the proxy spend per connection.
pub(crate) const MAX_CLIENT_ITERATIONS: u32 = 100_000;

/// Bytes of salt generated for passwords hashed at load.
pub(crate) const SALT_LEN: usize = 32;

/// The hash function of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    /// `SCRAM-SHA-256`.
    Sha256,
    /// `SCRAM-SHA-512`.
    Sha512,
}

impl ScramMechanism {
    /// Both mechanisms.
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// Output size of the hash, and so of every key and proof.
    pub(crate) fn digest_len(self) -> usize {
        match self {
            ScramMechanism::Sha256 => 32,
            ScramMechanism::Sha512 => 64,
        }
    }
}

impl fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that can go wrong in a SCRAM exchange or with a credential.
/// Variants carry no secret; they are for logs, never for the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramError {
    /// A message did not follow RFC 5802's grammar.
    Malformed {
        /// Which message.
        message: &'static str,
        /// What was wrong.
        detail: &'static str,
    },
    /// The client asked for channel binding (`y`/`p=`); only `n` is supported.
    ChannelBindingUnsupported,
    /// `c=` did not repeat the GS2 header of the first message.
    ChannelBindingMismatch,
    /// A mandatory extension (`m=`) was present.
    MandatoryExtension,
    /// Kafka's `tokenauth` (delegation token) extension was requested.
    TokenAuthRefused,
    /// The authzid differed from the user name.
    AuthzidMismatch,
    /// No credential for this user and mechanism (the exchange ran with a fake one).
    UnknownUser,
    /// The client proof did not match the stored key.
    InvalidProof,
    /// The nonce in a later message did not extend the first one.
    NonceMismatch,
    /// The iteration count is outside `MIN_ITERATIONS..=limit`.
    Iterations {
        /// The count received or configured.
        iterations: u32,
    },
    /// A stored or server key had the wrong length for the mechanism.
    KeyLength {
        /// The length found.
        len: usize,
    },
    /// The server's signature did not verify: it does not know the password.
    ServerSignatureMismatch,
    /// The server answered `e=...`.
    ServerError(String),
    /// The random source failed.
    Random(RandomError),
    /// The HMAC implementation refused a key (it accepts any length; never expected).
    Hmac,
}

impl fmt::Display for ScramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScramError::Malformed { message, detail } => write!(f, "malformed SCRAM {message}: {detail}"),
            ScramError::ChannelBindingUnsupported => {
                f.write_str("channel binding requested but not supported")
            }
            ScramError::ChannelBindingMismatch => {
                f.write_str("channel binding data does not match the GS2 header")
            }
            ScramError::MandatoryExtension => f.write_str("unsupported mandatory extension"),
            ScramError::TokenAuthRefused => {
                f.write_str("delegation token authentication (tokenauth) is refused")
            }
            ScramError::AuthzidMismatch => f.write_str("authorization id differs from the user name"),
            ScramError::UnknownUser => f.write_str("unknown user"),
            ScramError::InvalidProof => f.write_str("invalid client proof"),
            ScramError::NonceMismatch => f.write_str("nonce mismatch"),
            ScramError::Iterations { iterations } => write!(f, "iteration count {iterations} out of range"),
            ScramError::KeyLength { len } => write!(f, "key of {len} bytes has the wrong length"),
            ScramError::ServerSignatureMismatch => f.write_str("server signature mismatch"),
            ScramError::ServerError(e) => write!(f, "server error: {e}"),
            ScramError::Random(e) => e.fmt(f),
            ScramError::Hmac => f.write_str("HMAC key refused"),
        }
    }
}

impl std::error::Error for ScramError {}

impl From<RandomError> for ScramError {
    fn from(e: RandomError) -> Self {
        ScramError::Random(e)
    }
}

/// What a server stores for one user and mechanism: never the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    mechanism: ScramMechanism,
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Secret<Digest>,
    server_key: Secret<Digest>,
}

impl ScramCredential {
    /// Derives the credential from a password, a salt and an iteration count
    /// (`SaltedPassword = Hi(password, salt, i)`, `StoredKey = H(HMAC(SaltedPassword, "Client Key"))`,
    /// `ServerKey = HMAC(SaltedPassword, "Server Key")`).
    pub(crate) fn from_password(
        mechanism: ScramMechanism,
        password: &[u8],
        salt: Vec<u8>,
        iterations: u32,
    ) -> Result<Self, ScramError> {
        check_iterations(iterations, MAX_ITERATIONS)?;
        let salted = crypto::salted_password(mechanism, password, &salt, iterations)?;
        let client_key = crypto::client_key(mechanism, salted.expose())?;
        Ok(ScramCredential {
            mechanism,
            salt,
            iterations,
            stored_key: Secret::new(crypto::hash(mechanism, client_key.expose().as_bytes())),
            server_key: Secret::new(crypto::server_key(mechanism, salted.expose())?),
        })
    }

    /// Derives the credential from a password with a fresh random salt.
    pub fn generate(
        mechanism: ScramMechanism,
        password: &[u8],
        iterations: u32,
        random: &dyn Random,
    ) -> Result<Self, ScramError> {
        let mut salt = vec![0u8; SALT_LEN];
        random.fill(&mut salt)?;
        Self::from_password(mechanism, password, salt, iterations)
    }

    /// Takes pre-computed values (for example from `kafka-proxy scram-credentials`).
    pub fn from_parts(
        mechanism: ScramMechanism,
        salt: Vec<u8>,
        iterations: u32,
        stored_key: &[u8],
        server_key: &[u8],
    ) -> Result<Self, ScramError> {
        check_iterations(iterations, MAX_ITERATIONS)?;
        if salt.is_empty() {
            return Err(ScramError::Malformed { message: "credential", detail: "empty salt" });
        }
        let key = |k: &[u8]| {
            (k.len() == mechanism.digest_len())
                .then(|| Digest::from_slice(k))
                .flatten()
                .ok_or(ScramError::KeyLength { len: k.len() })
        };
        Ok(ScramCredential {
            mechanism,
            salt,
            iterations,
            stored_key: Secret::new(key(stored_key)?),
            server_key: Secret::new(key(server_key)?),
        })
    }

    /// The mechanism this credential is for.
    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// The salt.
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// The iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// `StoredKey`: lets whoever has it mount an offline dictionary attack.
    pub fn stored_key(&self) -> &Secret<Digest> {
        &self.stored_key
    }

    /// `ServerKey`: lets whoever has it impersonate the server.
    pub fn server_key(&self) -> &Secret<Digest> {
        &self.server_key
    }

    /// The same credential with another salt (used for fake replies).
    pub(crate) fn with_salt(&self, salt: Vec<u8>) -> Self {
        ScramCredential { salt, ..self.clone() }
    }

    /// Salt, stored key and server key in base64, as the configuration writes them.
    pub fn to_base64(&self) -> ScramCredentialBase64 {
        ScramCredentialBase64 {
            salt: STANDARD.encode(&self.salt),
            stored_key: Secret::new(STANDARD.encode(self.stored_key.expose().as_bytes())),
            server_key: Secret::new(STANDARD.encode(self.server_key.expose().as_bytes())),
        }
    }

    /// True when `password` produces this credential (used to check PLAIN
    /// logins against SCRAM-only users). Costs one PBKDF2; constant time compare.
    pub fn verify_password(&self, password: &[u8]) -> bool {
        let stored = crypto::salted_password(self.mechanism, password, &self.salt, self.iterations)
            .and_then(|salted| crypto::client_key(self.mechanism, salted.expose()))
            .map(|client_key| crypto::hash(self.mechanism, client_key.expose().as_bytes()));
        match stored {
            Ok(stored) => crypto::ct_eq(stored.as_bytes(), self.stored_key.expose().as_bytes()),
            Err(_) => false,
        }
    }
}

/// A credential's fields in base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredentialBase64 {
    /// The salt.
    pub salt: String,
    /// `StoredKey`.
    pub stored_key: Secret<String>,
    /// `ServerKey`.
    pub server_key: Secret<String>,
}

fn check_iterations(iterations: u32, max: u32) -> Result<(), ScramError> {
    if (MIN_ITERATIONS..=max).contains(&iterations) {
        Ok(())
    } else {
        Err(ScramError::Iterations { iterations })
    }
}

#[cfg(test)]
mod tests;
