//! The SCRAM client: `client-first`, then `client-final` from the server's
//! first message, then verification of the server's signature.
//!
//! Typestate like the server: each message moves the exchange forward and
//! consumes the previous state.

use subtle::ConstantTimeEq;

use super::attributes::{self, ServerFinal, parse_server_final, parse_server_first};
use super::crypto::{self, Digest};
use super::{MAX_CLIENT_ITERATIONS, MIN_ITERATIONS, ScramError, ScramMechanism};
use crate::sasl::secret::Secret;

/// A SCRAM client before its first message.
#[derive(Debug, Clone)]
pub(crate) struct ScramClient {
    mechanism: ScramMechanism,
    username: String,
    password: Secret<String>,
    nonce: String,
}

/// A SCRAM client that sent `client-first-message`.
#[derive(Debug, Clone)]
pub(crate) struct ScramClientFirstSent {
    mechanism: ScramMechanism,
    password: Secret<String>,
    nonce: String,
    bare: String,
}

/// A SCRAM client that sent `client-final-message` and waits for the server's signature.
#[derive(Debug, Clone)]
pub(crate) struct ScramClientFinalSent {
    expected_signature: Secret<Digest>,
}

impl ScramClient {
    /// A client for `username`/`password` with a fresh random `nonce`
    /// (printable ASCII without `,`).
    pub(crate) fn new(
        mechanism: ScramMechanism,
        username: &str,
        password: Secret<String>,
        nonce: String,
    ) -> Self {
        ScramClient { mechanism, username: username.to_owned(), password, nonce }
    }

    /// The `client-first-message` (`n,,n=<user>,r=<nonce>`: no channel binding, no authzid).
    pub(crate) fn client_first(self) -> (ScramClientFirstSent, Vec<u8>) {
        let bare = attributes::client_first_bare(&self.username, &self.nonce);
        let message = format!("n,,{bare}").into_bytes();
        let state = ScramClientFirstSent {
            mechanism: self.mechanism,
            password: self.password,
            nonce: self.nonce,
            bare,
        };
        (state, message)
    }
}

impl ScramClientFirstSent {
    /// Takes the `server-first-message` and returns the `client-final-message`.
    /// Refuses a nonce that does not extend ours and iteration counts outside
    /// `MIN_ITERATIONS..=MAX_CLIENT_ITERATIONS`.
    pub(crate) fn server_first(self, message: &[u8]) -> Result<(ScramClientFinalSent, Vec<u8>), ScramError> {
        let first = parse_server_first(message)?;
        if first.nonce.len() <= self.nonce.len() || !first.nonce.starts_with(self.nonce.as_str()) {
            return Err(ScramError::NonceMismatch);
        }
        if !(MIN_ITERATIONS..=MAX_CLIENT_ITERATIONS).contains(&first.iterations) {
            return Err(ScramError::Iterations { iterations: first.iterations });
        }
        let m = self.mechanism;
        let salted =
            crypto::salted_password(m, self.password.expose().as_bytes(), &first.salt, first.iterations)?;
        let client_key = crypto::client_key(m, salted.expose())?;
        let stored_key = crypto::hash(m, client_key.expose().as_bytes());
        let without_proof = attributes::client_final_without_proof("n,,", first.nonce);
        let server_first = std::str::from_utf8(message).unwrap_or_default();
        let auth = [self.bare.as_bytes(), b",", server_first.as_bytes(), b",", without_proof.as_bytes()];
        let client_signature = crypto::hmac(m, stored_key.as_bytes(), &auth)?;
        let proof = client_key.expose().xor(client_signature.as_bytes());
        let server_key = crypto::server_key(m, salted.expose())?;
        let expected = crypto::hmac(m, server_key.as_bytes(), &auth)?;
        let message = format!("{without_proof},p={}", base64_encode(proof.as_bytes())).into_bytes();
        Ok((ScramClientFinalSent { expected_signature: Secret::new(expected) }, message))
    }
}

impl ScramClientFinalSent {
    /// Verifies the `server-final-message` in constant time: success proves
    /// the server knows the credential.
    pub(crate) fn server_final(self, message: &[u8]) -> Result<(), ScramError> {
        match parse_server_final(message)? {
            ServerFinal::Error(e) => Err(ScramError::ServerError(e)),
            ServerFinal::Verifier(v) => {
                if bool::from(v.as_slice().ct_eq(self.expected_signature.expose().as_bytes())) {
                    Ok(())
                } else {
                    Err(ScramError::ServerSignatureMismatch)
                }
            }
        }
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
