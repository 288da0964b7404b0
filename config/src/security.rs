//! The validated TLS and SASL settings → the engine's [`Security`]: PEM files
//! read, rustls configurations built, passwords hashed, keys loaded. Every
//! failure names the key whose file or value was wrong.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use kafka_proxy_core::config::{DownstreamSasl, DownstreamTls, Security, UpstreamLogin, UpstreamTls};
use kafka_proxy_core::sasl::ServerConfig as SaslServerConfig;
use kafka_proxy_core::sasl::oauthbearer::{JwtRules, JwtValidator, KeySet};
use kafka_proxy_core::sasl::{self, CredentialStore, Random, ScramCredential as CoreScram, SystemRandom};
use kafka_proxy_core::tls::config::{
    CertKeyPem, ClientAuth as TlsClientAuth, ClientTlsOptions, PemItem, ServerTlsOptions, ServerVerification,
    TlsVersions, certificates_from_pem, client_config, crypto_provider, server_config,
};
use kafka_proxy_core::tls::principal::PrincipalMapper;

use crate::error::Problem;
use crate::model::{
    ClientAuth, Config, Mechanism, OAuthKeys, PrincipalMapping, Secret, UpstreamAuth, UpstreamVerify,
    UserCredential,
};

/// Iterations for SCRAM credentials hashed from plain passwords (Kafka's minimum).
const DEFAULT_SCRAM_ITERATIONS: u32 = 4096;

/// Collects problems with their key paths.
struct Problems<'a> {
    file: &'a Path,
    list: Vec<Problem>,
}

impl Problems<'_> {
    fn add(&mut self, path: &str, message: impl Into<String>) {
        self.list.push(Problem::new(self.file, path, message.into()));
    }

    fn read(&mut self, path: &str, file: &Path) -> Option<Vec<u8>> {
        match std::fs::read(file) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.add(path, format!("cannot read {}: {e}", file.display()));
                None
            }
        }
    }
}

fn core_mechanism(m: Mechanism) -> sasl::Mechanism {
    match m {
        Mechanism::Plain => sasl::Mechanism::Plain,
        Mechanism::ScramSha256 => sasl::Mechanism::Scram(sasl::ScramMechanism::Sha256),
        Mechanism::ScramSha512 => sasl::Mechanism::Scram(sasl::ScramMechanism::Sha512),
        Mechanism::OAuthBearer => sasl::Mechanism::OAuthBearer,
    }
}

fn core_secret(s: &Secret) -> sasl::Secret<String> {
    sasl::Secret::new(s.expose().clone())
}

impl Config {
    /// TLS and SASL for the engine, or every problem found.
    pub(crate) fn security(&self) -> Result<Security, Vec<Problem>> {
        let mut p = Problems { file: &self.path, list: Vec::new() };
        let random: Arc<dyn Random> = Arc::new(SystemRandom::new());
        let security = Security {
            downstream_tls: self.downstream_tls(&mut p),
            downstream_sasl: self.downstream_sasl(&mut p, &random),
            upstream_tls: self.upstream_tls(&mut p),
            upstream_login: self.upstream_login(&mut p, &random),
        };
        if p.list.is_empty() { Ok(security) } else { Err(p.list) }
    }

    fn downstream_tls(&self, p: &mut Problems<'_>) -> Option<DownstreamTls> {
        let tls = self.downstream.tls.as_ref()?;
        let cert = p.read("downstream.tls.cert", &tls.cert_key.cert);
        let key = p.read("downstream.tls.key", &tls.cert_key.key);
        let ca = match &tls.client_auth {
            ClientAuth::Required { ca_certs } => Some(p.read("downstream.tls.ca_certs", ca_certs)?),
            ClientAuth::None => None,
        };
        let (cert, key) = (cert?, key?);
        let client_auth = match &ca {
            Some(ca_certs) => TlsClientAuth::Required { ca_certs },
            None => TlsClientAuth::None,
        };
        let options = ServerTlsOptions {
            identity: CertKeyPem { cert_chain: &cert, key: &key },
            client_auth,
            versions: TlsVersions::default(),
        };
        let config = match server_config(&options) {
            Ok(config) => config,
            Err(e) => {
                p.add("downstream.tls", e.to_string());
                return None;
            }
        };
        let principal = match &tls.principal_mapping {
            PrincipalMapping::CommonName => PrincipalMapper::default(),
            PrincipalMapping::Rules(rules) => {
                match PrincipalMapper::from_rules(rules.iter().map(|r| r.0.as_str())) {
                    Ok(mapper) => mapper,
                    Err(e) => {
                        p.add("downstream.tls.principal_mapping_rules", e.to_string());
                        return None;
                    }
                }
            }
        };
        Some(DownstreamTls { config, principal: Arc::new(principal) })
    }

    fn downstream_sasl(&self, p: &mut Problems<'_>, random: &Arc<dyn Random>) -> DownstreamSasl {
        if self.downstream.sasl_pass_through {
            return DownstreamSasl::PassThrough;
        }
        let Some(sasl) = &self.downstream.sasl else { return DownstreamSasl::Off };
        let scram: Vec<sasl::ScramMechanism> = sasl
            .mechanisms
            .iter()
            .filter_map(|m| match core_mechanism(*m) {
                sasl::Mechanism::Scram(s) => Some(s),
                _ => None,
            })
            .collect();
        let Ok(mut builder) = CredentialStore::builder(DEFAULT_SCRAM_ITERATIONS, &scram) else {
            p.add("downstream.credentials", "cannot build the credential store");
            return DownstreamSasl::Off;
        };
        let users =
            sasl.credentials.users.iter().map(|(u, c)| (u, c, format!("downstream.credentials.users.{u}")));
        let file_users = sasl.credentials.file.iter().flat_map(|f| {
            f.users
                .iter()
                .map(move |(u, c)| (u, c, format!("downstream.credentials.file ({}): {u}", f.path.display())))
        });
        for (user, credential, path) in users.chain(file_users) {
            let added = match credential {
                UserCredential::Password { password, iterations } => {
                    let mut result = builder.password(user, core_secret(password)).map(|_| ());
                    if let Some(n) = iterations.filter(|n| *n != DEFAULT_SCRAM_ITERATIONS) {
                        for mechanism in &scram {
                            result = result.and_then(|()| {
                                let credential = CoreScram::generate(
                                    *mechanism,
                                    password.expose().as_bytes(),
                                    n,
                                    &**random,
                                )
                                .map_err(sasl::CredentialError::from)?;
                                builder.scram(user, credential).map(|_| ())
                            });
                        }
                    }
                    result
                }
                UserCredential::Scram(s) => {
                    let mechanism = match core_mechanism(s.mechanism) {
                        sasl::Mechanism::Scram(m) => m,
                        _ => continue,
                    };
                    CoreScram::from_parts(
                        mechanism,
                        s.salt.clone(),
                        s.iterations,
                        s.stored_key.expose(),
                        s.server_key.expose(),
                    )
                    .map_err(sasl::CredentialError::from)
                    .and_then(|c| builder.scram(user, c).map(|_| ()))
                }
            };
            if let Err(e) = added {
                p.add(&path, e.to_string());
            }
        }
        let credentials = match builder.build(&**random) {
            Ok(store) => Arc::new(store),
            Err(e) => {
                p.add("downstream.credentials", e.to_string());
                return DownstreamSasl::Off;
            }
        };
        let mechanisms: Vec<sasl::Mechanism> = sasl.mechanisms.iter().map(|m| core_mechanism(*m)).collect();
        let mut server = SaslServerConfig::new(&mechanisms, credentials, random.clone());
        server.session_lifetime = sasl.session_lifetime;
        server.external = sasl
            .credentials
            .external
            .as_ref()
            .map(|e| kafka_proxy_core::sasl::ExternalPlain { timeout: e.timeout });
        if let Some(oauth) = &sasl.oauthbearer {
            let keys = match &oauth.keys {
                OAuthKeys::JwksFile(path) => p.read("downstream.oauthbearer.jwks_file", path).map(|bytes| {
                    String::from_utf8(bytes)
                        .map_err(|e| e.to_string())
                        .and_then(|text| KeySet::from_jwks(&text).map_err(|e| e.to_string()))
                        .map_err(|e| ("downstream.oauthbearer.jwks_file", e))
                }),
                OAuthKeys::PublicKey(path) => {
                    p.read("downstream.oauthbearer.public_key_path", path).map(|bytes| {
                        KeySet::from_pem(&bytes)
                            .map_err(|e| ("downstream.oauthbearer.public_key_path", e.to_string()))
                    })
                }
            };
            match keys {
                Some(Ok(keys)) => {
                    let rules = JwtRules {
                        issuer: oauth.issuer.clone(),
                        audiences: oauth.audience.iter().cloned().collect(),
                        required_scopes: oauth.required_scopes.clone(),
                        clock_skew: oauth.clock_skew,
                    };
                    server.oauthbearer = Some(Arc::new(JwtValidator::new(keys, rules)));
                }
                Some(Err((path, e))) => p.add(path, e),
                None => {}
            }
        }
        if let Err(e) = server.validate() {
            p.add("downstream.sasl_mechanisms", e.to_string());
        }
        DownstreamSasl::Terminate(Arc::new(server))
    }

    fn upstream_tls(&self, p: &mut Problems<'_>) -> Option<UpstreamTls> {
        let tls = self.upstream.tls.as_ref()?;
        let verification = match &tls.verify {
            UpstreamVerify::TrustAll => ServerVerification::TrustAll,
            UpstreamVerify::CaFile(path) => {
                let pem = p.read("upstream.tls.ca_certs", path)?;
                match certificates_from_pem(&pem, PemItem::ServerCaBundle) {
                    Ok(certs) => ServerVerification::Roots(certs),
                    Err(e) => {
                        p.add("upstream.tls.ca_certs", e.to_string());
                        return None;
                    }
                }
            }
            UpstreamVerify::SystemRoots => {
                let found = rustls_native_certs::load_native_certs();
                if found.certs.is_empty() {
                    let why = found.errors.first().map(|e| e.to_string()).unwrap_or_default();
                    p.add(
                        "upstream.tls.ca_certs",
                        format!("no system trust roots found ({why}); set upstream.tls.ca_certs"),
                    );
                    return None;
                }
                ServerVerification::Roots(found.certs)
            }
        };
        let identity = match &tls.client_cert {
            Some(ck) => {
                let cert = p.read("upstream.tls.client_cert", &ck.cert);
                let key = p.read("upstream.tls.client_key", &ck.key);
                Some((cert?, key?))
            }
            None => None,
        };
        let options = ClientTlsOptions {
            verification,
            identity: identity.as_ref().map(|(cert, key)| CertKeyPem { cert_chain: cert, key }),
            versions: TlsVersions::default(),
        };
        let _ = crypto_provider();
        match client_config(&options) {
            Ok(config) => Some(UpstreamTls { config }),
            Err(e) => {
                p.add("upstream.tls", e.to_string());
                None
            }
        }
    }

    fn upstream_login(&self, p: &mut Problems<'_>, random: &Arc<dyn Random>) -> UpstreamLogin {
        let client =
            |p: &mut Problems<'_>, path: &str, mechanism: Mechanism, user: &str, password: &Secret| {
                match sasl::ClientConfig::new(
                    core_mechanism(mechanism),
                    user,
                    core_secret(password),
                    random.clone(),
                ) {
                    Ok(config) => Some(Arc::new(config)),
                    Err(e) => {
                        p.add(path, e.to_string());
                        None
                    }
                }
            };
        match &self.upstream.auth {
            UpstreamAuth::None | UpstreamAuth::PassThrough => UpstreamLogin::Off,
            UpstreamAuth::Service { mechanism, username, password } => {
                match client(p, "upstream.sasl_username", *mechanism, username, password) {
                    Some(config) => UpstreamLogin::Service(config),
                    None => UpstreamLogin::Off,
                }
            }
            UpstreamAuth::Swap { mechanism, swap } => {
                let mut map = BTreeMap::new();
                let principals = swap.mapping.keys().map(String::as_str).chain([crate::model::ANONYMOUS]);
                for principal in principals {
                    if let Some((user, password)) = swap.upstream_for(principal)
                        && let Some(config) =
                            client(p, "auth_swap.upstream_credentials", *mechanism, user, password)
                    {
                        map.insert(principal.to_owned(), config);
                    }
                }
                UpstreamLogin::Swap(Arc::new(map))
            }
        }
    }
}
