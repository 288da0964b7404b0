//! LDAP: a simple bind as the user (a DN template), or a search with a
//! service account and then a bind as the entry found. One connection per
//! login (a bind changes the connection's identity), `ldaps://` or
//! StartTLS with rustls and ring.

use std::sync::Arc;
use std::time::Duration;

use kafka_proxy_config::{LdapAuth, LdapLookup};
use kafka_proxy_core::sasl::{AuthRequest, Verdict};
use kafka_proxy_core::tls::config::{
    ClientTlsOptions, PemItem, ServerVerification, TlsPolicy, certificates_from_pem, client_config,
};
use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry, dn_escape, ldap_escape};

use crate::StartError;

/// RFC 4511 `invalidCredentials`.
const INVALID_CREDENTIALS: u32 = 49;

pub(crate) struct LdapBackend {
    config: LdapAuth,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
}

impl LdapBackend {
    pub(crate) fn new(config: &LdapAuth, timeout: Duration) -> Result<LdapBackend, StartError> {
        let verification = match &config.ca_certs {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| StartError::Tls(format!("cannot read {}: {e}", path.display())))?;
                let certs = certificates_from_pem(&pem, PemItem::ServerCaBundle)
                    .map_err(|e| StartError::Tls(e.to_string()))?;
                ServerVerification::Roots(certs)
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                if found.certs.is_empty() {
                    return Err(StartError::Tls("no system trust roots: set ca_certs".into()));
                }
                ServerVerification::Roots(found.certs)
            }
        };
        let options = ClientTlsOptions { verification, identity: None, policy: TlsPolicy::default() };
        let tls = client_config(&options).map_err(|e| StartError::Tls(e.to_string()))?;
        Ok(LdapBackend { config: config.clone(), tls, timeout })
    }

    pub(crate) async fn check(&self, request: &AuthRequest) -> Verdict {
        let password = request.password.expose();
        if password.is_empty() {
            // An empty password is an unauthenticated bind, which succeeds (RFC 4513 5.1.2).
            return Verdict::Deny { reason: Some("empty password".into()) };
        }
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.config.start_tls)
            .set_config(self.tls.clone());
        let (conn, mut ldap) = match LdapConnAsync::with_settings(settings, &self.config.url).await {
            Ok(c) => c,
            Err(e) => return Verdict::Error(format!("cannot reach {}: {e}", self.config.url)),
        };
        ldap3::drive!(conn);
        let dn = match &self.config.lookup {
            LdapLookup::Bind { user_dn } => user_dn.replace("{user}", &dn_escape(request.user.as_str())),
            LdapLookup::Search { bind_dn, bind_password, base_dn, user_filter } => {
                match ldap.simple_bind(bind_dn, bind_password.expose()).await.and_then(|r| r.success()) {
                    Ok(_) => {}
                    Err(e) => {
                        return Verdict::Error(format!("service account bind as {bind_dn} failed: {e}"));
                    }
                }
                let filter = user_filter.replace("{user}", &ldap_escape(request.user.as_str()));
                let found = ldap
                    .search(base_dn, Scope::Subtree, &filter, vec!["1.1"])
                    .await
                    .and_then(|r| r.success());
                match found {
                    Ok((entries, _)) if entries.len() == 1 => {
                        entries.into_iter().next().map(|e| SearchEntry::construct(e).dn).unwrap_or_default()
                    }
                    Ok((entries, _)) if entries.is_empty() => {
                        let _ = ldap.unbind().await;
                        return Verdict::Deny { reason: Some("no such user".into()) };
                    }
                    Ok((entries, _)) => {
                        let _ = ldap.unbind().await;
                        return Verdict::Error(format!(
                            "{filter} matches {} entries under {base_dn}",
                            entries.len()
                        ));
                    }
                    Err(e) => return Verdict::Error(format!("search {filter} under {base_dn} failed: {e}")),
                }
            }
        };
        let verdict = match ldap.simple_bind(&dn, password).await {
            Ok(r) if r.rc == 0 => Verdict::Allow { principal: None },
            Ok(r) if r.rc == INVALID_CREDENTIALS => {
                Verdict::Deny { reason: Some(format!("bind as {dn}: invalid credentials")) }
            }
            Ok(r) => Verdict::Error(format!("bind as {dn}: {r}")),
            Err(e) => Verdict::Error(format!("bind as {dn}: {e}")),
        };
        let _ = ldap.unbind().await;
        verdict
    }
}
