//! Tests of `--save-ca-certs` against real TLS servers on loopback, serving
//! certificates from `generate_certs`.

use std::fs;
use std::net::TcpListener;
use std::thread;

use kafka_proxy_core::tls::config::{
    CertKeyPem, ClientAuth, PemItem, ServerTlsOptions, certificates_from_pem, server_config,
};

use super::*;
use crate::certs::generate::{CA_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE, generate_certs};
use crate::certs::test_support::{End, read, scratch};

#[test]
fn host_port_parsing() {
    assert_eq!(split_host_port("pkc-1.aws.confluent.cloud:9092"), Some(("pkc-1.aws.confluent.cloud", 9092)));
    assert_eq!(split_host_port("[::1]:9093"), Some(("::1", 9093)));
    assert_eq!(split_host_port("127.0.0.1:1"), Some(("127.0.0.1", 1)));
    assert_eq!(split_host_port("broker"), None);
    assert_eq!(split_host_port("::1:9092"), None);
    assert_eq!(split_host_port(":9092"), None);
    assert_eq!(split_host_port("broker:port"), None);
}

/// Serves one TLS handshake on 127.0.0.1 with `chain`/`key`, on a thread.
fn tls_server(chain: Vec<u8>, key: Vec<u8>) -> (String, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let config = server_config(&ServerTlsOptions {
        identity: CertKeyPem::new(&chain, &key),
        client_auth: ClientAuth::None,
        policy: TlsVersions::Tls12And13.into(),
    })
    .unwrap();
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut end = End::new(RustlsSession::server(config).unwrap());
        let mut buf = [0u8; 4096];
        for _ in 0..1000 {
            let result = end.process();
            let _ = stream.write_all(&end.outgoing.split());
            if result.is_err() || end.tls.status().peer_closed {
                return;
            }
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => end.incoming.extend_from_slice(&buf[..n]),
            }
        }
    });
    (format!("127.0.0.1:{}", addr.port()), handle)
}

#[test]
fn saves_the_issuer_chain() {
    let dir = scratch("save");
    generate_certs(&dir, "kafka.test", false).unwrap();
    let mut chain = read(&dir, SERVER_CERT_FILE);
    chain.extend_from_slice(&read(&dir, CA_FILE));
    let (server, handle) = tls_server(chain, read(&dir, SERVER_KEY_FILE));
    let out = dir.join(SERVER_CA_FILE);
    let saved = save_ca_certs(&server, &out, false).unwrap();
    handle.join().unwrap();
    assert_eq!(saved.subjects, vec!["CN=kafka-proxy test CA (kafka.test)".to_owned()]);
    assert!(!saved.self_signed_leaf && saved.handshake_failed.is_none());
    let written = certificates_from_pem(&read(&dir, SERVER_CA_FILE), PemItem::ServerCaBundle).unwrap();
    let ca = certificates_from_pem(&read(&dir, CA_FILE), PemItem::ServerCaBundle).unwrap();
    assert_eq!(written, ca);
    // The saved file is a usable trust store for that server.
    client_config(&ClientTlsOptions {
        verification: ServerVerification::Roots(written),
        identity: None,
        policy: TlsVersions::Tls12And13.into(),
    })
    .unwrap();
    // A second run refuses to overwrite, before connecting.
    match save_ca_certs("127.0.0.1:1", &out, false) {
        Err(CertsError::Exists { path }) => assert_eq!(path, out),
        other => panic!("{other:?}"),
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn leaf_without_issuer_is_reported() {
    let dir = scratch("leaf");
    generate_certs(&dir, "kafka.test", false).unwrap();
    let (server, handle) = tls_server(read(&dir, SERVER_CERT_FILE), read(&dir, SERVER_KEY_FILE));
    let result = save_ca_certs(&server, &dir.join(SERVER_CA_FILE), false);
    handle.join().unwrap();
    match result {
        Err(CertsError::NoIssuer { subject, .. }) => assert_eq!(subject, "CN=kafka.test"),
        other => panic!("{other:?}"),
    }
    assert!(!dir.join(SERVER_CA_FILE).exists());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn self_signed_leaf_is_written_and_flagged() {
    let dir = scratch("selfsigned");
    fs::create_dir_all(&dir).unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = certified.cert.pem();
    let (server, handle) =
        tls_server(cert_pem.clone().into_bytes(), certified.signing_key.serialize_pem().into_bytes());
    let out = dir.join("pinned.pem");
    let saved = save_ca_certs(&server, &out, false).unwrap();
    handle.join().unwrap();
    assert!(saved.self_signed_leaf);
    assert_eq!(
        certificates_from_pem(&read(&dir, "pinned.pem"), PemItem::ServerCaBundle).unwrap(),
        certificates_from_pem(cert_pem.as_bytes(), PemItem::ServerCaBundle).unwrap()
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unreachable_or_malformed_servers() {
    let dir = scratch("unreachable");
    let out = dir.join(SERVER_CA_FILE);
    assert!(matches!(save_ca_certs("no-port", &out, false), Err(CertsError::InvalidServer { .. })));
    // A port with nothing listening (bound then released).
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    assert!(matches!(
        save_ca_certs(&format!("127.0.0.1:{port}"), &out, false),
        Err(CertsError::Connect { .. })
    ));
    // A plaintext server answering garbage.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    match save_ca_certs(&addr.to_string(), &out, false) {
        Err(CertsError::Tls { error: TlsError::NotTls { .. }, .. }) | Err(CertsError::ClosedEarly { .. }) => {
        }
        other => panic!("{other:?}"),
    }
    handle.join().unwrap();
    assert!(!out.exists());
}
