//! `--generate-certs`: a throw-away CA with a server certificate and two
//! client certificates, for trying TLS and mTLS set-ups. Apart from
//! `save_ca` because it only builds certificates with rcgen and never
//! touches the network.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::ServerName;

use super::{CertsError, write_file};

/// The CA certificate written by [`generate_certs`].
pub(super) const CA_FILE: &str = "ca.pem";

/// The server certificate written by [`generate_certs`].
pub(super) const SERVER_CERT_FILE: &str = "server.pem";

/// The server private key written by [`generate_certs`].
pub(super) const SERVER_KEY_FILE: &str = "server_key.pem";

/// The client certificates written by [`generate_certs`]: (name, cert file, key file).
pub(super) const CLIENTS: [(&str, &str, &str); 2] =
    [("client1", "client1.pem", "client1_key.pem"), ("client2", "client2.pem", "client2_key.pem")];

/// Writes a CA, a server certificate for `sni_suffix` and two client
/// certificates into `dir` (created if missing). Returns the files written.
/// Refuses, before writing anything, if one exists and `force` is false.
pub(crate) fn generate_certs(dir: &Path, sni_suffix: &str, force: bool) -> Result<Vec<PathBuf>, CertsError> {
    let suffix = sni_suffix.trim_start_matches("*.").trim_start_matches('.').to_ascii_lowercase();
    if !matches!(ServerName::try_from(suffix.as_str()), Ok(ServerName::DnsName(_))) {
        return Err(CertsError::InvalidSuffix { suffix: sni_suffix.to_owned() });
    }

    let mut names = vec![CA_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE];
    for (_, cert, key) in CLIENTS {
        names.push(cert);
        names.push(key);
    }
    let paths: Vec<PathBuf> = names.iter().map(|name| dir.join(name)).collect();
    if !force && let Some(existing) = paths.iter().find(|path| path.exists()) {
        return Err(CertsError::Exists { path: existing.clone() });
    }

    let gen_err = |what| move |error| CertsError::Generate { what, error };
    let ca_key = KeyPair::generate().map_err(gen_err("CA key"))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err("CA"))?;
    // The suffix in the CA's name keeps two generated CAs apart in one trust store.
    ca_params.distinguished_name = dn(&format!("kafka-proxy test CA ({suffix})"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(gen_err("CA"))?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().map_err(gen_err("server key"))?;
    let sans = vec![format!("*.{suffix}"), suffix.clone(), "localhost".to_owned(), "127.0.0.1".to_owned()];
    let mut server_params = CertificateParams::new(sans).map_err(gen_err("server certificate"))?;
    server_params.distinguished_name = dn(&suffix);
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let server_cert = server_params.signed_by(&server_key, &issuer).map_err(gen_err("server certificate"))?;

    let mut contents = vec![ca_cert.pem(), server_cert.pem(), server_key.serialize_pem()];
    for (name, _, _) in CLIENTS {
        let key = KeyPair::generate().map_err(gen_err("client key"))?;
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(gen_err("client certificate"))?;
        params.distinguished_name = dn(name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params.signed_by(&key, &issuer).map_err(gen_err("client certificate"))?;
        contents.push(cert.pem());
        contents.push(key.serialize_pem());
    }

    fs::create_dir_all(dir).map_err(|error| CertsError::File { path: dir.to_owned(), error })?;
    for ((path, content), name) in paths.iter().zip(&contents).zip(&names) {
        write_file(path, content.as_bytes(), force, name.ends_with("_key.pem"))?;
    }
    Ok(paths)
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

#[cfg(test)]
mod tests {
    use kafka_proxy_core::tls::config::{
        CertKeyPem, ClientAuth, ClientTlsOptions, PemItem, ServerTlsOptions, ServerVerification, TlsVersions,
        certificates_from_pem, client_config, server_config, server_name,
    };
    use kafka_proxy_core::tls::principal::PrincipalMapper;
    use kafka_proxy_core::tls::{RustlsSession, TlsDriver, TlsError};

    use super::*;
    use crate::certs::test_support::{End, read, scratch};

    /// Runs a handshake in memory; returns each side's first error.
    fn handshake(client: &mut End, server: &mut End) -> (Option<TlsError>, Option<TlsError>) {
        let (mut c_err, mut s_err) = (client.process().err(), None);
        for _ in 0..100 {
            let to_server = client.outgoing.split();
            let to_client = server.outgoing.split();
            if to_server.is_empty() && to_client.is_empty() {
                break;
            }
            server.incoming.extend_from_slice(&to_server);
            client.incoming.extend_from_slice(&to_client);
            s_err = s_err.or_else(|| server.process().err());
            c_err = c_err.or_else(|| client.process().err());
        }
        (c_err, s_err)
    }

    #[test]
    fn generated_certificates_work_for_mtls() {
        let dir = scratch("mtls");
        let written = generate_certs(&dir, "*.kafka.test", false).unwrap();
        assert_eq!(written.len(), 7);
        let server = server_config(&ServerTlsOptions {
            identity: CertKeyPem::new(&read(&dir, SERVER_CERT_FILE), &read(&dir, SERVER_KEY_FILE)),
            client_auth: ClientAuth::Required { ca_certs: &read(&dir, CA_FILE), crls: &[] },
            policy: TlsVersions::Tls12And13.into(),
        })
        .unwrap();
        let roots = certificates_from_pem(&read(&dir, CA_FILE), PemItem::ServerCaBundle).unwrap();
        for (client_name, cert_file, key_file) in CLIENTS {
            for host in ["broker-1.kafka.test", "kafka.test", "localhost", "127.0.0.1"] {
                let cert = read(&dir, cert_file);
                let key = read(&dir, key_file);
                let client = client_config(&ClientTlsOptions {
                    verification: ServerVerification::Roots(roots.clone()),
                    identity: Some(CertKeyPem::new(&cert, &key)),
                    policy: TlsVersions::Tls12And13.into(),
                })
                .unwrap();
                let mut c = End::new(RustlsSession::client(client, server_name(host).unwrap()).unwrap());
                let mut s = End::new(RustlsSession::server(server.clone()).unwrap());
                assert_eq!(handshake(&mut c, &mut s), (None, None), "{client_name} to {host}");
                assert!(s.tls.status().handshake_complete);
                let principal = PrincipalMapper::default().principal(s.tls.peer_certificates()).unwrap();
                assert_eq!(principal, client_name);
            }
        }
        // A name outside the SANs is refused.
        let client = client_config(&ClientTlsOptions {
            verification: ServerVerification::Roots(roots),
            identity: None,
            policy: TlsVersions::Tls12And13.into(),
        })
        .unwrap();
        let mut c = End::new(RustlsSession::client(client, server_name("other.test").unwrap()).unwrap());
        let mut s = End::new(RustlsSession::server(server).unwrap());
        assert!(matches!(handshake(&mut c, &mut s).0, Some(TlsError::PeerCertificate { .. })));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join(SERVER_KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "private keys are not readable by others");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn never_overwrites_without_force() {
        let dir = scratch("overwrite");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("client2_key.pem"), b"keep me").unwrap();
        match generate_certs(&dir, "kafka.test", false) {
            Err(CertsError::Exists { path }) => {
                assert_eq!(path, dir.join("client2_key.pem"));
                let text = CertsError::Exists { path }.to_string();
                assert!(text.contains("client2_key.pem") && text.contains("--force"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        assert!(!dir.join(CA_FILE).exists(), "nothing written when one file exists");
        assert_eq!(read(&dir, "client2_key.pem"), b"keep me");
        generate_certs(&dir, "kafka.test", true).unwrap();
        assert_ne!(read(&dir, "client2_key.pem"), b"keep me");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn invalid_suffix_refused() {
        let dir = scratch("suffix");
        assert!(matches!(generate_certs(&dir, "not a name", false), Err(CertsError::InvalidSuffix { .. })));
        assert!(!dir.exists());
    }
}
