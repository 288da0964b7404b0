//! JWT validation with keys made for the tests, every claim check on its own,
//! the GS2 framing, and the challenge flow.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

use super::jwt::MAX_TOKEN_LEN;
use super::*;

const RSA_PKCS8_PEM: &[u8] = include_bytes!("../testdata/rsa2048.pkcs8.pem");
const RSA_SPKI_PEM: &[u8] = include_bytes!("../testdata/rsa2048.spki.pem");
const NOW: u64 = 1_700_000_000;
const P256_SPKI_PREFIX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";
const P384_SPKI_PREFIX: &str = "3076301006072a8648ce3d020106052b81040022036200";

fn wall() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect()
}

fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> =
        body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("ascii")).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n")).into_bytes()
}

enum TestKey {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair, EcCurve),
}

impl TestKey {
    fn rsa() -> TestKey {
        let (_, block) = x509_parser::pem::parse_x509_pem(RSA_PKCS8_PEM).expect("pem");
        TestKey::Rsa(RsaKeyPair::from_pkcs8(&block.contents).expect("rsa key"))
    }

    fn ec(curve: EcCurve) -> TestKey {
        let rng = SystemRandom::new();
        let alg = match curve {
            EcCurve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            EcCurve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            EcCurve::P521 => panic!("ring cannot sign P-521: ES512 uses a fixture"),
        };
        let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("generate");
        TestKey::Ec(EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).expect("key"), curve)
    }

    fn public(&self) -> PublicKey {
        match self {
            TestKey::Rsa(k) => {
                let c = signature::RsaPublicKeyComponents::<Vec<u8>>::from(k.public());
                PublicKey::rsa(&c.n, &c.e).expect("rsa public")
            }
            TestKey::Ec(k, curve) => PublicKey::ec(*curve, k.public_key().as_ref()).expect("ec public"),
        }
    }

    fn spki_pem(&self) -> Vec<u8> {
        match self {
            TestKey::Rsa(_) => RSA_SPKI_PEM.to_vec(),
            TestKey::Ec(k, curve) => {
                let prefix = match curve {
                    EcCurve::P256 => P256_SPKI_PREFIX,
                    EcCurve::P384 => P384_SPKI_PREFIX,
                    EcCurve::P521 => panic!("no P-521 test keys"),
                };
                let mut der = hex(prefix);
                der.extend_from_slice(k.public_key().as_ref());
                pem("PUBLIC KEY", &der)
            }
        }
    }

    fn jwk(&self, kid: &str) -> Value {
        match self {
            TestKey::Rsa(k) => {
                let c = signature::RsaPublicKeyComponents::<Vec<u8>>::from(k.public());
                json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b64(&c.n), "e": b64(&c.e)})
            }
            TestKey::Ec(k, curve) => {
                let point = k.public_key().as_ref();
                let half = (point.len() - 1) / 2;
                let crv = if *curve == EcCurve::P256 { "P-256" } else { "P-384" };
                json!({"kty": "EC", "kid": kid, "crv": crv, "x": b64(&point[1..1 + half]), "y": b64(&point[1 + half..])})
            }
        }
    }

    fn default_alg(&self) -> &'static str {
        match self {
            TestKey::Rsa(_) => "RS256",
            TestKey::Ec(_, EcCurve::P256) => "ES256",
            TestKey::Ec(_, EcCurve::P384) => "ES384",
            TestKey::Ec(_, EcCurve::P521) => "ES512",
        }
    }

    fn sign(&self, alg: &str, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            TestKey::Rsa(k) => {
                let padding: &'static dyn signature::RsaEncoding = match alg {
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(padding, &rng, message, &mut sig).expect("sign");
                sig
            }
            TestKey::Ec(k, _) => k.sign(&rng, message).expect("sign").as_ref().to_vec(),
        }
    }

    fn token_with(&self, header: Value, claims: &Value) -> String {
        let alg = header["alg"].as_str().unwrap_or("RS256").to_owned();
        let signing_input =
            format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let sig = self.sign(&alg, signing_input.as_bytes());
        format!("{signing_input}.{}", b64(&sig))
    }

    fn token(&self, claims: &Value) -> String {
        self.token_with(json!({"alg": self.default_alg(), "typ": "JWT"}), claims)
    }
}

fn claims() -> Value {
    json!({
        "sub": "alice",
        "iss": "https://auth.example.com",
        "aud": "kafka-proxy",
        "scope": "kafka other",
        "iat": NOW - 10,
        "exp": NOW + 3600,
    })
}

fn rules() -> JwtRules {
    JwtRules {
        issuer: Some("https://auth.example.com".into()),
        audiences: vec!["kafka-proxy".into()],
        required_scopes: vec!["kafka".into()],
        clock_skew: Duration::from_secs(60),
        subject_claim: None,
        scope_claim: None,
    }
}

fn validator(key: &TestKey) -> JwtValidator {
    JwtValidator::new(KeySet::from_pem(&key.spki_pem()).expect("keys"), rules())
}

fn with(mut base: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().expect("object") {
        if v.is_null() {
            base.as_object_mut().expect("object").remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}

#[test]
fn every_supported_algorithm_verifies_from_pem_and_jwks() {
    let rsa = TestKey::rsa();
    for alg in ["RS256", "RS384", "RS512"] {
        let token = rsa.token_with(json!({"alg": alg}), &claims());
        let valid = validator(&rsa).validate(&token, wall()).expect(alg);
        assert_eq!(valid.subject, "alice");
        assert_eq!(valid.expires_at, UNIX_EPOCH + Duration::from_secs(NOW + 3600));
        assert_eq!(valid.issued_at, UNIX_EPOCH + Duration::from_secs(NOW - 10));
        assert_eq!(valid.scopes, ["kafka", "other"]);
    }
    for curve in [EcCurve::P256, EcCurve::P384] {
        let key = TestKey::ec(curve);
        let token = key.token(&claims());
        assert_eq!(
            validator(&key).validate(&token, wall()).map(|t| t.subject),
            Ok("alice".into()),
            "{curve:?} PEM"
        );
        let jwks = json!({"keys": [key.jwk("k1")]}).to_string();
        let v = JwtValidator::new(KeySet::from_jwks(&jwks).expect("jwks"), rules());
        assert!(v.validate(&token, wall()).is_ok(), "{curve:?} JWKS");
        assert_eq!(KeySet::from_pem(&key.spki_pem()).expect("pem").keys()[0].key, key.public());
    }
    assert_eq!(KeySet::from_pem(RSA_SPKI_PEM).expect("pem").keys()[0].key, rsa.public());
}

#[test]
fn jwks_selects_by_kid() {
    let a = TestKey::ec(EcCurve::P256);
    let b = TestKey::ec(EcCurve::P256);
    let rsa = TestKey::rsa();
    let jwks = json!({"keys": [
        a.jwk("a"), b.jwk("b"), rsa.jwk("r"),
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"},
        {"kty": "RSA", "use": "enc", "n": "AA", "e": "AQAB"},
    ]})
    .to_string();
    let keys = KeySet::from_jwks(&jwks).expect("jwks");
    assert_eq!(keys.keys().len(), 3, "unsupported and encryption keys skipped");
    let v = JwtValidator::new(keys, rules());
    let by_b = b.token_with(json!({"alg": "ES256", "kid": "b"}), &claims());
    assert!(v.validate(&by_b, wall()).is_ok());
    let wrong_kid = b.token_with(json!({"alg": "ES256", "kid": "a"}), &claims());
    assert_eq!(v.validate(&wrong_kid, wall()), Err(JwtError::BadSignature));
    let unknown_kid = b.token_with(json!({"alg": "ES256", "kid": "zz"}), &claims());
    assert_eq!(v.validate(&unknown_kid, wall()), Err(JwtError::NoKey));
    let no_kid = b.token_with(json!({"alg": "ES256"}), &claims());
    assert!(v.validate(&no_kid, wall()).is_ok(), "without kid every compatible key is tried");
    let rs = rsa.token_with(json!({"alg": "RS512", "kid": "r"}), &claims());
    assert!(v.validate(&rs, wall()).is_ok());
    let es384 = TestKey::ec(EcCurve::P384).token(&claims());
    assert_eq!(v.validate(&es384, wall()), Err(JwtError::NoKey), "no P-384 key configured");
}

#[test]
fn algorithms_outside_the_list_are_refused() {
    let key = TestKey::ec(EcCurve::P256);
    let v = validator(&key);
    let body = b64(claims().to_string().as_bytes());
    let none = format!("{}.{body}.", b64(br#"{"alg":"none"}"#));
    assert_eq!(v.validate(&none, wall()), Err(JwtError::UnsupportedAlgorithm));
    let hs = format!("{}.{body}.{}", b64(br#"{"alg":"HS256"}"#), b64(b"mac"));
    assert_eq!(v.validate(&hs, wall()), Err(JwtError::UnsupportedAlgorithm));
    let lower = key.token_with(json!({"alg": "es256"}), &claims());
    assert_eq!(v.validate(&lower, wall()), Err(JwtError::UnsupportedAlgorithm));
    let crit = key.token_with(json!({"alg": "ES256", "crit": ["exp"]}), &claims());
    assert_eq!(v.validate(&crit, wall()), Err(JwtError::CriticalHeader));
    // An RSA token against an EC key set: the alg picks no key.
    let rs = TestKey::rsa().token(&claims());
    assert_eq!(v.validate(&rs, wall()), Err(JwtError::NoKey));
}

#[test]
fn forged_and_tampered_tokens_are_refused() {
    let key = TestKey::ec(EcCurve::P256);
    let v = validator(&key);
    let forged = TestKey::ec(EcCurve::P256).token(&claims());
    assert_eq!(v.validate(&forged, wall()), Err(JwtError::BadSignature));
    let token = key.token(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    let bob = b64(with(claims(), json!({"sub": "bob"})).to_string().as_bytes());
    let tampered = format!("{}.{bob}.{}", parts[0], parts[2]);
    assert_eq!(v.validate(&tampered, wall()), Err(JwtError::BadSignature));
    assert!(matches!(v.validate("a.b", wall()), Err(JwtError::Malformed(_))));
    assert!(matches!(v.validate("a.b.c.d", wall()), Err(JwtError::Malformed(_))));
    assert!(matches!(v.validate("!!.b.c", wall()), Err(JwtError::Malformed(_))));
    assert_eq!(v.validate(&"a".repeat(MAX_TOKEN_LEN + 1), wall()), Err(JwtError::TooLong));
}

#[test]
fn each_claim_check_fails_on_its_own() {
    let key = TestKey::ec(EcCurve::P256);
    let v = validator(&key);
    let check = |changes: Value| v.validate(&key.token(&with(claims(), changes)), wall()).map(|t| t.subject);
    assert_eq!(check(json!({})), Ok("alice".into()), "baseline");
    assert_eq!(check(json!({"exp": null})), Err(JwtError::MissingClaim("exp")));
    assert_eq!(check(json!({"iat": null})), Err(JwtError::MissingClaim("iat")));
    assert_eq!(check(json!({"sub": null})), Err(JwtError::MissingClaim("sub")));
    assert_eq!(check(json!({"sub": " "})), Err(JwtError::MissingClaim("sub")));
    assert_eq!(check(json!({"sub": 7})), Err(JwtError::InvalidClaim("sub")));
    assert_eq!(check(json!({"exp": "soon"})), Err(JwtError::InvalidClaim("exp")));
    assert_eq!(check(json!({"exp": NOW - 61})), Err(JwtError::Expired));
    assert_eq!(check(json!({"exp": NOW - 59})), Ok("alice".into()), "within the clock skew");
    assert_eq!(check(json!({"exp": 1e300})), Ok("alice".into()), "absurd dates saturate");
    assert_eq!(check(json!({"nbf": NOW + 61})), Err(JwtError::NotYetValid));
    assert_eq!(check(json!({"nbf": NOW + 59})), Ok("alice".into()));
    assert_eq!(check(json!({"iat": NOW + 61})), Err(JwtError::IssuedInFuture));
    assert_eq!(check(json!({"iss": "https://evil.example.com"})), Err(JwtError::Issuer));
    assert_eq!(check(json!({"iss": null})), Err(JwtError::Issuer));
    assert_eq!(check(json!({"aud": "other"})), Err(JwtError::Audience));
    assert_eq!(check(json!({"aud": null})), Err(JwtError::Audience));
    assert_eq!(check(json!({"aud": ["other", "kafka-proxy"]})), Ok("alice".into()));
    assert_eq!(check(json!({"aud": [1]})), Err(JwtError::InvalidClaim("aud")));
    assert_eq!(check(json!({"scope": "other"})), Err(JwtError::Scope));
    assert_eq!(check(json!({"scope": null})), Err(JwtError::Scope));
    assert_eq!(check(json!({"scope": null, "scp": ["kafka"]})), Ok("alice".into()));
    assert_eq!(check(json!({"scope": "kafkaesque"})), Err(JwtError::Scope), "whole words only");

    // Without issuer/audience/scope rules those claims are not required.
    let lax = JwtValidator::new(
        KeySet::from_pem(&key.spki_pem()).expect("keys"),
        JwtRules { clock_skew: Duration::ZERO, ..JwtRules::default() },
    );
    let bare = json!({"sub": "alice", "iat": NOW, "exp": NOW + 1});
    assert!(lax.validate(&key.token(&bare), wall()).is_ok());
    let just_expired = json!({"sub": "alice", "iat": NOW - 5, "exp": NOW});
    assert_eq!(lax.validate(&key.token(&just_expired), wall()), Err(JwtError::Expired), "exp is exclusive");
}

#[test]
fn key_loading_errors() {
    assert_eq!(KeySet::from_pem(b"not a pem"), Err(KeyError::Pem));
    assert!(matches!(KeySet::from_pem(RSA_PKCS8_PEM), Err(KeyError::PemLabel(_))), "private keys refused");
    assert!(matches!(
        KeySet::from_pem(&pem("PUBLIC KEY", b"\x30\x03\x02\x01\x00")),
        Err(KeyError::Malformed(_))
    ));
    assert!(matches!(PublicKey::rsa(&[0xff; 128], &[1, 0, 1]), Err(KeyError::RsaSize { bits: 1024 })));
    assert!(
        PublicKey::rsa(&[[0u8; 3].as_slice(), &[0xff; 256]].concat(), &[0, 1, 0, 1]).is_ok(),
        "leading zeros"
    );
    assert!(PublicKey::ec(EcCurve::P256, &[2; 33]).is_err(), "compressed points unsupported");
    assert_eq!(KeySet::from_jwks(r#"{"keys": []}"#), Err(KeyError::NoUsableKey));
    assert!(KeySet::from_jwks("[]").is_err());
    let bad = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}]}).to_string();
    assert!(matches!(KeySet::from_jwks(&bad), Err(KeyError::Malformed(_))));
    let rsa = TestKey::rsa();
    let mismatched = json!({"keys": [with(rsa.jwk("r"), json!({"alg": "ES256"}))]}).to_string();
    assert!(matches!(KeySet::from_jwks(&mismatched), Err(KeyError::Malformed(_))));
    assert_eq!(format!("{:?}", rsa.public()), "Rsa(2048 bits)");
}

#[test]
fn initial_response_framing() {
    let r = parse_client_initial_response(b"n,,\x01auth=Bearer abc.def-_~+/=\x01\x01").expect("minimal");
    assert_eq!((r.authzid, *r.token.expose()), (None, "abc.def-_~+/="));
    let r = parse_client_initial_response(b"n,a=alice,\x01host=h\x01auth=bEaReR   tok\x01port=9\x01\x01")
        .expect("authzid, extensions, any-case scheme");
    assert_eq!(r.authzid.as_deref(), Some("alice"));
    assert_eq!(*r.token.expose(), "tok");
    assert_eq!(r.extensions, [("host", "h"), ("port", "9")]);
    assert_eq!(format!("{:?}", r.token), "***");
    for bad in [
        &b"n,,\x01auth=Bearer tok\x01"[..],
        b"n,,auth=Bearer tok\x01\x01",
        b"y,,\x01auth=Bearer tok\x01\x01",
        b"n,,\x01auth=Basic dXNlcg==\x01\x01",
        b"n,,\x01auth=Bearer\x01\x01",
        b"n,,\x01auth=Bearer to ken\x01\x01",
        b"n,,\x01auth=Bearer =\x01\x01",
        b"n,,\x01host=h\x01\x01",
        b"n,,\x01\x01",
        b"n,,\x01auth=Bearer a\x01auth=Bearer b\x01\x01",
        b"n,,\x01h=1\x01h=2\x01auth=Bearer a\x01\x01",
        b"n,,\x01k1=v\x01auth=Bearer a\x01\x01",
        b"n,x,\x01auth=Bearer a\x01\x01",
        b"n,,\x01auth=Bearer a\x01\x01\x01",
        b"",
    ] {
        assert!(matches!(parse_client_initial_response(bad), Err(OAuthError::Malformed(_))), "{bad:?}");
    }
    let built = client_initial_response("abc");
    assert_eq!(built.expose(), b"n,,\x01auth=Bearer abc\x01\x01");
}

#[test]
fn server_flow_success_challenge_and_ack() {
    let key = TestKey::ec(EcCurve::P256);
    let v = validator(&key);
    let good = client_initial_response(&key.token(&claims()));
    match OAuthBearerServer.initial_response(good.expose(), &v, wall()) {
        OAuthStep::Success(s) => {
            assert_eq!(s.principal, "alice");
            assert_eq!(s.expires_at, UNIX_EPOCH + Duration::from_secs(NOW + 3600));
        }
        other => panic!("expected success, got {other:?}"),
    }
    let expired = client_initial_response(&key.token(&with(claims(), json!({"exp": NOW - 3600}))));
    let OAuthStep::Challenge(sent) = OAuthBearerServer.initial_response(expired.expose(), &v, wall()) else {
        panic!("expected the challenge");
    };
    assert_eq!(sent.reason(), &JwtError::Expired);
    assert_eq!(sent.clone().client_reply(&[1]), OAuthError::InvalidToken(JwtError::Expired));
    assert_eq!(sent.client_reply(b"n,,"), OAuthError::UnexpectedAfterChallenge);

    let mut mismatched = b"n,a=bob,".to_vec();
    mismatched.extend_from_slice(&good.expose()[3..]);
    assert_eq!(
        OAuthBearerServer.initial_response(&mismatched, &v, wall()),
        OAuthStep::Failure(OAuthError::AuthzidMismatch)
    );
    assert!(matches!(
        OAuthBearerServer.initial_response(b"garbage", &v, wall()),
        OAuthStep::Failure(OAuthError::Malformed(_))
    ));
}

proptest! {
    #[test]
    fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..96), text in "[A-Za-z0-9._~+/=-]{0,80}") {
        let _ = parse_client_initial_response(&data);
        let key_set = KeySet::new(vec![VerificationKey {
            kid: None,
            alg: None,
            key: PublicKey::ec(EcCurve::P256, &[[4u8].as_slice(), &[7; 64]].concat()).expect("point"),
        }]).expect("keys");
        let v = JwtValidator::new(key_set, rules());
        prop_assert!(v.validate(&text, wall()).is_err());
        let _ = v.validate(&String::from_utf8_lossy(&data), wall());
        let _ = KeySet::from_jwks(&String::from_utf8_lossy(&data));
        let _ = KeySet::from_pem(&data);
    }
}

// ----- PS256/384/512, ES512, EdDSA; claim names; audience lists; JWKS stores -----

const ES512_JWKS: &str = include_str!("../testdata/es512.jwks.json");
const ES512_SPKI_PEM: &[u8] = include_bytes!("../testdata/es512.spki.pem");
const ES512_TOKEN: &str = include_str!("../testdata/es512.token");
const ED25519_SPKI_PREFIX: &str = "302a300506032b6570032100";

fn signed(header: Value, claims: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let signing_input =
        format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let sig = sign(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&sig))
}

#[test]
fn pss_signatures_verify_and_are_not_pkcs1() {
    let TestKey::Rsa(rsa) = TestKey::rsa() else { unreachable!() };
    let rng = SystemRandom::new();
    for (alg, padding) in [
        ("PS256", &signature::RSA_PSS_SHA256 as &'static dyn signature::RsaEncoding),
        ("PS384", &signature::RSA_PSS_SHA384),
        ("PS512", &signature::RSA_PSS_SHA512),
    ] {
        let token = signed(json!({"alg": alg, "kid": "r1"}), &claims(), |m| {
            let mut sig = vec![0; rsa.public().modulus_len()];
            rsa.sign(padding, &rng, m, &mut sig).expect("sign");
            sig
        });
        let v = validator(&TestKey::rsa());
        assert_eq!(v.validate(&token, wall()).map(|t| t.subject), Ok("alice".into()), "{alg}");
        // The same signature claimed as PKCS#1 v1.5 does not verify.
        let (_, rest) = token.split_once('.').unwrap();
        let relabelled =
            format!("{}.{rest}", b64(json!({"alg": alg.replace('P', "R")}).to_string().as_bytes()));
        assert_eq!(v.validate(&relabelled, wall()).map(|t| t.subject), Err(JwtError::BadSignature), "{alg}");
    }
}

#[test]
fn eddsa_verifies_from_pem_and_jwks() {
    let rng = SystemRandom::new();
    let doc = signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("generate");
    let key = signature::Ed25519KeyPair::from_pkcs8(doc.as_ref()).expect("key");
    let public = key.public_key().as_ref().to_vec();
    let token = signed(json!({"alg": "EdDSA", "kid": "ed"}), &claims(), |m| key.sign(m).as_ref().to_vec());
    let mut der = hex(ED25519_SPKI_PREFIX);
    der.extend_from_slice(&public);
    let from_pem = JwtValidator::new(KeySet::from_pem(&pem("PUBLIC KEY", &der)).expect("pem"), rules());
    assert_eq!(from_pem.validate(&token, wall()).map(|t| t.subject), Ok("alice".into()));
    let jwks =
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(&public)}]}).to_string();
    let from_jwks = JwtValidator::new(KeySet::from_jwks(&jwks).expect("jwks"), rules());
    assert_eq!(from_jwks.validate(&token, wall()).map(|t| t.subject), Ok("alice".into()));
    let mut tampered = token.clone();
    tampered.push('A');
    assert!(from_jwks.validate(&tampered, wall()).is_err());
}

#[test]
fn es512_verifies_with_p521_from_pem_and_jwks() {
    let token = ES512_TOKEN.trim();
    let from_jwks = JwtValidator::new(KeySet::from_jwks(ES512_JWKS).expect("jwks"), rules());
    assert_eq!(from_jwks.validate(token, wall()).map(|t| t.subject), Ok("alice".into()));
    let from_pem = JwtValidator::new(KeySet::from_pem(ES512_SPKI_PEM).expect("pem"), rules());
    assert_eq!(from_pem.validate(token, wall()).map(|t| t.subject), Ok("alice".into()));
    // A flipped signature bit, or the key of another curve, fails.
    let mut bytes = token.as_bytes().to_vec();
    let last = bytes.len() - 2;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(bytes).unwrap();
    assert_eq!(from_jwks.validate(&flipped, wall()).map(|t| t.subject), Err(JwtError::BadSignature));
    let p384 = TestKey::ec(EcCurve::P384);
    assert_eq!(validator(&p384).validate(token, wall()).map(|t| t.subject), Err(JwtError::NoKey));
}

#[test]
fn audience_lists_and_claim_names() {
    let key = TestKey::ec(EcCurve::P256);
    let keys = || KeySet::from_pem(&key.spki_pem()).expect("keys");
    let listed = JwtRules { audiences: vec!["other".into(), "kafka-proxy".into()], ..rules() };
    let token = key.token(&with(claims(), json!({"aud": ["x", "kafka-proxy"]})));
    assert!(JwtValidator::new(keys(), listed.clone()).validate(&token, wall()).is_ok());
    let token = key.token(&with(claims(), json!({"aud": ["x", "y"]})));
    assert_eq!(
        JwtValidator::new(keys(), listed).validate(&token, wall()).map(|_| ()),
        Err(JwtError::Audience)
    );

    let named =
        JwtRules { subject_claim: Some("client_id".into()), scope_claim: Some("scp".into()), ..rules() };
    let token = key.token(&with(claims(), json!({"client_id": "svc-1", "scope": null, "scp": ["kafka"]})));
    assert_eq!(
        JwtValidator::new(keys(), named.clone()).validate(&token, wall()).map(|t| t.subject),
        Ok("svc-1".into())
    );
    let token = key.token(&with(claims(), json!({"scp": ["kafka"]})));
    assert_eq!(
        JwtValidator::new(keys(), named.clone()).validate(&token, wall()).map(|_| ()),
        Err(JwtError::MissingClaim("subject (sub_claim_name)"))
    );
    let token = key.token(&with(claims(), json!({"client_id": "svc-1", "scp": "other"})));
    assert_eq!(JwtValidator::new(keys(), named).validate(&token, wall()).map(|_| ()), Err(JwtError::Scope));
}

#[test]
fn remote_keys_follow_the_store_and_ask_for_unknown_kids() {
    let endpoint = JwksEndpoint {
        url: "https://idp.test/jwks".into(),
        trust: EndpointTrust::SystemRoots,
        refresh: DEFAULT_JWKS_REFRESH,
        min_refresh_interval: DEFAULT_JWKS_MIN_REFRESH_INTERVAL,
    };
    let store = Sources::new().jwks(endpoint);
    let v = JwtValidator::remote(store.clone(), rules());
    let (old, new) = (TestKey::ec(EcCurve::P256), TestKey::ec(EcCurve::P384));
    let old_token = old.token_with(json!({"alg": "ES256", "kid": "old"}), &claims());
    let new_token = new.token_with(json!({"alg": "ES384", "kid": "new"}), &claims());
    assert_eq!(v.validate(&old_token, wall()).map(|_| ()), Err(JwtError::NoKey), "nothing fetched yet");
    assert!(store.take_refresh_request(), "an empty store asks for keys");
    store.install(KeySet::from_jwks(&json!({"keys": [old.jwk("old")]}).to_string()).unwrap());
    assert!(v.validate(&old_token, wall()).is_ok());
    assert_eq!(v.validate(&new_token, wall()).map(|_| ()), Err(JwtError::NoKey));
    assert!(store.take_refresh_request(), "an unknown kid asks for a refresh");
    // The issuer rotated: the new key is in, the old one out.
    store.install(KeySet::from_jwks(&json!({"keys": [new.jwk("new")]}).to_string()).unwrap());
    assert!(v.validate(&new_token, wall()).is_ok());
    assert_eq!(v.validate(&old_token, wall()).map(|_| ()), Err(JwtError::NoKey));
}
