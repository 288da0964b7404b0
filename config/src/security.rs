//! The validated TLS and SASL settings → the engine's [`Security`]: PEM files
//! read, rustls configurations built, passwords hashed, keys loaded. Every
//! failure names the key whose file or value was wrong.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use kafka_proxy_core::config::{DownstreamSasl, DownstreamTls, Security, UpstreamLogin, UpstreamTls};
use kafka_proxy_core::sasl::ServerConfig as SaslServerConfig;
use kafka_proxy_core::sasl::oauthbearer::{
    EndpointTrust, JwksEndpoint, JwtRules, JwtValidator, KeySet, Sources, TokenEndpoint,
};
use kafka_proxy_core::sasl::{self, CredentialStore, Random, ScramCredential as CoreScram, SystemRandom};
use kafka_proxy_core::tls::config::{
    CertKeyPem, ClientAuth as TlsClientAuth, ClientTlsOptions, PemItem, ServerTlsOptions, ServerVerification,
    certificates_from_pem, client_config, crls_from_file, server_config,
};
use kafka_proxy_core::tls::principal::PrincipalMapper;
use zeroize::Zeroizing;

use crate::error::Problem;
use crate::model::{
    ClientAuth, Config, KeyPassword, Mechanism, OAuthKeys, PrincipalMapping, Secret, UpstreamAuth,
    UpstreamVerify, UserCredential,
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

    /// How to trust an HTTPS endpoint: the CA file at `key`, or the system roots.
    fn endpoint_trust(&mut self, key: &str, ca_certs: Option<&Path>) -> Option<EndpointTrust> {
        let Some(path) = ca_certs else { return Some(EndpointTrust::SystemRoots) };
        let pem = self.read(key, path)?;
        match certificates_from_pem(&pem, PemItem::ServerCaBundle) {
            Ok(certs) => Some(EndpointTrust::Roots(certs)),
            Err(e) => {
                self.add(key, format!("{}: {e}", path.display()));
                None
            }
        }
    }

    /// The password of an encrypted key of `section`: `Some(None)` when none
    /// is configured, `None` when its file cannot be read. A file's first
    /// line is the password.
    fn key_password(
        &mut self,
        section: &str,
        password: Option<&KeyPassword>,
    ) -> Option<Option<Zeroizing<String>>> {
        match password {
            None => Some(None),
            Some(KeyPassword::Value(secret)) => Some(Some(Zeroizing::new(secret.expose().clone()))),
            Some(KeyPassword::File(path)) => {
                let key = format!("{section}.key_password_file");
                let bytes = Zeroizing::new(self.read(&key, path)?);
                let text = match std::str::from_utf8(&bytes) {
                    Ok(text) => text,
                    Err(_) => {
                        self.add(&key, format!("{}: expected UTF-8 text", path.display()));
                        return None;
                    }
                };
                let line = text.lines().next().unwrap_or_default();
                if line.is_empty() {
                    self.add(&key, format!("{}: expected the password on the first line", path.display()));
                    return None;
                }
                Some(Some(Zeroizing::new(line.to_owned())))
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
    pub(crate) fn security(&self, sources: &Sources) -> Result<Security, Vec<Problem>> {
        let mut p = Problems { file: &self.path, list: Vec::new() };
        let random: Arc<dyn Random> = Arc::new(SystemRandom::new());
        let security = Security {
            downstream_tls: self.downstream_tls(&mut p),
            downstream_sasl: self.downstream_sasl(&mut p, &random, sources),
            upstream_tls: self.upstream_tls(&mut p),
            upstream_login: self.upstream_login(&mut p, &random, sources),
        };
        if p.list.is_empty() { Ok(security) } else { Err(p.list) }
    }

    fn downstream_tls(&self, p: &mut Problems<'_>) -> Option<DownstreamTls> {
        let tls = self.downstream.tls.as_ref()?;
        let cert = p.read("downstream.tls.cert", &tls.cert_key.cert);
        let key = p.read("downstream.tls.key", &tls.cert_key.key);
        let password = p.key_password("downstream.tls", tls.cert_key.key_password.as_ref());
        let ca = match tls.client_auth.ca_certs() {
            Some(ca_certs) => Some(p.read("downstream.tls.ca_certs", ca_certs)?),
            None => None,
        };
        let mut crls = Vec::new();
        for (index, path) in tls.crl_files.iter().enumerate() {
            let key = format!("downstream.tls.crl_files[{index}]");
            match p.read(&key, path).map(|bytes| crls_from_file(&bytes, index)) {
                Some(Ok(list)) => crls.extend(list),
                Some(Err(e)) => p.add(&key, format!("{}: {e}", path.display())),
                None => {}
            }
        }
        let (cert, key, password) = (cert?, key?, password?);
        let client_auth = match (&tls.client_auth, &ca) {
            (ClientAuth::Required { .. }, Some(ca_certs)) => {
                TlsClientAuth::Required { ca_certs, crls: &crls }
            }
            (ClientAuth::Requested { .. }, Some(ca_certs)) => {
                TlsClientAuth::Requested { ca_certs, crls: &crls }
            }
            _ => TlsClientAuth::None,
        };
        let options = ServerTlsOptions {
            identity: CertKeyPem {
                cert_chain: &cert,
                key: &key,
                key_password: password.as_ref().map(|s| s.as_bytes()),
            },
            client_auth,
            policy: tls.policy.clone(),
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

    fn downstream_sasl(
        &self,
        p: &mut Problems<'_>,
        random: &Arc<dyn Random>,
        sources: &Sources,
    ) -> DownstreamSasl {
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
        if let Some(oauth) = &sasl.oauthbearer {
            let rules = JwtRules {
                issuer: oauth.issuer.clone(),
                audiences: oauth.audience.clone(),
                required_scopes: oauth.required_scopes.clone(),
                clock_skew: oauth.clock_skew,
                subject_claim: oauth.sub_claim_name.clone(),
                scope_claim: oauth.scope_claim_name.clone(),
            };
            let keys = match &oauth.keys {
                OAuthKeys::JwksUrl(jwks) => {
                    let key = "downstream.oauthbearer.jwks_ca_certs";
                    if let Some(trust) = p.endpoint_trust(key, jwks.ca_certs.as_deref()) {
                        let store = sources.jwks(JwksEndpoint {
                            url: jwks.url.clone(),
                            trust,
                            refresh: jwks.refresh,
                            min_refresh_interval: jwks.min_refresh_interval,
                        });
                        server.oauthbearer = Some(Arc::new(JwtValidator::remote(store, rules.clone())));
                    }
                    None
                }
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
                Some(Ok(keys)) => server.oauthbearer = Some(Arc::new(JwtValidator::new(keys, rules))),
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
                let password = p.key_password("upstream.tls", ck.key_password.as_ref());
                Some((cert?, key?, password?))
            }
            None => None,
        };
        let options = ClientTlsOptions {
            verification,
            identity: identity.as_ref().map(|(cert, key, password)| CertKeyPem {
                cert_chain: cert,
                key,
                key_password: password.as_ref().map(|s| s.as_bytes()),
            }),
            policy: tls.policy.clone(),
        };
        match client_config(&options) {
            Ok(config) => Some(UpstreamTls { config }),
            Err(e) => {
                p.add("upstream.tls", e.to_string());
                None
            }
        }
    }

    fn upstream_login(
        &self,
        p: &mut Problems<'_>,
        random: &Arc<dyn Random>,
        sources: &Sources,
    ) -> UpstreamLogin {
        let oauth = match &self.upstream.oauthbearer {
            Some(o) => match p.endpoint_trust("upstream.oauthbearer.ca_certs", o.ca_certs.as_deref()) {
                Some(trust) => Some((o, trust)),
                None => return UpstreamLogin::Off,
            },
            None => None,
        };
        let client =
            |p: &mut Problems<'_>, path: &str, mechanism: Mechanism, user: &str, password: &Secret| {
                if let (Mechanism::OAuthBearer, Some((o, trust))) = (mechanism, &oauth) {
                    let store = sources.token(TokenEndpoint {
                        url: o.token_endpoint_url.clone(),
                        client_id: user.to_owned(),
                        client_secret: core_secret(password),
                        scope: o.scope.clone(),
                        trust: trust.clone(),
                    });
                    return Some(Arc::new(sasl::ClientConfig::oauthbearer(store, random.clone())));
                }
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
