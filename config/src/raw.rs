//! The YAML as written: one struct per section, every key optional unless the seed
//! proxy required it, unknown keys refused. Scalars are parsed here (see `scalar`);
//! rules spanning several keys are checked in `validate`.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::PathBuf;

use kafka_proxy_core::config::{HostPattern, HostPort};
use kafka_proxy_core::tls::config::{CipherSuite, KxGroup, TlsVersion};
use regex::Regex;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::model::{
    ClientAuthMode, LogFormat, MappingMode, Mechanism, PrincipalRule, RuntimeKind, Secret, SecurityProtocol,
};
use crate::scalar::{ApiKeyNumber, Base64, Host, HttpsUrl, MappingEntry, Parsed, Port, UserPassword};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) bind_address: Option<Parsed<IpAddr>>,
    pub(crate) upstream: RawUpstream,
    pub(crate) downstream: Option<RawDownstream>,
    pub(crate) broker_mapping: Option<RawBrokerMapping>,
    pub(crate) auth_swap: Option<RawAuthSwap>,
    pub(crate) resolve: Option<Vec<RawResolve>>,
    pub(crate) admin: Option<RawAdmin>,
    pub(crate) policy: Option<RawPolicy>,
    pub(crate) limits: Option<RawLimits>,
    pub(crate) socket: Option<RawSocket>,
    pub(crate) logging: Option<RawLogging>,
    pub(crate) runtime: Option<Parsed<RuntimeKind>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstream {
    pub(crate) bootstrap_servers: Vec<Parsed<HostPort>>,
    pub(crate) security_protocol: Option<Parsed<SecurityProtocol>>,
    pub(crate) sasl_mechanism: Option<Parsed<Mechanism>>,
    pub(crate) sasl_username: Option<String>,
    pub(crate) sasl_password: Option<Secret>,
    pub(crate) oauthbearer: Option<RawUpstreamOAuth>,
    pub(crate) tls: Option<RawUpstreamTls>,
    pub(crate) client_id: Option<String>,
}

/// `upstream.oauthbearer`: the client-credentials grant towards brokers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstreamOAuth {
    pub(crate) token_endpoint_url: Parsed<HttpsUrl>,
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<Secret>,
    pub(crate) scope: Option<String>,
    pub(crate) ca_certs: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstreamTls {
    pub(crate) enabled: Option<bool>,
    pub(crate) ca_certs: Option<PathBuf>,
    pub(crate) client_cert: Option<PathBuf>,
    pub(crate) client_key: Option<PathBuf>,
    pub(crate) key_password: Option<Secret>,
    pub(crate) key_password_file: Option<PathBuf>,
    pub(crate) trust_server_certs: Option<bool>,
    pub(crate) min_version: Option<Parsed<TlsVersion>>,
    pub(crate) max_version: Option<Parsed<TlsVersion>>,
    pub(crate) cipher_suites: Option<Vec<Parsed<CipherSuite>>>,
    pub(crate) curves: Option<Vec<Parsed<KxGroup>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDownstream {
    pub(crate) security_protocol: Option<Parsed<SecurityProtocol>>,
    pub(crate) sasl_mechanism: Option<Parsed<Mechanism>>,
    pub(crate) sasl_mechanisms: Option<Vec<Parsed<Mechanism>>>,
    pub(crate) credentials: Option<RawCredentials>,
    pub(crate) oauthbearer: Option<RawOAuthBearer>,
    pub(crate) tls: Option<RawDownstreamTls>,
    pub(crate) session_lifetime_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDownstreamTls {
    pub(crate) enabled: Option<bool>,
    pub(crate) cert: Option<PathBuf>,
    pub(crate) key: Option<PathBuf>,
    pub(crate) key_password: Option<Secret>,
    pub(crate) key_password_file: Option<PathBuf>,
    pub(crate) mtls_enabled: Option<bool>,
    pub(crate) client_auth: Option<Parsed<ClientAuthMode>>,
    pub(crate) ca_certs: Option<PathBuf>,
    pub(crate) crl_files: Option<Vec<PathBuf>>,
    pub(crate) principal_mapping_rules: Option<Vec<Parsed<PrincipalRule>>>,
    pub(crate) min_version: Option<Parsed<TlsVersion>>,
    pub(crate) max_version: Option<Parsed<TlsVersion>>,
    pub(crate) cipher_suites: Option<Vec<Parsed<CipherSuite>>>,
    pub(crate) curves: Option<Vec<Parsed<KxGroup>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCredentials {
    pub(crate) file: Option<PathBuf>,
    pub(crate) users: Option<UniqueMap<RawUser>>,
}

/// The document of a `downstream.credentials.file`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCredentialsFile {
    pub(crate) users: UniqueMap<RawUser>,
}

/// One user: a password string (quoted if it looks like a number: `007` would
/// otherwise read as 7, so numbers are refused), or a map (`password` [+ `iterations`], or
/// pre-computed SCRAM `salt`/`iterations`/`stored_key`/`server_key` [+ `mechanism`]).
#[derive(Debug)]
pub(crate) enum RawUser {
    Password(Secret),
    Fields(RawUserFields),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUserFields {
    pub(crate) password: Option<Secret>,
    pub(crate) mechanism: Option<Parsed<Mechanism>>,
    pub(crate) salt: Option<Parsed<Base64>>,
    pub(crate) iterations: Option<u32>,
    pub(crate) stored_key: Option<Parsed<Base64>>,
    pub(crate) server_key: Option<Parsed<Base64>>,
}

impl<'de> Deserialize<'de> for RawUser {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UserVisitor;
        impl<'de> Visitor<'de> for UserVisitor {
            type Value = RawUser;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a password string or a map of SCRAM credentials")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<RawUser, E> {
                Ok(RawUser::Password(Secret::new(text.to_owned())))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawUser, A::Error> {
                RawUserFields::deserialize(de::value::MapAccessDeserializer::new(map)).map(RawUser::Fields)
            }
        }
        deserializer.deserialize_any(UserVisitor)
    }
}

/// A string-keyed map that refuses duplicate keys (a plain map would keep the last one).
#[derive(Debug)]
pub(crate) struct UniqueMap<V>(pub(crate) BTreeMap<String, V>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for UniqueMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = UniqueMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of names")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueMap<V>, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    if out.contains_key(&key) {
                        return Err(de::Error::custom(format!("duplicate key `{key}`")));
                    }
                    let value = map.next_value()?;
                    out.insert(key, value);
                }
                Ok(UniqueMap(out))
            }
        }
        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOAuthBearer {
    pub(crate) jwks_file: Option<PathBuf>,
    pub(crate) public_key_path: Option<PathBuf>,
    pub(crate) jwks_url: Option<Parsed<HttpsUrl>>,
    pub(crate) jwks_ca_certs: Option<PathBuf>,
    pub(crate) jwks_refresh_ms: Option<NonZeroU64>,
    pub(crate) jwks_min_refresh_interval_ms: Option<u64>,
    pub(crate) issuer: Option<String>,
    pub(crate) audience: Option<OneOrMany<String>>,
    pub(crate) required_scopes: Option<Vec<String>>,
    pub(crate) clock_skew_seconds: Option<u32>,
    pub(crate) sub_claim_name: Option<String>,
    pub(crate) scope_claim_name: Option<String>,
}

/// A value written alone or as a list (`audience: kafka` or `audience: [kafka, other]`).
#[derive(Debug)]
pub(crate) struct OneOrMany<T>(pub(crate) Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrManyVisitor<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value or a list of values")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<OneOrMany<T>, E> {
                T::deserialize(de::value::StrDeserializer::new(text)).map(|v| OneOrMany(vec![v]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany<T>, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element()? {
                    out.push(item);
                }
                Ok(OneOrMany(out))
            }
        }
        deserializer.deserialize_any(OneOrManyVisitor(PhantomData))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBrokerMapping {
    pub(crate) mode: Option<Parsed<MappingMode>>,
    pub(crate) port_offset: Option<RawPortOffset>,
    pub(crate) sni: Option<RawSni>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPortOffset {
    pub(crate) hostname: Option<Parsed<Host>>,
    pub(crate) base: Option<Port>,
    /// `max_brokers` is the seed proxy's older name.
    #[serde(alias = "max_brokers")]
    pub(crate) max_broker_id: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSni {
    pub(crate) bind_port: Option<Port>,
    pub(crate) upstream: Option<Parsed<Regex>>,
    pub(crate) downstream: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuthSwap {
    pub(crate) enabled: bool,
    pub(crate) downstream_credentials: Option<Vec<Parsed<UserPassword>>>,
    pub(crate) upstream_credentials: Option<Vec<Parsed<UserPassword>>>,
    pub(crate) mapping: Option<Vec<Parsed<MappingEntry>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResolve {
    pub(crate) host: Parsed<HostPattern>,
    pub(crate) ipv4: Option<Parsed<Ipv4Addr>>,
    pub(crate) ipv6: Option<Parsed<Ipv6Addr>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    pub(crate) bind: Parsed<HostPort>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub(crate) forbidden_api_keys: Option<Vec<ApiKeyNumber>>,
    pub(crate) default: Option<RawQuotas>,
    pub(crate) principals: Option<UniqueMap<RawPrincipalPolicy>>,
    /// Kafka's `quota.window.num`.
    pub(crate) quota_window_num: Option<NonZeroU32>,
    /// Kafka's `quota.window.size.seconds`.
    pub(crate) quota_window_size_seconds: Option<NonZeroU32>,
}

/// Limits in Kafka's quota vocabulary (`policy.default`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQuotas {
    pub(crate) producer_byte_rate: Option<NonZeroU64>,
    pub(crate) consumer_byte_rate: Option<NonZeroU64>,
    pub(crate) request_percentage: Option<f64>,
    pub(crate) max_connections: Option<NonZeroU32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPrincipalPolicy {
    pub(crate) forbidden_api_keys: Option<Vec<ApiKeyNumber>>,
    pub(crate) producer_byte_rate: Option<NonZeroU64>,
    pub(crate) consumer_byte_rate: Option<NonZeroU64>,
    pub(crate) request_percentage: Option<f64>,
    pub(crate) max_connections: Option<NonZeroU32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub(crate) max_frame_bytes: Option<NonZeroU32>,
    pub(crate) connect_timeout_ms: Option<NonZeroU64>,
    pub(crate) handshake_timeout_ms: Option<NonZeroU64>,
    /// 0 disables the idle timeout.
    pub(crate) idle_timeout_ms: Option<u64>,
    pub(crate) max_buffered_bytes: Option<NonZeroUsize>,
    pub(crate) max_in_flight: Option<NonZeroUsize>,
    pub(crate) max_connections: Option<NonZeroUsize>,
    pub(crate) max_connections_per_ip: Option<NonZeroUsize>,
    /// 0 disables the request read timeout.
    pub(crate) request_read_timeout_ms: Option<u64>,
    pub(crate) login_failure_base_delay_ms: Option<NonZeroU64>,
    pub(crate) login_failure_max_delay_ms: Option<NonZeroU64>,
    pub(crate) login_failure_decay_ms: Option<NonZeroU64>,
    pub(crate) request_timeout_ms: Option<NonZeroU64>,
    pub(crate) drain_timeout_ms: Option<NonZeroU64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSocket {
    /// 0 disables TCP keepalive.
    pub(crate) keepalive_ms: Option<u64>,
    /// 0 keeps the system's default.
    pub(crate) send_buffer_bytes: Option<u64>,
    /// 0 keeps the system's default.
    pub(crate) receive_buffer_bytes: Option<u64>,
    pub(crate) reuse_port: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLogging {
    pub(crate) level: Option<String>,
    pub(crate) format: Option<Parsed<LogFormat>>,
}
