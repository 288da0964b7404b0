//! Client ↔ server runs in memory, and the client's own refusals.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::sasl::messages::{RequestRef, split_response_header};
use crate::sasl::random::testing::FixedRandom;
use crate::sasl::scram::ScramMechanism;
use crate::sasl::server::{Admission, SaslServer, ServerConfig, ServerStep};
use crate::sasl::test_support::{store, wall};
use crate::wire;

const MECHANISMS: [Mechanism; 3] =
    [Mechanism::Plain, Mechanism::Scram(ScramMechanism::Sha256), Mechanism::Scram(ScramMechanism::Sha512)];

fn client(mechanism: Mechanism, user: &str, password: &str) -> SaslClient {
    let config =
        ClientConfig::new(mechanism, user, Secret::new(password.into()), Arc::new(FixedRandom::new()))
            .expect("client config");
    SaslClient::new(Arc::new(config))
}

fn server(lifetime: Option<Duration>, mechanisms: &[Mechanism]) -> SaslServer {
    let mut config = ServerConfig::new(mechanisms, store(), Arc::new(FixedRandom::new()));
    config.session_lifetime = lifetime;
    SaslServer::new(Arc::new(config))
}

/// Splits a request frame the way a session does: header fields and body.
fn request(frame: &[u8]) -> (ApiKey, i16, i32, &[u8]) {
    let (rest, size) = wire::i32(frame).expect("size");
    assert_eq!(size as usize, rest.len());
    let (rest, key) = wire::i16(rest).expect("key");
    let (rest, version) = wire::i16(rest).expect("version");
    let (rest, correlation_id) = wire::i32(rest).expect("corr");
    let (rest, client_id) = wire::nullable_string(rest, false).expect("client id");
    assert_eq!(client_id, Some(&b"kafka-proxy"[..]));
    let flexible = key == ApiKey::SASL_AUTHENTICATE.0 && version >= 2;
    let (rest, _) = wire::tagged_fields_if(rest, flexible).expect("header tags");
    (ApiKey(key), version, correlation_id, rest)
}

/// Runs the exchange through the server until the client settles.
fn run(
    client: &mut SaslClient,
    server: &mut SaslServer,
    versions: Option<(i16, i16)>,
    now: Instant,
) -> ClientStep {
    let mut next_id = 100;
    let mut frame = client.start(next_id, versions).expect("start");
    for _ in 0..8 {
        let (api_key, version, correlation_id, body) = request(&frame);
        assert_eq!(server.admit(api_key, now), Admission::Sasl);
        let step = server.on_request(RequestRef { api_key, version, correlation_id, body }, now, wall());
        let reply = match &step {
            ServerStep::Reply(r) | ServerStep::Authenticated { reply: r, .. } => r.clone(),
            ServerStep::Failed { reply: Some(r), .. } => r.clone(),
            ServerStep::Failed { reply: None, .. } => panic!("server closed without reply: {step:?}"),
        };
        let pending = client.pending().expect("pending");
        assert_eq!(
            (pending.api_key, pending.version, pending.correlation_id),
            (api_key, version, correlation_id)
        );
        let (corr, body) =
            split_response_header(&reply[4..], pending.response_header_flexible()).expect("header");
        next_id += 1;
        match client.on_response(corr, body, next_id, now) {
            ClientStep::Send(f) => frame = f,
            settled => return settled,
        }
    }
    panic!("exchange did not settle");
}

#[test]
fn in_memory_runs_for_every_mechanism_and_version() {
    let now = Instant::now();
    for mechanism in MECHANISMS {
        for (versions, expected_version, lifetime) in [
            (None, 1, Some(Duration::from_secs(60))),
            (Some((0, 0)), 0, None),
            (Some((0, 2)), 2, Some(Duration::from_secs(60))),
            (Some((1, 7)), 2, Some(Duration::from_secs(60))),
        ] {
            let mut s = server(Some(Duration::from_secs(60)), &MECHANISMS);
            let mut c = client(mechanism, "alice", "alice-secret");
            let step = run(&mut c, &mut s, versions, now);
            let ClientStep::Authenticated(auth) = step else { panic!("{mechanism} {versions:?}: {step:?}") };
            assert_eq!(auth.lifetime, lifetime, "{mechanism} v{expected_version}");
            assert!(!auth.reauthentication);
            assert_eq!(s.principal().map(|p| p.name().to_owned()), Some("alice".into()));
            assert_eq!(s.mechanism(), Some(mechanism));
            assert!(c.is_authenticated() && c.pending().is_none());
            if let Some(l) = lifetime {
                let at = auth.reauth_at.expect("reauth time");
                assert!(at >= now + l * 85 / 100 && at <= now + l * 95 / 100, "{mechanism}");
                assert_eq!(auth.expires_at, Some(now + l));
                assert!(!c.needs_reauth(now) && c.needs_reauth(now + l));
            } else {
                assert_eq!((auth.reauth_at, auth.expires_at), (None, None));
            }
        }
    }
}

#[test]
fn reauthentication_restarts_the_same_exchange() {
    let now = Instant::now();
    for mechanism in MECHANISMS {
        let mut s = server(Some(Duration::from_secs(10)), &MECHANISMS);
        let mut c = client(mechanism, "bob", "bob-secret");
        assert!(matches!(run(&mut c, &mut s, Some((0, 2)), now), ClientStep::Authenticated(_)));
        let later = now + Duration::from_secs(9);
        assert!(c.needs_reauth(later));
        let step = run(&mut c, &mut s, Some((0, 2)), later);
        let ClientStep::Authenticated(auth) = step else { panic!("{step:?}") };
        assert!(auth.reauthentication);
        assert_eq!(auth.expires_at, Some(later + Duration::from_secs(10)));
        assert!(!s.is_expired(later + Duration::from_secs(5)));
    }
}

#[test]
fn broker_errors_are_reported() {
    let now = Instant::now();
    for mechanism in MECHANISMS {
        let mut s = server(None, &MECHANISMS);
        let mut c = client(mechanism, "alice", "wrong");
        let step = run(&mut c, &mut s, None, now);
        let ClientStep::Failed(ClientError::Broker { api_key, error_code, message }) = step else {
            panic!("{step:?}")
        };
        assert_eq!((api_key, error_code), (ApiKey::SASL_AUTHENTICATE, ErrorCode::SASL_AUTHENTICATION_FAILED));
        assert!(message.expect("message").contains(mechanism.name()));
        assert!(c.pending().is_none() && !c.is_authenticated());
        assert_eq!(c.start(1, None), Err(ClientError::InProgress), "a failed client stays failed");
    }
    let mut s = server(None, &[Mechanism::Plain]);
    let mut c = client(Mechanism::Scram(ScramMechanism::Sha512), "alice", "alice-secret");
    let step = run(&mut c, &mut s, None, now);
    assert_eq!(
        step,
        ClientStep::Failed(ClientError::Broker {
            api_key: ApiKey::SASL_HANDSHAKE,
            error_code: ErrorCode::UNSUPPORTED_SASL_MECHANISM,
            message: None
        })
    );
}

#[test]
fn a_server_without_the_password_is_detected() {
    let now = Instant::now();
    let mut c = client(Mechanism::Scram(ScramMechanism::Sha256), "alice", "alice-secret");
    c.start(1, Some((2, 2))).expect("start");
    let hs = [
        0u8, 0, 0, 0, 0, 1, 0, 13, b'S', b'C', b'R', b'A', b'M', b'-', b'S', b'H', b'A', b'-', b'2', b'5',
        b'6',
    ];
    let ClientStep::Send(_) = c.on_response(1, &hs, 2, now) else { panic!("client-first expected") };
    let nonce_prefix = {
        // The client nonce is the FixedRandom counter stream in base64.
        let rng = FixedRandom::new();
        rng.scram_nonce().expect("nonce")
    };
    let server_first = format!("r={nonce_prefix}SRV,s=c2FsdA==,i=4096");
    let ClientStep::Send(_) = c.on_response(2, &auth_body(server_first.as_bytes()), 3, now) else {
        panic!("client-final expected")
    };
    let forged = auth_body(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    assert_eq!(
        c.on_response(3, &forged, 4, now),
        ClientStep::Failed(ClientError::Scram(ScramError::ServerSignatureMismatch))
    );
}

/// A SaslAuthenticate v2 response body with `auth_bytes`.
fn auth_body(auth_bytes: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 0, 0];
    wire::put_bytes(&mut body, true, auth_bytes);
    body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0]);
    body
}

#[test]
fn client_refusals() {
    let now = Instant::now();
    let random: Arc<dyn Random> = Arc::new(FixedRandom::new());
    assert!(matches!(
        ClientConfig::new(Mechanism::OAuthBearer, "a", Secret::new("b".into()), Arc::clone(&random)),
        Err(ClientError::UnsupportedMechanism(_))
    ));
    assert!(
        ClientConfig::new(Mechanism::Plain, "a\0b", Secret::new("b".into()), Arc::clone(&random)).is_err()
    );
    assert!(
        ClientConfig::new(Mechanism::Plain, "a", Secret::new(String::new()), Arc::clone(&random)).is_err()
    );

    let mut c = client(Mechanism::Plain, "alice", "alice-secret");
    assert_eq!(c.on_response(1, &[], 2, now), ClientStep::Failed(ClientError::NotAwaitingResponse));
    let mut c = client(Mechanism::Plain, "alice", "alice-secret");
    assert_eq!(c.start(1, Some((3, 4))), Err(ClientError::NoCommonVersion));
    c.start(1, None).expect("start");
    assert_eq!(c.start(2, None), Err(ClientError::InProgress));
    assert_eq!(
        c.on_response(9, &[0, 0, 0, 0, 0, 0], 2, now),
        ClientStep::Failed(ClientError::CorrelationMismatch { expected: 1, got: 9 })
    );
    let mut c = client(Mechanism::Plain, "alice", "alice-secret");
    c.start(1, None).expect("start");
    assert!(matches!(c.on_response(1, &[0], 2, now), ClientStep::Failed(ClientError::Decode(_))));

    let debug = format!("{:?}", client(Mechanism::Plain, "alice", "alice-secret"));
    assert!(!debug.contains("alice-secret"), "{debug}");
}

proptest! {
    #[test]
    fn arbitrary_responses_never_panic(
        first in proptest::collection::vec(any::<u8>(), 0..40),
        second in proptest::collection::vec(any::<u8>(), 0..80),
        scram in any::<bool>(),
    ) {
        let mechanism = if scram { Mechanism::Scram(ScramMechanism::Sha256) } else { Mechanism::Plain };
        let mut c = client(mechanism, "alice", "alice-secret");
        let now = Instant::now();
        c.start(1, Some((0, 2))).expect("start");
        if let ClientStep::Send(_) = c.on_response(1, &first, 2, now) {
            let _ = c.on_response(2, &second, 3, now);
        }
        let mut c = client(mechanism, "alice", "alice-secret");
        c.start(1, Some((0, 2))).expect("start");
        let _ = c.on_response(1, &[0, 0, 0, 0, 0, 0], 2, now);
        let step = c.on_response(2, &second, 3, now);
        if scram {
            prop_assert!(!matches!(step, ClientStep::Authenticated(_)));
        }
    }
}

// ----- OAUTHBEARER towards brokers -----

fn token_store() -> Arc<crate::sasl::oauthbearer::TokenStore> {
    use crate::sasl::oauthbearer::{EndpointTrust, Sources, TokenEndpoint};
    Sources::new().token(TokenEndpoint {
        url: "https://idp.test/token".into(),
        client_id: "svc-client".into(),
        client_secret: Secret::new("svc-secret".into()),
        scope: None,
        trust: EndpointTrust::SystemRoots,
    })
}

fn oauth_server(signer: &crate::sasl::test_support::JwtSigner) -> SaslServer {
    use crate::sasl::oauthbearer::{JwtRules, JwtValidator};
    let mut config = ServerConfig::new(&[Mechanism::OAuthBearer], store(), Arc::new(FixedRandom::new()));
    config.oauthbearer = Some(Arc::new(JwtValidator::new(signer.key_set(), JwtRules::default())));
    config.session_lifetime = Some(Duration::from_secs(600));
    SaslServer::new(Arc::new(config))
}

fn install(store: &crate::sasl::oauthbearer::TokenStore, token: String) {
    let expires_at = wall() + Duration::from_secs(300);
    store.install(crate::sasl::oauthbearer::BearerToken { value: Secret::new(token), expires_at });
}

#[test]
fn oauthbearer_sends_the_stored_token_and_reauthenticates_with_the_new_one() {
    use crate::sasl::test_support::{JwtSigner, NOW_SECS};
    let signer = JwtSigner::new();
    let store = token_store();
    let config = ClientConfig::oauthbearer(store.clone(), Arc::new(FixedRandom::new()));
    assert_eq!(config.username(), "svc-client");
    let mut client = SaslClient::new(Arc::new(config));
    let mut server = oauth_server(&signer);
    let claims = |sub: &str| serde_json::json!({"sub": sub, "iat": NOW_SECS, "exp": NOW_SECS + 300});
    install(&store, signer.token(&claims("svc-client")));
    let now = Instant::now();
    let ClientStep::Authenticated(first) = run(&mut client, &mut server, Some((0, 2)), now) else {
        panic!("first login")
    };
    assert!(!first.reauthentication);
    // The broker caps the session at the token's expiry (300 s < 600 s).
    assert_eq!(first.lifetime, Some(Duration::from_secs(300)));
    // A refreshed token is what the re-authentication carries (same principal).
    install(&store, signer.token(&claims("svc-client")));
    let later = now + Duration::from_secs(290);
    assert!(client.needs_reauth(later));
    let ClientStep::Authenticated(again) = run(&mut client, &mut server, Some((0, 2)), later) else {
        panic!("re-authentication")
    };
    assert!(again.reauthentication);
}

#[test]
fn oauthbearer_refusals_and_a_missing_token() {
    use crate::sasl::test_support::{JwtSigner, NOW_SECS};
    let store = token_store();
    let config = Arc::new(ClientConfig::oauthbearer(store.clone(), Arc::new(FixedRandom::new())));
    let broker_key = JwtSigner::new();
    let mut server = oauth_server(&broker_key);
    let mut client = SaslClient::new(config.clone());
    let step = run(&mut client, &mut server, Some((0, 2)), Instant::now());
    assert_eq!(step, ClientStep::Failed(ClientError::NoToken));
    assert!(store.take_refresh_request(), "the fetcher is asked for a token");

    // A token signed by a key the broker does not trust: challenge, 0x01, failure.
    let stranger = JwtSigner::new();
    install(&store, stranger.token(&serde_json::json!({"sub": "x", "iat": NOW_SECS, "exp": NOW_SECS + 60})));
    let mut client = SaslClient::new(config);
    let mut server = oauth_server(&broker_key);
    match run(&mut client, &mut server, Some((0, 2)), Instant::now()) {
        ClientStep::Failed(ClientError::Broker { error_code, message, .. }) => {
            assert_eq!(error_code, ErrorCode::SASL_AUTHENTICATION_FAILED);
            assert!(message.unwrap().contains("invalid_token"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn reauthentication_keeps_margins_from_the_login_and_the_end() {
    let now = Instant::now();
    // (lifetime, earliest, latest): 85-95% of the lifetime, at least a second before its end,
    // but never within the broker's minimum interval of the login.
    for (lifetime_ms, earliest_ms, latest_ms) in [
        (1_200, 1_050, 1_050),
        (1_000, 1_000, 1_000),
        (3_000, 2_000, 2_000),
        (10_000, 8_500, 9_000),
        (600_000, 510_000, 570_000),
    ] {
        let mut c = client(Mechanism::Plain, "alice", "alice-secret");
        let ClientStep::Authenticated(auth) = c.authenticated(lifetime_ms, false, now) else {
            panic!("authenticated")
        };
        let at = auth.reauth_at.unwrap().duration_since(now).as_millis() as i64;
        assert!(
            (earliest_ms..=latest_ms).contains(&at),
            "lifetime {lifetime_ms} ms: re-authentication after {at} ms"
        );
    }
}
