//! What both sides' `tls` sections share: the TLS policy (`min_version`,
//! `max_version`, `cipher_suites`, `curves`) and the password of an encrypted
//! private key (`key_password`, `key_password_file`).

use std::path::PathBuf;

use kafka_proxy_core::tls::config::{CipherSuite, KxGroup, TlsPolicy, TlsVersion, TlsVersions};

use super::Checker;
use crate::model::{KeyPassword, Secret};
use crate::scalar::Parsed;

/// A side's policy keys as written.
pub(super) struct RawPolicy {
    pub(super) min_version: Option<Parsed<TlsVersion>>,
    pub(super) max_version: Option<Parsed<TlsVersion>>,
    pub(super) cipher_suites: Option<Vec<Parsed<CipherSuite>>>,
    pub(super) curves: Option<Vec<Parsed<KxGroup>>>,
}

impl Checker<'_> {
    /// The TLS policy of `side` (`upstream` or `downstream`).
    pub(super) fn tls_policy(&mut self, side: &str, raw: RawPolicy) -> TlsPolicy {
        let min = raw.min_version.map_or(TlsVersion::V1_2, |v| v.0);
        let max = raw.max_version.map_or(TlsVersion::V1_3, |v| v.0);
        let versions = TlsVersions::range(min, max).unwrap_or_else(|| {
            self.report.error(
                format!("{side}.tls.max_version"),
                format!("expected a version at least min_version ({}), got {}", min.name(), max.name()),
            );
            TlsVersions::default()
        });
        let cipher_suites = raw.cipher_suites.map(|list| {
            self.distinct(&format!("{side}.tls.cipher_suites"), list.into_iter().map(|s| s.0).collect())
        });
        let kx_groups = raw.curves.map(|list| {
            self.distinct(&format!("{side}.tls.curves"), list.into_iter().map(|g| g.0).collect())
        });
        let policy = TlsPolicy { versions, cipher_suites, kx_groups };
        if let Err(e) = policy.check() {
            let key =
                if policy.kx_groups.as_ref().is_some_and(Vec::is_empty) { "curves" } else { "cipher_suites" };
            self.report.error(format!("{side}.tls.{key}"), e.to_string());
        }
        policy
    }

    /// Reports duplicates and an empty list under `key`.
    fn distinct<T: PartialEq + std::fmt::Display>(&mut self, key: &str, list: Vec<T>) -> Vec<T> {
        if list.is_empty() {
            self.report.error(key, "expected at least one name (or remove the key for the defaults)");
        }
        for (i, item) in list.iter().enumerate() {
            if list.iter().position(|x| x == item).is_some_and(|first| first < i) {
                self.report
                    .error(format!("{key}[{i}]"), format!("expected distinct names, got {item} again"));
            }
        }
        list
    }

    /// The password of the private key at `{section}.{key_name}`.
    pub(super) fn key_password(
        &mut self,
        section: &str,
        value: Option<Secret>,
        file: Option<PathBuf>,
    ) -> Option<KeyPassword> {
        match (value, file) {
            (Some(_), Some(_)) => {
                self.report.error(
                    format!("{section}.key_password_file"),
                    format!(
                        "expected either {section}.key_password or {section}.key_password_file, not both"
                    ),
                );
                None
            }
            (Some(password), None) => {
                if password.expose().is_empty() {
                    self.report.error(format!("{section}.key_password"), "expected a non-empty password");
                }
                Some(KeyPassword::Value(password))
            }
            (None, Some(path)) => Some(KeyPassword::File(self.existing_file(
                &format!("{section}.key_password_file"),
                &path,
                false,
            ))),
            (None, None) => None,
        }
    }
}
