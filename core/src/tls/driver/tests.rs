//! Tests of the rustls driver: handshakes at both TLS versions, mTLS and
//! server verification, application data, close, and arbitrary read splits
//! and input bytes (proptest).

use proptest::prelude::*;
use rustls::ProtocolVersion;

use super::*;
use crate::tls::config::{ClientAuth, TlsVersions};
use crate::tls::principal::PrincipalMapper;
use crate::tls::test_util::*;

const VERSIONS: [(TlsVersions, ProtocolVersion); 2] =
    [(TlsVersions::Tls12Only, ProtocolVersion::TLSv1_2), (TlsVersions::Tls13Only, ProtocolVersion::TLSv1_3)];

fn one_way(versions: TlsVersions) -> Pair {
    Pair::new(client_cfg(CA, None, versions), "broker-1.proxy.test", server_cfg(ClientAuth::None, versions))
}

#[test]
fn handshake_completes_on_both_versions() {
    for (versions, expected) in VERSIONS {
        let mut pair = one_way(versions);
        pair.handshake();
        assert_eq!(pair.client.error, None, "{versions:?}");
        assert_eq!(pair.server.error, None, "{versions:?}");
        for role in [Role::Client, Role::Server] {
            let end = pair.end(role);
            assert!(end.tls.status().handshake_complete, "{versions:?} {role:?}");
            assert_eq!(end.tls.negotiated().map(|n| n.version), Some(expected));
            assert_eq!(end.tls.role(), role);
        }
        let server_chain = pair.client.tls.peer_certificates().unwrap();
        assert_eq!(server_chain.len(), 1);
        assert_eq!(pair.server.tls.peer_certificates(), None, "one-way TLS: no client certificate");
    }
}

#[test]
fn default_versions_negotiate_tls13() {
    let mut pair = one_way(TlsVersions::Tls12And13);
    pair.handshake();
    assert_eq!(pair.server.tls.negotiated().unwrap().version, ProtocolVersion::TLSv1_3);
}

#[test]
fn aes_128_gcm_is_chosen_even_when_the_client_prefers_aes_256() {
    // A client whose provider keeps ring's default order (AES-256 first).
    let client =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates({
                let mut roots = rustls::RootCertStore::empty();
                for cert in super::super::config::certificates_from_pem(
                    crate::tls::test_util::CA,
                    super::super::config::PemItem::ServerCaBundle,
                )
                .unwrap()
                {
                    roots.add(cert).unwrap();
                }
                roots
            })
            .with_no_client_auth();
    let server = crate::tls::test_util::server_cfg(ClientAuth::None, TlsVersions::default());
    let mut pair = Pair::new(Arc::new(client), "localhost", server);
    pair.handshake();
    let suite = pair.server.tls.negotiated().unwrap().cipher_suite;
    assert_eq!(suite, rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
}

#[test]
fn client_starts_with_no_input() {
    let mut client = End::new(
        RustlsSession::client(client_cfg(CA, None, Default::default()), name("a.proxy.test")).unwrap(),
    );
    let status = client.process().unwrap();
    assert!(!status.handshake_complete);
    assert_eq!(client.outgoing.first(), Some(&22), "a handshake record: the ClientHello");
}

#[test]
fn mtls_client_certificate_accepted_and_mapped() {
    for (versions, _) in VERSIONS {
        let mut pair = Pair::new(
            client_cfg(CA, Some((CLIENT1, CLIENT1_KEY)), versions),
            "proxy.test",
            server_cfg(ClientAuth::Required { ca_certs: CA, crls: &[] }, versions),
        );
        pair.handshake();
        assert_eq!((pair.client.error.clone(), pair.server.error.clone()), (None, None));
        let principal = PrincipalMapper::default().principal(pair.server.tls.peer_certificates()).unwrap();
        assert_eq!(principal, "client1");
    }
}

#[test]
fn untrusted_client_certificate_refused() {
    for (versions, _) in VERSIONS {
        let mut pair = Pair::new(
            client_cfg(CA, Some((OTHER_CLIENT1, OTHER_CLIENT1_KEY)), versions),
            "proxy.test",
            server_cfg(ClientAuth::Required { ca_certs: CA, crls: &[] }, versions),
        );
        pair.handshake();
        assert_eq!(
            pair.server.error,
            Some(TlsError::PeerCertificate { reason: CertificateError::UnknownIssuer }),
            "{versions:?}"
        );
        // The alert reached the client, which names it.
        match pair.client.error.clone() {
            Some(TlsError::AlertReceived { alert }) => assert_eq!(alert, AlertDescription::UnknownCA),
            other => panic!("{versions:?}: client saw {other:?}"),
        }
        let message = pair.server.error.as_ref().unwrap().to_string();
        assert!(message.contains("certificate was refused"), "{message}");
        // Errors are final.
        assert_eq!(pair.server.process().err(), pair.server.error);
    }
}

#[test]
fn missing_client_certificate_refused_when_required() {
    for (versions, _) in VERSIONS {
        let mut pair = Pair::new(
            client_cfg(CA, None, versions),
            "proxy.test",
            server_cfg(ClientAuth::Required { ca_certs: CA, crls: &[] }, versions),
        );
        pair.handshake();
        assert_eq!(pair.server.error, Some(TlsError::NoPeerCertificate), "{versions:?}");
    }
}

#[test]
fn requested_client_certificate_is_optional() {
    let mut pair = Pair::new(
        client_cfg(CA, None, TlsVersions::Tls12And13),
        "proxy.test",
        server_cfg(ClientAuth::Requested { ca_certs: CA, crls: &[] }, TlsVersions::Tls12And13),
    );
    pair.handshake();
    assert_eq!((pair.client.error.clone(), pair.server.error.clone()), (None, None));
    assert_eq!(
        PrincipalMapper::default().principal(pair.server.tls.peer_certificates()).unwrap(),
        "$anonymous"
    );
}

#[test]
fn wrong_server_name_refused_unless_trust_all() {
    for (versions, _) in VERSIONS {
        let mut pair = Pair::new(
            client_cfg(CA, None, versions),
            "kafka.elsewhere.test",
            server_cfg(ClientAuth::None, versions),
        );
        pair.handshake();
        match pair.client.error.clone() {
            Some(TlsError::PeerCertificate { reason }) => {
                assert!(
                    matches!(
                        reason,
                        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
                    ),
                    "{reason:?}"
                );
            }
            other => panic!("{versions:?}: {other:?}"),
        }
        assert!(matches!(pair.server.error, Some(TlsError::AlertReceived { .. })), "{:?}", pair.server.error);

        let mut pair = Pair::new(
            trust_all_cfg(versions),
            "kafka.elsewhere.test",
            server_cfg(ClientAuth::None, versions),
        );
        pair.handshake();
        assert_eq!((pair.client.error.clone(), pair.server.error.clone()), (None, None));
        assert!(pair.client.tls.status().handshake_complete);
    }
}

#[test]
fn untrusted_server_ca_refused() {
    let mut pair = Pair::new(
        client_cfg(OTHER_CA, None, TlsVersions::Tls12And13),
        "proxy.test",
        server_cfg(ClientAuth::None, TlsVersions::Tls12And13),
    );
    pair.handshake();
    assert_eq!(
        pair.client.error,
        Some(TlsError::PeerCertificate { reason: CertificateError::UnknownIssuer })
    );
}

/// An ApiVersions v3 request as a plaintext Kafka client sends it.
const KAFKA_API_VERSIONS: &[u8] = &[
    0, 0, 0, 0x1f, 0, 18, 0, 3, 0, 0, 0, 1, 0, 7, b'r', b'd', b'k', b'a', b'f', b'k', b'a', 0, 7, b'l', b'i',
    b'b', b'r', b'd', b'k', b'a', 5, b'2', b'.', b'3', 0,
];

#[test]
fn plaintext_kafka_into_tls_listener_is_not_tls() {
    let mut server =
        End::new(RustlsSession::server(server_cfg(ClientAuth::None, Default::default())).unwrap());
    server.incoming.extend_from_slice(KAFKA_API_VERSIONS);
    let error = server.process().unwrap_err();
    match &error {
        TlsError::NotTls { role: Role::Server, first_bytes } => {
            assert_eq!(first_bytes.as_slice(), &KAFKA_API_VERSIONS[..8]);
            assert!(first_bytes.looks_like_kafka());
        }
        other => panic!("{other:?}"),
    }
    let text = error.to_string();
    assert!(text.contains("plaintext Kafka client") && text.contains("00 00 00 1f 00 12 00 03"), "{text}");
    assert!(server.outgoing.is_empty(), "no alert for a peer that does not speak TLS");
    // Even a single byte is enough to tell.
    let mut server =
        End::new(RustlsSession::server(server_cfg(ClientAuth::None, Default::default())).unwrap());
    server.incoming.extend_from_slice(&[0]);
    assert!(matches!(server.process(), Err(TlsError::NotTls { .. })));
}

#[test]
fn plaintext_server_answer_is_not_tls() {
    let mut client = End::new(
        RustlsSession::client(client_cfg(CA, None, Default::default()), name("proxy.test")).unwrap(),
    );
    client.process().unwrap();
    client.incoming.extend_from_slice(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    let error = client.process().unwrap_err();
    assert!(matches!(error, TlsError::NotTls { role: Role::Client, .. }), "{error:?}");
    assert!(error.to_string().contains("is TLS enabled"), "{error}");
}

#[test]
fn application_data_both_ways_with_several_slices() {
    for (versions, _) in VERSIONS {
        let mut pair = one_way(versions);
        pair.handshake();
        let header = 100_004u32.to_be_bytes();
        let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        pair.client.write(&[&header, &body[..50], &body[50..]]).unwrap();
        pair.server.write(&[b"small", b"", b" reply"]).unwrap();
        pair.run(&[usize::MAX], &[usize::MAX]);
        let mut expected = header.to_vec();
        expected.extend_from_slice(&body);
        assert_eq!(&pair.server.plaintext[..], &expected[..], "{versions:?}");
        assert_eq!(&pair.client.plaintext[..], b"small reply");
    }
}

#[test]
fn large_writes_are_encrypted_in_batches() {
    let mut pair = one_way(TlsVersions::Tls12And13);
    pair.handshake();
    let body: Vec<u8> = (0..(3 * ENCRYPT_BATCH + 12_345)).map(|i| (i % 241) as u8).collect();
    pair.client.write(&[&[1, 2, 3, 4], &body]).unwrap();
    pair.run(&[usize::MAX], &[usize::MAX]);
    assert_eq!(pair.server.plaintext.len(), 4 + body.len());
    assert_eq!(&pair.server.plaintext[4..], &body[..]);
}

#[test]
fn small_slices_share_records() {
    let mut pair = one_way(TlsVersions::Tls13Only);
    pair.handshake();
    let before = pair.client.outgoing.len();
    pair.client.write(&[&[0, 0, 0, 3], b"abc"]).unwrap();
    // One TLS 1.3 record: 5 header + 7 data + 1 type + 16 tag.
    assert_eq!(pair.client.outgoing.len() - before, 29);
}

#[test]
fn write_before_handshake_is_refused_and_not_fatal() {
    let mut pair = one_way(TlsVersions::Tls12And13);
    pair.client.process().unwrap();
    assert_eq!(pair.client.write(&[b"early"]), Err(TlsError::HandshakeIncomplete));
    pair.handshake();
    assert_eq!(pair.client.error, None);
    pair.client.write(&[b"later"]).unwrap();
    pair.run(&[usize::MAX], &[usize::MAX]);
    assert_eq!(&pair.server.plaintext[..], b"later");
}

#[test]
fn close_notify_reaches_the_peer() {
    for (versions, _) in VERSIONS {
        let mut pair = one_way(versions);
        pair.handshake();
        pair.client.write(&[b"last words"]).unwrap();
        let status = pair.client.close().unwrap();
        assert!(status.closed);
        assert_eq!(pair.client.write(&[b"more"]), Err(TlsError::Closed));
        pair.run(&[usize::MAX], &[usize::MAX]);
        assert_eq!(&pair.server.plaintext[..], b"last words");
        let status = pair.server.tls.status();
        assert!(status.peer_closed && !status.closed, "{status:?}");
        // The server may still answer (half-close), then close too.
        pair.server.write(&[b"bye"]).unwrap();
        pair.server.close().unwrap();
        pair.run(&[usize::MAX], &[usize::MAX]);
        assert_eq!(&pair.client.plaintext[..], b"bye");
        assert!(pair.client.tls.status().peer_closed);
        assert_eq!((pair.client.error.clone(), pair.server.error.clone()), (None, None));
    }
}

#[test]
fn close_during_handshake_sends_nothing() {
    let mut client = End::new(
        RustlsSession::client(client_cfg(CA, None, Default::default()), name("proxy.test")).unwrap(),
    );
    client.process().unwrap();
    let sent = client.outgoing.len();
    assert!(client.close().unwrap().closed);
    assert_eq!(client.outgoing.len(), sent);
}

#[test]
fn garbage_after_handshake_is_a_protocol_error() {
    let mut pair = one_way(TlsVersions::Tls13Only);
    pair.handshake();
    // A well-framed application data record whose contents are not authentic.
    pair.server.incoming.extend_from_slice(&[23, 3, 3, 0, 20]);
    pair.server.incoming.extend_from_slice(&[0x55; 20]);
    let error = pair.server.process().unwrap_err();
    assert!(matches!(error, TlsError::Protocol { .. }), "{error:?}");
    assert_eq!(pair.server.outgoing.first(), Some(&23), "the bad_record_mac alert, encrypted");
}

/// Runs a whole exchange with the given read splits and returns what each side received.
fn exchange(
    versions: TlsVersions,
    c2s: &[usize],
    s2c: &[usize],
    request: &[u8],
    reply: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let mut pair = Pair::new(
        client_cfg(CA, Some((CLIENT1, CLIENT1_KEY)), versions),
        "broker-1.proxy.test",
        server_cfg(ClientAuth::Required { ca_certs: CA, crls: &[] }, versions),
    );
    pair.run(c2s, s2c);
    assert_eq!((pair.client.error.clone(), pair.server.error.clone()), (None, None));
    assert!(pair.client.tls.status().handshake_complete && pair.server.tls.status().handshake_complete);
    let (head, tail) = request.split_at(request.len() / 3);
    pair.client.write(&[head, tail]).unwrap();
    pair.client.write(&[b"!"]).unwrap();
    pair.server.write(&[reply]).unwrap();
    pair.client.close().unwrap();
    pair.run(c2s, s2c);
    assert_eq!((pair.client.error.clone(), pair.server.error.clone()), (None, None));
    assert!(pair.server.tls.status().peer_closed);
    assert!(pair.client.incoming.is_empty() && pair.server.incoming.is_empty());
    (pair.server.plaintext.to_vec(), pair.client.plaintext.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Arbitrary read splits in both directions give the same plaintext as whole reads.
    #[test]
    fn read_splits_do_not_change_the_plaintext(
        tls13 in any::<bool>(),
        c2s in proptest::collection::vec(1usize..3000, 1..12),
        s2c in proptest::collection::vec(1usize..3000, 1..12),
        request in proptest::collection::vec(any::<u8>(), 0..40_000),
        reply in proptest::collection::vec(any::<u8>(), 1..5_000),
    ) {
        let versions = if tls13 { TlsVersions::Tls13Only } else { TlsVersions::Tls12Only };
        let whole = exchange(versions, &[usize::MAX], &[usize::MAX], &request, &reply);
        let split = exchange(versions, &c2s, &s2c, &request, &reply);
        let mut expected = request.clone();
        expected.push(b'!');
        prop_assert_eq!(&whole.0, &expected);
        prop_assert_eq!(&whole.1, &reply);
        prop_assert_eq!(split, whole);
    }

    /// Single-byte reads, the harshest split, for a smaller exchange.
    #[test]
    fn byte_at_a_time(tls13 in any::<bool>(), request in proptest::collection::vec(any::<u8>(), 1..300)) {
        let versions = if tls13 { TlsVersions::Tls13Only } else { TlsVersions::Tls12Only };
        let (got, _) = exchange(versions, &[1], &[1], &request, b"ok");
        let mut expected = request.clone();
        expected.push(b'!');
        prop_assert_eq!(got, expected);
    }

    /// Arbitrary bytes into a server never panic and end in an error or a wait.
    #[test]
    fn arbitrary_bytes_into_a_server(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut server = End::new(RustlsSession::server(server_cfg(ClientAuth::None, Default::default())).unwrap());
        server.incoming.extend_from_slice(&bytes);
        if let Ok(status) = server.process() {
            prop_assert!(!status.handshake_complete);
        }
    }
}
