//! What a side's TLS may negotiate: protocol versions, cipher suites and key
//! exchange groups, named as IANA names them (and as Kafka's
//! `ssl.enabled.protocols` / `ssl.cipher.suites` expect).
//!
//! The provider is always ring; a policy narrows ring's suites and groups
//! and keeps the order it is given in (servers apply their own order, so the
//! first suite listed is the one negotiated when the client offers it).

use std::fmt;
use std::sync::Arc;

use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::{NamedGroup, SupportedCipherSuite};

/// A TLS protocol version the proxy can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// TLS 1.2.
    V1_2,
    /// TLS 1.3.
    V1_3,
}

impl TlsVersion {
    /// Parses `1.2`, `1.3`, `TLSv1.2` or `TLSv1.3` (Kafka's names), case-insensitively.
    pub fn from_name(name: &str) -> Option<TlsVersion> {
        let lower = name.trim().to_ascii_lowercase();
        match lower.strip_prefix("tlsv").unwrap_or(&lower) {
            "1.2" => Some(TlsVersion::V1_2),
            "1.3" => Some(TlsVersion::V1_3),
            _ => None,
        }
    }

    /// `1.2` or `1.3`.
    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::V1_2 => "1.2",
            TlsVersion::V1_3 => "1.3",
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS {}", self.name())
    }
}

/// Which TLS versions a configuration enables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersions {
    /// TLS 1.2 and TLS 1.3 (the default).
    #[default]
    Tls12And13,
    /// TLS 1.2 only.
    Tls12Only,
    /// TLS 1.3 only.
    Tls13Only,
}

impl TlsVersions {
    /// The versions from `min` to `max` inclusive; `None` when `min > max`.
    pub fn range(min: TlsVersion, max: TlsVersion) -> Option<TlsVersions> {
        match (min, max) {
            (TlsVersion::V1_2, TlsVersion::V1_3) => Some(TlsVersions::Tls12And13),
            (TlsVersion::V1_2, TlsVersion::V1_2) => Some(TlsVersions::Tls12Only),
            (TlsVersion::V1_3, TlsVersion::V1_3) => Some(TlsVersions::Tls13Only),
            (TlsVersion::V1_3, TlsVersion::V1_2) => None,
        }
    }

    /// True when `version` is enabled.
    pub fn contains(self, version: TlsVersion) -> bool {
        match self {
            TlsVersions::Tls12And13 => true,
            TlsVersions::Tls12Only => version == TlsVersion::V1_2,
            TlsVersions::Tls13Only => version == TlsVersion::V1_3,
        }
    }

    /// The enabled versions, oldest first.
    pub fn iter(self) -> impl Iterator<Item = TlsVersion> {
        [TlsVersion::V1_2, TlsVersion::V1_3].into_iter().filter(move |v| self.contains(*v))
    }

    pub(crate) fn rustls(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        static BOTH: [&rustls::SupportedProtocolVersion; 2] =
            [&rustls::version::TLS13, &rustls::version::TLS12];
        static ONLY12: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
        static ONLY13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        match self {
            TlsVersions::Tls12And13 => &BOTH,
            TlsVersions::Tls12Only => &ONLY12,
            TlsVersions::Tls13Only => &ONLY13,
        }
    }
}

impl fmt::Display for TlsVersions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsVersions::Tls12And13 => "TLS 1.2 and 1.3",
            TlsVersions::Tls12Only => "TLS 1.2 only",
            TlsVersions::Tls13Only => "TLS 1.3 only",
        })
    }
}

/// A cipher suite of the ring provider.
#[derive(Clone, Copy)]
pub struct CipherSuite(SupportedCipherSuite);

impl CipherSuite {
    /// Every suite the proxy supports.
    pub fn all() -> impl Iterator<Item = CipherSuite> {
        rustls::crypto::ring::ALL_CIPHER_SUITES.iter().copied().map(CipherSuite)
    }

    /// The suite with this IANA name (`TLS_AES_128_GCM_SHA256`,
    /// `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`, ...), case-insensitively.
    pub fn from_iana_name(name: &str) -> Option<CipherSuite> {
        let wanted = name.trim();
        CipherSuite::all().find(|s| s.iana_name().eq_ignore_ascii_case(wanted))
    }

    /// The IANA name. rustls spells TLS 1.3 suites `TLS13_...`; IANA (and
    /// Java, and Kafka's `ssl.cipher.suites`) spell them `TLS_...`.
    pub fn iana_name(self) -> &'static str {
        let name = self.0.suite().as_str().unwrap_or("unknown");
        if name.starts_with("TLS13_") { iana13(name) } else { name }
    }

    /// The version this suite belongs to.
    pub fn version(self) -> TlsVersion {
        match self.0 {
            SupportedCipherSuite::Tls13(_) => TlsVersion::V1_3,
            SupportedCipherSuite::Tls12(_) => TlsVersion::V1_2,
        }
    }

    /// Every supported IANA name, for error messages.
    pub fn supported_names() -> Vec<&'static str> {
        CipherSuite::all().map(CipherSuite::iana_name).collect()
    }
}

/// The IANA spelling of a rustls `TLS13_*` suite name.
fn iana13(name: &'static str) -> &'static str {
    const NAMES: [(&str, &str); 3] = [
        ("TLS13_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"),
        ("TLS13_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384"),
        ("TLS13_CHACHA20_POLY1305_SHA256", "TLS_CHACHA20_POLY1305_SHA256"),
    ];
    NAMES.iter().find(|(rustls, _)| *rustls == name).map_or(name, |(_, iana)| iana)
}

impl PartialEq for CipherSuite {
    fn eq(&self, other: &Self) -> bool {
        self.0.suite() == other.0.suite()
    }
}

impl Eq for CipherSuite {}

impl fmt::Debug for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.iana_name())
    }
}

impl fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.iana_name())
    }
}

/// A key exchange group ("curve") of the ring provider.
#[derive(Clone, Copy)]
pub struct KxGroup(&'static dyn SupportedKxGroup);

impl KxGroup {
    /// Every group the proxy supports: x25519, secp256r1, secp384r1.
    pub fn all() -> impl Iterator<Item = KxGroup> {
        rustls::crypto::ring::ALL_KX_GROUPS.iter().copied().map(KxGroup)
    }

    /// The group with this IANA name (`x25519`, `secp256r1`, `secp384r1`), or
    /// a common alias (`X25519`, `P-256`, `prime256v1`, `P-384`), case-insensitively.
    pub fn from_name(name: &str) -> Option<KxGroup> {
        let lower = name.trim().to_ascii_lowercase();
        let canonical = match lower.as_str() {
            "p-256" | "p256" | "prime256v1" => "secp256r1",
            "p-384" | "p384" => "secp384r1",
            other => other,
        };
        KxGroup::all().find(|g| g.iana_name() == canonical)
    }

    /// The IANA name.
    pub fn iana_name(self) -> &'static str {
        match self.0.name() {
            NamedGroup::X25519 => "x25519",
            NamedGroup::secp256r1 => "secp256r1",
            NamedGroup::secp384r1 => "secp384r1",
            NamedGroup::secp521r1 => "secp521r1",
            _ => "unknown",
        }
    }

    /// Every supported name, for error messages.
    pub fn supported_names() -> Vec<&'static str> {
        KxGroup::all().map(KxGroup::iana_name).collect()
    }
}

impl PartialEq for KxGroup {
    fn eq(&self, other: &Self) -> bool {
        self.0.name() == other.0.name()
    }
}

impl Eq for KxGroup {}

impl fmt::Debug for KxGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.iana_name())
    }
}

impl fmt::Display for KxGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.iana_name())
    }
}

/// Versions, suites and groups for one side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsPolicy {
    /// Enabled versions.
    pub versions: TlsVersions,
    /// Enabled suites, in preference order; `None`: every suite, AES-128-GCM first.
    pub cipher_suites: Option<Vec<CipherSuite>>,
    /// Enabled key exchange groups, in preference order; `None`: ring's default order.
    pub kx_groups: Option<Vec<KxGroup>>,
}

impl From<TlsVersions> for TlsPolicy {
    fn from(versions: TlsVersions) -> Self {
        TlsPolicy { versions, cipher_suites: None, kx_groups: None }
    }
}

/// Why a policy cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    /// An enabled version has no suite in the list.
    NoSuiteForVersion(TlsVersion),
    /// The group list is empty.
    NoKxGroup,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::NoSuiteForVersion(v) => {
                let others: Vec<&str> =
                    CipherSuite::all().filter(|s| s.version() == *v).map(CipherSuite::iana_name).collect();
                write!(
                    f,
                    "{v} is enabled but no cipher suite of it is listed: add one of {} or narrow the versions",
                    others.join(", ")
                )
            }
            PolicyError::NoKxGroup => f.write_str("no key exchange group (curve) is enabled"),
        }
    }
}

impl std::error::Error for PolicyError {}

impl TlsPolicy {
    /// Checks that every enabled version can be negotiated.
    pub fn check(&self) -> Result<(), PolicyError> {
        if let Some(suites) = &self.cipher_suites {
            for version in self.versions.iter() {
                if !suites.iter().any(|s| s.version() == version) {
                    return Err(PolicyError::NoSuiteForVersion(version));
                }
            }
        }
        if self.kx_groups.as_ref().is_some_and(Vec::is_empty) {
            return Err(PolicyError::NoKxGroup);
        }
        Ok(())
    }

    /// The ring provider narrowed to this policy.
    pub fn provider(&self) -> Arc<CryptoProvider> {
        let mut provider = rustls::crypto::ring::default_provider();
        match &self.cipher_suites {
            Some(suites) => provider.cipher_suites = suites.iter().map(|s| s.0).collect(),
            None => provider.cipher_suites.sort_by_key(|suite| {
                let name = suite.suite().as_str().unwrap_or_default();
                match (name.contains("AES_128_GCM"), name.contains("AES_256_GCM")) {
                    (true, _) => 0,
                    (_, true) => 1,
                    _ => 2,
                }
            }),
        }
        if let Some(groups) = &self.kx_groups {
            provider.kx_groups = groups.iter().map(|g| g.0).collect();
        }
        Arc::new(provider)
    }

    /// One line for `kafka-proxy check` and logs.
    pub fn describe(&self) -> String {
        let suites = match &self.cipher_suites {
            Some(s) => s.iter().map(|s| s.iana_name()).collect::<Vec<_>>().join(", "),
            None => "default".to_owned(),
        };
        let groups = match &self.kx_groups {
            Some(g) => g.iter().map(|g| g.iana_name()).collect::<Vec<_>>().join(", "),
            None => "default".to_owned(),
        };
        format!("{}; cipher suites: {suites}; curves: {groups}", self.versions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_names_round_trip() {
        let names = CipherSuite::supported_names();
        assert!(names.contains(&"TLS_AES_128_GCM_SHA256"), "{names:?}");
        assert!(names.contains(&"TLS_CHACHA20_POLY1305_SHA256"), "{names:?}");
        assert!(names.contains(&"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"), "{names:?}");
        assert!(names.iter().all(|n| !n.starts_with("TLS13_")), "{names:?}");
        for name in names {
            let suite = CipherSuite::from_iana_name(name).unwrap();
            assert_eq!(suite.iana_name(), name);
        }
        let lower = CipherSuite::from_iana_name("tls_aes_256_gcm_sha384").unwrap();
        assert_eq!(lower.version(), TlsVersion::V1_3);
        assert!(CipherSuite::from_iana_name("TLS_RSA_WITH_AES_128_CBC_SHA").is_none());
        assert!(CipherSuite::from_iana_name("TLS13_AES_128_GCM_SHA256").is_none(), "rustls spelling");
    }

    #[test]
    fn group_names_and_aliases() {
        assert_eq!(KxGroup::supported_names(), ["x25519", "secp256r1", "secp384r1"]);
        for (alias, name) in [
            ("X25519", "x25519"),
            ("P-256", "secp256r1"),
            ("prime256v1", "secp256r1"),
            ("P-384", "secp384r1"),
        ] {
            assert_eq!(KxGroup::from_name(alias).unwrap().iana_name(), name, "{alias}");
        }
        assert!(KxGroup::from_name("secp521r1").is_none(), "ring has no P-521 key exchange");
    }

    #[test]
    fn versions_from_range() {
        use TlsVersion::*;
        assert_eq!(TlsVersions::range(V1_2, V1_3), Some(TlsVersions::Tls12And13));
        assert_eq!(TlsVersions::range(V1_3, V1_3), Some(TlsVersions::Tls13Only));
        assert_eq!(TlsVersions::range(V1_3, V1_2), None);
        assert_eq!(TlsVersion::from_name("TLSv1.2"), Some(V1_2));
        assert_eq!(TlsVersion::from_name("1.3"), Some(V1_3));
        assert_eq!(TlsVersion::from_name("1.1"), None);
    }

    #[test]
    fn a_version_without_a_suite_is_refused() {
        let only12 = vec![CipherSuite::from_iana_name("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256").unwrap()];
        let policy = TlsPolicy { cipher_suites: Some(only12.clone()), ..TlsPolicy::default() };
        assert_eq!(policy.check(), Err(PolicyError::NoSuiteForVersion(TlsVersion::V1_3)));
        let narrowed =
            TlsPolicy { versions: TlsVersions::Tls12Only, cipher_suites: Some(only12), kx_groups: None };
        assert_eq!(narrowed.check(), Ok(()));
        assert_eq!(narrowed.provider().cipher_suites.len(), 1);
        let no_groups = TlsPolicy { kx_groups: Some(Vec::new()), ..TlsPolicy::default() };
        assert_eq!(no_groups.check(), Err(PolicyError::NoKxGroup));
    }

    #[test]
    fn default_provider_prefers_aes_128() {
        let provider = TlsPolicy::default().provider();
        let first = provider.cipher_suites.first().unwrap().suite().as_str().unwrap();
        assert!(first.contains("AES_128_GCM"), "{first}");
    }
}
