//! Whole-file tests of [`load`], [`Config::to_core`] and [`Config::describe`], and the
//! check that every file in `config-templates/` loads.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kafka_proxy_core::api::ApiKey;
use kafka_proxy_core::config::{HostPattern, HostPort, Limits, Mapping, PortOffset};

use super::*;

/// A scratch directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("kafka-proxy-config-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An environment holding exactly `pairs`.
fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| map.get(name).cloned()
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// Writes `text` as `config.yaml` next to empty `files`, and loads it.
fn load_with(
    text: &str,
    files: &[&str],
    env: impl Fn(&str) -> Option<String>,
) -> (Scratch, Result<Config, ConfigError>) {
    let dir = Scratch::new();
    for file in files {
        dir.write(file, "");
    }
    let path = dir.write("config.yaml", text);
    let result = load(&path, env);
    (dir, result)
}

fn ok(text: &str) -> Config {
    let (_dir, result) = load_with(text, &[], no_env);
    result.unwrap_or_else(|e| panic!("expected the config to load:\n{e}"))
}

/// The error message of a config that must fail.
fn fails(text: &str) -> String {
    fails_with(text, &[])
}

fn fails_with(text: &str, files: &[&str]) -> String {
    let (_dir, result) = load_with(text, files, no_env);
    match result {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts that `message` names the config file, `path` and `needle`.
#[track_caller]
fn assert_names(message: &str, path: &str, needle: &str) {
    let line = message
        .lines()
        .find(|l| l.contains(&format!(": {path}: ")))
        .unwrap_or_else(|| panic!("no line for key path {path} in:\n{message}"));
    assert!(line.contains("config.yaml"), "file not named in {line}");
    assert!(line.contains(needle), "{needle:?} not in {line}");
}

const LOCAL: &str = "
bind_address: 127.0.0.1
upstream:
  bootstrap_servers: [\"127.0.0.1:9092\"]
  security_protocol: PLAINTEXT
downstream:
  security_protocol: PLAINTEXT
broker_mapping:
  mode: port_offset
  port_offset:
    hostname: 127.0.0.1
    base: 19092
";

/// `LOCAL` with `line` replaced by `with` (which must be found).
fn local(line: &str, with: &str) -> String {
    assert!(LOCAL.contains(line), "{line}");
    LOCAL.replacen(line, with, 1)
}

// ----- defaults -----

#[test]
fn local_plaintext_loads_with_defaults() {
    let config = ok(LOCAL);
    assert_eq!(config.bind_address, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(config.upstream.bootstrap_servers, vec![HostPort { host: "127.0.0.1".into(), port: 9092 }]);
    assert!(matches!(config.upstream.auth, UpstreamAuth::None));
    assert!(
        config.upstream.tls.is_none() && config.downstream.tls.is_none() && config.downstream.sasl.is_none()
    );
    let BrokerMapping::PortOffset(po) = &config.mapping else { panic!("port_offset expected") };
    assert_eq!(po, &PortOffset { advertised_host: "127.0.0.1".into(), base: 19092, max_broker_id: 400 });
    assert_eq!(config.limits, Limits::default());
    assert_eq!(config.logging, Logging { level: "info".into(), format: LogFormat::Text });
    assert_eq!(config.runtime, RuntimeKind::Tokio);
    assert!(config.resolve.is_empty() && config.admin.is_none() && config.policy.is_empty());
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn bind_address_and_advertised_host_defaults() {
    let text = LOCAL.replace("bind_address: 127.0.0.1\n", "").replace("    hostname: 127.0.0.1\n", "");
    let config = ok(&text);
    assert_eq!(config.bind_address, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let BrokerMapping::PortOffset(po) = &config.mapping else { panic!() };
    assert_eq!(po.advertised_host, "localhost", "unspecified bind address advertises localhost");

    let config = ok(&local("    hostname: 127.0.0.1\n", ""));
    let BrokerMapping::PortOffset(po) = &config.mapping else { panic!() };
    assert_eq!(po.advertised_host, "127.0.0.1", "a specific bind address is advertised");

    let config =
        ok(&local("bind_address: 127.0.0.1", "bind_address: \"::\"")
            .replace("    hostname: 127.0.0.1\n", ""));
    assert_eq!(config.bind_address, IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    let BrokerMapping::PortOffset(po) = &config.mapping else { panic!() };
    assert_eq!(po.advertised_host, "localhost");
}

#[test]
fn max_brokers_is_an_alias() {
    let config = ok(&local("    base: 19092", "    base: 19092\n    max_brokers: 10"));
    let BrokerMapping::PortOffset(po) = &config.mapping else { panic!() };
    assert_eq!(po.max_broker_id, 10);
}

#[test]
fn protocols_default_to_sasl_ssl_like_the_seed() {
    let text = LOCAL.replace("  security_protocol: PLAINTEXT\n", "");
    let message = fails(&text);
    assert_names(&message, "downstream.tls.cert", "(the default for downstream.tls.cert)");
    // With credentials at the proxy, SASL_SSL (the default) needs a mechanism.
    let text = format!(
        "{text}auth_swap:\n  enabled: true\n  downstream_credentials: [\"a=b\"]\n  upstream_credentials: [\"c=d\"]\n  mapping: [\"a=c\"]\n"
    );
    assert_names(&fails(&text), "downstream.sasl_mechanism", "SASL_SSL (the default)");
}

#[test]
fn mapping_mode_defaults_to_sni() {
    let text = LOCAL.replace("  mode: port_offset\n", "");
    let message = fails(&text);
    assert_names(&message, "broker_mapping.mode", "sni (the default mode)");
    assert_names(&message, "broker_mapping.sni", "required when broker_mapping.mode is sni");
}

#[test]
fn limits_override_defaults() {
    let config = ok(&format!(
        "{LOCAL}limits:\n  max_frame_bytes: 1048576\n  connect_timeout_ms: 500\n  idle_timeout_ms: 0\n  max_in_flight: 8\n"
    ));
    let defaults = Limits::default();
    assert_eq!(config.limits.max_frame_bytes, 1_048_576);
    assert_eq!(config.limits.connect_timeout, Duration::from_millis(500));
    assert_eq!(config.limits.handshake_timeout, defaults.handshake_timeout);
    assert_eq!(config.limits.idle_timeout, None, "0 disables the idle timeout");
    assert_eq!(config.limits.max_in_flight, 8);
    assert_eq!(config.limits.max_buffered_bytes, defaults.max_buffered_bytes);
    assert_eq!(config.limits.request_read_timeout, Some(Duration::from_secs(30)), "the default");
    assert_eq!(config.limits.login_throttle, defaults.login_throttle);
}

#[test]
fn request_read_timeout_and_login_throttle() {
    let config = ok(&format!(
        "{LOCAL}limits:\n  request_read_timeout_ms: 1500\n  login_failure_base_delay_ms: 50\n  \
         login_failure_max_delay_ms: 4000\n  login_failure_decay_ms: 2000\n"
    ));
    assert_eq!(config.limits.request_read_timeout, Some(Duration::from_millis(1500)));
    assert_eq!(config.limits.login_throttle.base_delay, Duration::from_millis(50));
    assert_eq!(config.limits.login_throttle.max_delay, Duration::from_secs(4));
    assert_eq!(config.limits.login_throttle.decay, Duration::from_secs(2));
    let described = config.describe();
    assert!(described.contains("request read 1500ms,"), "{described}");
    assert!(
        described.contains(
            "login throttle: after 2 failures from an address or name 50ms, doubling up to 4s; \
             one step forgiven per 2s without a failure"
        ),
        "{described}"
    );
    let off = ok(&format!("{LOCAL}limits:\n  request_read_timeout_ms: 0\n"));
    assert_eq!(off.limits.request_read_timeout, None, "0 disables it");
    assert!(off.describe().contains("request read none,"), "{}", off.describe());
    assert_names(
        &fails(&format!("{LOCAL}limits:\n  request_read_timeout_ms: -1\n")),
        "limits.request_read_timeout_ms",
        "-1",
    );
    assert_names(
        &fails(&format!("{LOCAL}limits:\n  login_failure_base_delay_ms: 0\n")),
        "limits.login_failure_base_delay_ms",
        "nonzero",
    );
    assert_names(
        &fails(&format!("{LOCAL}limits:\n  login_failure_decay: 5\n")),
        "limits.login_failure_decay",
        "login_failure_decay_ms",
    );
}

#[test]
fn mechanism_aliases_and_case() {
    let text = "
upstream:
  bootstrap_servers: [\"b:9092\"]
  security_protocol: sasl_plaintext
  sasl_mechanism: scram-512
  sasl_username: svc
  sasl_password: ${SVC_SECRET}
downstream:
  security_protocol: Sasl_Plaintext
  sasl_mechanisms: [SCRAM-256, plain]
  credentials:
    users:
      alice: alice-password
broker_mapping:
  mode: port_offset
  port_offset: { base: 9092 }
";
    let (_dir, config) = load_with(text, &[], env_of(&[("SVC_SECRET", "s3cret")]));
    let config = config.unwrap();
    let UpstreamAuth::Service { mechanism, username, password } = &config.upstream.auth else {
        panic!("service identity expected")
    };
    assert_eq!(
        (*mechanism, username.as_str(), password.expose().as_str()),
        (Mechanism::ScramSha512, "svc", "s3cret")
    );
    let sasl = config.downstream.sasl.as_ref().unwrap();
    assert_eq!(sasl.mechanisms, vec![Mechanism::ScramSha256, Mechanism::Plain]);
    assert_eq!(config.downstream.security_protocol, SecurityProtocol::SaslPlaintext);
}

// ----- environment -----

#[test]
fn env_expansion_in_the_file() {
    let text = local("    base: 19092", "    base: ${BASE:19092}").replace("127.0.0.1:9092", "${HOST}:9092");
    let (_dir, config) = load_with(&text, &[], env_of(&[("HOST", "broker-7")]));
    let config = config.unwrap();
    assert_eq!(config.upstream.bootstrap_servers[0].host, "broker-7");
    let BrokerMapping::PortOffset(po) = &config.mapping else { panic!() };
    assert_eq!(po.base, 19092);
}

#[test]
fn missing_env_names_file_line_and_variable() {
    let text = local("    base: 19092", "    base: ${PROXY_BASE}");
    let (dir, result) = load_with(&text, &[], no_env);
    let err = result.unwrap_err();
    let ConfigError::Env { file, line, kind, .. } = &err else { panic!("{err:?}") };
    assert_eq!(file, &dir.0.join("config.yaml"));
    assert_eq!(*line, 12);
    assert_eq!(kind, &EnvErrorKind::Unset { var: "PROXY_BASE".into() });
    let message = err.to_string();
    assert!(message.contains("config.yaml:12:11: environment variable PROXY_BASE is not set"), "{message}");
}

#[test]
fn unreadable_file_is_named() {
    let err = load(Path::new("/nonexistent/kafka-proxy/config.yaml"), no_env).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().starts_with("/nonexistent/kafka-proxy/config.yaml: cannot read"), "{err}");
}

// ----- parse errors: path, line, expectation -----

#[test]
fn host_port_error_names_index_and_line() {
    let message = fails(&local("[\"127.0.0.1:9092\"]", "\n    - \"a:1\"\n    - broker"));
    assert_names(&message, "upstream.bootstrap_servers[1]", "expected host:port, got \"broker\" (no port)");
    assert!(message.contains("config.yaml:6:7: "), "line and column: {message}");
}

#[test]
fn ipv6_needs_brackets() {
    let message = fails(&local("127.0.0.1:9092", "::1:9092"));
    assert_names(&message, "upstream.bootstrap_servers[0]", "brackets");
    let config = ok(&local("\"127.0.0.1:9092\"", "\"[::1]:9092\""));
    assert_eq!(config.upstream.bootstrap_servers[0], HostPort { host: "::1".into(), port: 9092 });
}

#[test]
fn unknown_keys_list_the_allowed_ones() {
    let message = fails(&local(
        "  security_protocol: PLAINTEXT\ndownstream",
        "  security_protcol: PLAINTEXT\ndownstream",
    ));
    assert_names(&message, "upstream.security_protcol", "unknown field `security_protcol`, expected one of");
    assert!(message.contains("`security_protocol`"), "{message}");
    assert!(message.contains("config.yaml:5:3"), "{message}");

    let message = fails(&format!("{LOCAL}listen: {{}}\n"));
    assert_names(&message, "listen", "expected one of `bind_address`, `upstream`");
}

#[test]
fn yaml_syntax_error_has_a_line() {
    let message = fails("upstream:\n  bootstrap_servers: [a:1\n");
    assert!(message.contains("config.yaml:3:"), "{message}");
}

#[test]
fn missing_required_key() {
    let message = fails("bind_address: 0.0.0.0\n");
    assert!(message.contains("config.yaml:1:1: (top level): missing field `upstream`"), "{message}");
}

#[test]
fn bad_enums_say_what_was_expected() {
    let message =
        fails(&local("  security_protocol: PLAINTEXT\ndownstream", "  security_protocol: TLS\ndownstream"));
    assert_names(
        &message,
        "upstream.security_protocol",
        "expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, got \"TLS\"",
    );
    assert_names(
        &fails(&format!("{LOCAL}runtime: uring\n")),
        "runtime",
        "expected tokio or mio, got \"uring\"",
    );
    assert_names(
        &fails(&format!("{LOCAL}logging:\n  format: xml\n")),
        "logging.format",
        "expected text or json",
    );
    assert_names(&fails(&format!("{LOCAL}logging:\n  level: loud\n")), "logging.level", "got \"loud\"");
    assert!(
        ok(&format!("{LOCAL}logging:\n  level: kafka_proxy=debug,warn\n  format: json\n")).logging.format
            == LogFormat::Json
    );
    assert_names(
        &fails(&local("mode: port_offset", "mode: static")),
        "broker_mapping.mode",
        "expected port_offset or sni",
    );
    assert_names(
        &fails(&local("bind_address: 127.0.0.1", "bind_address: localhost")),
        "bind_address",
        "an IP address",
    );
}

#[test]
fn ports_and_numbers_are_checked() {
    assert_names(
        &fails(&local("base: 19092", "base: 0")),
        "broker_mapping.port_offset.base",
        "expected a port 1-65535, got 0",
    );
    assert_names(
        &fails(&local("base: 19092", "base: 70000")),
        "broker_mapping.port_offset.base",
        "got 70000",
    );
    let message = fails(&local("base: 19092", "base: 65200"));
    assert_names(
        &message,
        "broker_mapping.port_offset.base",
        "expected base + 20 + max_broker_id <= 65535, got 65200 + 20 + 400 = 65620",
    );
    let message = fails(&local("base: 19092", "base: 60000\n    max_broker_id: 6000"));
    assert_names(&message, "broker_mapping.port_offset.max_broker_id", "= 66020");
    assert!(ok(&local("base: 19092", "base: 65115")).to_core().is_ok(), "65115 + 20 + 400 = 65535 fits");
    assert_names(
        &fails(&format!("{LOCAL}limits:\n  max_frame_bytes: 0\n")),
        "limits.max_frame_bytes",
        "nonzero",
    );
    assert_names(
        &fails(&format!("{LOCAL}limits:\n  connect_timeout_ms: 0\n")),
        "limits.connect_timeout_ms",
        "nonzero",
    );
    assert_names(&fails(&format!("{LOCAL}limits:\n  idle_timeout_ms: -5\n")), "limits.idle_timeout_ms", "-5");
}

#[test]
fn bootstrap_servers_count_and_duplicates() {
    let message = fails(&local("[\"127.0.0.1:9092\"]", "[]"));
    assert_names(&message, "upstream.bootstrap_servers", "expected 1 to 20 host:port entries");
    let many: Vec<String> = (0..21).map(|i| format!("\"b{i}:9092\"")).collect();
    let message = fails(&local("[\"127.0.0.1:9092\"]", &format!("[{}]", many.join(", "))));
    assert_names(&message, "upstream.bootstrap_servers", "got 21");
    let message = fails(&local("[\"127.0.0.1:9092\"]", "[\"a:1\", \"b:1\", \"a:1\"]"));
    assert_names(&message, "upstream.bootstrap_servers[2]", "already at [0]");
}

#[test]
fn admin_and_policy() {
    let config = ok(&format!(
        "{LOCAL}admin:\n  bind: 127.0.0.1:9080\npolicy:\n  forbidden_api_keys: [20]\n  principals:\n    alice: {{ forbidden_api_keys: [19, 20] }}\n"
    ));
    assert_eq!(config.admin.as_ref().unwrap().bind, HostPort { host: "127.0.0.1".into(), port: 9080 });
    assert!(config.policy.forbidden_api_keys.contains(&ApiKey(20)));
    assert_eq!(config.policy.principals["alice"].forbidden_api_keys.len(), 2);
    assert_names(
        &fails(&format!("{LOCAL}admin:\n  bind: 9080\n")),
        "admin.bind",
        "expected host:port, got \"9080\"",
    );
    let message = fails(&format!("{LOCAL}policy:\n  forbidden_api_keys: [20, 40000]\n"));
    assert_names(
        &message,
        "policy.forbidden_api_keys[1]",
        "expected a Kafka API key number 0-32767, got 40000",
    );
    let message =
        fails(&format!("{LOCAL}policy:\n  principals:\n    bob:\n      forbidden_api_keys: [-1]\n"));
    assert_names(
        &message,
        "policy.principals.bob.forbidden_api_keys[0]",
        "expected a Kafka API key number 0-32767, got -1",
    );
    let config = ok(&format!("{LOCAL}policy:\n  forbidden_api_keys: [18]\n"));
    assert!(config.warnings.iter().any(|w| w.path == "policy.forbidden_api_keys"), "{:?}", config.warnings);
}

const POLICY: &str = "
upstream:
  bootstrap_servers: [\"b:9092\"]
  security_protocol: PLAINTEXT
downstream:
  security_protocol: SASL_PLAINTEXT
  sasl_mechanism: PLAIN
  credentials:
    users: { alice: a, bob: b }
broker_mapping:
  mode: port_offset
  port_offset: { base: 9092 }
policy:
  forbidden_api_keys: [DeleteTopics, 44]
  quota_window_num: 2
  quota_window_size_seconds: 3
  default:
    producer_byte_rate: 1048576
    max_connections: 20
  principals:
    alice:
      forbidden_api_keys: [produce, \"19\"]
      consumer_byte_rate: 2000000
      max_connections: 2
    bob: { producer_byte_rate: 10 }
limits:
  max_connections: 1000
  max_connections_per_ip: 100
";

#[test]
fn policy_loads_names_numbers_quotas_and_limits() {
    let config = ok(POLICY);
    let p = &config.policy;
    assert_eq!(p.forbidden_api_keys, [ApiKey::DELETE_TOPICS, ApiKey(44)].into_iter().collect());
    let alice = &p.principals["alice"];
    assert_eq!(alice.forbidden_api_keys, [ApiKey::PRODUCE, ApiKey::CREATE_TOPICS].into_iter().collect());
    assert_eq!(
        alice.quotas,
        Quotas { consumer_byte_rate: Some(2_000_000), max_connections: Some(2), ..Quotas::default() }
    );
    assert_eq!(p.principals["bob"].quotas.producer_byte_rate, Some(10));
    assert_eq!((p.quota_window_num, p.quota_window_size), (2, Duration::from_secs(3)));
    assert_eq!(
        (config.limits.max_connections, config.limits.max_connections_per_ip),
        (Some(1000), Some(100))
    );
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);

    let core = config.to_core().unwrap();
    let alice = core.policy.resolve(Some("alice"));
    assert!(alice.forbidden.contains(ApiKey::PRODUCE) && alice.forbidden.contains(ApiKey::DELETE_TOPICS));
    assert_eq!(
        (alice.limits.producer_byte_rate, alice.limits.consumer_byte_rate, alice.limits.max_connections),
        (Some(1_048_576), Some(2_000_000), Some(2)),
        "alice's own limits, the default's where she has none"
    );
    let carol = core.policy.resolve(Some("carol"));
    assert_eq!(carol.limits.max_connections, Some(20));
    assert!(!carol.forbidden.contains(ApiKey::PRODUCE));
    assert_eq!(core.policy.quota_window.samples, 2);
    assert_eq!(core.limits.max_connections_per_ip, Some(100));

    let described = config.describe();
    for line in [
        "forbidden for everyone: DeleteTopics(20), IncrementalAlterConfigs(44)",
        "byte rates measured over 2 windows of 3s (throttles of at most 6s)",
        "every other principal: produce 1048576 B/s, fetch unlimited, connections at most 20",
        "principal alice: forbidden Produce(0), CreateTopics(19), DeleteTopics(20), IncrementalAlterConfigs(44); \
         produce 1048576 B/s (default), fetch 2000000 B/s, connections at most 2",
        "principal bob: forbidden DeleteTopics(20), IncrementalAlterConfigs(44); produce 10 B/s, fetch unlimited, \
         connections at most 20 (default)",
        "connections: at most 1000 in all, at most 100 per client address",
    ] {
        assert!(described.contains(line), "{line:?} not in:\n{described}");
    }
    let plain = ok(LOCAL).describe();
    assert!(plain.contains("policy: every API allowed\n"), "{plain}");
    assert!(!plain.contains("connections:"), "no connection limit, no line: {plain}");
    let one = ok(&format!("{LOCAL}limits:\n  max_connections_per_ip: 3\n")).describe();
    assert!(one.contains("connections: unlimited in all, at most 3 per client address"), "{one}");
}

#[test]
fn policy_mistakes_name_their_key() {
    let message = fails(&POLICY.replace("[DeleteTopics, 44]", "[DeleteTopic]"));
    assert_names(
        &message,
        "policy.forbidden_api_keys[0]",
        "expected a Kafka API key number 0-32767 or name such as DeleteTopics, CreateTopics, Produce, got \"DeleteTopic\"",
    );
    let message = fails(&POLICY.replace("bob: { producer_byte_rate: 10 }", "bob: { producer_byte_rate: 0 }"));
    assert_names(&message, "policy.principals.bob.producer_byte_rate", "nonzero");
    let message = fails(&POLICY.replace("quota_window_num: 2", "quota_window_num: 0"));
    assert_names(&message, "policy.quota_window_num", "nonzero");
    let message = fails(&POLICY.replace("max_connections_per_ip: 100", "max_connections_per_ip: 0"));
    assert_names(&message, "limits.max_connections_per_ip", "nonzero");
    let message = fails(&POLICY.replace("max_connections: 2\n", "max_connection: 2\n"));
    assert_names(&message, "policy.principals.alice.max_connection", "unknown field `max_connection`");
    let message = fails(&POLICY.replace("bob: { producer_byte_rate: 10 }", "bob: {}"));
    assert_names(
        &message,
        "policy.principals.bob",
        "expected at least one of forbidden_api_keys, producer_byte_rate",
    );
    let message =
        fails(&POLICY.replace("bob: { producer_byte_rate: 10 }", "bob: { request_percentage: -5 }"));
    assert_names(
        &message,
        "policy.principals.bob.request_percentage",
        "expected a percentage above 0, got -5",
    );
    let message = ok(&POLICY.replace("bob: { producer_byte_rate: 10 }", "bob: { request_percentage: 50 }"))
        .to_core()
        .unwrap_err()
        .to_string();
    assert_names(&message, "policy.principals.bob.request_percentage", "a proxy cannot observe");
}

#[test]
fn policy_warnings_say_what_will_not_work() {
    let config = ok(&POLICY.replace("[DeleteTopics, 44]", "[DeleteTopics, Metadata, ApiVersions]"));
    let warning = |path: &str| {
        config.warnings.iter().filter(|w| w.path == path).map(|w| w.message.clone()).collect::<Vec<_>>()
    };
    let global = warning("policy.forbidden_api_keys");
    assert!(
        global.iter().any(|w| w.contains("no authorization-error response for Metadata(3)")),
        "{global:?}"
    );
    assert!(global.iter().any(|w| w.contains("ApiVersions(18) is needed by every client")), "{global:?}");
    assert_eq!(global.len(), 2, "DeleteTopics is refused with its own response");

    let unauthenticated = ok(&format!(
        "{LOCAL}policy:\n  principals:\n    alice: {{ forbidden_api_keys: [20] }}\n    $anonymous: {{ max_connections: 5 }}\n"
    ));
    let paths: Vec<&str> = unauthenticated.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(paths, ["policy.principals.alice"], "{:?}", unauthenticated.warnings);
    assert!(unauthenticated.warnings[0].message.contains("every client is $anonymous"));
}

// ----- TLS -----

const TLS_BOTH: &str = "
upstream:
  bootstrap_servers: [\"b:9093\"]
  security_protocol: SSL
  tls:
    ca_certs: server_ca.pem
downstream:
  security_protocol: SSL
  tls:
    cert: server.pem
    key: server_key.pem
broker_mapping:
  mode: port_offset
  port_offset: { base: 9092 }
";

#[test]
fn tls_files_resolve_against_the_config_directory() {
    let (dir, config) = load_with(TLS_BOTH, &["server_ca.pem", "server.pem", "server_key.pem"], no_env);
    let config = config.unwrap();
    let up = config.upstream.tls.as_ref().unwrap();
    assert_eq!(up.verify, UpstreamVerify::CaFile(dir.0.join("server_ca.pem")));
    let down = config.downstream.tls.as_ref().unwrap();
    assert_eq!(
        down.cert_key,
        CertKey { cert: dir.0.join("server.pem"), key: dir.0.join("server_key.pem"), key_password: None }
    );
    assert_eq!(down.client_auth, ClientAuth::None);
    assert!(matches!(down.principal_mapping, PrincipalMapping::CommonName));
}

#[test]
fn missing_tls_files_are_named() {
    let message = fails_with(TLS_BOTH, &["server.pem"]);
    assert_names(&message, "upstream.tls.ca_certs", "server_ca.pem");
    assert_names(&message, "downstream.tls.key", "server_key.pem");
    assert_eq!(message.lines().count(), 2, "both problems at once: {message}");
}

#[test]
fn mtls_needs_a_client_ca() {
    let text =
        TLS_BOTH.replace("    key: server_key.pem\n", "    key: server_key.pem\n    mtls_enabled: true\n");
    let message = fails_with(&text, &["server_ca.pem", "server.pem", "server_key.pem"]);
    assert_names(&message, "downstream.tls.ca_certs", "ca.pem (the default for downstream.tls.ca_certs)");
    let (dir, config) =
        load_with(&text, &["server_ca.pem", "server.pem", "server_key.pem", "ca.pem"], no_env);
    let config = config.unwrap();
    assert_eq!(
        config.downstream.tls.unwrap().client_auth,
        ClientAuth::Required { ca_certs: dir.0.join("ca.pem") }
    );
}

/// The core's TLS test fixtures (real certificates, an encrypted key).
fn tls_fixture(dir: &Scratch, name: &str) {
    let source = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../core/src/tls/testdata")).join(name);
    std::fs::copy(source, dir.0.join(name)).unwrap();
}

/// `TLS_BOTH` with the real fixtures, and `extra` added under `downstream.tls`.
fn tls_both_real(extra: &str, env: &[(&str, &str)]) -> (Scratch, Result<Config, ConfigError>) {
    tls_both_with_key("server_key.pem", extra, env)
}

/// [`tls_both_real`] with `key` as `downstream.tls.key`.
fn tls_both_with_key(key: &str, extra: &str, env: &[(&str, &str)]) -> (Scratch, Result<Config, ConfigError>) {
    let dir = Scratch::new();
    for name in ["ca.pem", "server.pem", "server_key.pem", "server_key_pbkdf2.p8.pem"] {
        tls_fixture(&dir, name);
    }
    std::fs::copy(dir.0.join("ca.pem"), dir.0.join("server_ca.pem")).unwrap();
    let text = TLS_BOTH.replace("    key: server_key.pem\n", &format!("    key: {key}\n{extra}"));
    let path = dir.write("config.yaml", &text);
    let result = load(&path, env_of(env));
    (dir, result)
}

#[test]
fn tls_policy_keys_narrow_versions_suites_and_curves() {
    let (_dir, config) = tls_both_real(
        "    min_version: \"1.3\"\n    cipher_suites: [TLS_AES_256_GCM_SHA384, tls_chacha20_poly1305_sha256]\n    curves: [X25519, P-384]\n",
        &[],
    );
    let config = config.unwrap();
    let policy = &config.downstream.tls.as_ref().unwrap().policy;
    assert_eq!(policy.versions, kafka_proxy_core::tls::config::TlsVersions::Tls13Only);
    assert_eq!(
        policy.describe(),
        "TLS 1.3 only; cipher suites: TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256; curves: x25519, secp384r1"
    );
    assert!(config.describe().contains("  tls policy: TLS 1.3 only; cipher suites: TLS_AES_256_GCM_SHA384"));
    assert!(
        config.describe().contains("  tls policy: TLS 1.2 and 1.3; cipher suites: default; curves: default")
    );
    config.to_core().unwrap();
}

#[test]
fn tls_policy_errors_name_the_key_and_list_the_choices() {
    let (_dir, result) = tls_both_real("    cipher_suites: [TLS_RSA_WITH_RC4_128_MD5]\n", &[]);
    let message = result.unwrap_err().to_string();
    assert!(
        message.contains("config.yaml:12:21: downstream.tls.cipher_suites[0]: expected one of TLS_"),
        "{message}"
    );
    assert!(message.contains("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"), "{message}");
    assert!(message.contains("got \"TLS_RSA_WITH_RC4_128_MD5\""), "{message}");

    let (_dir, result) = tls_both_real("    curves: [secp521r1]\n", &[]);
    let message = result.unwrap_err().to_string();
    assert!(
        message.contains("downstream.tls.curves[0]: expected one of x25519, secp256r1, secp384r1"),
        "{message}"
    );

    let (_dir, result) = tls_both_real("    min_version: \"1.3\"\n    max_version: \"1.2\"\n", &[]);
    assert_names(
        &result.unwrap_err().to_string(),
        "downstream.tls.max_version",
        "at least min_version (1.3)",
    );

    let (_dir, result) = tls_both_real("    min_version: \"1.1\"\n", &[]);
    assert!(
        result
            .unwrap_err()
            .to_string()
            .contains("downstream.tls.min_version: expected \"1.2\" or \"1.3\", got \"1.1\"")
    );

    let (_dir, result) = tls_both_real("    cipher_suites: [TLS_AES_128_GCM_SHA256]\n", &[]);
    assert_names(
        &result.unwrap_err().to_string(),
        "downstream.tls.cipher_suites",
        "TLS 1.2 is enabled but no cipher suite of it is listed",
    );
}

#[test]
fn encrypted_keys_need_their_password() {
    let encrypted = "server_key_pbkdf2.p8.pem";
    let with_password = "    key_password: ${KEY_PASSWORD}\n";
    let (_dir, config) = tls_both_with_key(encrypted, with_password, &[]);
    assert!(config.unwrap_err().to_string().contains("KEY_PASSWORD"), "the variable is required");
    let (_dir, config) = tls_both_with_key(encrypted, with_password, &[("KEY_PASSWORD", "kafka-proxy-test")]);
    let config = config.unwrap();
    assert!(!format!("{config:?}").contains("kafka-proxy-test"), "the password never prints");
    assert!(config.describe().contains("the private key is encrypted"));
    config.to_core().unwrap();

    let (_dir, config) = tls_both_with_key(encrypted, with_password, &[("KEY_PASSWORD", "wrong")]);
    let message = config.unwrap().to_core().unwrap_err().to_string();
    assert_names(
        &message,
        "downstream.tls",
        "the server private key cannot be decrypted with the given password",
    );

    let (dir, _) = tls_both_real("", &[]);
    dir.write("key.pass", "kafka-proxy-test\n");
    let (_dir, config) = tls_both_with_key(encrypted, "    key_password_file: key.pass\n", &[]);
    assert_names(&config.unwrap_err().to_string(), "downstream.tls.key_password_file", "key.pass");
    let text = TLS_BOTH.replace(
        "    key: server_key.pem\n",
        "    key: server_key_pbkdf2.p8.pem\n    key_password_file: key.pass\n",
    );
    let path = dir.write("config.yaml", &text);
    load(&path, no_env).unwrap().to_core().unwrap();

    let (_dir, config) = tls_both_with_key(encrypted, "", &[]);
    let message = config.unwrap().to_core().unwrap_err().to_string();
    assert_names(&message, "downstream.tls", "is encrypted: set key_password (or key_password_file)");

    let (_dir, config) = tls_both_real("    key_password: a\n    key_password_file: server.pem\n", &[]);
    assert_names(&config.unwrap_err().to_string(), "downstream.tls.key_password_file", "not both");
}

#[test]
fn client_auth_modes_and_the_mtls_alias() {
    let (dir, config) = tls_both_real("    client_auth: requested\n", &[]);
    let config = config.unwrap();
    let tls = config.downstream.tls.as_ref().unwrap();
    assert_eq!(tls.client_auth, ClientAuth::Requested { ca_certs: dir.0.join("ca.pem") });
    assert!(config.describe().contains("client certificate requested (clients without one are $anonymous)"));
    config.to_core().unwrap();

    let (_dir, config) = tls_both_real("    client_auth: required\n", &[]);
    assert!(matches!(config.unwrap().downstream.tls.unwrap().client_auth, ClientAuth::Required { .. }));
    let (_dir, config) = tls_both_real("    client_auth: none\n    mtls_enabled: false\n", &[]);
    assert_eq!(config.unwrap().downstream.tls.unwrap().client_auth, ClientAuth::None);
    let (_dir, config) = tls_both_real("    client_auth: requested\n    mtls_enabled: true\n", &[]);
    assert_names(
        &config.unwrap_err().to_string(),
        "downstream.tls.client_auth",
        "contradicts downstream.tls.mtls_enabled",
    );
    let (_dir, config) = tls_both_real("    client_auth: sometimes\n", &[]);
    assert!(
        config
            .unwrap_err()
            .to_string()
            .contains("downstream.tls.client_auth: expected none, requested or required")
    );
}

#[test]
fn crl_files_are_read_and_checked() {
    let (dir, config) = tls_both_real("    client_auth: required\n    crl_files: [revoked.crl]\n", &[]);
    assert_names(&config.unwrap_err().to_string(), "downstream.tls.crl_files[0]", "revoked.crl");
    dir.write("revoked.crl", "garbage");
    let path = dir.0.join("config.yaml");
    let message = load(&path, no_env).unwrap().to_core().unwrap_err().to_string();
    assert_names(&message, "downstream.tls.crl_files[0]", "neither PEM nor DER");
    let (_dir, config) = tls_both_real("    crl_files: [server.pem]\n", &[]);
    let config = config.unwrap();
    assert!(config.warnings.iter().any(|w| w.path == "downstream.tls.crl_files"), "{:?}", config.warnings);
}

#[test]
fn upstream_tls_policy_and_client_key_password() {
    let dir = Scratch::new();
    for name in ["ca.pem", "server.pem", "server_key_pbkdf2.p8.pem"] {
        tls_fixture(&dir, name);
    }
    let tls = "  security_protocol: SSL\n  tls:\n    ca_certs: ca.pem\n    client_cert: server.pem\n    \
               client_key: server_key_pbkdf2.p8.pem\n    key_password: kafka-proxy-test\n    \
               max_version: TLSv1.2\n    curves: [secp256r1]\ndownstream";
    let text = LOCAL.replace("  security_protocol: PLAINTEXT\ndownstream", tls);
    let path = dir.write("config.yaml", &text);
    let config = load(&path, no_env).unwrap_or_else(|e| panic!("{e}"));
    let policy = &config.upstream.tls.as_ref().unwrap().policy;
    assert_eq!(policy.versions, kafka_proxy_core::tls::config::TlsVersions::Tls12Only);
    let described = config.describe();
    assert!(described.contains("server_key_pbkdf2.p8.pem, encrypted)"), "{described}");
    assert!(
        described.contains("tls policy: TLS 1.2 only; cipher suites: default; curves: secp256r1"),
        "{described}"
    );
    config.to_core().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn tls_enabled_must_agree_with_the_protocol() {
    let text = TLS_BOTH.replace("    ca_certs: server_ca.pem\n", "    enabled: false\n");
    let message = fails_with(&text, &["server.pem", "server_key.pem"]);
    assert_names(
        &message,
        "upstream.tls.enabled",
        "expected true or no value: upstream.security_protocol SSL uses TLS",
    );
    let message = fails(&local(
        "  security_protocol: PLAINTEXT\ndownstream",
        "  security_protocol: PLAINTEXT\n  tls: { enabled: true }\ndownstream",
    ));
    assert_names(&message, "upstream.tls.enabled", "does not use TLS");
    let config = ok(&local(
        "  security_protocol: PLAINTEXT\ndownstream",
        "  security_protocol: PLAINTEXT\n  tls: { ca_certs: x.pem }\ndownstream",
    ));
    assert!(config.warnings.iter().any(|w| w.path == "upstream.tls" && w.message.contains("ignored")));
}

#[test]
fn upstream_trust_all_and_client_certificates() {
    let text = TLS_BOTH
        .replace("    ca_certs: server_ca.pem\n", "    trust_server_certs: true\n    client_cert: c.pem\n");
    let message = fails_with(&text, &["server.pem", "server_key.pem", "c.pem"]);
    assert_names(&message, "upstream.tls.client_key", "required when upstream.tls.client_cert is set");
    let text = text.replace("client_cert: c.pem\n", "client_cert: c.pem\n    client_key: k.pem\n");
    let (_dir, config) = load_with(&text, &["server.pem", "server_key.pem", "c.pem", "k.pem"], no_env);
    let config = config.unwrap();
    let tls = config.upstream.tls.as_ref().unwrap();
    assert_eq!(tls.verify, UpstreamVerify::TrustAll);
    assert!(tls.client_cert.is_some());
    assert!(config.warnings.iter().any(|w| w.path == "upstream.tls.trust_server_certs"));
}

#[test]
fn principal_mapping_rules() {
    let text = TLS_BOTH.replace(
        "    key: server_key.pem\n",
        "    key: server_key.pem\n    mtls_enabled: true\n    ca_certs: ca.pem\n    principal_mapping_rules: [\"RULE:^CN=([^,]+).*$/$1/L\", DEFAULT]\n",
    );
    let files = ["server_ca.pem", "server.pem", "server_key.pem", "ca.pem"];
    let (_dir, config) = load_with(&text, &files, no_env);
    let PrincipalMapping::Rules(rules) = config.unwrap().downstream.tls.unwrap().principal_mapping else {
        panic!()
    };
    assert_eq!(rules.len(), 2);
    let bad = text.replace("$1/L", "$1/X");
    assert_names(
        &fails_with(&bad, &files),
        "downstream.tls.principal_mapping_rules[0]",
        "unexpected \"X\" after the rule",
    );
}

// ----- SASL, credentials, auth swap -----

const SCRAM: &str = "
upstream:
  bootstrap_servers: [\"b:9092\"]
  security_protocol: PLAINTEXT
downstream:
  security_protocol: SASL_PLAINTEXT
  sasl_mechanisms: [SCRAM-SHA-256, PLAIN]
  credentials:
    users:
      alice: alice-password
      bob:
        mechanism: SCRAM-SHA-256
        salt: c2FsdA==
        iterations: 8192
        stored_key: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
        server_key: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
broker_mapping:
  mode: port_offset
  port_offset: { base: 9092 }
";

#[test]
fn credentials_load() {
    let config = ok(SCRAM);
    let sasl = config.downstream.sasl.as_ref().unwrap();
    let Some(UserCredential::Scram(bob)) = sasl.credentials.get("bob") else { panic!() };
    assert_eq!(
        (bob.mechanism, bob.iterations, bob.salt.as_slice()),
        (Mechanism::ScramSha256, 8192, &b"salt"[..])
    );
    assert_eq!(bob.stored_key.expose().len(), 32);
    let Some(UserCredential::Password { password, iterations: None }) = sasl.credentials.get("alice") else {
        panic!()
    };
    assert_eq!(password.expose(), "alice-password");
    assert!(matches!(config.upstream.auth, UpstreamAuth::None));
}

#[test]
fn scram_iterations_minimum() {
    let message = fails(&SCRAM.replace("iterations: 8192", "iterations: 1000"));
    assert_names(
        &message,
        "downstream.credentials.users.bob.iterations",
        "expected at least 4096 SCRAM iterations, got 1000",
    );
    let message = fails(&SCRAM.replace("alice: alice-password", "alice: { password: x, iterations: 10 }"));
    assert_names(&message, "downstream.credentials.users.alice.iterations", "got 10");
}

#[test]
fn scram_fields_are_checked() {
    let message = fails(&SCRAM.replace("salt: c2FsdA==", "salt: \"not base64!\""));
    assert_names(&message, "downstream.credentials.users.bob.salt", "expected base64");
    assert!(message.contains("config.yaml:13:15"), "{message}");
    let message = fails(&SCRAM.replace("mechanism: SCRAM-SHA-256", "mechanism: SCRAM-SHA-512"));
    assert_names(
        &message,
        "downstream.credentials.users.bob.stored_key",
        "expected 64 bytes for SCRAM-SHA-512, got 32",
    );
    let config = ok(&SCRAM.replace("        mechanism: SCRAM-SHA-256\n", ""));
    let Some(UserCredential::Scram(bob)) = config.downstream.sasl.unwrap().credentials.get("bob").cloned()
    else {
        panic!()
    };
    assert_eq!(bob.mechanism, Mechanism::ScramSha256, "inferred from the 32-byte keys");
    let message = fails(&SCRAM.replace("        iterations: 8192\n", ""));
    assert_names(
        &message,
        "downstream.credentials.users.bob.iterations",
        "required for pre-computed SCRAM credentials",
    );
    let message =
        fails(&SCRAM.replace("        salt: c2FsdA==\n", "        salt: c2FsdA==\n        password: x\n"));
    assert_names(&message, "downstream.credentials.users.bob.salt", "not both");
    let message =
        fails(&SCRAM.replace("        salt: c2FsdA==\n", "        salt: c2FsdA==\n        pepper: x\n"));
    assert_names(
        &message,
        "downstream.credentials.users.bob.pepper",
        "expected one of `password`, `mechanism`",
    );
    let message = fails(
        &SCRAM.replace("      alice: alice-password\n", "      alice: alice-password\n      alice: again\n"),
    );
    assert_names(&message, "downstream.credentials.users", "duplicate key `alice`");
    let message = fails(&SCRAM.replace("alice: alice-password", "alice: 123456"));
    assert_names(&message, "downstream.credentials.users.alice", "expected a password string");
}

#[test]
fn credentials_file_is_read_and_checked() {
    let text =
        SCRAM.replace("    users:\n      alice: alice-password\n", "    file: creds.yaml\n    users:\n");
    let dir = Scratch::new();
    dir.write("creds.yaml", "users:\n  alice: ${ALICE_PW}\n  carol:\n    password: c\n");
    let path = dir.write("config.yaml", &text);
    let config = load(&path, env_of(&[("ALICE_PW", "from-env")])).unwrap();
    let credentials = &config.downstream.sasl.as_ref().unwrap().credentials;
    assert_eq!(credentials.file.as_ref().unwrap().path, dir.0.join("creds.yaml"));
    assert_eq!(credentials.user_names().into_iter().collect::<Vec<_>>(), vec!["alice", "bob", "carol"]);
    let Some(UserCredential::Password { password, .. }) = credentials.get("alice") else { panic!() };
    assert_eq!(password.expose(), "from-env");

    dir.write("creds.yaml", "users:\n  dave:\n    password: d\n    iterations: 12\n");
    let message = load(&path, no_env).unwrap_err().to_string();
    assert!(message.contains("creds.yaml: users.dave.iterations: expected at least 4096"), "{message}");

    dir.write("creds.yaml", "users:\n  bob: again\n");
    let message = load(&path, no_env).unwrap_err().to_string();
    assert_names(&message, "downstream.credentials.file", "user bob in");
    assert!(message.contains("already defined at downstream.credentials.users.bob"), "{message}");
}

#[test]
fn sasl_needs_mechanisms_and_users() {
    let message = fails(&SCRAM.replace("  sasl_mechanisms: [SCRAM-SHA-256, PLAIN]\n", ""));
    assert_names(
        &message,
        "downstream.sasl_mechanism",
        "required when downstream.security_protocol is SASL_PLAINTEXT",
    );
    let message = fails(&SCRAM.replace(
        "  sasl_mechanisms: [SCRAM-SHA-256, PLAIN]\n",
        "  sasl_mechanisms: [PLAIN]\n  sasl_mechanism: PLAIN\n",
    ));
    assert_names(&message, "downstream.sasl_mechanisms", "not both");
    let no_users = SCRAM.split("  credentials:").next().unwrap().to_owned()
        + "broker_mapping:\n  mode: port_offset\n  port_offset: { base: 9092 }\n";
    assert_names(&fails(&no_users), "downstream.credentials", "expected users for SCRAM-SHA-256, PLAIN");
    let message = fails(&local(
        "  security_protocol: PLAINTEXT\nbroker",
        "  security_protocol: PLAINTEXT\n  sasl_mechanism: PLAIN\nbroker",
    ));
    assert_names(&message, "downstream.sasl_mechanism", "does not use SASL");
}

#[test]
fn oauthbearer() {
    let text = SCRAM.replace("[SCRAM-SHA-256, PLAIN]", "[OAUTHBEARER, PLAIN]");
    assert_names(&fails(&text), "downstream.oauthbearer", "required when OAUTHBEARER is offered");
    let text = text.replace(
        "  credentials:",
        "  oauthbearer:\n    jwks_file: jwks.json\n    issuer: https://auth.example.com\n    required_scopes: [kafka]\n  credentials:",
    );
    let (dir, config) = load_with(&text, &["jwks.json"], no_env);
    let oauth = config.unwrap().downstream.sasl.unwrap().oauthbearer.unwrap();
    assert_eq!(oauth.keys, OAuthKeys::JwksFile(dir.0.join("jwks.json")));
    assert_eq!(oauth.clock_skew, Duration::from_secs(60));
    assert_eq!(oauth.required_scopes, vec!["kafka".to_owned()]);
    assert_names(&fails(&text), "downstream.oauthbearer.jwks_file", "expected an existing file");
}

#[test]
fn oauthbearer_jwks_url_audiences_and_claim_names() {
    let base = SCRAM.replace("[SCRAM-SHA-256, PLAIN]", "[OAUTHBEARER, PLAIN]");
    let with =
        |oauth: &str| base.replace("  credentials:", &format!("  oauthbearer:\n{oauth}  credentials:"));
    let text = with(
        "    jwks_url: https://idp.example.com/keys\n    jwks_ca_certs: idp-ca.pem\n    jwks_refresh_ms: 60000\n    \
         audience: [kafka, other]\n    sub_claim_name: client_id\n    scope_claim_name: scp\n",
    );
    let (dir, config) = load_with(&text, &["idp-ca.pem"], no_env);
    let config = config.unwrap();
    let described = config.describe();
    let oauth = config.downstream.sasl.unwrap().oauthbearer.unwrap();
    let OAuthKeys::JwksUrl(jwks) = &oauth.keys else { panic!("jwks_url expected: {:?}", oauth.keys) };
    assert_eq!(jwks.url, "https://idp.example.com/keys");
    assert_eq!(jwks.ca_certs, Some(dir.0.join("idp-ca.pem")));
    assert_eq!(jwks.refresh, Duration::from_secs(60));
    assert_eq!(oauth.audience, vec!["kafka".to_owned(), "other".to_owned()]);
    assert_eq!(
        (oauth.sub_claim_name.as_deref(), oauth.scope_claim_name.as_deref()),
        (Some("client_id"), Some("scp"))
    );
    assert!(described.contains("keys from JWKS https://idp.example.com/keys (trusting "), "{described}");
    assert!(described.contains("refreshed every 60s"), "{described}");
    assert!(
        described.contains("audience kafka or other, principal from claim client_id, scopes from claim scp")
    );
    // One audience as a plain string; system roots when no CA is named.
    let config = ok(&with("    jwks_url: https://idp.example.com/keys\n    audience: kafka\n"));
    let oauth = config.downstream.sasl.unwrap().oauthbearer.unwrap();
    assert_eq!(oauth.audience, vec!["kafka".to_owned()]);
    assert!(matches!(&oauth.keys, OAuthKeys::JwksUrl(j) if j.ca_certs.is_none()));

    let message = fails(&with("    jwks_url: http://idp.example.com/keys\n"));
    assert_names(&message, "downstream.oauthbearer.jwks_url", "expected an https:// URL");
    let message =
        fails_with(&with("    jwks_url: https://idp/keys\n    jwks_file: jwks.json\n"), &["jwks.json"]);
    assert_names(&message, "downstream.oauthbearer", "exactly one of jwks_url, jwks_file or public_key_path");
    let message = fails(&with("    jwks_url: https://idp/keys\n    audience: [kafka, \"\"]\n"));
    assert_names(&message, "downstream.oauthbearer.audience", "non-empty audience names");
    let message = fails(&with("    jwks_url: https://idp/keys\n    sub_claim_name: \" \"\n"));
    assert_names(&message, "downstream.oauthbearer.sub_claim_name", "expected a claim name");
    let (_dir, config) =
        load_with(&with("    jwks_file: jwks.json\n    jwks_refresh_ms: 1000\n"), &["jwks.json"], no_env);
    let warnings = config.unwrap().warnings;
    assert!(
        warnings
            .iter()
            .any(|w| w.path == "downstream.oauthbearer.jwks_refresh_ms" && w.message.contains("jwks_url")),
        "{warnings:?}"
    );
}

const UPSTREAM_OAUTH: &str = "
upstream:
  bootstrap_servers: [\"b:9092\"]
  security_protocol: SASL_SSL
  sasl_mechanism: OAUTHBEARER
  oauthbearer:
    token_endpoint_url: https://idp.example.com/token
    client_id: kafka-proxy
    client_secret: ${CLIENT_SECRET}
    scope: kafka
downstream:
  security_protocol: PLAINTEXT
broker_mapping:
  mode: port_offset
  port_offset: { base: 9092 }
";

#[test]
fn upstream_oauthbearer_client_credentials() {
    let env = env_of(&[("CLIENT_SECRET", "idp-secret-value")]);
    let (_dir, config) = load_with(UPSTREAM_OAUTH, &[], &env);
    let config = config.unwrap();
    let UpstreamAuth::Service { mechanism, username, password } = &config.upstream.auth else {
        panic!("service identity expected: {:?}", config.upstream.auth)
    };
    assert_eq!((*mechanism, username.as_str()), (Mechanism::OAuthBearer, "kafka-proxy"));
    assert_eq!(password.expose(), "idp-secret-value");
    let oauth = config.upstream.oauthbearer.as_ref().unwrap();
    assert_eq!(
        (oauth.token_endpoint_url.as_str(), oauth.scope.as_deref()),
        ("https://idp.example.com/token", Some("kafka"))
    );
    let described = config.describe();
    assert!(
        described.contains("oauthbearer: tokens from https://idp.example.com/token (client credentials, scope \"kafka\", trusting system roots)"),
        "{described}"
    );
    assert!(!described.contains("idp-secret-value") && !format!("{config:?}").contains("idp-secret-value"));
    config.to_core().unwrap();

    let load = |text: &str| load_with(text, &[], &env).1.unwrap_err().to_string();
    let without = UPSTREAM_OAUTH.split("  oauthbearer:").next().unwrap().to_owned()
        + "downstream:\n  security_protocol: PLAINTEXT\nbroker_mapping:\n  mode: port_offset\n  port_offset: { base: 9092 }\n";
    assert_names(
        &load(&without),
        "upstream.oauthbearer",
        "required when upstream.sasl_mechanism is OAUTHBEARER",
    );
    let message = load(&UPSTREAM_OAUTH.replace("  oauthbearer:\n", "  sasl_username: svc\n  oauthbearer:\n"));
    assert_names(&message, "upstream.sasl_username", "client_id and client_secret");
    let message = load(&UPSTREAM_OAUTH.replace("    client_secret: ${CLIENT_SECRET}\n", ""));
    assert_names(&message, "upstream.oauthbearer.client_secret", "required");
    let message =
        load(&UPSTREAM_OAUTH.replace("https://idp.example.com/token", "http://idp.example.com/token"));
    assert_names(&message, "upstream.oauthbearer.token_endpoint_url", "expected an https:// URL");
    assert!(!message.contains("idp-secret-value"), "secret leaked: {message}");
    // Another mechanism: the block is ignored, with a warning.
    let text = UPSTREAM_OAUTH
        .replace("sasl_mechanism: OAUTHBEARER", "sasl_mechanism: PLAIN")
        .replace("  oauthbearer:\n", "  sasl_username: svc\n  sasl_password: pw\n  oauthbearer:\n");
    let (_dir, config) = load_with(&text, &[], &env);
    let config = config.unwrap();
    assert!(config.upstream.oauthbearer.is_none());
    assert!(
        config.warnings.iter().any(|w| w.path == "upstream.oauthbearer" && w.message.contains("ignored"))
    );

    // Under auth swap, each upstream identity is client_id=client_secret at the token endpoint.
    let swap = SWAP.replacen(
        "  sasl_mechanism: PLAIN\n",
        "  sasl_mechanism: OAUTHBEARER\n  oauthbearer:\n    token_endpoint_url: https://idp/token\n",
        1,
    );
    let env = env_of(&[("SVC_A_SECRET", "a-secret")]);
    let (_dir, config) = load_with(&swap, &[], &env);
    let config = config.unwrap();
    let UpstreamAuth::Swap { mechanism, swap: identities } = &config.upstream.auth else {
        panic!("swap expected")
    };
    assert_eq!(*mechanism, Mechanism::OAuthBearer);
    let (client_id, secret) = identities.upstream_for("alice").unwrap();
    assert_eq!((client_id, secret.expose().as_str()), ("svc-a", "a-secret"));
    let with_id = swap.replace(
        "token_endpoint_url: https://idp/token\n",
        "token_endpoint_url: https://idp/token\n    client_id: x\n",
    );
    let message = load_with(&with_id, &[], &env).1.unwrap_err().to_string();
    assert_names(
        &message,
        "upstream.oauthbearer.client_id",
        "each auth_swap.upstream_credentials entry is client_id=client_secret",
    );
}

const SWAP: &str = "
upstream:
  bootstrap_servers: [\"b:9092\"]
  security_protocol: SASL_PLAINTEXT
  sasl_mechanism: PLAIN
downstream:
  security_protocol: SASL_PLAINTEXT
  sasl_mechanism: PLAIN
broker_mapping:
  mode: port_offset
  port_offset: { base: 9092 }
auth_swap:
  enabled: true
  downstream_credentials: [\"alice=alice-secret\"]
  upstream_credentials: [\"svc-a=${SVC_A_SECRET}\"]
  mapping: [\"alice=svc-a\"]
";

#[test]
fn auth_swap_loads() {
    let (_dir, config) = load_with(SWAP, &[], env_of(&[("SVC_A_SECRET", "a-secret")]));
    let config = config.unwrap();
    let UpstreamAuth::Swap { mechanism, swap } = &config.upstream.auth else { panic!() };
    assert_eq!(*mechanism, Mechanism::Plain);
    let (user, password) = swap.upstream_for("alice").unwrap();
    assert_eq!((user, password.expose().as_str()), ("svc-a", "a-secret"));
    assert!(swap.upstream_for("bob").is_none());
    let credentials = &config.downstream.sasl.as_ref().unwrap().credentials;
    assert!(matches!(credentials.get("alice"), Some(UserCredential::Password { .. })));
}

#[test]
fn auth_swap_entries_are_checked() {
    let env = env_of(&[("SVC_A_SECRET", "a-secret")]);
    let (_dir, result) =
        load_with(&SWAP.replace("\"svc-a=${SVC_A_SECRET}\"", "\"svc-a:${SVC_A_SECRET}\""), &[], &env);
    let message = result.unwrap_err().to_string();
    assert_names(
        &message,
        "auth_swap.upstream_credentials[0]",
        "expected user=password, got an entry without '='",
    );
    assert!(!message.contains("a-secret"), "secret leaked: {message}");

    let (_dir, result) = load_with(&SWAP.replace("alice=svc-a", "alice=svc-b"), &[], &env);
    let message = result.unwrap_err().to_string();
    assert_names(
        &message,
        "auth_swap.mapping[0]",
        "expected an upstream user listed in auth_swap.upstream_credentials (svc-a), got \"svc-b\"",
    );

    let (_dir, result) = load_with(&SWAP.replace("[\"alice=svc-a\"]", "[\"alice\"]"), &[], &env);
    assert_names(
        &result.unwrap_err().to_string(),
        "auth_swap.mapping[0]",
        "expected downstream_principal=upstream_user",
    );

    let text = SWAP.replace(
        "  sasl_mechanism: PLAIN\ndownstream",
        "  sasl_mechanism: PLAIN\n  sasl_username: u\n  sasl_password: p\ndownstream",
    );
    let (_dir, result) = load_with(&text, &[], &env);
    assert_names(&result.unwrap_err().to_string(), "upstream.sasl_username", "not both");
}

#[test]
fn anonymous_clients_need_a_route() {
    let text = "
upstream:
  bootstrap_servers: [\"b:9092\"]
  security_protocol: SASL_PLAINTEXT
  sasl_mechanism: PLAIN
downstream:
  security_protocol: PLAINTEXT
broker_mapping:
  mode: port_offset
  port_offset: { base: 9092 }
auth_swap:
  enabled: true
  upstream_credentials: [\"svc=pw\"]
";
    assert_names(&fails(text), "auth_swap.mapping", "expected a mapping $anonymous=<upstream user>");
    let config = ok(&format!("{text}  mapping: [\"$anonymous=svc\"]\n"));
    let UpstreamAuth::Swap { swap, .. } = &config.upstream.auth else { panic!() };
    assert_eq!(swap.upstream_for(ANONYMOUS).unwrap().0, "svc");
    let config = ok(&text.replace("svc=pw", "$anonymous=pw"));
    let UpstreamAuth::Swap { swap, .. } = &config.upstream.auth else { panic!() };
    assert_eq!(swap.upstream_for(ANONYMOUS).unwrap().0, "$anonymous", "seed: $anonymous maps to itself");
}

#[test]
fn upstream_sasl_without_credentials_forwards_the_clients_exchange() {
    let text = local(
        "  security_protocol: PLAINTEXT\ndownstream",
        "  security_protocol: SASL_PLAINTEXT\ndownstream",
    );
    assert!(matches!(ok(&text).upstream.auth, UpstreamAuth::PassThrough));
    let both = text.replace(
        "downstream:\n  security_protocol: PLAINTEXT",
        "downstream:\n  security_protocol: SASL_PLAINTEXT",
    );
    assert!(ok(&both).downstream.sasl_pass_through, "SASL both sides, no credentials: pass-through");
    // Credentials at the proxy but no identity towards brokers cannot work.
    let text = SWAP.replace("auth_swap:\n  enabled: true", "auth_swap:\n  enabled: false").replace(
        "  sasl_mechanism: PLAIN\nbroker",
        "  sasl_mechanism: PLAIN\n  credentials:\n    users: { bob: pw }\nbroker",
    );
    let (_dir, result) = load_with(&text, &[], env_of(&[("SVC_A_SECRET", "x")]));
    let message = result.unwrap_err().to_string();
    assert_names(&message, "upstream.security_protocol", "needs credentials towards brokers");
}

#[test]
fn disabled_or_unusable_auth_swap_is_ignored_with_a_warning() {
    let config = ok(&format!("{LOCAL}auth_swap:\n  enabled: true\n  upstream_credentials: [\"a=b\"]\n"));
    assert!(config.warnings.iter().any(|w| w.path == "auth_swap" && w.message.contains("no SASL")));
    let config = ok(&format!("{LOCAL}auth_swap:\n  enabled: false\n  upstream_credentials: []\n"));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn user_in_two_places_is_an_error() {
    let text = SWAP.replace(
        "  sasl_mechanism: PLAIN\nbroker",
        "  sasl_mechanism: PLAIN\n  credentials:\n    users: { alice: other }\nbroker",
    );
    let (_dir, result) = load_with(&text, &[], env_of(&[("SVC_A_SECRET", "x")]));
    let message = result.unwrap_err().to_string();
    assert_names(
        &message,
        "auth_swap.downstream_credentials[0]",
        "already defined at downstream.credentials.users.alice",
    );
}

// ----- sni, resolve -----

const SNI: &str = "
upstream:
  bootstrap_servers: [\"b1.region.example.cloud:9092\"]
  security_protocol: PLAINTEXT
downstream:
  security_protocol: SSL
broker_mapping:
  mode: sni
  sni:
    bind_port: 9092
    upstream: \"(.*)\\\\.region\\\\.example\\\\.cloud\"
    downstream: \"<$1>-b<$id>.proxy.example.com\"
";

#[test]
fn sni_template_and_regex() {
    let files = ["server.pem", "server_key.pem"];
    let (_dir, config) = load_with(SNI, &files, no_env);
    let config = config.unwrap();
    let BrokerMapping::Sni(sni) = &config.mapping else { panic!() };
    let captures = sni.upstream.captures("b1.region.example.cloud").unwrap();
    assert_eq!(sni.downstream.render(&captures, 7), "b1-b7.proxy.example.com");

    let message = fails_with(&SNI.replace("<$1>", "<$2>"), &files);
    assert_names(&message, "broker_mapping.sni.downstream", "(which has 1), got <$2>");
    let message = fails_with(&SNI.replace("<$1>", "<$name>"), &files);
    assert_names(&message, "broker_mapping.sni.downstream", "expected <$N> or <$id>, got <$name>");
    let message = fails_with(&SNI.replace("<$1>-b<$id>", "fixed"), &files);
    assert_names(&message, "broker_mapping.sni.downstream", "every broker would get the same name");
    let message = fails_with(&SNI.replace("(.*)", "(.*"), &files);
    assert_names(&message, "broker_mapping.sni.upstream", "expected a regular expression");
    let message = fails_with(&SNI.replace("security_protocol: SSL", "security_protocol: PLAINTEXT"), &files);
    assert_names(
        &message,
        "broker_mapping.mode",
        "expected downstream.security_protocol SSL or SASL_SSL, got PLAINTEXT",
    );
    let message = fails_with(&SNI.replace("    bind_port: 9092\n", ""), &files);
    assert_names(&message, "broker_mapping.sni.bind_port", "required");
}

#[test]
fn resolve_entries() {
    let config = ok(&format!(
        "{LOCAL}resolve:\n  - host: \"*\"\n    ipv4: 10.0.0.1\n  - host: \"*.example.com\"\n    ipv4: 10.0.0.2\n    ipv6: \"2001:db8::2\"\n  - host: b1.example.com\n    ipv4: 10.0.0.3\n"
    ));
    assert_eq!(config.resolve.len(), 3);
    let core = config.to_core().unwrap();
    assert_eq!(
        core.resolve_override("b1.example.com"),
        Some("10.0.0.3".parse().unwrap()),
        "exact beats wildcards"
    );
    assert_eq!(
        core.resolve_override("b2.example.com"),
        Some("2001:db8::2".parse().unwrap()),
        "longer wildcard, later ip"
    );
    assert_eq!(core.resolve_override("localhost"), Some("10.0.0.1".parse().unwrap()), "`*` is one label");
    assert_eq!(core.resolve_override("other.net"), None, "a star never spans a dot");
    assert_eq!(core.resolve[0].pattern, HostPattern::Exact("b1.example.com".into()));

    let message = fails(&format!("{LOCAL}resolve:\n  - host: \"b *.example.com\"\n    ipv4: 10.0.0.1\n"));
    assert_names(
        &message,
        "resolve[0].host",
        "expected a host name, where * matches any characters within one label",
    );
    assert_names(
        &fails(&format!("{LOCAL}resolve:\n  - host: x.com\n")),
        "resolve[0]",
        "expected ipv4 and/or ipv6",
    );
    assert_names(
        &fails(&format!("{LOCAL}resolve:\n  - host: x.com\n    ipv4: \"::1\"\n")),
        "resolve[0].ipv4",
        "an IPv4 address",
    );
}

// ----- several problems at once -----

#[test]
fn semantic_problems_are_collected() {
    let text = "
upstream:
  bootstrap_servers: [\"a:1\", \"a:1\"]
  security_protocol: PLAINTEXT
  sasl_username: svc
downstream:
  security_protocol: PLAINTEXT
broker_mapping:
  mode: port_offset
  port_offset: { base: 65500 }
resolve:
  - host: x.com
";
    let message = fails(text);
    assert_eq!(message.lines().count(), 4, "{message}");
    assert_names(&message, "upstream.bootstrap_servers[1]", "already at [0]");
    assert_names(&message, "upstream.sasl_username", "does not use SASL");
    assert_names(&message, "broker_mapping.port_offset.base", "<= 65535");
    assert_names(&message, "resolve[0]", "ipv4");
}

// ----- secrets, to_core, describe -----

#[test]
fn secrets_never_print() {
    let (_dir, config) = load_with(SWAP, &[], env_of(&[("SVC_A_SECRET", "a-secret-value")]));
    let config = config.unwrap();
    let debug = format!("{config:?}");
    let described = config.describe();
    for text in [&debug, &described] {
        assert!(!text.contains("a-secret-value") && !text.contains("alice-secret"), "{text}");
    }
    assert!(debug.contains("***"));
    assert_eq!(Secret::new("x".to_owned()).to_string(), "***");
}

#[test]
fn to_core_for_plaintext_port_offset() {
    let core = ok(LOCAL).to_core().unwrap();
    assert_eq!(core.bind_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(core.bootstrap, vec![HostPort { host: "127.0.0.1".into(), port: 9092 }]);
    let Mapping::PortOffset(po) = &core.mapping else { panic!("port_offset expected") };
    assert_eq!(po.broker_port(3), Some(19115));
    assert_eq!(core.limits, Limits::default());
}

#[test]
fn to_core_builds_security_and_refuses_what_the_engine_cannot_run() {
    let (_dir, config) = load_with(SWAP, &[], env_of(&[("SVC_A_SECRET", "x")]));
    let core = config.unwrap().to_core().unwrap();
    assert!(matches!(core.security.downstream_sasl, kafka_proxy_core::config::DownstreamSasl::Terminate(_)));
    let kafka_proxy_core::config::UpstreamLogin::Swap(map) = &core.security.upstream_login else {
        panic!("auth swap expected")
    };
    assert_eq!(map.get("alice").map(|c| c.username()), Some("svc-a"));

    let both = ok(&format!("{LOCAL}admin:\n  bind: 127.0.0.1:9080\npolicy:\n  forbidden_api_keys: [20]\n"));
    let core = both.to_core().unwrap();
    assert!(
        core.policy.forbidden_api_keys.contains(ApiKey(20)),
        "the admin endpoint is served and the policy runs"
    );
}

#[test]
fn operations_keys_reach_the_engine() {
    let local = LOCAL.replace(
        "  security_protocol: PLAINTEXT\ndownstream",
        "  security_protocol: PLAINTEXT\n  client_id: platform-proxy\ndownstream",
    );
    let text = format!(
        "{local}limits:\n  request_timeout_ms: 12000\n  drain_timeout_ms: 5000\n\
         socket:\n  keepalive_ms: 0\n  send_buffer_bytes: 131072\n  receive_buffer_bytes: 0\n  reuse_port: false\n\
         logging:\n  level: warning\n"
    );
    let config = ok(&text);
    assert_eq!(config.upstream.client_id, "platform-proxy");
    assert_eq!(config.logging.level, "warn", "warning is an alias of warn");
    let core = config.to_core().unwrap();
    assert_eq!(core.client_id, "platform-proxy");
    assert_eq!(core.limits.request_timeout, Duration::from_secs(12));
    assert_eq!(core.limits.drain_timeout, Duration::from_secs(5));
    assert_eq!(core.socket.keepalive, None, "0 turns keepalive off");
    assert_eq!(core.socket.send_buffer_bytes, Some(131_072));
    assert_eq!(core.socket.receive_buffer_bytes, None, "0 keeps the system's default");
    assert!(!core.socket.reuse_port);
    let described = config.describe();
    assert!(described.contains("timeouts: request 12s"), "{described}");
    assert!(described.contains("drain 5s"), "{described}");
    assert!(
        described.contains(
            "socket: keepalive off, send buffer 131072 bytes, receive buffer system default, SO_REUSEPORT off"
        ),
        "{described}"
    );
    assert!(described.contains("client id of the proxy's own requests: platform-proxy"), "{described}");

    let defaults = ok(LOCAL).to_core().unwrap();
    assert_eq!(defaults.client_id, "kafka-proxy");
    assert_eq!(defaults.socket, kafka_proxy_core::config::SocketOptions::default());
    assert_eq!(defaults.socket.keepalive, Some(Duration::from_secs(60)));
    assert!(defaults.socket.reuse_port);
    assert_eq!(defaults.limits.request_timeout, Duration::from_secs(30));
    assert_eq!(defaults.limits.drain_timeout, Duration::from_secs(30));
}

#[test]
fn operations_keys_refuse_what_cannot_work() {
    let message = fails(&format!("{LOCAL}socket:\n  keepalive_ms: 500\n"));
    assert_names(
        &message,
        "socket.keepalive_ms",
        "expected 0 (off) or 1000 to 32767000 milliseconds, got 500",
    );
    let message = fails(&format!("{LOCAL}socket:\n  send_buffer_bytes: 4294967296\n"));
    assert_names(&message, "socket.send_buffer_bytes", "at most 1073741824 bytes, got 4294967296");
    let message = fails(&format!("{LOCAL}socket:\n  keepalive_ms: -1\n"));
    assert!(message.contains("config.yaml:14:17: socket.keepalive_ms: "), "line and column: {message}");
    let message = fails(&format!("{LOCAL}socket:\n  keep_alive_ms: 1000\n"));
    assert!(
        message.contains("config.yaml:14:3: socket.keep_alive_ms: unknown field `keep_alive_ms`"),
        "{message}"
    );
    assert_names(
        &fails(&format!("{LOCAL}limits:\n  request_timeout_ms: 0\n")),
        "limits.request_timeout_ms",
        "nonzero",
    );
    assert_names(
        &fails(&format!("{LOCAL}limits:\n  drain_timeout_ms: 0\n")),
        "limits.drain_timeout_ms",
        "nonzero",
    );
    let text = LOCAL.replace(
        "  security_protocol: PLAINTEXT\ndownstream",
        "  security_protocol: PLAINTEXT\n  client_id: \"\"\ndownstream",
    );
    assert_names(&fails(&text), "upstream.client_id", "expected 1 to 255 printable characters, got \"\"");
}

#[test]
fn log_level_aliases() {
    let level = |l: &str| ok(&format!("{LOCAL}logging:\n  level: {l}\n")).logging.level;
    assert_eq!(level("warning"), "warn");
    assert_eq!(level("WARNING"), "warn");
    assert_eq!(level("fatal"), "error");
    assert_eq!(level("critical"), "error");
    assert_eq!(level("panic"), "error");
    assert_eq!(level("debug"), "debug");
    assert_eq!(level("kafka_proxy=warning,fatal"), "kafka_proxy=warn,error");
    assert_names(&fails(&format!("{LOCAL}logging:\n  level: verbose\n")), "logging.level", "warn (warning)");
}

#[test]
fn describe_shows_the_listeners() {
    let text = local("[\"127.0.0.1:9092\"]", "[\"127.0.0.1:9092\", \"127.0.0.2:9092\"]");
    let described = ok(&text).describe();
    assert!(described.contains("bind address: 127.0.0.1"), "{described}");
    assert!(described.contains("mapping: port_offset, advertised host 127.0.0.1"), "{described}");
    assert!(described.contains("listener 127.0.0.1:19092 -> bootstrap 127.0.0.1:9092"), "{described}");
    assert!(described.contains("listener 127.0.0.1:19093 -> bootstrap 127.0.0.2:9092"), "{described}");
    assert!(
        described
            .contains("broker N -> port 19112+N (N = 0..=400, ports 19112..=19512), learned at run time"),
        "{described}"
    );
    assert!(
        described.contains("upstream: PLAINTEXT") && described.contains("downstream: PLAINTEXT"),
        "{described}"
    );
    assert!(described.contains("limits: max frame 104857600 bytes"), "{described}");
}

// ----- the shipped templates -----

/// Every file in `config-templates/` loads, given its environment variables and the
/// files it names (created empty in a scratch copy of the directory).
#[test]
fn every_template_loads() {
    let templates = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config-templates"));
    let env = env_of(&[
        ("KAFKA_API_KEY", "api-key"),
        ("KAFKA_API_SECRET", "api-secret"),
        ("ALICE_PASSWORD", "alice-password"),
        ("APP1_PASSWORD", "app1-password"),
    ]);
    let mut names: Vec<PathBuf> = std::fs::read_dir(templates)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 8, "00 plus seed 000's seven templates: {names:?}");
    let scratch = Scratch::new();
    for file in ["server.pem", "server_key.pem", "ca.pem", "server_ca.pem"] {
        scratch.write(file, "");
    }
    for template in &names {
        let name = template.file_name().unwrap().to_str().unwrap();
        let copy = scratch.write(name, &std::fs::read_to_string(template).unwrap());
        let config = load(&copy, &env).unwrap_or_else(|e| panic!("{name} does not load:\n{e}"));
        assert!(config.warnings.is_empty(), "{name}: {:?}", config.warnings);
        assert!(!config.describe().contains("api-secret"), "{name} prints a secret");
    }
}

#[test]
fn the_local_template_runs_on_the_engine() {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config-templates/00-local-plaintext.yaml"));
    let config = load(path, env_of(&[("BROKER_PORT", "9093")])).unwrap();
    let core = config.to_core().unwrap();
    assert_eq!(core.bootstrap, vec![HostPort { host: "127.0.0.1".into(), port: 9093 }]);
    let Mapping::PortOffset(po) = &core.mapping else { panic!("port_offset expected") };
    assert_eq!((po.advertised_host.as_str(), po.base), ("127.0.0.1", 19092));
    assert_eq!(core.bind_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
}

#[test]
fn seven_seed_templates_keep_their_names() {
    for name in [
        "01-client-plaintext-noauth_upstream-saslssl-plain.yaml",
        "02-client-saslssl-scram_upstream-saslssl-plain.yaml",
        "03-client-saslplaintext-plain_upstream-saslssl-plain.yaml",
        "04-client-mtls-with-sasl-scram256-server-saslssl-plain.yaml",
        "05-client-ssl-onewaytls_upstream-saslssl-plain.yaml",
        "06-client-ssl-mtls_upstream-saslssl-plain.yaml",
        "07-client-plaintext-noauth_upstream-plaintext-noauth.yaml",
    ] {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config-templates")).join(name);
        assert!(path.is_file(), "{name} missing");
    }
}

// ----- CONFIG.md's examples -----

/// The base block of CONFIG.md (the seed model), as written there.
const CONFIG_MD_BASE: &str = r#"
bind_address: 0.0.0.0
upstream:
  bootstrap_servers: ["broker-1:9092", "broker-2:9092"]
  security_protocol: SASL_SSL        # PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
  sasl_mechanism: PLAIN              # PLAIN | SCRAM-SHA-256 (SCRAM-256) | SCRAM-SHA-512 (SCRAM-512)
  tls:
    enabled: true
    ca_certs: server_ca.pem          # absent: system roots
    client_cert: client.pem          # optional, client certificate towards brokers
    client_key: client_key.pem
    trust_server_certs: false        # true: accept any certificate (tests only; warn loudly)
downstream:
  security_protocol: SASL_SSL
  sasl_mechanism: SCRAM-SHA-512      # absent with a SASL protocol: mechanisms come from sasl_mechanisms
  tls:
    enabled: true
    cert: server.pem
    key: server_key.pem
    mtls_enabled: false
    ca_certs: ca.pem                 # client CA, needed when mtls_enabled
broker_mapping:
  mode: port_offset                  # port_offset | sni
  port_offset:
    hostname: proxy.example.com      # advertised host
    base: 9092                       # bootstrap slots base..base+19, broker N at base+20+N
    max_broker_id: 400
  sni:
    bind_port: 9092
    upstream: "(.*)\\.region\\.example\\.cloud"   # regex over upstream broker host names
    downstream: "b<$id>.proxy.example.com"         # template: <$1>.. capture groups, <$id> broker id
auth_swap:
  enabled: true
  downstream_credentials: ["alice=alice-secret"]   # user=password accepted from clients
  upstream_credentials: ["svc-a=${SVC_A_SECRET}"]  # user=password used towards brokers
  mapping: ["alice=svc-a"]                         # downstream principal = upstream user
resolve:
  - host: "*.internal.example.com"
    ipv4: 10.0.0.7
"#;

#[test]
fn config_md_base_example_loads() {
    let files = ["server_ca.pem", "client.pem", "client_key.pem", "server.pem", "server_key.pem", "ca.pem"];
    let (dir, config) = load_with(CONFIG_MD_BASE, &files, env_of(&[("SVC_A_SECRET", "svc-a-secret")]));
    let config = config.unwrap();
    assert_eq!(config.upstream.bootstrap_servers.len(), 2);
    let tls = config.upstream.tls.as_ref().unwrap();
    assert_eq!(tls.verify, UpstreamVerify::CaFile(dir.0.join("server_ca.pem")));
    assert_eq!(tls.client_cert.as_ref().unwrap().key, dir.0.join("client_key.pem"));
    let UpstreamAuth::Swap { swap, .. } = &config.upstream.auth else { panic!() };
    assert_eq!(swap.upstream_for("alice").unwrap().1.expose(), "svc-a-secret");
    let down_tls = config.downstream.tls.as_ref().unwrap();
    assert_eq!(down_tls.client_auth, ClientAuth::None);
    assert_eq!(down_tls.ca_certs, Some(dir.0.join("ca.pem")));
    assert_eq!(config.downstream.sasl.as_ref().unwrap().mechanisms, vec![Mechanism::ScramSha512]);
    let BrokerMapping::PortOffset(po) = &config.mapping else { panic!() };
    assert_eq!((po.advertised_host.as_str(), po.base, po.max_broker_id), ("proxy.example.com", 9092, 400));
    let paths: Vec<&str> = config.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(paths, vec!["broker_mapping.sni"], "the unused sni section is reported, not dropped");
}

#[test]
fn config_md_extensions_load() {
    let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let text = format!(
        r#"
upstream:
  bootstrap_servers: ["broker-1:9092"]
  security_protocol: SASL_SSL
  sasl_mechanism: SCRAM-SHA-256
  sasl_username: svc
  sasl_password: ${{SVC_SECRET}}
downstream:
  security_protocol: SASL_SSL
  sasl_mechanisms: [SCRAM-SHA-256, SCRAM-SHA-512, PLAIN, OAUTHBEARER]
  credentials:
    file: credentials.yaml
    users:
      alice: "alice-password"
      bob:
        mechanism: SCRAM-SHA-256
        salt: "c2FsdA=="
        iterations: 8192
        stored_key: "{key}"
        server_key: "{key}"
  oauthbearer:
    jwks_file: jwks.json
    issuer: https://auth.example.com
    audience: kafka-proxy
    required_scopes: [kafka]
    clock_skew_seconds: 30
  tls:
    cert: server.pem
    key: server_key.pem
    mtls_enabled: true
    ca_certs: ca.pem
    principal_mapping_rules: ["RULE:^CN=([^,]+).*$/$1/L", "DEFAULT"]
  session_lifetime_ms: 3600000
broker_mapping:
  mode: port_offset
  port_offset: {{ base: 9092 }}
admin:
  bind: 127.0.0.1:9080
policy:
  forbidden_api_keys: [20]
  principals:
    alice: {{ forbidden_api_keys: [19, 20] }}
limits:
  max_frame_bytes: 104857600
  connect_timeout_ms: 15000
  handshake_timeout_ms: 10000
  idle_timeout_ms: 600000
logging:
  level: info
  format: json
runtime: mio
"#
    );
    let dir = Scratch::new();
    for file in ["jwks.json", "server.pem", "server_key.pem", "ca.pem"] {
        dir.write(file, "");
    }
    dir.write("credentials.yaml", "users:\n  carol: carol-password\n");
    let path = dir.write("config.yaml", &text);
    let config = load(&path, env_of(&[("SVC_SECRET", "svc-secret")])).unwrap_or_else(|e| panic!("{e}"));
    let sasl = config.downstream.sasl.as_ref().unwrap();
    assert_eq!(sasl.mechanisms.len(), 4);
    assert_eq!(sasl.session_lifetime, Some(Duration::from_secs(3600)));
    assert_eq!(sasl.oauthbearer.as_ref().unwrap().clock_skew, Duration::from_secs(30));
    assert_eq!(sasl.credentials.user_names().len(), 3);
    assert!(matches!(config.upstream.auth, UpstreamAuth::Service { .. }));
    assert_eq!(config.runtime, RuntimeKind::Mio);
    assert_eq!(config.logging.format, LogFormat::Json);
    assert_eq!(config.limits, Limits::default());
    let tls = config.downstream.tls.as_ref().unwrap();
    assert!(matches!(&tls.principal_mapping, PrincipalMapping::Rules(rules) if rules.len() == 2));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let described = config.describe();
    assert!(described.contains("auth: SASL SCRAM-SHA-256, SCRAM-SHA-512, PLAIN, OAUTHBEARER"), "{described}");
    assert!(!described.contains("svc-secret") && !described.contains("alice-password"), "{described}");
}
