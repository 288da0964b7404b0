//! `upstream`: bootstrap servers, TLS towards brokers, the proxy's identity there.

use kafka_proxy_core::config::{HostPort, ProxyConfig};

use kafka_proxy_core::tls::config::TlsPolicy;

use super::tls::RawPolicy;
use super::{Checker, MAX_BOOTSTRAP_SERVERS, Protocol};
use crate::model::{
    AuthSwap, CertKey, Downstream, Mechanism, Secret, Upstream, UpstreamAuth, UpstreamOAuth, UpstreamTls,
    UpstreamVerify,
};
use crate::raw::{RawUpstream, RawUpstreamOAuth, RawUpstreamTls};
use crate::scalar::Parsed;

/// Longest `upstream.client_id`.
const MAX_CLIENT_ID_CHARS: usize = 255;

impl Checker<'_> {
    pub(super) fn upstream(
        &mut self,
        raw: RawUpstream,
        protocol: Protocol,
        swap: Option<AuthSwap>,
        downstream: &Downstream,
    ) -> Upstream {
        let bootstrap_servers = self.bootstrap_servers(raw.bootstrap_servers);
        self.tls_enabled("upstream", raw.tls.as_ref().and_then(|t| t.enabled), protocol);
        let tls = match raw.tls {
            Some(tls) if protocol.value.uses_tls() => Some(self.upstream_tls(tls)),
            Some(tls) => {
                if tls.ca_certs.is_some()
                    || tls.client_cert.is_some()
                    || tls.client_key.is_some()
                    || tls.key_password.is_some()
                    || tls.key_password_file.is_some()
                    || tls.trust_server_certs.is_some()
                    || tls.min_version.is_some()
                    || tls.max_version.is_some()
                    || tls.cipher_suites.is_some()
                    || tls.curves.is_some()
                {
                    self.report.warn(
                        "upstream.tls",
                        format!("ignored: upstream.security_protocol {} does not use TLS", protocol.shown()),
                    );
                }
                None
            }
            None if protocol.value.uses_tls() => Some(UpstreamTls {
                verify: UpstreamVerify::SystemRoots,
                client_cert: None,
                policy: TlsPolicy::default(),
            }),
            None => None,
        };
        let mechanism = raw.sasl_mechanism.map(|m| m.0);
        let (oauthbearer, username, password) = match (mechanism, raw.oauthbearer) {
            (Some(Mechanism::OAuthBearer), oauth) if protocol.value.uses_sasl() => {
                self.upstream_oauth(oauth, raw.sasl_username, raw.sasl_password, swap.is_some())
            }
            (_, Some(_)) => {
                self.report.warn(
                    "upstream.oauthbearer",
                    "ignored: upstream.sasl_mechanism is not OAUTHBEARER (or the protocol has no SASL)",
                );
                (None, raw.sasl_username, raw.sasl_password)
            }
            (_, None) => (None, raw.sasl_username, raw.sasl_password),
        };
        let auth = self.upstream_auth(protocol, mechanism, username, password, swap, downstream);
        let oauthbearer =
            oauthbearer.filter(|_| !matches!(auth, UpstreamAuth::None | UpstreamAuth::PassThrough));
        let client_id = self.client_id(raw.client_id);
        Upstream { bootstrap_servers, security_protocol: protocol.value, tls, auth, oauthbearer, client_id }
    }

    /// `upstream.oauthbearer` under `sasl_mechanism: OAUTHBEARER`: the token
    /// endpoint, and the service identity's client id and secret (which take
    /// the place of `sasl_username` / `sasl_password`; under auth swap each
    /// `upstream_credentials` entry is `client_id=client_secret`).
    fn upstream_oauth(
        &mut self,
        raw: Option<RawUpstreamOAuth>,
        username: Option<String>,
        password: Option<Secret>,
        swap: bool,
    ) -> (Option<UpstreamOAuth>, Option<String>, Option<Secret>) {
        let Some(raw) = raw else {
            self.report.error(
                "upstream.oauthbearer",
                "required when upstream.sasl_mechanism is OAUTHBEARER: expected token_endpoint_url, \
                 client_id and client_secret",
            );
            return (None, username, password);
        };
        for (key, set) in [("sasl_username", username.is_some()), ("sasl_password", password.is_some())] {
            if set {
                self.report.error(
                    format!("upstream.{key}"),
                    "set, but OAUTHBEARER logs in with upstream.oauthbearer.client_id and client_secret",
                );
            }
        }
        if swap {
            for (key, set) in
                [("client_id", raw.client_id.is_some()), ("client_secret", raw.client_secret.is_some())]
            {
                if set {
                    self.report.error(
                        format!("upstream.oauthbearer.{key}"),
                        "set, but under auth_swap each auth_swap.upstream_credentials entry is client_id=client_secret",
                    );
                }
            }
        } else if raw.client_id.is_none() || raw.client_secret.is_none() {
            let missing = if raw.client_id.is_none() { "client_id" } else { "client_secret" };
            self.report.error(
                format!("upstream.oauthbearer.{missing}"),
                "required: the client credentials of the proxy at the token endpoint",
            );
        }
        if raw.scope.as_ref().is_some_and(|s| s.trim().is_empty()) {
            self.report.error("upstream.oauthbearer.scope", "expected a scope (or remove the key)");
        }
        let ca_certs = raw.ca_certs.map(|ca| self.existing_file("upstream.oauthbearer.ca_certs", &ca, false));
        let oauth =
            UpstreamOAuth { token_endpoint_url: raw.token_endpoint_url.0.0, scope: raw.scope, ca_certs };
        (Some(oauth), raw.client_id, raw.client_secret)
    }

    /// `upstream.client_id`: a non-empty, printable name of at most 255 characters.
    fn client_id(&mut self, raw: Option<String>) -> String {
        let Some(id) = raw else { return ProxyConfig::DEFAULT_CLIENT_ID.to_owned() };
        if id.is_empty() || id.chars().count() > MAX_CLIENT_ID_CHARS || id.chars().any(char::is_control) {
            self.report.error(
                "upstream.client_id",
                format!(
                    "expected 1 to {MAX_CLIENT_ID_CHARS} printable characters, got {id:?} ({} characters)",
                    id.chars().count()
                ),
            );
        }
        id
    }

    fn bootstrap_servers(&mut self, raw: Vec<Parsed<HostPort>>) -> Vec<HostPort> {
        let servers: Vec<HostPort> = raw.into_iter().map(|s| s.0).collect();
        if servers.is_empty() || servers.len() > MAX_BOOTSTRAP_SERVERS {
            self.report.error(
                "upstream.bootstrap_servers",
                format!(
                    "expected 1 to {MAX_BOOTSTRAP_SERVERS} host:port entries (port_offset has \
                     {MAX_BOOTSTRAP_SERVERS} bootstrap slots), got {}",
                    servers.len()
                ),
            );
        }
        for (i, server) in servers.iter().enumerate() {
            if let Some(first) = servers.iter().position(|s| s == server).filter(|&first| first < i) {
                self.report.error(
                    format!("upstream.bootstrap_servers[{i}]"),
                    format!("expected distinct servers, got {server} again (already at [{first}])"),
                );
            }
        }
        servers
    }

    fn upstream_tls(&mut self, raw: RawUpstreamTls) -> UpstreamTls {
        let verify = if raw.trust_server_certs == Some(true) {
            self.report.warn(
                "upstream.tls.trust_server_certs",
                "broker certificates are NOT verified: anyone on the path can impersonate the cluster; \
                 use this for tests only",
            );
            if raw.ca_certs.is_some() {
                self.report.warn("upstream.tls.ca_certs", "ignored: upstream.tls.trust_server_certs is true");
            }
            UpstreamVerify::TrustAll
        } else if let Some(ca) = raw.ca_certs {
            UpstreamVerify::CaFile(self.existing_file("upstream.tls.ca_certs", &ca, false))
        } else {
            UpstreamVerify::SystemRoots
        };
        let key_password = self.key_password("upstream.tls", raw.key_password, raw.key_password_file);
        let client_cert = match (raw.client_cert, raw.client_key) {
            (Some(cert), Some(key)) => Some(CertKey {
                cert: self.existing_file("upstream.tls.client_cert", &cert, false),
                key: self.existing_file("upstream.tls.client_key", &key, false),
                key_password,
            }),
            (Some(_), None) => {
                self.report.error("upstream.tls.client_key", "required when upstream.tls.client_cert is set");
                None
            }
            (None, Some(_)) => {
                self.report.error("upstream.tls.client_cert", "required when upstream.tls.client_key is set");
                None
            }
            (None, None) => {
                if key_password.is_some() {
                    self.report
                        .warn("upstream.tls.key_password", "ignored: no upstream.tls.client_key is set");
                }
                None
            }
        };
        let policy = self.tls_policy(
            "upstream",
            RawPolicy {
                min_version: raw.min_version,
                max_version: raw.max_version,
                cipher_suites: raw.cipher_suites,
                curves: raw.curves,
            },
        );
        UpstreamTls { verify, client_cert, policy }
    }

    fn upstream_auth(
        &mut self,
        protocol: Protocol,
        mechanism: Option<Mechanism>,
        username: Option<String>,
        password: Option<Secret>,
        swap: Option<AuthSwap>,
        downstream: &Downstream,
    ) -> UpstreamAuth {
        if !protocol.value.uses_sasl() {
            self.sasl_keys_without_sasl(
                "upstream",
                protocol,
                &[
                    ("sasl_mechanism", mechanism.is_some()),
                    ("sasl_username", username.is_some()),
                    ("sasl_password", password.is_some()),
                ],
            );
            return UpstreamAuth::None;
        }
        let service = match (username, password) {
            (Some(username), Some(password)) => Some((username, password)),
            (Some(_), None) => {
                self.report.error("upstream.sasl_password", "required when upstream.sasl_username is set");
                return UpstreamAuth::None;
            }
            (None, Some(_)) => {
                self.report.error("upstream.sasl_username", "required when upstream.sasl_password is set");
                return UpstreamAuth::None;
            }
            (None, None) => None,
        };
        let login = service.is_some() || swap.is_some();
        if !login {
            if downstream.sasl.is_some() {
                self.report.error(
                    "upstream.security_protocol",
                    format!(
                        "{} needs credentials towards brokers: set upstream.sasl_username and \
                         upstream.sasl_password, or enable auth_swap (clients' own SASL exchange \
                         cannot be forwarded, because the proxy authenticates them itself)",
                        protocol.shown()
                    ),
                );
            } else if mechanism.is_some() {
                self.report.warn(
                    "upstream.sasl_mechanism",
                    "ignored: without upstream credentials, clients' own SASL exchange is forwarded",
                );
            }
            return UpstreamAuth::PassThrough;
        }
        let mechanism = match mechanism {
            Some(m) => m,
            None => {
                self.report.error(
                    "upstream.sasl_mechanism",
                    format!(
                        "required when upstream.security_protocol is {}: expected PLAIN, SCRAM-SHA-256, \
                         SCRAM-SHA-512 or OAUTHBEARER",
                        protocol.shown()
                    ),
                );
                return UpstreamAuth::None;
            }
        };
        match (service, swap) {
            (Some((username, password)), None) => {
                if username.is_empty() {
                    self.report.error("upstream.sasl_username", "expected a non-empty user name");
                }
                UpstreamAuth::Service { mechanism, username, password }
            }
            (None, Some(swap)) => UpstreamAuth::Swap { mechanism, swap },
            _ => {
                self.report.error(
                    "upstream.sasl_username",
                    "expected either upstream.sasl_username/sasl_password (one identity) or auth_swap \
                     (one identity per client), not both",
                );
                UpstreamAuth::None
            }
        }
    }
}
