//! Scalar values parsed while the YAML is deserialized, so that a malformed value is
//! reported with its key path and line: host:port, addresses, protocol and mechanism
//! names, base64, regexes, `user=password` entries, principal rules, ports, API keys.

use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use kafka_proxy_core::api::ApiKey;
use kafka_proxy_core::config::{HostPattern, HostPort};
use regex::Regex;
use serde::de::{self, Deserialize, Deserializer, Visitor};

use kafka_proxy_core::tls::config::{CipherSuite, KxGroup, TlsVersion};

use crate::model::{
    ClientAuthMode, LogFormat, MappingMode, Mechanism, PrincipalRule, RuntimeKind, Secret, SecurityProtocol,
};

/// A value written as a YAML string and parsed into `Self`.
pub(crate) trait FromConfigStr: Sized {
    /// What the value should look like, for type errors (`expected host:port`).
    const EXPECTED: &'static str;
    /// Parses `text`; the error says what was expected and what was found.
    fn parse_config(text: &str) -> Result<Self, String>;
}

/// A `T` deserialized from a string with [`FromConfigStr`].
#[derive(Debug, Clone)]
pub(crate) struct Parsed<T>(pub(crate) T);

impl<'de, T: FromConfigStr> Deserialize<'de> for Parsed<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor<T>(PhantomData<T>);
        impl<T: FromConfigStr> Visitor<'_> for StrVisitor<T> {
            type Value = Parsed<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(T::EXPECTED)
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Parsed<T>, E> {
                T::parse_config(text).map(Parsed).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(StrVisitor(PhantomData))
    }
}

fn expected(what: &str, text: &str, why: &str) -> String {
    if why.is_empty() {
        format!("expected {what}, got {text:?}")
    } else {
        format!("expected {what}, got {text:?} ({why})")
    }
}

/// True for a DNS name (letters, digits, `-`, `_`, dot-separated non-empty labels of at
/// most 63 characters, 253 in all) or an IPv4 literal.
pub(crate) fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Parses `host:port` with the IPv6 literal in brackets (`[::1]:9092`).
pub(crate) fn parse_host_port(text: &str) -> Result<HostPort, String> {
    const WHAT: &str = "host:port";
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let Some((v6, port)) = rest.split_once("]:") else {
            return Err(expected(WHAT, text, "expected [ipv6]:port"));
        };
        if v6.parse::<Ipv6Addr>().is_err() {
            return Err(expected(WHAT, text, "not an IPv6 address in the brackets"));
        }
        (v6, port)
    } else {
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(expected(WHAT, text, "no port"));
        };
        if host.contains(':') {
            return Err(expected(WHAT, text, "write IPv6 addresses in brackets: [::1]:9092"));
        }
        if !is_host_name(host) {
            return Err(expected(WHAT, text, "not a valid host name"));
        }
        (host, port)
    };
    match port.parse::<u16>() {
        Ok(port) if port != 0 => Ok(HostPort { host: host.to_owned(), port }),
        _ => Err(expected(WHAT, text, "port must be 1-65535")),
    }
}

impl FromConfigStr for HostPort {
    const EXPECTED: &'static str = "host:port";
    fn parse_config(text: &str) -> Result<Self, String> {
        parse_host_port(text)
    }
}

/// An advertised host name: a DNS name or an IP literal (IPv6 with or without brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Host(pub(crate) String);

impl FromConfigStr for Host {
    const EXPECTED: &'static str = "a host name or IP address";
    fn parse_config(text: &str) -> Result<Self, String> {
        let unbracketed = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
        if unbracketed.parse::<Ipv6Addr>().is_ok() || is_host_name(text) {
            Ok(Host(unbracketed.to_owned()))
        } else {
            Err(expected(Self::EXPECTED, text, ""))
        }
    }
}

impl FromConfigStr for IpAddr {
    const EXPECTED: &'static str = "an IP address (0.0.0.0, 127.0.0.1, ::)";
    fn parse_config(text: &str) -> Result<Self, String> {
        let unbracketed = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
        unbracketed.parse().map_err(|_| expected(Self::EXPECTED, text, ""))
    }
}

impl FromConfigStr for Ipv4Addr {
    const EXPECTED: &'static str = "an IPv4 address";
    fn parse_config(text: &str) -> Result<Self, String> {
        text.parse().map_err(|_| expected(Self::EXPECTED, text, ""))
    }
}

impl FromConfigStr for Ipv6Addr {
    const EXPECTED: &'static str = "an IPv6 address";
    fn parse_config(text: &str) -> Result<Self, String> {
        let unbracketed = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
        unbracketed.parse().map_err(|_| expected(Self::EXPECTED, text, ""))
    }
}

impl FromConfigStr for SecurityProtocol {
    const EXPECTED: &'static str = "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL";
    fn parse_config(text: &str) -> Result<Self, String> {
        SecurityProtocol::parse(text).ok_or_else(|| expected(Self::EXPECTED, text, ""))
    }
}

impl FromConfigStr for Mechanism {
    const EXPECTED: &'static str =
        "PLAIN, SCRAM-SHA-256 (or SCRAM-256), SCRAM-SHA-512 (or SCRAM-512) or OAUTHBEARER";
    fn parse_config(text: &str) -> Result<Self, String> {
        Mechanism::parse(text).ok_or_else(|| expected(Self::EXPECTED, text, ""))
    }
}

/// An `https://` URL (JWKS and token endpoints are only ever fetched over TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpsUrl(pub(crate) String);

impl FromConfigStr for HttpsUrl {
    const EXPECTED: &'static str = "an https:// URL";
    fn parse_config(text: &str) -> Result<Self, String> {
        let rest = text.get(..8).filter(|p| p.eq_ignore_ascii_case("https://")).and_then(|_| text.get(8..));
        let authority = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
        match authority {
            Some(host) if !host.is_empty() && !text.contains(char::is_whitespace) => {
                Ok(HttpsUrl(text.to_owned()))
            }
            _ => Err(expected(Self::EXPECTED, text, "keys and tokens are only fetched over TLS")),
        }
    }
}

impl FromConfigStr for TlsVersion {
    const EXPECTED: &'static str = "a TLS version: \"1.2\" or \"1.3\" (TLSv1.2, TLSv1.3)";
    fn parse_config(text: &str) -> Result<Self, String> {
        TlsVersion::from_name(text).ok_or_else(|| expected("\"1.2\" or \"1.3\"", text, ""))
    }
}

impl FromConfigStr for CipherSuite {
    const EXPECTED: &'static str = "an IANA cipher suite name";
    fn parse_config(text: &str) -> Result<Self, String> {
        CipherSuite::from_iana_name(text).ok_or_else(|| {
            format!("expected one of {}, got {text:?}", CipherSuite::supported_names().join(", "))
        })
    }
}

impl FromConfigStr for KxGroup {
    const EXPECTED: &'static str = "a key exchange group (curve) name";
    fn parse_config(text: &str) -> Result<Self, String> {
        KxGroup::from_name(text).ok_or_else(|| {
            format!(
                "expected one of {} (or X25519, P-256, P-384), got {text:?}",
                KxGroup::supported_names().join(", ")
            )
        })
    }
}

impl FromConfigStr for ClientAuthMode {
    const EXPECTED: &'static str = "none, requested or required";
    fn parse_config(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "none" => Ok(ClientAuthMode::None),
            "requested" => Ok(ClientAuthMode::Requested),
            "required" => Ok(ClientAuthMode::Required),
            _ => Err(expected(Self::EXPECTED, text, "Kafka's ssl.client.auth")),
        }
    }
}

impl FromConfigStr for MappingMode {
    const EXPECTED: &'static str = "port_offset or sni";
    fn parse_config(text: &str) -> Result<Self, String> {
        match text {
            "port_offset" => Ok(MappingMode::PortOffset),
            "sni" => Ok(MappingMode::Sni),
            _ => Err(expected(Self::EXPECTED, text, "")),
        }
    }
}

impl FromConfigStr for LogFormat {
    const EXPECTED: &'static str = "text or json";
    fn parse_config(text: &str) -> Result<Self, String> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(expected(Self::EXPECTED, text, "")),
        }
    }
}

impl FromConfigStr for RuntimeKind {
    const EXPECTED: &'static str = "tokio or mio";
    fn parse_config(text: &str) -> Result<Self, String> {
        match text {
            "tokio" => Ok(RuntimeKind::Tokio),
            "mio" => Ok(RuntimeKind::Mio),
            _ => Err(expected(Self::EXPECTED, text, "")),
        }
    }
}

/// Bytes written in standard, padded base64.
#[derive(Debug, Clone)]
pub(crate) struct Base64(pub(crate) Vec<u8>);

impl FromConfigStr for Base64 {
    const EXPECTED: &'static str = "base64 (standard alphabet, padded)";
    fn parse_config(text: &str) -> Result<Self, String> {
        match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(bytes) if !bytes.is_empty() => Ok(Base64(bytes)),
            Ok(_) => Err(format!("expected {}, got an empty value", Self::EXPECTED)),
            Err(e) => Err(format!("expected {}, got a value that does not decode: {e}", Self::EXPECTED)),
        }
    }
}

impl FromConfigStr for Regex {
    const EXPECTED: &'static str = "a regular expression";
    fn parse_config(text: &str) -> Result<Self, String> {
        Regex::new(text).map_err(|e| format!("expected {}, got {text:?}: {e}", Self::EXPECTED))
    }
}

impl FromConfigStr for HostPattern {
    const EXPECTED: &'static str = "a host name, where * matches any characters within one label";
    fn parse_config(text: &str) -> Result<Self, String> {
        // A `*` stands for letters within a label, so the name must be valid
        // with each `*` read as one letter.
        if is_host_name(&text.replace('*', "x")) {
            Ok(HostPattern::parse(text))
        } else {
            Err(expected(Self::EXPECTED, text, "not a host name pattern"))
        }
    }
}

/// A secret string. Numbers and booleans in the YAML are taken as their text.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

/// An `auth_swap` credential entry, `user=password` (the password may contain `=`).
#[derive(Debug, Clone)]
pub(crate) struct UserPassword {
    pub(crate) user: String,
    pub(crate) password: Secret,
}

impl FromConfigStr for UserPassword {
    const EXPECTED: &'static str = "user=password";
    fn parse_config(text: &str) -> Result<Self, String> {
        // Never echo the entry: it holds a password.
        match text.split_once('=') {
            None => Err("expected user=password, got an entry without '=' (value not shown)".into()),
            Some(("", _)) => Err("expected user=password, got an empty user name".into()),
            Some((user, password)) => {
                Ok(UserPassword { user: user.to_owned(), password: Secret::new(password.to_owned()) })
            }
        }
    }
}

/// An `auth_swap.mapping` entry, `downstream_principal=upstream_user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MappingEntry {
    pub(crate) from: String,
    pub(crate) to: String,
}

impl FromConfigStr for MappingEntry {
    const EXPECTED: &'static str = "downstream_principal=upstream_user";
    fn parse_config(text: &str) -> Result<Self, String> {
        match text.split_once('=') {
            Some((from, to)) if !from.is_empty() && !to.is_empty() => {
                Ok(MappingEntry { from: from.to_owned(), to: to.to_owned() })
            }
            _ => Err(expected(Self::EXPECTED, text, "")),
        }
    }
}

impl FromConfigStr for PrincipalRule {
    const EXPECTED: &'static str = "DEFAULT or RULE:pattern/replacement/[LU]";
    fn parse_config(text: &str) -> Result<Self, String> {
        match kafka_proxy_core::tls::principal::PrincipalMapper::from_rules([text]) {
            Ok(_) => Ok(PrincipalRule(text.to_owned())),
            Err(e) => Err(expected(Self::EXPECTED, text, &e.to_string())),
        }
    }
}

/// A TCP port, 1-65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Port(pub(crate) u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PortVisitor;
        impl Visitor<'_> for PortVisitor {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port 1-65535")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                match u16::try_from(v) {
                    Ok(port) if port != 0 => Ok(Port(port)),
                    _ => Err(E::custom(format!("expected a port 1-65535, got {v}"))),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("expected a port 1-65535, got {v}"))),
                }
            }
        }
        deserializer.deserialize_any(PortVisitor)
    }
}

/// A Kafka API key: its number (0-32767) or Kafka's name for it
/// (`DeleteTopics`, any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ApiKeyNumber(pub(crate) ApiKey);

impl<'de> Deserialize<'de> for ApiKeyNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = ApiKeyNumber;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Kafka API key number 0-32767")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ApiKeyNumber, E> {
                i16::try_from(v)
                    .map(|k| ApiKeyNumber(ApiKey(k)))
                    .map_err(|_| E::custom(format!("expected a Kafka API key number 0-32767, got {v}")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ApiKeyNumber, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("expected a Kafka API key number 0-32767, got {v}"))),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ApiKeyNumber, E> {
                if let Ok(n) = v.trim().parse::<u64>() {
                    return self.visit_u64(n);
                }
                ApiKey::from_name(v.trim()).map(ApiKeyNumber).ok_or_else(|| {
                    E::custom(format!(
                        "expected a Kafka API key number 0-32767 or name such as DeleteTopics, CreateTopics, Produce, got {v:?}"
                    ))
                })
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            parse_host_port("broker-1:9092").unwrap(),
            HostPort { host: "broker-1".into(), port: 9092 }
        );
        assert_eq!(parse_host_port("10.0.0.1:1").unwrap(), HostPort { host: "10.0.0.1".into(), port: 1 });
        assert_eq!(parse_host_port("[::1]:9092").unwrap(), HostPort { host: "::1".into(), port: 9092 });
        assert_eq!(parse_host_port("b_1.x-y.example:65535").unwrap().port, 65535);
        let cases = [
            ("broker", "no port"),
            ("broker:", "port must be 1-65535"),
            ("broker:0", "port must be 1-65535"),
            ("broker:65536", "port must be 1-65535"),
            ("broker:x", "port must be 1-65535"),
            ("::1:9092", "brackets"),
            ("[::1]9092", "[ipv6]:port"),
            ("[nope]:9092", "not an IPv6"),
            (":9092", "host name"),
            ("a..b:9092", "host name"),
            ("a b:9092", "host name"),
        ];
        for (text, why) in cases {
            let err = parse_host_port(text).unwrap_err();
            assert!(err.starts_with(&format!("expected host:port, got {text:?}")), "{err}");
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn names_are_case_insensitive_with_aliases() {
        assert_eq!(SecurityProtocol::parse_config("sasl_ssl"), Ok(SecurityProtocol::SaslSsl));
        assert_eq!(SecurityProtocol::parse_config("Plaintext"), Ok(SecurityProtocol::Plaintext));
        assert!(SecurityProtocol::parse_config("TLS").unwrap_err().contains("PLAINTEXT, SSL"));
        assert_eq!(Mechanism::parse_config("SCRAM-256"), Ok(Mechanism::ScramSha256));
        assert_eq!(Mechanism::parse_config("scram-512"), Ok(Mechanism::ScramSha512));
        assert_eq!(Mechanism::parse_config("scram-sha-512"), Ok(Mechanism::ScramSha512));
        assert_eq!(Mechanism::parse_config("plain"), Ok(Mechanism::Plain));
        assert_eq!(Mechanism::parse_config("OAuthBearer"), Ok(Mechanism::OAuthBearer));
        assert!(Mechanism::parse_config("GSSAPI").unwrap_err().contains("got \"GSSAPI\""));
    }

    #[test]
    fn host_patterns() {
        assert_eq!(HostPattern::parse_config("*"), Ok(HostPattern::Wildcard("*".into())));
        assert_eq!(
            HostPattern::parse_config("*.Example.com"),
            Ok(HostPattern::Wildcard("*.example.com".into()))
        );
        assert_eq!(
            HostPattern::parse_config("pkc-*.us-*-1.aws.confluent.cloud"),
            Ok(HostPattern::Wildcard("pkc-*.us-*-1.aws.confluent.cloud".into()))
        );
        assert_eq!(
            HostPattern::parse_config("b1.example.com"),
            Ok(HostPattern::Exact("b1.example.com".into()))
        );
        for bad in ["*.", "", "a..b", "b1 .x", "*.ex ample.com"] {
            assert!(HostPattern::parse_config(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credential_entries_never_echo_the_secret() {
        let entry = UserPassword::parse_config("alice=pa=ss").unwrap();
        assert_eq!((entry.user.as_str(), entry.password.expose().as_str()), ("alice", "pa=ss"));
        let err = UserPassword::parse_config("alice-secret").unwrap_err();
        assert!(err.contains("expected user=password") && !err.contains("alice-secret"), "{err}");
        assert!(UserPassword::parse_config("=x").unwrap_err().contains("empty user name"));
        assert_eq!(
            MappingEntry::parse_config("$anonymous=svc"),
            Ok(MappingEntry { from: "$anonymous".into(), to: "svc".into() })
        );
        assert!(MappingEntry::parse_config("alice=").is_err());
    }

    #[test]
    fn principal_rules() {
        assert_eq!(PrincipalRule::parse_config("DEFAULT"), Ok(PrincipalRule("DEFAULT".into())));
        assert!(PrincipalRule::parse_config("RULE:^CN=([^,]+).*$/$1/L").is_ok());
        let escaped = PrincipalRule::parse_config("RULE:O=(a\\/b)/x\\/$1/");
        assert!(escaped.is_ok(), "escaped slashes: {escaped:?}");
        for bad in ["RULE:abc", "RULE:a/b", "RULE:a/b/X", "RULE:(/x/", "default"] {
            let err = PrincipalRule::parse_config(bad).unwrap_err();
            assert!(err.contains("DEFAULT or RULE:pattern/replacement/[LU]"), "{bad}: {err}");
        }
    }

    #[test]
    fn base64_and_regex() {
        assert_eq!(Base64::parse_config("c2FsdA==").unwrap().0, b"salt");
        assert!(Base64::parse_config("not base64!").unwrap_err().contains("does not decode"));
        assert!(Base64::parse_config("").is_err());
        assert!(Regex::parse_config("(.*)\\.example").is_ok());
        assert!(
            Regex::parse_config("(").unwrap_err().starts_with("expected a regular expression, got \"(\"")
        );
    }
}
