//! `downstream.credentials.external`: an exec plugin or LDAP checks PLAIN
//! logins of users not defined locally.

use std::time::Duration;

use super::Checker;
use crate::model::{ExternalAuth, ExternalBackend, LdapAuth, LdapLookup};
use crate::raw::{RawExternalAuth, RawLdap};

const KEY: &str = "downstream.credentials.external";
/// `timeout_ms` when absent: half the default handshake timeout, so a slow
/// backend yields SASL_AUTHENTICATION_FAILED before the handshake times out.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// `max_concurrency` when absent.
pub(crate) const DEFAULT_MAX_CONCURRENCY: usize = 16;
/// `cache_ttl_ms` when absent.
pub(crate) const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);

impl Checker<'_> {
    pub(super) fn external_auth(&mut self, raw: RawExternalAuth) -> Option<ExternalAuth> {
        let backend = match (raw.exec, raw.ldap) {
            (Some(exec), None) => {
                let command = if exec.command.components().count() > 1 {
                    self.existing_file(&format!("{KEY}.exec.command"), &exec.command, false)
                } else if exec.command.as_os_str().is_empty() {
                    self.report
                        .error(format!("{KEY}.exec.command"), "expected a program, got an empty value");
                    return None;
                } else {
                    exec.command
                };
                ExternalBackend::Exec { command, args: exec.args.unwrap_or_default() }
            }
            (None, Some(ldap)) => ExternalBackend::Ldap(self.ldap(ldap)?),
            (Some(_), Some(_)) => {
                self.report.error(KEY, "expected exec or ldap, not both");
                return None;
            }
            (None, None) => {
                self.report.error(KEY, "expected exec (a plugin program) or ldap (a directory server)");
                return None;
            }
        };
        Some(ExternalAuth {
            backend,
            timeout: raw.timeout_ms.map_or(DEFAULT_TIMEOUT, |ms| Duration::from_millis(ms.get())),
            max_concurrency: raw.max_concurrency.map_or(DEFAULT_MAX_CONCURRENCY, |n| n.get()),
            cache_ttl: match raw.cache_ttl_ms {
                None => Some(DEFAULT_CACHE_TTL),
                Some(0) => None,
                Some(ms) => Some(Duration::from_millis(ms)),
            },
        })
    }

    fn ldap(&mut self, raw: RawLdap) -> Option<LdapAuth> {
        let key = format!("{KEY}.ldap");
        let url = raw.url.0.0;
        let start_tls = raw.start_tls.unwrap_or(false);
        if start_tls && url.to_ascii_lowercase().starts_with("ldaps://") {
            self.report.error(
                format!("{key}.start_tls"),
                "expected false with an ldaps:// url (TLS from the start)",
            );
        }
        let ca_certs = raw.ca_certs.map(|ca| self.existing_file(&format!("{key}.ca_certs"), &ca, false));
        let search = [
            raw.bind_dn.is_some(),
            raw.bind_password.is_some(),
            raw.base_dn.is_some(),
            raw.user_filter.is_some(),
        ];
        let lookup = match (raw.user_dn, raw.bind_dn, raw.bind_password, raw.base_dn, raw.user_filter) {
            (Some(user_dn), None, None, None, None) => {
                self.user_placeholder(&format!("{key}.user_dn"), &user_dn)?;
                LdapLookup::Bind { user_dn }
            }
            (None, Some(bind_dn), Some(bind_password), Some(base_dn), Some(user_filter)) => {
                self.user_placeholder(&format!("{key}.user_filter"), &user_filter)?;
                LdapLookup::Search { bind_dn, bind_password, base_dn, user_filter }
            }
            (Some(_), ..) => {
                self.report.error(
                    format!("{key}.user_dn"),
                    "expected either user_dn (bind as the user) or bind_dn, bind_password, base_dn and \
                     user_filter (search, then bind), not both",
                );
                return None;
            }
            (None, ..) if search.iter().any(|s| *s) => {
                for (name, set) in
                    ["bind_dn", "bind_password", "base_dn", "user_filter"].into_iter().zip(search)
                {
                    if !set {
                        self.report
                            .error(format!("{key}.{name}"), "required with bind_dn (search, then bind)");
                    }
                }
                return None;
            }
            (None, ..) => {
                self.report.error(
                    &key,
                    "expected user_dn (e.g. uid={user},ou=people,dc=example,dc=com) or bind_dn, bind_password, \
                     base_dn and user_filter",
                );
                return None;
            }
        };
        Some(LdapAuth { url, start_tls, ca_certs, lookup })
    }

    fn user_placeholder(&mut self, key: &str, template: &str) -> Option<()> {
        if template.contains("{user}") {
            Some(())
        } else {
            self.report.error(key, format!("expected a template holding {{user}}, got {template:?}"));
            None
        }
    }
}
