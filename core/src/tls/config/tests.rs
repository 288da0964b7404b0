//! The TLS policy at work in real handshakes: versions, suites and curves
//! outside the policy refused, encrypted keys served, revoked client
//! certificates refused, requested certificates optional.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams,
    SerialNumber, date_time_ymd,
};
use rustls::pki_types::CertificateRevocationListDer;

use super::*;
use crate::tls::principal::PrincipalMapper;
use crate::tls::test_util::{CA, CLIENT1, CLIENT1_KEY, Pair, SERVER, SERVER_KEY};
use crate::tls::{TlsDriver, TlsError};

const ENCRYPTED_KEY: &[u8] = include_bytes!("../testdata/server_key_pbkdf2.p8.pem");

fn suites(names: &[&str]) -> Option<Vec<CipherSuite>> {
    Some(names.iter().map(|n| CipherSuite::from_iana_name(n).unwrap()).collect())
}

fn server(policy: TlsPolicy, client_auth: ClientAuth<'_>) -> Arc<ServerConfig> {
    server_config(&ServerTlsOptions { identity: CertKeyPem::new(SERVER, SERVER_KEY), client_auth, policy })
        .unwrap()
}

fn client(policy: TlsPolicy, identity: Option<CertKeyPem<'_>>, ca: &[u8]) -> Arc<ClientConfig> {
    let roots = certificates_from_pem(ca, PemItem::ServerCaBundle).unwrap();
    client_config(&ClientTlsOptions { verification: ServerVerification::Roots(roots), identity, policy })
        .unwrap()
}

fn handshake(client: Arc<ClientConfig>, server: Arc<ServerConfig>) -> Pair {
    let mut pair = Pair::new(client, "proxy.test", server);
    pair.handshake();
    pair
}

#[test]
fn tls13_only_listener_refuses_a_tls12_client() {
    let pair = handshake(
        client(TlsVersions::Tls12Only.into(), None, CA),
        server(TlsVersions::Tls13Only.into(), ClientAuth::None),
    );
    assert!(pair.server.error.is_some(), "the server refused");
    assert!(!pair.server.tls.status().handshake_complete);
}

#[test]
fn a_suite_outside_the_list_is_refused() {
    let only_256 = TlsPolicy {
        versions: TlsVersions::Tls12Only,
        cipher_suites: suites(&["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"]),
        kx_groups: None,
    };
    let only_128 = TlsPolicy {
        versions: TlsVersions::Tls12Only,
        cipher_suites: suites(&["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]),
        kx_groups: None,
    };
    let refused = handshake(client(only_128, None, CA), server(only_256.clone(), ClientAuth::None));
    assert!(refused.server.error.is_some());
    let agreed =
        handshake(client(only_256, None, CA), server(TlsVersions::Tls12Only.into(), ClientAuth::None));
    assert_eq!((agreed.client.error.clone(), agreed.server.error.clone()), (None, None));
    let suite = agreed.client.tls.negotiated().unwrap().cipher_suite;
    assert_eq!(suite, rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384);
}

#[test]
fn a_curve_outside_the_list_is_refused() {
    let group =
        |name| TlsPolicy { kx_groups: Some(vec![KxGroup::from_name(name).unwrap()]), ..TlsPolicy::default() };
    let refused = handshake(client(group("x25519"), None, CA), server(group("secp384r1"), ClientAuth::None));
    assert!(refused.server.error.is_some() || refused.client.error.is_some());
    let agreed =
        handshake(client(TlsPolicy::default(), None, CA), server(group("secp384r1"), ClientAuth::None));
    assert_eq!((agreed.client.error.clone(), agreed.server.error.clone()), (None, None));
}

#[test]
fn an_encrypted_key_serves_with_its_password() {
    let identity =
        CertKeyPem { cert_chain: SERVER, key: ENCRYPTED_KEY, key_password: Some(b"kafka-proxy-test") };
    let options = ServerTlsOptions { identity, client_auth: ClientAuth::None, policy: TlsPolicy::default() };
    let pair = handshake(client(TlsPolicy::default(), None, CA), server_config(&options).unwrap());
    assert_eq!((pair.client.error.clone(), pair.server.error.clone()), (None, None));
    let wrong = ServerTlsOptions {
        identity: CertKeyPem { key_password: Some(b"nope"), ..identity },
        client_auth: ClientAuth::None,
        policy: TlsPolicy::default(),
    };
    let error = server_config(&wrong).unwrap_err();
    assert!(matches!(
        error,
        TlsConfigError::Key { item: PemItem::ServerKey, error: KeyReadError::WrongPassword }
    ));
    assert_eq!(error.to_string(), "the server private key cannot be decrypted with the given password");
}

/// A CA with two client certificates, and a CRL that revokes the second.
struct RevocationFixture {
    ca: String,
    clients: Vec<(String, String)>,
    crl: Vec<u8>,
}

fn revocation_fixture() -> RevocationFixture {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.distinguished_name = dn("crl test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut clients = Vec::new();
    for (serial, name) in [(1u8, "kept"), (2, "revoked")] {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = dn(name);
        params.serial_number = Some(SerialNumber::from(vec![serial]));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        clients.push((params.signed_by(&key, &issuer).unwrap().pem(), key.serialize_pem()));
    }
    let crl = CertificateRevocationListParams {
        this_update: date_time_ymd(2020, 1, 1),
        next_update: date_time_ymd(4000, 1, 1),
        crl_number: SerialNumber::from(vec![1]),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from(vec![2]),
            revocation_time: date_time_ymd(2021, 1, 1),
            reason_code: None,
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&issuer)
    .unwrap();
    RevocationFixture { ca, clients, crl: crl.pem().unwrap().into_bytes() }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, cn);
    name
}

#[test]
fn a_revoked_client_certificate_is_refused() {
    let fixture = revocation_fixture();
    let crls: Vec<CertificateRevocationListDer<'static>> = crls_from_file(&fixture.crl, 0).unwrap();
    assert_eq!(crls.len(), 1);
    for requested in [false, true] {
        let auth = if requested {
            ClientAuth::Requested { ca_certs: fixture.ca.as_bytes(), crls: &crls }
        } else {
            ClientAuth::Required { ca_certs: fixture.ca.as_bytes(), crls: &crls }
        };
        let server = server(TlsPolicy::default(), auth);
        for (index, (cert, key)) in fixture.clients.iter().enumerate() {
            let identity = CertKeyPem::new(cert.as_bytes(), key.as_bytes());
            let pair = handshake(client(TlsPolicy::default(), Some(identity), CA), server.clone());
            if index == 0 {
                assert_eq!(pair.server.error, None);
                let principal = PrincipalMapper::default().principal(pair.server.tls.peer_certificates());
                assert_eq!(principal.unwrap(), "kept");
            } else {
                assert_eq!(
                    pair.server.error,
                    Some(TlsError::PeerCertificate { reason: rustls::CertificateError::Revoked }),
                    "requested: {requested}"
                );
            }
        }
    }
    // DER works too, and garbage is named.
    let der = crls.first().unwrap().to_vec();
    assert_eq!(crls_from_file(&der, 3).unwrap().len(), 1);
    let error = crls_from_file(b"not a crl", 3).unwrap_err();
    assert_eq!(error.to_string(), "CRL #3: neither PEM nor DER");
}

#[test]
fn a_requested_certificate_maps_to_its_principal() {
    let server = server(TlsPolicy::default(), ClientAuth::Requested { ca_certs: CA, crls: &[] });
    let with = handshake(
        client(TlsPolicy::default(), Some(CertKeyPem::new(CLIENT1, CLIENT1_KEY)), CA),
        server.clone(),
    );
    assert_eq!(with.server.error, None);
    assert_eq!(PrincipalMapper::default().principal(with.server.tls.peer_certificates()).unwrap(), "client1");
    let without = handshake(client(TlsPolicy::default(), None, CA), server);
    assert_eq!(without.server.error, None);
    assert_eq!(
        PrincipalMapper::default().principal(without.server.tls.peer_certificates()).unwrap(),
        "$anonymous"
    );
}
