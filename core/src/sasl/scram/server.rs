//! The SCRAM server: `client-first` → `server-first`, `client-final` → `server-final`.
//!
//! Typestate: [`ScramServer`] takes the first message and becomes a
//! [`ScramServerFirstSent`], which takes the final message; a finished or
//! failed exchange cannot be stepped again.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::attributes::{self, parse_client_final, parse_client_first};
use super::crypto;
use super::{ScramCredential, ScramError, ScramMechanism};

/// The credential to run an exchange with: the user's, or for an unknown
/// user a fake one (stable salt, usual iterations), so the reply does not
/// tell whether the user exists. `known: false` always fails at the end.
#[derive(Debug, Clone)]
pub(crate) struct ScramLookup {
    /// The credential (real or fake).
    pub credential: ScramCredential,
    /// True when the user exists with a credential for this mechanism.
    pub known: bool,
}

/// A SCRAM server waiting for the `client-first-message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScramServer {
    mechanism: ScramMechanism,
}

/// A SCRAM server that sent its `server-first-message` and waits for the final one.
#[derive(Debug, Clone)]
pub(crate) struct ScramServerFirstSent {
    mechanism: ScramMechanism,
    username: String,
    lookup: ScramLookup,
    gs2_header: String,
    nonce: String,
    /// `client-first-message-bare "," server-first-message ","`: the start of the AuthMessage.
    auth_prefix: String,
}

/// A successful exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScramSuccess {
    /// The authenticated user (Kafka's principal name).
    pub username: String,
    /// The `server-final-message` (`v=` + ServerSignature) to send.
    pub server_final: Vec<u8>,
}

impl ScramServer {
    /// A server for `mechanism`.
    pub(crate) fn new(mechanism: ScramMechanism) -> Self {
        ScramServer { mechanism }
    }

    /// Takes the `client-first-message`, looks the user up and returns the
    /// `server-first-message`. `server_nonce` must be fresh and random
    /// (printable ASCII without `,`).
    pub(crate) fn client_first(
        self,
        message: &[u8],
        lookup: impl FnOnce(ScramMechanism, &str) -> ScramLookup,
        server_nonce: &str,
    ) -> Result<(ScramServerFirstSent, Vec<u8>), ScramError> {
        let first = parse_client_first(message)?;
        if first.tokenauth {
            return Err(ScramError::TokenAuthRefused);
        }
        if first.authzid.as_ref().is_some_and(|a| *a != first.username) {
            return Err(ScramError::AuthzidMismatch);
        }
        if server_nonce.is_empty() || server_nonce.contains(',') {
            return Err(ScramError::Malformed { message: "server nonce", detail: "empty or holds ','" });
        }
        let lookup = lookup(self.mechanism, &first.username);
        let nonce = format!("{}{server_nonce}", first.nonce);
        let server_first =
            attributes::server_first(&nonce, lookup.credential.salt(), lookup.credential.iterations());
        let auth_prefix = format!("{},{server_first},", first.bare);
        let state = ScramServerFirstSent {
            mechanism: self.mechanism,
            username: first.username,
            lookup,
            gs2_header: first.gs2_header.to_owned(),
            nonce,
            auth_prefix,
        };
        Ok((state, server_first.into_bytes()))
    }
}

impl ScramServerFirstSent {
    /// The user named in the first message (not yet authenticated).
    pub(crate) fn username(&self) -> &str {
        &self.username
    }

    /// Takes the `client-final-message`, verifies the proof in constant time and
    /// returns the `server-final-message`.
    pub(crate) fn client_final(self, message: &[u8]) -> Result<ScramSuccess, ScramError> {
        let last = parse_client_final(message)?;
        if last.nonce != self.nonce {
            return Err(ScramError::NonceMismatch);
        }
        let binding =
            STANDARD.decode(last.channel_binding).map_err(|_| ScramError::ChannelBindingMismatch)?;
        if binding != self.gs2_header.as_bytes() {
            return Err(ScramError::ChannelBindingMismatch);
        }
        let credential = &self.lookup.credential;
        if last.proof.len() != self.mechanism.digest_len() {
            return Err(ScramError::InvalidProof);
        }
        let auth = [self.auth_prefix.as_bytes(), last.without_proof.as_bytes()];
        let stored_key = credential.stored_key().expose();
        let client_signature = crypto::hmac(self.mechanism, stored_key.as_bytes(), &auth)?;
        let client_key = client_signature.xor(&last.proof);
        let computed = crypto::hash(self.mechanism, client_key.as_bytes());
        let proof_ok = crypto::ct_eq(computed.as_bytes(), stored_key.as_bytes());
        if !self.lookup.known {
            return Err(ScramError::UnknownUser);
        }
        if !proof_ok {
            return Err(ScramError::InvalidProof);
        }
        let signature = crypto::hmac(self.mechanism, credential.server_key().expose().as_bytes(), &auth)?;
        Ok(ScramSuccess {
            username: self.username,
            server_final: attributes::server_final(signature.as_bytes()).into_bytes(),
        })
    }
}
