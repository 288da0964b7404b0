//! Shared test fixtures: a user store, a JWT signer, fixed time.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom as RingRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};
use serde_json::Value;

use super::credentials::CredentialStore;
use super::oauthbearer::{EcCurve, KeySet, PublicKey, VerificationKey};
use super::random::testing::FixedRandom;
use super::scram::ScramMechanism;
use super::secret::Secret;

/// Wall-clock "now" of the tests, in seconds since the epoch.
pub(crate) const NOW_SECS: u64 = 1_700_000_000;

pub(crate) fn wall() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

/// alice/alice-secret and bob/bob-secret, SCRAM derived for both mechanisms
/// (built once: PBKDF2 is slow in debug builds).
pub(crate) fn store() -> Arc<CredentialStore> {
    static STORE: OnceLock<Arc<CredentialStore>> = OnceLock::new();
    Arc::clone(STORE.get_or_init(|| {
        let mut b = CredentialStore::builder(4096, &ScramMechanism::ALL).expect("builder");
        b.password("alice", Secret::new("alice-secret".into())).expect("alice");
        b.password("bob", Secret::new("bob-secret".into())).expect("bob");
        Arc::new(b.build(&FixedRandom::new()).expect("store"))
    }))
}

/// Signs ES256 tokens with a key generated for the test run.
pub(crate) struct JwtSigner {
    key: EcdsaKeyPair,
}

impl JwtSigner {
    pub(crate) fn new() -> Self {
        let rng = RingRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("generate");
        JwtSigner { key: EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).expect("key") }
    }

    pub(crate) fn key_set(&self) -> KeySet {
        let key = PublicKey::ec(EcCurve::P256, self.key.public_key().as_ref()).expect("point");
        KeySet::new(vec![VerificationKey { kid: None, alg: None, key }]).expect("keys")
    }

    pub(crate) fn token(&self, claims: &Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims.to_string().as_bytes());
        let input = format!("{header}.{body}");
        let sig = self.key.sign(&RingRandom::new(), input.as_bytes()).expect("sign");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}
