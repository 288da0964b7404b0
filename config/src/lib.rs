//! The `kafka-proxy` configuration file: loading, checking, and turning it into the
//! engine's [`ProxyConfig`](kafka_proxy_core::config::ProxyConfig).
//!
//! The `kafka-proxy` binary uses this crate; so can any program that embeds the engine:
//!
//! ```
//! use std::path::Path;
//!
//! let yaml = r#"
//! bind_address: 127.0.0.1
//! upstream:
//!   bootstrap_servers: ["${BROKER_HOST:127.0.0.1}:9092"]
//!   security_protocol: PLAINTEXT
//! downstream:
//!   security_protocol: PLAINTEXT
//! broker_mapping:
//!   mode: port_offset
//!   port_offset: { base: 19092 }
//! "#;
//! // `load(path, process_env)` reads a file; `load_str` takes the text, and the path
//! // only names it in messages and anchors relative file names.
//! let env = kafka_proxy_config::process_env;
//! let config = kafka_proxy_config::load_str(yaml, Path::new("proxy.yaml"), env)?;
//! assert!(config.warnings.is_empty());
//! println!("{}", config.describe());
//! let engine = config.to_core()?; // kafka_proxy_core::config::ProxyConfig
//! assert_eq!(engine.bootstrap.len(), 1);
//!
//! let broken = "upstream: {}\n";
//! let err = kafka_proxy_config::load_str(broken, Path::new("broken.yaml"), |_| None).unwrap_err();
//! assert_eq!(err.to_string(), "broken.yaml:1:11: upstream: missing field `bootstrap_servers`");
//! # Ok::<(), kafka_proxy_config::ConfigError>(())
//! ```
//!
//! The model is the seed proxy's (`bind_address`, `upstream`, `downstream`,
//! `broker_mapping`, `auth_swap`, `resolve`) plus the extensions of CONFIG.md
//! (credentials, OAUTHBEARER, admin, policy, limits, socket, logging, runtime). A file written for
//! the seed proxy loads with the same meaning. Loading happens in four steps:
//!
//! 1. `${VAR}` / `${VAR:default}` expansion of the text (`env.rs` documents the rules:
//!    `$$` is a literal `$`, any other lone `$` stays, a malformed `${` is an error).
//! 2. YAML (1.2, read by the pure-Rust `saphyr-parser`; `yes`/`no` are strings, merge keys
//!    are refused, nesting and alias expansion are bounded) into a serde model with unknown
//!    keys refused; scalars (host:port, names, base64, regexes, ...) are parsed here, so
//!    their errors carry the YAML line.
//! 3. Semantic checks across keys, collecting every problem.
//! 4. A typed [`Config`].
//!
//! Every error names the file, the key path (`upstream.bootstrap_servers[1]`,
//! `downstream.credentials.users.bob.iterations`) and what was expected.
//!
//! # Defaults and decisions
//!
//! * `bind_address`: `0.0.0.0` (an IP literal; `::` for IPv6).
//! * `security_protocol` (both sides): `SASL_SSL` when absent, as in the seed proxy.
//!   Names are case-insensitive; mechanisms accept `SCRAM-256` / `SCRAM-512`.
//! * `tls.enabled` is optional: the protocol decides (SSL and SASL_SSL use TLS). An
//!   `enabled` that contradicts the protocol is an error; a `tls` section under a protocol
//!   without TLS is ignored with a warning (seed behaviour).
//! * Downstream TLS files default to `server.pem` / `server_key.pem`, and under mTLS the
//!   client CA to `ca.pem` (the seed proxy's names); the error names the key either way.
//! * Files are resolved against the configuration file's directory and checked to exist
//!   **at load**, so `kafka-proxy check` catches a missing file. The credentials file is
//!   also read and checked at load.
//! * `broker_mapping.mode`: `sni` when absent (seed). `port_offset.base` is required;
//!   `port_offset.max_broker_id` defaults to 400 (`max_brokers` is accepted as an alias);
//!   `port_offset.hostname` defaults to `bind_address`, or `localhost` when that is the
//!   unspecified address (`0.0.0.0` / `::`). `sni` needs downstream TLS.
//! * `upstream` identity: `sasl_username`/`sasl_password` (one identity), or `auth_swap`
//!   (one per client principal), or neither: then the clients' own SASL exchange is
//!   forwarded, which requires that the proxy does not run SASL towards clients.
//! * `auth_swap` (seed semantics): disabled or with a non-SASL upstream it is ignored with
//!   a warning; a principal without a mapping entry is refused, except `$anonymous`
//!   (unauthenticated clients), which maps to itself. Its `downstream_credentials` merge
//!   with `downstream.credentials` (a user may be defined in one place only).
//! * mTLS principal: the certificate's CN (seed) unless
//!   `downstream.tls.principal_mapping_rules` are given (Kafka's rules, whole-DN match).
//! * `limits`: `kafka_proxy_core::config::Limits::default()`, overridable per key;
//!   `idle_timeout_ms: 0` disables the idle timeout and `request_read_timeout_ms: 0` the
//!   request read timeout; other limits must be positive. `login_failure_base_delay_ms`,
//!   `login_failure_max_delay_ms` and `login_failure_decay_ms` tune the failed-login throttle.
//!   `max_buffered_bytes`, `max_in_flight`, `request_timeout_ms` (30 s) and
//!   `drain_timeout_ms` (30 s) are accepted beyond CONFIG.md's list.
//! * `socket` (both sides' TCP sockets): `keepalive_ms` 60000 (0 = off, else 1 s to 32767 s),
//!   `send_buffer_bytes` / `receive_buffer_bytes` 0 (the system's default; at most 1 GiB),
//!   `reuse_port` true (a new process can bind the same ports during a restart).
//! * `upstream.client_id`: the client id of the proxy's own requests, `kafka-proxy`.
//! * `admin.bind`: the `/metrics`, `/health`, `/ready` endpoint (off when absent); the
//!   binary serves it, the engine configuration does not carry it.
//! * `logging`: `info`, `text`; `warning` means `warn`, and `fatal` / `critical` / `panic`
//!   mean `error`. `runtime`: `tokio`.

mod credentials;
mod describe;
mod env;
mod error;
mod model;
mod raw;
mod scalar;
mod scram_tool;
mod security;
mod to_core;
mod validate;
mod yaml;

#[cfg(test)]
mod tests;

use std::path::Path;

use serde::de::DeserializeOwned;

pub use credentials::{MIN_SCRAM_ITERATIONS, load_credentials_file};
pub use error::{ConfigError, EnvErrorKind, Problem, Warning};
pub use model::{
    ANONYMOUS, Admin, AuthSwap, BrokerMapping, CertKey, ClientAuth, Config, Credentials, CredentialsFile,
    Downstream, DownstreamSasl, DownstreamTls, JwksUrl, KeyPassword, LogFormat, Logging, Mechanism,
    OAuthBearer, OAuthKeys, Policy, PrincipalMapping, PrincipalPolicy, PrincipalRule, Quotas, Resolve,
    RuntimeKind, ScramCredential, Secret, SecurityProtocol, SniMapping, SniTemplate, TemplatePart, Upstream,
    UpstreamAuth, UpstreamOAuth, UpstreamTls, UpstreamVerify, UserCredential,
};
pub use scram_tool::{parse_scram_mechanism, scram_credentials, scram_credentials_entry};

/// Loads and checks the configuration file at `path`, looking `${VAR}` placeholders up
/// with `env` (pass [`process_env`] for the real environment).
pub fn load(path: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let text = read_file(path)?;
    load_text(&text, path, &env)
}

/// Checks configuration `text` as if it had been read from `path`: `path` names the
/// file in messages, and relative file names in the configuration are resolved against
/// its directory (and must exist, as with [`load`]).
pub fn load_str(
    text: &str,
    path: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    load_text(text, path, &env)
}

/// The process environment, for [`load`]. A value that is not UTF-8 counts as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn load_text(text: &str, path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let text = expand(text, path, env)?;
    let raw: raw::RawConfig = parse_yaml(&text, path)?;
    validate::validate(raw, path, env)
}

/// Reads `path` as UTF-8 text.
fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: path.to_path_buf(), source })
}

/// Expands the placeholders of `text`, read from `path`.
fn expand(text: &str, path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    env::expand(text, env).map_err(|e| ConfigError::Env {
        file: path.to_path_buf(),
        line: e.line,
        column: e.column,
        kind: e.kind,
    })
}

/// Deserializes YAML `text` from `file`, turning the first error into a [`Problem`] with
/// the key path, the position and what was expected.
fn parse_yaml<T: DeserializeOwned>(text: &str, file: &Path) -> Result<T, ConfigError> {
    let problem = |path: String, err: yaml::Error| {
        let position = err.mark.map(|m| (m.line, m.column));
        ConfigError::Invalid(vec![Problem { file: file.to_path_buf(), path, position, message: err.message }])
    };
    let doc = yaml::Document::load(text);
    let value = serde_path_to_error::deserialize(&mut yaml::Deserializer::new(&doc))
        .map_err(|err| problem(err.path().to_string(), err.into_inner()))?;
    doc.finish().map_err(|err| problem(".".to_owned(), err))?;
    Ok(value)
}
