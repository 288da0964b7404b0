//! Known-answer tests for both sides, and parser robustness.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;

use super::attributes::escape_username;
use super::*;

const CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const SALT_B64: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
const SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";

/// RFC 7677 §3 (SCRAM-SHA-256, user "user", password "pencil").
const RFC7677_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC7677_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

// SCRAM-SHA-512 with the same inputs. Produced by an independent implementation
// (Python hashlib/hmac): `python3 core/tests/data/scram_sha512_vectors.py`.
const SHA512_STORED_KEY: &str =
    "6AAub3065EYRmyFpM2RNwqK+eGnrkYuEWbXn19LsEmBqzu8QaCXNc1FwpnX9NhH2hK/60dzj9DoO5DvVkOHbvg==";
const SHA512_SERVER_KEY: &str =
    "jZHbYjC1aHh0/hKbxyBuGFjDrgjgKTT1esA7awWiKcRZ0o/0b1yWEebBeSVkkCFewf91nLDfKF24mvD5nmE6rA==";
const SHA512_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=gMGXRcevScNtxZ6/8lQYpGtnsNAc3mGcmNomv+xnoOMw+3R2xNJdMNnzMlTN8PPC6wdp6dybEmDYXYTxwnYPJQ==";
const SHA512_SERVER_FINAL: &str =
    "v=ZQnYEgWQMFmmsM8aQMF0nDDCy/AgCzkwk8CmMZYcMg0vSVlKDanekLtifDSeVGT4+5ZxXnJq199RVG2rR7N7Zw==";

fn salt() -> Vec<u8> {
    STANDARD.decode(SALT_B64).expect("salt")
}

fn pencil(mechanism: ScramMechanism) -> ScramCredential {
    ScramCredential::from_password(mechanism, b"pencil", salt(), 4096).expect("credential")
}

fn known(credential: ScramCredential) -> impl FnOnce(ScramMechanism, &str) -> ScramLookup {
    move |_, user| {
        assert_eq!(user, "user");
        ScramLookup { credential, known: true }
    }
}

fn client(mechanism: ScramMechanism, password: &str) -> ScramClient {
    ScramClient::new(mechanism, "user", Secret::new(password.to_owned()), CLIENT_NONCE.to_owned())
}

fn vectors(mechanism: ScramMechanism) -> (&'static str, &'static str) {
    match mechanism {
        ScramMechanism::Sha256 => (RFC7677_CLIENT_FINAL, RFC7677_SERVER_FINAL),
        ScramMechanism::Sha512 => (SHA512_CLIENT_FINAL, SHA512_SERVER_FINAL),
    }
}

#[test]
fn client_side_reproduces_the_vectors() {
    for mechanism in ScramMechanism::ALL {
        let (client_final, server_final) = vectors(mechanism);
        let (state, first) = client(mechanism, "pencil").client_first();
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let (state, last) = state.server_first(SERVER_FIRST.as_bytes()).expect("server-first");
        assert_eq!(String::from_utf8(last).expect("utf8"), client_final, "{mechanism}");
        state.server_final(server_final.as_bytes()).expect("server signature verifies");
    }
}

#[test]
fn server_side_reproduces_the_vectors() {
    for mechanism in ScramMechanism::ALL {
        let (client_final, server_final) = vectors(mechanism);
        let (state, first) = ScramServer::new(mechanism)
            .client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", known(pencil(mechanism)), SERVER_NONCE)
            .expect("client-first");
        assert_eq!(first, SERVER_FIRST.as_bytes());
        let success = state.client_final(client_final.as_bytes()).expect("proof verifies");
        assert_eq!(success.username, "user");
        assert_eq!(success.server_final, server_final.as_bytes(), "{mechanism}");
    }
}

#[test]
fn sha512_stored_and_server_keys_match_the_independent_derivation() {
    let b64 = pencil(ScramMechanism::Sha512).to_base64();
    assert_eq!(b64.stored_key.expose(), SHA512_STORED_KEY);
    assert_eq!(b64.server_key.expose(), SHA512_SERVER_KEY);
    assert_eq!(b64.salt, SALT_B64);
    let parts = ScramCredential::from_parts(
        ScramMechanism::Sha512,
        salt(),
        4096,
        &STANDARD.decode(SHA512_STORED_KEY).expect("b64"),
        &STANDARD.decode(SHA512_SERVER_KEY).expect("b64"),
    )
    .expect("parts");
    assert_eq!(parts, pencil(ScramMechanism::Sha512));
    assert!(parts.verify_password(b"pencil"));
    assert!(!parts.verify_password(b"pencil "));
}

#[test]
fn wrong_password_fails_on_both_sides() {
    for mechanism in ScramMechanism::ALL {
        let (c, first) = client(mechanism, "pencil2").client_first();
        let (s, server_first) = ScramServer::new(mechanism)
            .client_first(&first, known(pencil(mechanism)), SERVER_NONCE)
            .expect("first");
        let (_, last) = c.server_first(&server_first).expect("client final");
        assert_eq!(s.client_final(&last), Err(ScramError::InvalidProof));
        // And a client refuses a server that does not know the password.
        let (c, _) = client(mechanism, "pencil").client_first();
        let (c, _) = c.server_first(SERVER_FIRST.as_bytes()).expect("final");
        let (_, other) = vectors(match mechanism {
            ScramMechanism::Sha256 => ScramMechanism::Sha512,
            ScramMechanism::Sha512 => ScramMechanism::Sha256,
        });
        assert_eq!(c.server_final(other.as_bytes()), Err(ScramError::ServerSignatureMismatch));
    }
}

#[test]
fn unknown_user_runs_the_exchange_and_fails_at_the_end() {
    let fake = pencil(ScramMechanism::Sha256);
    let (s, server_first) = ScramServer::new(ScramMechanism::Sha256)
        .client_first(
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            move |_, _| ScramLookup { credential: fake, known: false },
            SERVER_NONCE,
        )
        .expect("a normal-looking reply");
    assert_eq!(server_first, SERVER_FIRST.as_bytes());
    // Even the right proof for the fake credential does not authenticate.
    assert_eq!(s.client_final(RFC7677_CLIENT_FINAL.as_bytes()), Err(ScramError::UnknownUser));
}

#[test]
fn server_refusals() {
    let m = ScramMechanism::Sha256;
    let first =
        |msg: &[u8]| ScramServer::new(m).client_first(msg, known(pencil(m)), SERVER_NONCE).map(|_| ());
    assert_eq!(first(b"n,,n=user,r=abc,tokenauth=true"), Err(ScramError::TokenAuthRefused));
    assert_eq!(first(b"n,a=admin,n=user,r=abc"), Err(ScramError::AuthzidMismatch));
    assert_eq!(first(b"y,,n=user,r=abc"), Err(ScramError::ChannelBindingUnsupported));
    assert_eq!(first(b"n,a=user,n=user,r=abc"), Ok(()), "authzid equal to the user");

    let start = || {
        ScramServer::new(m)
            .client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", known(pencil(m)), SERVER_NONCE)
            .expect("first")
            .0
    };
    let other_nonce = RFC7677_CLIENT_FINAL.replace("k0,p=", "k1,p=");
    assert_eq!(start().client_final(other_nonce.as_bytes()), Err(ScramError::NonceMismatch));
    let bound = RFC7677_CLIENT_FINAL.replace("c=biws", "c=eSws");
    assert_eq!(start().client_final(bound.as_bytes()), Err(ScramError::ChannelBindingMismatch));
    let short = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA";
    assert_eq!(start().client_final(short.as_bytes()), Err(ScramError::InvalidProof));

    // With authzid, c= must carry the same GS2 header.
    let (s, _) =
        ScramServer::new(m).client_first(b"n,a=user,n=user,r=abc", known(pencil(m)), "xyz").expect("first");
    assert_eq!(s.client_final(b"c=biws,r=abcxyz,p=AAAA"), Err(ScramError::ChannelBindingMismatch));
}

#[test]
fn client_refusals() {
    let m = ScramMechanism::Sha256;
    let start = || client(m, "pencil").client_first().0;
    let stolen = "r=someone-else,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    assert_eq!(start().server_first(stolen.as_bytes()).map(|_| ()), Err(ScramError::NonceMismatch));
    let same = "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    assert_eq!(start().server_first(same.as_bytes()).map(|_| ()), Err(ScramError::NonceMismatch));
    let weak = SERVER_FIRST.replace("i=4096", "i=4095");
    assert_eq!(
        start().server_first(weak.as_bytes()).map(|_| ()),
        Err(ScramError::Iterations { iterations: 4095 })
    );
    let costly = SERVER_FIRST.replace("i=4096", "i=100001");
    assert!(matches!(start().server_first(costly.as_bytes()), Err(ScramError::Iterations { .. })));
    let (c, _) = start().server_first(SERVER_FIRST.as_bytes()).expect("final");
    assert_eq!(c.server_final(b"e=invalid-proof"), Err(ScramError::ServerError("invalid-proof".into())));
}

#[test]
fn usernames_are_escaped_on_the_wire() {
    let m = ScramMechanism::Sha256;
    let c = ScramClient::new(m, "a,b=c", Secret::new("pw".into()), "nonce".into());
    let (_, first) = c.client_first();
    assert_eq!(first, b"n,,n=a=2Cb=3Dc,r=nonce");
    let cred = ScramCredential::from_password(m, b"pw", b"salt".to_vec(), 4096).expect("cred");
    let (s, _) = ScramServer::new(m)
        .client_first(
            &first,
            |_, user| {
                assert_eq!(user, "a,b=c");
                ScramLookup { credential: cred, known: true }
            },
            "srv",
        )
        .expect("first");
    assert_eq!(s.username(), "a,b=c");
}

#[test]
fn credential_validation() {
    let m = ScramMechanism::Sha256;
    assert_eq!(
        ScramCredential::from_password(m, b"pw", b"salt".to_vec(), 4095),
        Err(ScramError::Iterations { iterations: 4095 })
    );
    assert_eq!(
        ScramCredential::from_parts(m, b"salt".to_vec(), 4096, &[0; 64], &[0; 32]),
        Err(ScramError::KeyLength { len: 64 })
    );
    assert!(ScramCredential::from_parts(m, Vec::new(), 4096, &[0; 32], &[0; 32]).is_err());
    let debug = format!("{:?}", pencil(m));
    assert!(debug.contains("***") && !debug.contains(&pencil(m).to_base64().stored_key.expose()[..8]));
}

proptest! {
    #[test]
    fn server_never_panics_on_arbitrary_messages(
        first in proptest::collection::vec(any::<u8>(), 0..80),
        last in proptest::collection::vec(any::<u8>(), 0..160),
    ) {
        let m = ScramMechanism::Sha256;
        let cred = ScramCredential::from_parts(m, b"salt".to_vec(), 4096, &[1; 32], &[2; 32]).expect("cred");
        if let Ok((s, _)) = ScramServer::new(m).client_first(&first, move |_, _| ScramLookup { credential: cred, known: true }, "srv") {
            prop_assert!(s.client_final(&last).is_err());
        }
    }

    #[test]
    fn client_never_panics_on_arbitrary_messages(
        first in proptest::collection::vec(any::<u8>(), 0..80),
        last in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        static FINAL_SENT: std::sync::OnceLock<ScramClientFinalSent> = std::sync::OnceLock::new();
        let (c, _) = client(ScramMechanism::Sha256, "pencil").client_first();
        let _ = c.server_first(&first);
        let c = FINAL_SENT.get_or_init(|| {
            let (c, _) = client(ScramMechanism::Sha256, "pencil").client_first();
            c.server_first(SERVER_FIRST.as_bytes()).expect("final").0
        });
        prop_assert!(c.clone().server_final(&last).is_err());
    }

    #[test]
    fn saslname_escaping_round_trips(name in "[^\u{0}]{1,16}") {
        prop_assert_eq!(unescape_username(&escape_username(&name)), Some(name));
    }
}
