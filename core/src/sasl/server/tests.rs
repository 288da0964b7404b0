//! The Kafka-level flows, in memory, with fixed time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::sasl::messages::{SaslAuthenticateResponse, SaslHandshakeResponse, split_response_header};
use crate::sasl::oauthbearer::{self, JwtRules, JwtValidator};
use crate::sasl::random::testing::FixedRandom;
use crate::sasl::scram::{ScramClient, ScramMechanism};
use crate::sasl::secret::Secret;
use crate::sasl::test_support::{JwtSigner, NOW_SECS, store, wall};

const SHA256: Mechanism = Mechanism::Scram(ScramMechanism::Sha256);
const SHA512: Mechanism = Mechanism::Scram(ScramMechanism::Sha512);

struct Fixture {
    signer: JwtSigner,
    config: Arc<ServerConfig>,
    now: Instant,
}

impl Fixture {
    fn new() -> Self {
        Self::with(|_| {})
    }

    fn with(adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        let signer = JwtSigner::new();
        let mut config = ServerConfig::new(
            &[Mechanism::Plain, SHA256, SHA512, Mechanism::OAuthBearer],
            store(),
            Arc::new(FixedRandom::with_nonces(&["srv-nonce-1", "srv-nonce-2", "srv-nonce-3"])),
        );
        config.oauthbearer = Some(Arc::new(JwtValidator::new(
            signer.key_set(),
            JwtRules { clock_skew: Duration::from_secs(30), ..JwtRules::default() },
        )));
        adjust(&mut config);
        config.validate().expect("valid config");
        Fixture { signer, config: Arc::new(config), now: Instant::now() }
    }

    fn server(&self) -> SaslServer {
        SaslServer::new(Arc::clone(&self.config))
    }

    fn token(&self, sub: &str, exp_in: i64) -> Vec<u8> {
        let claims = json!({"sub": sub, "iat": NOW_SECS, "exp": NOW_SECS as i64 + exp_in});
        oauthbearer::client_initial_response(&self.signer.token(&claims)).into_inner()
    }
}

fn handshake(server: &mut SaslServer, version: i16, mechanism: &str, now: Instant) -> ServerStep {
    let mut body = Vec::new();
    crate::wire::put_string(&mut body, false, mechanism.as_bytes());
    assert_eq!(server.admit(ApiKey::SASL_HANDSHAKE, now), Admission::Sasl);
    server.on_request(
        RequestRef { api_key: ApiKey::SASL_HANDSHAKE, version, correlation_id: 1, body: &body },
        now,
        wall(),
    )
}

fn authenticate(server: &mut SaslServer, version: i16, token: &[u8], now: Instant) -> ServerStep {
    let mut body = Vec::new();
    crate::wire::put_bytes(&mut body, version >= 2, token);
    crate::wire::put_empty_tagged_fields_if(&mut body, version >= 2);
    assert_eq!(server.admit(ApiKey::SASL_AUTHENTICATE, now), Admission::Sasl);
    server.on_request(
        RequestRef { api_key: ApiKey::SASL_AUTHENTICATE, version, correlation_id: 2, body: &body },
        now,
        wall(),
    )
}

/// (error code, mechanisms) of a SaslHandshake response frame.
fn handshake_reply(frame: &Bytes) -> (ErrorCode, Vec<String>) {
    let (corr, body) = split_response_header(&frame[4..], false).expect("header");
    assert_eq!(corr, 1);
    let r = SaslHandshakeResponse::decode(body, 1).expect("handshake response");
    (r.error_code, r.mechanisms.iter().map(|m| String::from_utf8_lossy(m).into_owned()).collect())
}

/// (error code, message, auth bytes, lifetime) of a SaslAuthenticate response frame.
fn auth_reply(frame: &Bytes, version: i16) -> (ErrorCode, Option<String>, Vec<u8>, i64) {
    let (corr, body) = split_response_header(&frame[4..], version >= 2).expect("header");
    assert_eq!(corr, 2);
    let r = SaslAuthenticateResponse::decode(body, version).expect("authenticate response");
    let message = r.error_message.map(|m| String::from_utf8_lossy(m).into_owned());
    (r.error_code, message, r.auth_bytes.to_vec(), r.session_lifetime_ms)
}

fn reply(step: &ServerStep) -> &Bytes {
    match step {
        ServerStep::Reply(r) | ServerStep::Authenticated { reply: r, .. } => r,
        ServerStep::Failed { reply: Some(r), .. } => r,
        ServerStep::Failed { reply: None, .. } | ServerStep::Verify(_) => panic!("no reply in {step:?}"),
    }
}

fn plain(user: &str, password: &str) -> Vec<u8> {
    format!("\0{user}\0{password}").into_bytes()
}

fn authenticated(step: &ServerStep) -> &Authentication {
    match step {
        ServerStep::Authenticated { authentication, .. } => authentication,
        other => panic!("expected authentication, got {other:?}"),
    }
}

fn failure(step: &ServerStep) -> (&FailureReason, Duration) {
    match step {
        ServerStep::Failed { reason, close_after, .. } => (reason, *close_after),
        other => panic!("expected failure, got {other:?}"),
    }
}

const GENERIC_PLAIN: &str =
    "Authentication failed during authentication due to invalid credentials with SASL mechanism PLAIN";

#[test]
fn handshake_v1_then_plain_at_every_authenticate_version() {
    let f = Fixture::new();
    for version in 0..=2 {
        let mut s = f.server();
        assert_eq!(s.admit(ApiKey::API_VERSIONS, f.now), Admission::Pass, "ApiVersions before the handshake");
        let step = handshake(&mut s, 1, "PLAIN", f.now);
        let (code, mechanisms) = handshake_reply(reply(&step));
        assert_eq!(code, ErrorCode::NONE);
        assert_eq!(mechanisms, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]);
        assert!(!s.expects_raw_token());
        assert!(!s.is_authenticated());
        let step = authenticate(&mut s, version, &plain("alice", "alice-secret"), f.now);
        let auth = authenticated(&step);
        assert_eq!(auth.principal.to_string(), "User:alice");
        assert_eq!((auth.mechanism, auth.lifetime, auth.reauthentication), (Mechanism::Plain, None, false));
        assert_eq!(auth_reply(reply(&step), version), (ErrorCode::NONE, None, Vec::new(), 0));
        assert!(s.is_authenticated());
        assert_eq!(s.principal().map(Principal::name), Some("alice"));
        assert_eq!(s.admit(ApiKey::METADATA, f.now), Admission::Pass);
        assert!(!s.is_expired(f.now + Duration::from_secs(1_000_000)));
    }
}

#[test]
fn handshake_v0_then_raw_tokens() {
    let f = Fixture::new();
    let mut s = f.server();
    let step = handshake(&mut s, 0, "PLAIN", f.now);
    assert_eq!(handshake_reply(reply(&step)).0, ErrorCode::NONE);
    assert!(s.expects_raw_token());
    let step = s.on_raw_token(&plain("alice", "alice-secret"), f.now, wall());
    assert_eq!(&reply(&step)[..], &[0, 0, 0, 0], "an empty size-prefixed token");
    assert_eq!(authenticated(&step).principal.name(), "alice");
    assert!(!s.expects_raw_token());

    // SCRAM over raw tokens.
    let mut s = f.server();
    handshake(&mut s, 0, "SCRAM-SHA-512", f.now);
    let (c, first) =
        ScramClient::new(ScramMechanism::Sha512, "bob", Secret::new("bob-secret".into()), "cn".into())
            .client_first();
    let step = s.on_raw_token(&first, f.now, wall());
    let server_first = reply(&step)[4..].to_vec();
    assert!(server_first.starts_with(b"r=cnsrv-nonce-1,s="), "{:?}", String::from_utf8_lossy(&server_first));
    let (c, last) = c.server_first(&server_first).expect("client final");
    let step = s.on_raw_token(&last, f.now, wall());
    assert_eq!(authenticated(&step).principal.name(), "bob");
    c.server_final(&reply(&step)[4..]).expect("server signature");

    // A bad raw token: no response (Kafka just closes), after the delay.
    let mut s = f.server();
    handshake(&mut s, 0, "PLAIN", f.now);
    let step = s.on_raw_token(&plain("alice", "wrong"), f.now, wall());
    assert!(
        matches!(step, ServerStep::Failed { reply: None, close_after, .. } if close_after == DEFAULT_FAILURE_DELAY)
    );
    // A raw token when none is expected.
    let mut s = f.server();
    assert!(matches!(failure(&s.on_raw_token(b"x", f.now, wall())).0, FailureReason::UnexpectedRawToken));
}

#[test]
fn wrong_password_and_unknown_user_look_the_same() {
    let f = Fixture::new();
    let mut replies = Vec::new();
    for (user, password) in [("alice", "wrong"), ("nobody", "alice-secret")] {
        let mut s = f.server();
        handshake(&mut s, 1, "PLAIN", f.now);
        let step = authenticate(&mut s, 1, &plain(user, password), f.now);
        let (reason, close_after) = failure(&step);
        assert_eq!(close_after, DEFAULT_FAILURE_DELAY);
        assert!(matches!(reason, FailureReason::Authentication { mechanism: Mechanism::Plain, .. }));
        replies.push(reply(&step).clone());
        assert!(s.has_failed());
        assert_eq!(
            s.admit(ApiKey::SASL_AUTHENTICATE, f.now),
            Admission::Refuse { reason: FailureReason::AlreadyFailed, close_after: Duration::ZERO }
        );
    }
    assert_eq!(replies[0], replies[1], "byte-identical responses");
    let (code, message, _, _) = auth_reply(&replies[0], 1);
    assert_eq!((code, message.as_deref()), (ErrorCode::SASL_AUTHENTICATION_FAILED, Some(GENERIC_PLAIN)));

    // Kafka does tell an authzid mismatch apart (it reveals nothing about users).
    let mut s = f.server();
    handshake(&mut s, 1, "PLAIN", f.now);
    let step = authenticate(&mut s, 1, b"admin\0alice\0alice-secret", f.now);
    let message = auth_reply(reply(&step), 1).1.expect("message");
    assert!(message.contains("authorization id"), "{message}");
}

#[test]
fn scram_unknown_user_gets_a_plausible_challenge() {
    let f = Fixture::new();
    for (user, mechanism, scram) in [
        ("alice", "SCRAM-SHA-256", ScramMechanism::Sha256),
        ("mallory", "SCRAM-SHA-256", ScramMechanism::Sha256),
        ("mallory", "SCRAM-SHA-512", ScramMechanism::Sha512),
    ] {
        let mut s = f.server();
        handshake(&mut s, 1, mechanism, f.now);
        let (c, first) =
            ScramClient::new(scram, user, Secret::new("guess".into()), "cn".into()).client_first();
        let step = authenticate(&mut s, 2, &first, f.now);
        let (code, _, server_first, _) = auth_reply(reply(&step), 2);
        assert_eq!(code, ErrorCode::NONE);
        let text = String::from_utf8(server_first.clone()).expect("utf8");
        assert!(text.ends_with(",i=4096"), "{text}");
        let salt = text.split(",s=").nth(1).and_then(|r| r.split(',').next()).expect("salt");
        assert_eq!(salt.len(), 44, "a 32-byte salt, like real users");
        let (_, last) = c.server_first(&server_first).expect("client final");
        let step = authenticate(&mut s, 2, &last, f.now);
        let (code, message, _, _) = auth_reply(reply(&step), 2);
        assert_eq!(code, ErrorCode::SASL_AUTHENTICATION_FAILED);
        assert_eq!(
            message.as_deref(),
            Some(format!("Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}").as_str())
        );
    }
}

#[test]
fn unknown_or_disabled_mechanism() {
    let f = Fixture::with(|c| c.mechanisms.retain(|m| *m != Mechanism::OAuthBearer));
    for name in ["GSSAPI", "OAUTHBEARER", "plain"] {
        let mut s = f.server();
        let step = handshake(&mut s, 1, name, f.now);
        let (code, mechanisms) = handshake_reply(reply(&step));
        assert_eq!(code, ErrorCode::UNSUPPORTED_SASL_MECHANISM);
        assert_eq!(mechanisms, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);
        let (reason, delay) = failure(&step);
        assert_eq!(reason, &FailureReason::UnsupportedMechanism { requested: name.into() });
        assert_eq!(reason.error_code(), Some(ErrorCode::UNSUPPORTED_SASL_MECHANISM));
        assert_eq!(delay, DEFAULT_FAILURE_DELAY);
    }
}

#[test]
fn oauthbearer_success_lifetime_and_expired_token() {
    let f = Fixture::with(|c| c.session_lifetime = Some(Duration::from_secs(3600)));
    let mut s = f.server();
    handshake(&mut s, 1, "OAUTHBEARER", f.now);
    let step = authenticate(&mut s, 1, &f.token("carol", 600), f.now);
    let auth = authenticated(&step).clone();
    assert_eq!(auth.principal.name(), "carol", "principal from sub, no user store involved");
    assert_eq!(auth.lifetime, Some(Duration::from_secs(600)), "token expiry wins over the 1 h maximum");
    assert_eq!(auth.expires_at, Some(f.now + Duration::from_secs(600)));
    assert_eq!(auth_reply(reply(&step), 1).3, 600_000);
    assert!(!s.is_expired(f.now + Duration::from_secs(599)));
    assert!(s.is_expired(f.now + Duration::from_secs(600)));
    assert_eq!(
        s.admit(ApiKey::FETCH, f.now + Duration::from_secs(600)),
        Admission::Refuse { reason: FailureReason::SessionExpired, close_after: Duration::ZERO }
    );

    // Expired: the JSON challenge, then the client's 0x01, then 58.
    let mut s = f.server();
    handshake(&mut s, 1, "OAUTHBEARER", f.now);
    let step = authenticate(&mut s, 1, &f.token("carol", -3600), f.now);
    let (code, message, challenge, lifetime) = auth_reply(reply(&step), 1);
    assert_eq!((code, message, lifetime), (ErrorCode::NONE, None, 0));
    assert_eq!(challenge, br#"{"status":"invalid_token"}"#);
    let step = authenticate(&mut s, 1, &[1], f.now);
    let (reason, _) = failure(&step);
    assert!(
        matches!(reason, FailureReason::Authentication { mechanism: Mechanism::OAuthBearer, .. }),
        "{reason}"
    );
    assert!(reason.to_string().contains("expired"), "{reason}");
    let (code, message, _, _) = auth_reply(reply(&step), 1);
    assert_eq!(code, ErrorCode::SASL_AUTHENTICATION_FAILED);
    assert_eq!(message.as_deref(), Some(r#"{"status":"invalid_token"}"#), "no detail for the client");
}

#[test]
fn session_lifetime_rules() {
    assert_eq!(session_lifetime(None, None, wall()), None);
    assert_eq!(session_lifetime(Some(Duration::ZERO), None, wall()), None, "0 = none");
    assert_eq!(session_lifetime(Some(Duration::from_secs(5)), None, wall()), Some(Duration::from_secs(5)));
    let exp = wall() + Duration::from_secs(9);
    assert_eq!(session_lifetime(None, Some(exp), wall()), Some(Duration::from_secs(9)));
    assert_eq!(
        session_lifetime(Some(Duration::from_secs(5)), Some(exp), wall()),
        Some(Duration::from_secs(5))
    );
    let past = wall() - Duration::from_secs(9);
    assert_eq!(
        session_lifetime(None, Some(past), wall()),
        Some(Duration::from_millis(1)),
        "never 0 = unlimited"
    );
    assert_eq!(lifetime_ms(None), 0);
    assert_eq!(lifetime_ms(Some(Duration::from_micros(10))), 1);

    // A configured lifetime applies to password mechanisms too.
    let f = Fixture::with(|c| c.session_lifetime = Some(Duration::from_millis(1500)));
    let mut s = f.server();
    handshake(&mut s, 1, "PLAIN", f.now);
    let step = authenticate(&mut s, 0, &plain("alice", "alice-secret"), f.now);
    assert_eq!(authenticated(&step).lifetime, Some(Duration::from_millis(1500)));
    assert_eq!(auth_reply(reply(&step), 0).3, 0, "v0 has no SessionLifetimeMs field");
    assert_eq!(s.session_expires_at(), Some(f.now + Duration::from_millis(1500)));
}

#[test]
fn illegal_sasl_state() {
    let f = Fixture::new();
    // Anything but ApiVersions/SaslHandshake before authentication.
    let mut s = f.server();
    let refused = s.admit(ApiKey::METADATA, f.now);
    assert_eq!(
        refused,
        Admission::Refuse {
            reason: FailureReason::IllegalState { api_key: ApiKey::METADATA },
            close_after: DEFAULT_FAILURE_DELAY
        }
    );
    if let Admission::Refuse { reason, .. } = refused {
        assert_eq!(reason.error_code(), Some(ErrorCode::ILLEGAL_SASL_STATE));
    }
    assert!(s.has_failed());

    // SaslAuthenticate before SaslHandshake: a 34 response, then close.
    let mut s = f.server();
    let step = authenticate(&mut s, 1, &plain("alice", "alice-secret"), f.now);
    assert_eq!(auth_reply(reply(&step), 1).0, ErrorCode::ILLEGAL_SASL_STATE);
    assert!(matches!(failure(&step).0, FailureReason::IllegalState { api_key: ApiKey::SASL_AUTHENTICATE }));

    // During the exchange: only SaslAuthenticate; a second handshake is answered with 34.
    let mut s = f.server();
    handshake(&mut s, 1, "SCRAM-SHA-256", f.now);
    assert!(matches!(s.admit(ApiKey::API_VERSIONS, f.now), Admission::Refuse { .. }));
    let mut s = f.server();
    handshake(&mut s, 1, "SCRAM-SHA-256", f.now);
    let step = handshake(&mut s, 1, "SCRAM-SHA-256", f.now);
    assert_eq!(handshake_reply(reply(&step)).0, ErrorCode::ILLEGAL_SASL_STATE);
    assert!(s.has_failed());

    // Raw-token mode: any Kafka request is refused.
    let mut s = f.server();
    handshake(&mut s, 0, "PLAIN", f.now);
    assert!(matches!(s.admit(ApiKey::SASL_AUTHENTICATE, f.now), Admission::Refuse { .. }));

    // SaslAuthenticate after authentication: 34, the session goes on (KafkaApis).
    let mut s = f.server();
    handshake(&mut s, 1, "PLAIN", f.now);
    authenticate(&mut s, 1, &plain("alice", "alice-secret"), f.now);
    let step = authenticate(&mut s, 1, &plain("alice", "alice-secret"), f.now);
    assert!(matches!(step, ServerStep::Reply(_)));
    assert_eq!(auth_reply(reply(&step), 1).0, ErrorCode::ILLEGAL_SASL_STATE);
    assert!(s.is_authenticated());
}

#[test]
fn malformed_requests_close_without_reply() {
    let f = Fixture::new();
    let mut s = f.server();
    let step = s.on_request(
        RequestRef { api_key: ApiKey::SASL_HANDSHAKE, version: 1, correlation_id: 1, body: &[0, 9, b'P'] },
        f.now,
        wall(),
    );
    assert!(
        matches!(step, ServerStep::Failed { reply: None, reason: FailureReason::Decode(_), close_after } if close_after.is_zero())
    );
    let mut s = f.server();
    let step = s.on_request(
        RequestRef { api_key: ApiKey::SASL_HANDSHAKE, version: 2, correlation_id: 1, body: &[0, 1, b'P'] },
        f.now,
        wall(),
    );
    assert!(matches!(failure(&step).0, FailureReason::Decode(DecodeError::UnsupportedVersion { .. })));
    let mut s = f.server();
    handshake(&mut s, 1, "PLAIN", f.now);
    let huge = vec![b'a'; MAX_UNAUTHENTICATED_FRAME + 1];
    let step = authenticate(&mut s, 1, &huge, f.now);
    assert!(matches!(failure(&step).0, FailureReason::TokenTooLarge { .. }));
    assert_eq!(auth_reply(reply(&step), 1).0, ErrorCode::SASL_AUTHENTICATION_FAILED);
}

#[test]
fn reauthentication_same_principal_and_mechanism() {
    let f = Fixture::with(|c| c.session_lifetime = Some(Duration::from_secs(60)));
    let mut s = f.server();
    handshake(&mut s, 1, "SCRAM-SHA-256", f.now);
    let run_scram = |s: &mut SaslServer, now: Instant| {
        let (c, first) = ScramClient::new(
            ScramMechanism::Sha256,
            "alice",
            Secret::new("alice-secret".into()),
            "cn".into(),
        )
        .client_first();
        let step = authenticate(s, 2, &first, now);
        let (_, last) = c.server_first(&auth_reply(reply(&step), 2).2).expect("final");
        authenticate(s, 2, &last, now)
    };
    let step = run_scram(&mut s, f.now);
    assert!(!authenticated(&step).reauthentication);

    let later = f.now + Duration::from_secs(50);
    let step = handshake(&mut s, 1, "SCRAM-SHA-256", later);
    assert_eq!(handshake_reply(reply(&step)).0, ErrorCode::NONE);
    assert_eq!(s.principal().map(Principal::name), Some("alice"), "still known during re-authentication");
    let step = run_scram(&mut s, later);
    let auth = authenticated(&step);
    assert!(auth.reauthentication);
    assert_eq!(auth.expires_at, Some(later + Duration::from_secs(60)), "a fresh lifetime");

    // A second re-authentication within a second is answered 34, session kept.
    let step = handshake(&mut s, 1, "SCRAM-SHA-256", later + Duration::from_millis(500));
    assert!(matches!(step, ServerStep::Reply(_)));
    assert_eq!(handshake_reply(reply(&step)).0, ErrorCode::ILLEGAL_SASL_STATE);
    assert!(s.is_authenticated());
    let step = handshake(&mut s, 1, "SCRAM-SHA-256", later + Duration::from_secs(1));
    assert_eq!(handshake_reply(reply(&step)).0, ErrorCode::NONE);
}

#[test]
fn no_other_traffic_during_reauthentication() {
    let f = Fixture::new();
    let mut s = f.server();
    handshake(&mut s, 1, "PLAIN", f.now);
    authenticate(&mut s, 1, &plain("alice", "alice-secret"), f.now);
    handshake(&mut s, 1, "PLAIN", f.now);
    assert!(matches!(
        s.admit(ApiKey::PRODUCE, f.now),
        Admission::Refuse { reason: FailureReason::IllegalState { api_key: ApiKey::PRODUCE }, .. }
    ));
    assert!(s.has_failed());
}

#[test]
fn reauthentication_with_another_principal_fails() {
    let f = Fixture::new();
    let mut s = f.server();
    handshake(&mut s, 1, "PLAIN", f.now);
    authenticate(&mut s, 2, &plain("alice", "alice-secret"), f.now);
    handshake(&mut s, 1, "PLAIN", f.now);
    let step = authenticate(&mut s, 2, &plain("bob", "bob-secret"), f.now);
    let (reason, delay) = failure(&step);
    assert_eq!(
        reason,
        &FailureReason::ReauthPrincipalChanged { from: Principal::user("alice"), to: Principal::user("bob") }
    );
    assert_eq!(delay, DEFAULT_FAILURE_DELAY);
    let (code, message, _, _) = auth_reply(reply(&step), 2);
    assert_eq!(code, ErrorCode::SASL_AUTHENTICATION_FAILED);
    assert_eq!(
        message.as_deref(),
        Some("Cannot change principals during re-authentication from User:alice: User:bob")
    );

    // Bad credentials during re-authentication say so.
    let mut s = f.server();
    handshake(&mut s, 1, "PLAIN", f.now);
    authenticate(&mut s, 2, &plain("alice", "alice-secret"), f.now);
    handshake(&mut s, 1, "PLAIN", f.now);
    let step = authenticate(&mut s, 2, &plain("alice", "nope"), f.now);
    let message = auth_reply(reply(&step), 2).1.expect("message");
    assert!(message.starts_with("Authentication failed during re-authentication"), "{message}");
}

#[test]
fn reauthentication_with_another_mechanism_fails() {
    let f = Fixture::new();
    let mut s = f.server();
    handshake(&mut s, 1, "PLAIN", f.now);
    authenticate(&mut s, 1, &plain("alice", "alice-secret"), f.now);
    // Kafka accepts the handshake (the mechanism is enabled) and fails at the next token.
    let step = handshake(&mut s, 1, "SCRAM-SHA-512", f.now);
    assert_eq!(handshake_reply(reply(&step)).0, ErrorCode::NONE);
    let step = authenticate(&mut s, 1, b"n,,n=alice,r=abc", f.now);
    assert_eq!(
        failure(&step).0,
        &FailureReason::ReauthMechanismChanged { from: Mechanism::Plain, to: SHA512 }
    );
    let message = auth_reply(reply(&step), 1).1.expect("message");
    assert_eq!(
        message,
        "SASL mechanism 'SCRAM-SHA-512' requested by client is not supported for re-authentication of mechanism 'PLAIN'"
    );
}

#[test]
fn expired_session_can_still_reauthenticate() {
    let f = Fixture::with(|c| c.session_lifetime = Some(Duration::from_secs(10)));
    let mut s = f.server();
    handshake(&mut s, 1, "PLAIN", f.now);
    authenticate(&mut s, 1, &plain("alice", "alice-secret"), f.now);
    let late = f.now + Duration::from_secs(11);
    assert!(s.is_expired(late));
    let mut other = f.server();
    handshake(&mut other, 1, "PLAIN", f.now);
    authenticate(&mut other, 1, &plain("alice", "alice-secret"), f.now);
    assert_eq!(
        other.admit(ApiKey::SASL_AUTHENTICATE, late),
        Admission::Refuse { reason: FailureReason::SessionExpired, close_after: Duration::ZERO },
        "only SaslHandshake once expired"
    );
    let step = handshake(&mut s, 1, "PLAIN", late);
    assert_eq!(handshake_reply(reply(&step)).0, ErrorCode::NONE);
    let step = authenticate(&mut s, 1, &plain("alice", "alice-secret"), late);
    assert_eq!(authenticated(&step).expires_at, Some(late + Duration::from_secs(10)));
    assert!(!s.is_expired(late));
}

#[test]
fn config_validation_and_debug() {
    let f = Fixture::new();
    let mut c = (*f.config).clone();
    c.oauthbearer = None;
    assert_eq!(c.validate(), Err(ServerConfigError::OAuthBearerWithoutValidator));
    c.mechanisms.clear();
    assert_eq!(c.validate(), Err(ServerConfigError::NoMechanism));
    let deduped =
        ServerConfig::new(&[Mechanism::Plain, Mechanism::Plain], store(), Arc::new(FixedRandom::new()));
    assert_eq!(deduped.mechanisms, [Mechanism::Plain]);
    let debug = format!("{:?}", f.config);
    assert!(!debug.contains("alice-secret"));
}

#[derive(Debug, Clone)]
enum Op {
    Admit(i16),
    Handshake(i16, Vec<u8>),
    Authenticate(i16, Vec<u8>),
    Raw(Vec<u8>),
    Wait(u16),
}

fn op() -> impl Strategy<Value = Op> {
    let mechanism = prop_oneof![
        Just(b"PLAIN".to_vec()),
        Just(b"SCRAM-SHA-256".to_vec()),
        Just(b"SCRAM-SHA-512".to_vec()),
        Just(b"OAUTHBEARER".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..12),
    ];
    let token = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..48),
        Just(b"\0alice\0guess".to_vec()),
        Just(b"n,,n=alice,r=abc".to_vec()),
        Just(vec![1u8]),
    ];
    prop_oneof![
        (-1i16..80).prop_map(Op::Admit),
        (-1i16..3, mechanism).prop_map(|(v, m)| Op::Handshake(v, m)),
        (-1i16..4, token.clone()).prop_map(|(v, t)| Op::Authenticate(v, t)),
        token.prop_map(Op::Raw),
        any::<u16>().prop_map(Op::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
    #[test]
    fn arbitrary_sequences_never_panic_nor_authenticate(ops in proptest::collection::vec(op(), 0..12)) {
        static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
        let f = FIXTURE.get_or_init(Fixture::new);
        let mut s = f.server();
        let mut now = f.now;
        for op in ops {
            let step = match op {
                Op::Admit(key) => { let _ = s.admit(ApiKey(key), now); continue; }
                Op::Handshake(v, m) => {
                    let mut body = Vec::new();
                    crate::wire::put_string(&mut body, false, &m);
                    s.on_request(RequestRef { api_key: ApiKey::SASL_HANDSHAKE, version: v, correlation_id: 0, body: &body }, now, wall())
                }
                Op::Authenticate(v, t) => {
                    let mut body = Vec::new();
                    crate::wire::put_bytes(&mut body, v >= 2, &t);
                    crate::wire::put_empty_tagged_fields_if(&mut body, v >= 2);
                    s.on_request(RequestRef { api_key: ApiKey::SASL_AUTHENTICATE, version: v, correlation_id: 0, body: &body }, now, wall())
                }
                Op::Raw(t) => s.on_raw_token(&t, now, wall()),
                Op::Wait(ms) => { now += Duration::from_millis(u64::from(ms)); continue; }
            };
            let authenticated = matches!(step, ServerStep::Authenticated { .. });
            prop_assert!(!authenticated, "authenticated without credentials: {:?}", step);
            prop_assert!(!s.is_authenticated());
        }
    }
}
