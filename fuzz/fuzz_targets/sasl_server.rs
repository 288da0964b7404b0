//! Arbitrary SaslHandshake / SaslAuthenticate / raw-token / admission
//! sequences against the SASL server: it must never panic, and never
//! authenticate anyone, since the only user's password is 32 random bytes
//! fixed here and the only JWT key's private half is not available to the
//! fuzzer.
#![no_main]

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, UNIX_EPOCH};

use arbitrary::Arbitrary;
use kafka_proxy_core::api::ApiKey;
use kafka_proxy_core::fuzzing::{RequestRef, SaslServer, ServerStep};
use kafka_proxy_core::sasl::oauthbearer::{JwtRules, JwtValidator, KeySet};
use kafka_proxy_core::sasl::{
    CredentialStore, Mechanism, Random, RandomError, ScramMechanism, Secret, ServerConfig,
};
use libfuzzer_sys::fuzz_target;

/// 32 random bytes (hex), generated once for this target.
const PASSWORD: &str = "89c0c1fd428bb3c107d8d2f43d475d1999a0ee6bf9bfed275c45954626212b1b";

/// A public key whose private half the fuzzer cannot use to sign.
const JWT_KEY: &[u8] = include_bytes!("../../core/src/sasl/testdata/rsa2048.spki.pem");

/// Deterministic "randomness", so every crash replays.
#[derive(Debug, Default)]
struct Counter(AtomicU8);

impl Random for Counter {
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError> {
        for b in dest {
            *b = self.0.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[derive(Arbitrary, Debug)]
enum Name {
    Plain,
    Sha256,
    Sha512,
    OAuthBearer,
    Other(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// The session asks whether a request with this API key may pass.
    Admit(i16),
    /// A SaslHandshake request.
    Handshake { version: i16, mechanism: Name },
    /// A SaslAuthenticate request carrying `token`.
    Authenticate { version: i16, token: Vec<u8> },
    /// A SASL request with an arbitrary body.
    Request { authenticate: bool, version: i16, body: Vec<u8> },
    /// A raw token (after SaslHandshake v0).
    Raw(Vec<u8>),
    /// Time passes.
    Wait(u16),
}

fn config() -> &'static Arc<ServerConfig> {
    static CONFIG: OnceLock<Arc<ServerConfig>> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let random = Arc::new(Counter::default());
        let mut store = CredentialStore::builder(4096, &ScramMechanism::ALL).expect("builder");
        store.password("fuzz-user", Secret::new(PASSWORD.to_owned())).expect("user");
        let store = store.build(random.as_ref()).expect("store");
        let mechanisms = [
            Mechanism::Plain,
            Mechanism::Scram(ScramMechanism::Sha256),
            Mechanism::Scram(ScramMechanism::Sha512),
            Mechanism::OAuthBearer,
        ];
        let mut config = ServerConfig::new(&mechanisms, Arc::new(store), random);
        let keys = KeySet::from_pem(JWT_KEY).expect("key");
        config.oauthbearer = Some(Arc::new(JwtValidator::new(keys, JwtRules::default())));
        config.session_lifetime = Some(Duration::from_secs(60));
        Arc::new(config)
    })
}

fn mechanism_name(name: &Name) -> &[u8] {
    match name {
        Name::Plain => b"PLAIN",
        Name::Sha256 => b"SCRAM-SHA-256",
        Name::Sha512 => b"SCRAM-SHA-512",
        Name::OAuthBearer => b"OAUTHBEARER",
        Name::Other(bytes) => bytes,
    }
}

fn put_bytes(out: &mut Vec<u8>, flexible: bool, data: &[u8]) {
    if flexible {
        let mut n = data.len() as u32 + 1;
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    } else {
        out.extend_from_slice(&(data.len() as i32).to_be_bytes());
    }
    out.extend_from_slice(data);
    if flexible {
        out.push(0);
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut server = SaslServer::new(Arc::clone(config()));
    let mut now = Instant::now();
    let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for op in ops.iter().take(64) {
        let mut body = Vec::new();
        let step = match op {
            Op::Admit(key) => {
                let _ = server.admit(ApiKey(*key), now);
                continue;
            }
            Op::Wait(ms) => {
                now += Duration::from_millis(u64::from(*ms));
                continue;
            }
            Op::Raw(token) => server.on_raw_token(token, now, wall),
            Op::Handshake { version, mechanism } => {
                let name = mechanism_name(mechanism);
                body.extend_from_slice(&(name.len().min(i16::MAX as usize) as i16).to_be_bytes());
                body.extend_from_slice(name);
                let request = RequestRef {
                    api_key: ApiKey::SASL_HANDSHAKE,
                    version: *version,
                    correlation_id: 1,
                    body: &body,
                };
                server.on_request(request, now, wall)
            }
            Op::Authenticate { version, token } => {
                put_bytes(&mut body, *version >= 2, token);
                let request = RequestRef {
                    api_key: ApiKey::SASL_AUTHENTICATE,
                    version: *version,
                    correlation_id: 2,
                    body: &body,
                };
                server.on_request(request, now, wall)
            }
            Op::Request { authenticate, version, body } => {
                let api_key = if *authenticate { ApiKey::SASL_AUTHENTICATE } else { ApiKey::SASL_HANDSHAKE };
                server.on_request(
                    RequestRef { api_key, version: *version, correlation_id: 3, body },
                    now,
                    wall,
                )
            }
        };
        assert!(
            !matches!(step, ServerStep::Authenticated { .. }),
            "authenticated without credentials: {step:?}"
        );
        assert!(!server.is_authenticated());
        let _ = (server.expects_raw_token(), server.is_expired(now));
    }
});
