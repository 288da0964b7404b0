//! `downstream`: TLS termination, SASL mechanisms, client credentials, OAUTHBEARER.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use kafka_proxy_core::sasl::oauthbearer::{DEFAULT_JWKS_MIN_REFRESH_INTERVAL, DEFAULT_JWKS_REFRESH};

use super::tls::RawPolicy;
use super::{Checker, DEFAULT_CLOCK_SKEW, Protocol};
use crate::credentials::{self, load_credentials_file};
use crate::error::{ConfigError, Problem};
use crate::model::{
    CertKey, ClientAuth, ClientAuthMode, Credentials, CredentialsFile, Downstream, DownstreamSasl,
    DownstreamTls, JwksUrl, Mechanism, OAuthBearer, OAuthKeys, PrincipalMapping, UserCredential,
};
use crate::raw::{RawCredentials, RawDownstream, RawDownstreamTls, RawOAuthBearer};
use crate::scalar::UserPassword;

impl Checker<'_> {
    pub(super) fn downstream(
        &mut self,
        mut raw: RawDownstream,
        protocol: Protocol,
        swap_users: Option<&Vec<(String, UserPassword)>>,
        upstream_login_missing: bool,
    ) -> Downstream {
        let raw_tls = raw.tls.take();
        self.tls_enabled("downstream", raw_tls.as_ref().and_then(|t| t.enabled), protocol);
        let tls = if protocol.value.uses_tls() {
            Some(self.downstream_tls(raw_tls.unwrap_or_else(empty_downstream_tls)))
        } else {
            if let Some(tls) = &raw_tls
                && (tls.cert.is_some()
                    || tls.key.is_some()
                    || tls.key_password.is_some()
                    || tls.key_password_file.is_some()
                    || tls.ca_certs.is_some()
                    || tls.mtls_enabled.is_some()
                    || tls.client_auth.is_some()
                    || tls.crl_files.is_some()
                    || tls.principal_mapping_rules.is_some()
                    || tls.min_version.is_some()
                    || tls.max_version.is_some()
                    || tls.cipher_suites.is_some()
                    || tls.curves.is_some())
            {
                self.report.warn(
                    "downstream.tls",
                    format!("ignored: downstream.security_protocol {} does not use TLS", protocol.shown()),
                );
            }
            None
        };
        // SASL on both sides and no credentials anywhere at the proxy: the
        // client's own exchange passes through to the broker.
        let sasl_pass_through = protocol.value.uses_sasl()
            && upstream_login_missing
            && swap_users.is_none()
            && raw.credentials.is_none()
            && raw.oauthbearer.is_none();
        let sasl = if sasl_pass_through {
            for (key, set) in [
                ("sasl_mechanism", raw.sasl_mechanism.is_some()),
                ("sasl_mechanisms", raw.sasl_mechanisms.is_some()),
                ("session_lifetime_ms", raw.session_lifetime_ms.is_some()),
            ] {
                if set {
                    self.report.warn(
                        format!("downstream.{key}"),
                        "ignored: without credentials at the proxy, clients' SASL passes through to the brokers",
                    );
                }
            }
            None
        } else if protocol.value.uses_sasl() {
            self.downstream_sasl(raw, protocol, swap_users)
        } else {
            self.sasl_keys_without_sasl(
                "downstream",
                protocol,
                &[
                    ("sasl_mechanism", raw.sasl_mechanism.is_some()),
                    ("sasl_mechanisms", raw.sasl_mechanisms.is_some()),
                ],
            );
            for (key, set) in [
                ("credentials", raw.credentials.is_some()),
                ("oauthbearer", raw.oauthbearer.is_some()),
                ("session_lifetime_ms", raw.session_lifetime_ms.is_some()),
            ] {
                if set {
                    self.report.warn(
                        format!("downstream.{key}"),
                        format!(
                            "ignored: downstream.security_protocol {} does not use SASL",
                            protocol.shown()
                        ),
                    );
                }
            }
            None
        };
        Downstream { security_protocol: protocol.value, tls, sasl, sasl_pass_through }
    }

    fn downstream_tls(&mut self, raw: RawDownstreamTls) -> DownstreamTls {
        let cert = self.existing_file(
            "downstream.tls.cert",
            raw.cert.as_deref().unwrap_or(Path::new("server.pem")),
            raw.cert.is_none(),
        );
        let key = self.existing_file(
            "downstream.tls.key",
            raw.key.as_deref().unwrap_or(Path::new("server_key.pem")),
            raw.key.is_none(),
        );
        let mode = self.client_auth_mode(raw.mtls_enabled, raw.client_auth.map(|m| m.0));
        let asks_certificates = mode != ClientAuthMode::None;
        let ca_certs = match (&raw.ca_certs, asks_certificates) {
            (Some(ca), _) => Some(self.existing_file("downstream.tls.ca_certs", ca, false)),
            (None, true) => Some(self.existing_file("downstream.tls.ca_certs", Path::new("ca.pem"), true)),
            (None, false) => None,
        };
        let client_auth = match (&ca_certs, mode) {
            (Some(ca), ClientAuthMode::Required) => ClientAuth::Required { ca_certs: ca.clone() },
            (Some(ca), ClientAuthMode::Requested) => ClientAuth::Requested { ca_certs: ca.clone() },
            _ => ClientAuth::None,
        };
        let crl_files: Vec<PathBuf> = raw
            .crl_files
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, path)| self.existing_file(&format!("downstream.tls.crl_files[{i}]"), path, false))
            .collect();
        if !crl_files.is_empty() && !asks_certificates {
            self.report.warn(
                "downstream.tls.crl_files",
                "ignored: clients present no certificate unless downstream.tls.client_auth is requested or required",
            );
        }
        let key_password = self.key_password("downstream.tls", raw.key_password, raw.key_password_file);
        let policy = self.tls_policy(
            "downstream",
            RawPolicy {
                min_version: raw.min_version,
                max_version: raw.max_version,
                cipher_suites: raw.cipher_suites,
                curves: raw.curves,
            },
        );
        let principal_mapping = match raw.principal_mapping_rules {
            None => PrincipalMapping::CommonName,
            Some(rules) => {
                if rules.is_empty() {
                    self.report.error(
                        "downstream.tls.principal_mapping_rules",
                        "expected at least one rule (or remove the key for the CN)",
                    );
                }
                if !asks_certificates {
                    self.report.warn(
                        "downstream.tls.principal_mapping_rules",
                        "ignored: clients present no certificate unless downstream.tls.mtls_enabled is true \
                         (or client_auth is requested or required)",
                    );
                }
                PrincipalMapping::Rules(rules.into_iter().map(|r| r.0).collect())
            }
        };
        DownstreamTls {
            cert_key: CertKey { cert, key, key_password },
            ca_certs,
            client_auth,
            crl_files,
            principal_mapping,
            policy,
        }
    }

    /// `client_auth` (Kafka's `ssl.client.auth`) and its older alias
    /// `mtls_enabled` (true = `required`); both given must agree.
    fn client_auth_mode(
        &mut self,
        mtls_enabled: Option<bool>,
        client_auth: Option<ClientAuthMode>,
    ) -> ClientAuthMode {
        match (mtls_enabled, client_auth) {
            (None, None) => ClientAuthMode::None,
            (Some(true), None) => ClientAuthMode::Required,
            (Some(false), None) => ClientAuthMode::None,
            (None, Some(mode)) => mode,
            (Some(mtls), Some(mode)) => {
                if mtls != (mode == ClientAuthMode::Required) {
                    self.report.error(
                        "downstream.tls.client_auth",
                        format!(
                            "contradicts downstream.tls.mtls_enabled: {mtls} (mtls_enabled: true is \
                             client_auth: required); keep one of the two"
                        ),
                    );
                }
                mode
            }
        }
    }

    /// The SASL settings of `raw` (whose `tls` has been taken).
    fn downstream_sasl(
        &mut self,
        raw: RawDownstream,
        protocol: Protocol,
        swap_users: Option<&Vec<(String, UserPassword)>>,
    ) -> Option<DownstreamSasl> {
        let RawDownstream {
            sasl_mechanism: mechanism,
            sasl_mechanisms: mechanisms,
            credentials,
            oauthbearer,
            session_lifetime_ms,
            ..
        } = raw;
        let mechanisms: Vec<Mechanism> = match (mechanism, mechanisms) {
            (Some(_), Some(_)) => {
                self.report.error(
                    "downstream.sasl_mechanisms",
                    "expected either downstream.sasl_mechanism or downstream.sasl_mechanisms, not both",
                );
                return None;
            }
            (Some(one), None) => vec![one.0],
            (None, Some(list)) => {
                let mut seen = BTreeSet::new();
                for (i, m) in list.iter().enumerate() {
                    if !seen.insert(m.0) {
                        self.report.error(
                            format!("downstream.sasl_mechanisms[{i}]"),
                            format!("expected distinct mechanisms, got {} again", m.0),
                        );
                    }
                }
                if list.is_empty() {
                    self.report.error("downstream.sasl_mechanisms", "expected at least one mechanism");
                }
                list.into_iter().map(|m| m.0).collect()
            }
            (None, None) => {
                self.report.error(
                    "downstream.sasl_mechanism",
                    format!(
                        "required when downstream.security_protocol is {} (or list downstream.sasl_mechanisms): \
                         expected PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER",
                        protocol.shown()
                    ),
                );
                return None;
            }
        };

        let credentials = self.credentials(credentials, swap_users);
        let password_based: Vec<&Mechanism> =
            mechanisms.iter().filter(|m| **m != Mechanism::OAuthBearer).collect();
        if !password_based.is_empty() && credentials.is_empty() {
            let names: Vec<&str> = password_based.iter().map(|m| m.name()).collect();
            self.report.error(
                "downstream.credentials",
                format!(
                    "expected users for {}: add downstream.credentials.users, downstream.credentials.file \
                     or auth_swap.downstream_credentials",
                    names.join(", ")
                ),
            );
        }
        for (name, credential) in
            credentials.users.iter().chain(credentials.file.iter().flat_map(|f| f.users.iter()))
        {
            if let UserCredential::Scram(scram) = credential
                && !mechanisms.contains(&scram.mechanism)
            {
                self.report.warn(
                    format!("downstream.credentials.users.{name}"),
                    format!("unused: {} is not among the offered SASL mechanisms", scram.mechanism),
                );
            }
        }

        let oauthbearer = match (mechanisms.contains(&Mechanism::OAuthBearer), oauthbearer) {
            (true, Some(raw)) => self.oauthbearer(raw),
            (true, None) => {
                self.report.error(
                    "downstream.oauthbearer",
                    "required when OAUTHBEARER is offered: expected jwks_url, jwks_file or public_key_path",
                );
                None
            }
            (false, Some(_)) => {
                self.report.warn(
                    "downstream.oauthbearer",
                    "ignored: OAUTHBEARER is not among the offered SASL mechanisms",
                );
                None
            }
            (false, None) => None,
        };
        let session_lifetime = session_lifetime_ms.filter(|&ms| ms > 0).map(Duration::from_millis);
        Some(DownstreamSasl { mechanisms, credentials, oauthbearer, session_lifetime })
    }

    /// Merges the three sources of client credentials; a user may appear in one only.
    fn credentials(
        &mut self,
        raw: Option<RawCredentials>,
        swap_users: Option<&Vec<(String, UserPassword)>>,
    ) -> Credentials {
        let (file, inline) = match raw {
            Some(raw) => (raw.file, raw.users.map(|u| u.0).unwrap_or_default()),
            None => (None, BTreeMap::new()),
        };
        let mut origin: BTreeMap<String, String> = BTreeMap::new();
        let mut users = credentials::users(inline, "downstream.credentials.users", &mut self.report);
        for name in users.keys() {
            origin.insert(name.clone(), format!("downstream.credentials.users.{name}"));
        }
        for (path, entry) in swap_users.into_iter().flatten() {
            if let Some(first) = origin.get(&entry.user) {
                self.report.error(path, format!("user {} is already defined at {first}", entry.user));
                continue;
            }
            if entry.password.expose().is_empty() {
                self.report.error(path, "expected user=password with a non-empty password");
                continue;
            }
            origin.insert(entry.user.clone(), path.clone());
            users.insert(
                entry.user.clone(),
                UserCredential::Password { password: entry.password.clone(), iterations: None },
            );
        }
        let file = file.map(|path| {
            let full = self.existing_file("downstream.credentials.file", &path, false);
            let loaded =
                if full.is_file() { load_credentials_file(&full, self.env) } else { Ok(BTreeMap::new()) };
            let users = loaded.unwrap_or_else(|err| {
                self.report.problems.extend(problems_of(err, "downstream.credentials.file"));
                BTreeMap::new()
            });
            for name in users.keys() {
                if let Some(first) = origin.get(name) {
                    self.report.error(
                        "downstream.credentials.file",
                        format!("user {name} in {} is already defined at {first}", full.display()),
                    );
                }
            }
            CredentialsFile { path: full, users }
        });
        Credentials { users, file }
    }

    fn oauthbearer(&mut self, raw: RawOAuthBearer) -> Option<OAuthBearer> {
        const SOURCES: &str = "expected exactly one of jwks_url, jwks_file or public_key_path";
        let url_only = [
            ("jwks_ca_certs", raw.jwks_ca_certs.is_some()),
            ("jwks_refresh_ms", raw.jwks_refresh_ms.is_some()),
            ("jwks_min_refresh_interval_ms", raw.jwks_min_refresh_interval_ms.is_some()),
        ];
        let keys = match (raw.jwks_file, raw.public_key_path, raw.jwks_url) {
            (Some(jwks), None, None) => {
                OAuthKeys::JwksFile(self.existing_file("downstream.oauthbearer.jwks_file", &jwks, false))
            }
            (None, Some(pem), None) => OAuthKeys::PublicKey(self.existing_file(
                "downstream.oauthbearer.public_key_path",
                &pem,
                false,
            )),
            (None, None, Some(url)) => OAuthKeys::JwksUrl(JwksUrl {
                url: url.0.0,
                ca_certs: raw
                    .jwks_ca_certs
                    .map(|ca| self.existing_file("downstream.oauthbearer.jwks_ca_certs", &ca, false)),
                refresh: raw
                    .jwks_refresh_ms
                    .map_or(DEFAULT_JWKS_REFRESH, |ms| Duration::from_millis(ms.get())),
                min_refresh_interval: raw
                    .jwks_min_refresh_interval_ms
                    .map_or(DEFAULT_JWKS_MIN_REFRESH_INTERVAL, Duration::from_millis),
            }),
            (None, None, None) => {
                self.report.error("downstream.oauthbearer", SOURCES);
                return None;
            }
            _ => {
                self.report.error("downstream.oauthbearer", format!("{SOURCES}, not several"));
                return None;
            }
        };
        if !matches!(keys, OAuthKeys::JwksUrl(_)) {
            for (key, set) in url_only {
                if set {
                    self.report
                        .warn(format!("downstream.oauthbearer.{key}"), "ignored: only used with jwks_url");
                }
            }
        }
        let audience = raw.audience.map(|a| a.0).unwrap_or_default();
        if audience.iter().any(String::is_empty) {
            self.report.error("downstream.oauthbearer.audience", "expected non-empty audience names");
        }
        for (key, name) in
            [("sub_claim_name", &raw.sub_claim_name), ("scope_claim_name", &raw.scope_claim_name)]
        {
            if name.as_ref().is_some_and(|n| n.trim().is_empty()) {
                self.report.error(format!("downstream.oauthbearer.{key}"), "expected a claim name");
            }
        }
        Some(OAuthBearer {
            keys,
            issuer: raw.issuer,
            audience,
            sub_claim_name: raw.sub_claim_name,
            scope_claim_name: raw.scope_claim_name,
            required_scopes: raw.required_scopes.unwrap_or_default(),
            clock_skew: raw
                .clock_skew_seconds
                .map_or(DEFAULT_CLOCK_SKEW, |s| Duration::from_secs(u64::from(s))),
        })
    }
}

pub(super) fn empty_downstream() -> RawDownstream {
    RawDownstream {
        security_protocol: None,
        sasl_mechanism: None,
        sasl_mechanisms: None,
        credentials: None,
        oauthbearer: None,
        tls: None,
        session_lifetime_ms: None,
    }
}

fn empty_downstream_tls() -> RawDownstreamTls {
    RawDownstreamTls {
        enabled: None,
        cert: None,
        key: None,
        key_password: None,
        key_password_file: None,
        mtls_enabled: None,
        client_auth: None,
        ca_certs: None,
        crl_files: None,
        principal_mapping_rules: None,
        min_version: None,
        max_version: None,
        cipher_suites: None,
        curves: None,
    }
}

/// Turns a credentials-file error into problems reported under `key` of the configuration.
fn problems_of(err: ConfigError, key: &str) -> Vec<Problem> {
    match err {
        ConfigError::Read { file, source } => {
            vec![Problem {
                file,
                path: key.to_owned(),
                position: None,
                message: format!("cannot read: {source}"),
            }]
        }
        ConfigError::Env { file, line, column, kind } => {
            vec![Problem {
                file,
                path: ".".to_owned(),
                position: Some((line, column)),
                message: kind.to_string(),
            }]
        }
        ConfigError::Invalid(problems) | ConfigError::Unsupported(problems) => problems,
    }
}
