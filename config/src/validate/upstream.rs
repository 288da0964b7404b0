//! `upstream`: bootstrap servers, TLS towards brokers, the proxy's identity there.

use kafka_proxy_core::config::{HostPort, ProxyConfig};

use super::{Checker, MAX_BOOTSTRAP_SERVERS, Protocol};
use crate::model::{
    AuthSwap, CertKey, Downstream, Mechanism, Secret, Upstream, UpstreamAuth, UpstreamTls, UpstreamVerify,
};
use crate::raw::{RawUpstream, RawUpstreamTls};
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
                    || tls.trust_server_certs.is_some()
                {
                    self.report.warn(
                        "upstream.tls",
                        format!("ignored: upstream.security_protocol {} does not use TLS", protocol.shown()),
                    );
                }
                None
            }
            None if protocol.value.uses_tls() => {
                Some(UpstreamTls { verify: UpstreamVerify::SystemRoots, client_cert: None })
            }
            None => None,
        };
        let auth = self.upstream_auth(
            protocol,
            raw.sasl_mechanism.map(|m| m.0),
            raw.sasl_username,
            raw.sasl_password,
            swap,
            downstream,
        );
        let client_id = self.client_id(raw.client_id);
        Upstream {
            bootstrap_servers,
            security_protocol: protocol.value,
            tls,
            auth,
            forward_proxy: raw.forward_proxy.map(|p| p.0),
            client_id,
        }
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
        let client_cert = match (raw.client_cert, raw.client_key) {
            (Some(cert), Some(key)) => Some(CertKey {
                cert: self.existing_file("upstream.tls.client_cert", &cert, false),
                key: self.existing_file("upstream.tls.client_key", &key, false),
            }),
            (Some(_), None) => {
                self.report.error("upstream.tls.client_key", "required when upstream.tls.client_cert is set");
                None
            }
            (None, Some(_)) => {
                self.report.error("upstream.tls.client_cert", "required when upstream.tls.client_key is set");
                None
            }
            (None, None) => None,
        };
        UpstreamTls { verify, client_cert }
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
            Some(Mechanism::OAuthBearer) => {
                self.report.error(
                    "upstream.sasl_mechanism",
                    "expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got OAUTHBEARER (not supported towards brokers)",
                );
                return UpstreamAuth::None;
            }
            Some(m) => m,
            None => {
                self.report.error(
                    "upstream.sasl_mechanism",
                    format!(
                        "required when upstream.security_protocol is {}: expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
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
