//! The translation, with seed 002's usage examples (addresses as written).

use std::path::Path;

use super::*;
use crate::model::{BrokerMapping, SecurityProtocol, UpstreamAuth, UpstreamVerify};
use crate::{Config, load_str};

/// `--name=value` arguments as the CLI hands them over (one entry per flag).
fn flags(args: &[&str]) -> Vec<GivenFlag> {
    let mut out: Vec<GivenFlag> = Vec::new();
    for arg in args {
        let arg = arg.strip_prefix("--").expect("--flag");
        let (name, value) = arg.split_once('=').unwrap_or((arg, "true"));
        match out.iter_mut().find(|g| g.name == name) {
            Some(g) => g.values.push(value.to_owned()),
            None => out.push(GivenFlag { name: name.to_owned(), values: vec![value.to_owned()] }),
        }
    }
    out
}

fn translated(args: &[&str]) -> Translation {
    translate(&flags(args), Path::new("/work")).unwrap_or_else(|e| panic!("{e}"))
}

fn load(t: &Translation) -> Config {
    load_str(&t.yaml, Path::new("/work/server-flags.yaml"), |_| None)
        .unwrap_or_else(|e| panic!("{e}\n{}", t.yaml))
}

#[test]
fn seed_example_one_mapping_with_dynamic_listeners() {
    let t = translated(&["--bootstrap-server-mapping=192.168.99.100:32400,0.0.0.0:32399"]);
    let config = load(&t);
    let BrokerMapping::Static(st) = &config.mapping else { panic!("{}", t.yaml) };
    assert_eq!(st.brokers[0].upstream.to_string(), "192.168.99.100:32400");
    assert_eq!(st.brokers[0].listen.to_string(), "0.0.0.0:32399");
    assert_eq!(
        st.brokers[0].advertised.to_string(),
        "0.0.0.0:32399",
        "Go advertises the listen address as written"
    );
    let d = st.dynamic.as_ref().expect("dynamic listeners on by default");
    assert_eq!((d.bind_ip.to_string(), d.first_port), ("127.0.0.1".to_owned(), 32400));
    assert_eq!(config.upstream.bootstrap_servers.len(), 1);
    assert_eq!(
        config.admin.as_ref().map(|a| a.bind.to_string()),
        Some("0.0.0.0:9080".into()),
        "Go's default HTTP endpoint"
    );
    assert!(t.notes.iter().any(|n| n.contains("32400 + their node id")), "{:?}", t.notes);
}

#[test]
fn seed_examples_with_advertised_addresses_and_no_dynamic_listeners() {
    let t = translated(&[
        "--bootstrap-server-mapping=kafka-0.example.com:9092,0.0.0.0:32401,kafka-0.grepplabs.com:9092",
        "--bootstrap-server-mapping=kafka-1.example.com:9092,0.0.0.0:32402,kafka-1.grepplabs.com:9092",
        "--bootstrap-server-mapping=kafka-2.example.com:9092,0.0.0.0:32403,kafka-2.grepplabs.com:9092",
        "--dynamic-listeners-disable",
    ]);
    let config = load(&t);
    let BrokerMapping::Static(st) = &config.mapping else { panic!() };
    let told: Vec<String> = st.brokers.iter().map(|b| b.advertised.to_string()).collect();
    assert_eq!(
        told,
        ["kafka-0.grepplabs.com:9092", "kafka-1.grepplabs.com:9092", "kafka-2.grepplabs.com:9092"]
    );
    assert!(st.dynamic.is_none());
    assert_eq!(config.upstream.bootstrap_servers.len(), 3);
}

#[test]
fn seed_example_external_mappings_and_forbidden_keys() {
    let t = translated(&[
        "--bootstrap-server-mapping=192.168.99.100:32400,127.0.0.1:32400",
        "--external-server-mapping=192.168.99.100:32401,127.0.0.1:32402",
        "--external-server-mapping=192.168.99.100:32402,127.0.0.1:32403",
        "--forbidden-api-keys=20",
    ]);
    let config = load(&t);
    let ext: Vec<String> =
        config.external.iter().map(|e| format!("{} -> {}", e.upstream, e.advertised)).collect();
    assert_eq!(ext, ["192.168.99.100:32401 -> 127.0.0.1:32402", "192.168.99.100:32402 -> 127.0.0.1:32403"]);
    assert_eq!(config.policy.forbidden_api_keys.iter().map(|k| k.0).collect::<Vec<_>>(), [20]);
}

#[test]
fn seed_example_tls_and_sasl_upstream() {
    let t = translated(&[
        "--bootstrap-server-mapping=kafka-0.grepplabs.com:9093,0.0.0.0:32399",
        "--tls-enable",
        "--tls-insecure-skip-verify",
        "--sasl-enable",
        "--sasl-username=myuser",
        "--sasl-password=my$ecret",
    ]);
    let config = load(&t);
    assert_eq!(config.upstream.security_protocol, SecurityProtocol::SaslSsl);
    assert_eq!(config.upstream.tls.as_ref().map(|t| t.verify.clone()), Some(UpstreamVerify::TrustAll));
    let UpstreamAuth::Service { username, password, .. } = &config.upstream.auth else { panic!() };
    assert_eq!(
        (username.as_str(), password.expose().as_str()),
        ("myuser", "my$ecret"),
        "$ is never expanded"
    );
    assert!(!t.yaml.lines().next().unwrap().contains("my$ecret"), "the header hides passwords");
}

#[test]
fn kubernetes_sidecar_example_with_a_jaas_file() {
    let dir = std::env::temp_dir().join(format!("goflags-jaas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["ca-chain.cert.pem", "client.cert.pem", "client.key.pem"] {
        std::fs::write(dir.join(f), "").unwrap();
    }
    std::fs::write(
        dir.join("jaas.config"),
        "KafkaClient {\n org.apache.kafka.common.security.plain.PlainLoginModule required\n username=\"svc\"\n password=\"svc-secret\";\n};\n",
    )
    .unwrap();
    let t = translate(
        &flags(&[
            "--log-format=json",
            "--bootstrap-server-mapping=kafka-0:9093,127.0.0.1:32400",
            "--bootstrap-server-mapping=kafka-1:9093,127.0.0.1:32401",
            "--tls-enable",
            "--tls-ca-chain-cert-file=ca-chain.cert.pem",
            "--tls-client-cert-file=client.cert.pem",
            "--tls-client-key-file=client.key.pem",
            "--sasl-enable",
            "--sasl-jaas-config-file=jaas.config",
        ]),
        &dir,
    )
    .unwrap();
    let config = load(&t);
    assert_eq!(config.logging.format, crate::model::LogFormat::Json);
    let tls = config.upstream.tls.as_ref().unwrap();
    assert_eq!(tls.verify, UpstreamVerify::CaFile(dir.join("ca-chain.cert.pem")), "absolute paths");
    let UpstreamAuth::Service { username, .. } = &config.upstream.auth else { panic!() };
    assert_eq!(username, "svc");
    let with_key_password = translate(
        &flags(&[
            "--bootstrap-server-mapping=kafka-0:9093,127.0.0.1:32400",
            "--tls-enable",
            "--tls-client-key-password=pw",
        ]),
        &dir,
    )
    .unwrap();
    assert_eq!(with_key_password.flag_for("upstream.tls.key_password"), Some("tls-client-key-password"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn local_authentication_by_plugin_or_built_in() {
    let t = translated(&[
        "--bootstrap-server-mapping=192.168.99.100:32400,127.0.0.1:32400",
        "--auth-local-enable",
        "--auth-local-command=/bin/sh",
        "--auth-local-param=--realm=kafka",
        "--auth-local-timeout=3s",
    ]);
    let config = load(&t);
    let sasl = config.downstream.sasl.as_ref().unwrap();
    let external = sasl.credentials.external.as_ref().unwrap();
    assert_eq!(external.timeout, Duration::from_secs(3));
    assert!(
        matches!(&external.backend, crate::ExternalBackend::Exec { command, args } if command == Path::new("/bin/sh") && args == &["--realm=kafka"])
    );
    // Go's default 10 s plugin timeout: the handshake gets longer than it.
    let t = translated(&[
        "--bootstrap-server-mapping=192.168.99.100:32400,127.0.0.1:32400",
        "--auth-local-enable",
        "--auth-local-command=build/auth-ldap",
        "--auth-local-param=--url=ldaps://ldap.example.com:636",
        "--auth-local-param=--user-dn=cn=users,dc=exemple,dc=com",
        "--auth-local-param=--user-attr=uid",
    ]);
    let config = load(&t);
    assert_eq!(config.limits.handshake_timeout, Duration::from_secs(15));
    let external = config.downstream.sasl.as_ref().unwrap().credentials.external.clone().unwrap();
    let crate::ExternalBackend::Ldap(ldap) = &external.backend else { panic!("{}", t.yaml) };
    assert_eq!(ldap.url, "ldaps://ldap.example.com:636");
    assert!(
        matches!(&ldap.lookup, crate::LdapLookup::Bind { user_dn } if user_dn == "uid={user},cn=users,dc=exemple,dc=com")
    );
    let t = translated(&[
        "--bootstrap-server-mapping=192.168.99.100:32400,127.0.0.1:32400",
        "--auth-local-enable",
        "--auth-local-command=build/auth-user",
        "--auth-local-param=--username=my-test-user",
        "--auth-local-param=--password=my-test-password",
    ]);
    let config = load(&t);
    assert!(config.downstream.sasl.as_ref().unwrap().credentials.users.contains_key("my-test-user"));
}

#[test]
fn flags_without_equivalent_are_refused_with_what_to_use() {
    let base = "--bootstrap-server-mapping=a:1,127.0.0.1:2";
    let e = translate(&flags(&[base, "--auth-gateway-server-enable"]), Path::new("/")).unwrap_err();
    assert!(e.to_string().starts_with("--auth-gateway-server-enable: ") && e.message.contains("mTLS"), "{e}");
    let e = translate(&flags(&[base, "--debug-enable"]), Path::new("/")).unwrap_err();
    assert!(e.message.contains("--log-level=debug"), "{e}");
    let e = translate(&flags(&[]), Path::new("/")).unwrap_err();
    assert_eq!(e.flag, "bootstrap-server-mapping");
    let e = translate(&flags(&["--bootstrap-server-mapping=a:1"]), Path::new("/")).unwrap_err();
    assert!(e.message.contains("expected remote-host:port,local-host:port"), "{e}");
    let e = translate(&flags(&["--bootstrap-server-mapping=a:1,kafka.local:2"]), Path::new("/")).unwrap_err();
    assert!(e.message.contains("expected ip:port"), "{e}");
    let e = translate(
        &flags(&[base, "--kafka-keep-alive=30s", "--proxy-listener-keep-alive=20s"]),
        Path::new("/"),
    )
    .unwrap_err();
    assert_eq!(e.flag, "proxy-listener-keep-alive");
    let e = translate(&flags(&[base, "--sasl-enable"]), Path::new("/")).unwrap_err();
    assert!(e.message.contains("--sasl-username"), "{e}");
}

#[test]
fn http_flags_move_the_admin_endpoint_and_its_paths() {
    let t = translated(&[
        "--bootstrap-server-mapping=a:1,127.0.0.1:2",
        "--http-listen-address=127.0.0.1:9180",
        "--http-metrics-path=/prom",
        "--http-health-path=/health",
    ]);
    let admin = load(&t).admin.expect("admin endpoint");
    assert_eq!(
        (admin.bind.to_string(), admin.metrics_path.as_str(), admin.health_path.as_str()),
        ("127.0.0.1:9180".to_owned(), "/prom", "/health")
    );
    assert!(!t.yaml.contains("health_path"), "Go's default path is ours: nothing to write\n{}", t.yaml);
    let off = translated(&[
        "--bootstrap-server-mapping=a:1,127.0.0.1:2",
        "--http-disable",
        "--http-metrics-path=/x",
    ]);
    assert!(load(&off).admin.is_none(), "--http-disable wins over the paths");
    let shadowing = translated(&["--bootstrap-server-mapping=a:1,127.0.0.1:2", "--http-health-path=/ready"]);
    assert_eq!(shadowing.flag_for("admin.health_path"), Some("http-health-path"));
    let e =
        load_str(&shadowing.yaml, Path::new("/work/server-flags.yaml"), |_| None).unwrap_err().to_string();
    assert!(e.contains("admin.health_path") && e.contains("other than /ready"), "{e}");
}

#[test]
fn printed_config_loads_back_to_the_same_configuration() {
    let t = translated(&[
        "--bootstrap-server-mapping=kafka-0.example.com:9092,0.0.0.0:32401,kafka-0.grepplabs.com:9092",
        "--external-server-mapping=kafka-2.example.com:9092,lb:1",
        "--default-listener-ip=127.0.0.2",
        "--dynamic-sequential-min-port=40000",
        "--http-disable",
        "--log-level=warning",
        "--kafka-dial-timeout=2s",
        "--kafka-max-open-requests=64",
        "--forward-proxy=socks5://u:p%40ss@127.0.0.1:1080",
    ]);
    let once = load(&t);
    let dir = std::env::temp_dir().join(format!("goflags-print-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("printed.yaml");
    std::fs::write(&file, &t.yaml).unwrap();
    let again = crate::load(&file, |_| None).unwrap();
    let strip = |c: &Config| c.describe().lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(strip(&once), strip(&again));
    assert_eq!(once.logging.level, "warn");
    assert_eq!(once.limits.connect_timeout, Duration::from_secs(2));
    assert_eq!(once.limits.max_in_flight, 64);
    assert_eq!(
        once.upstream
            .forward_proxy
            .as_ref()
            .and_then(|p| p.credentials.as_ref())
            .map(|c| c.password.expose().as_str()),
        Some("p@ss")
    );
    let BrokerMapping::Static(st) = &once.mapping else { panic!() };
    assert_eq!(
        st.dynamic.as_ref().map(|d| (d.bind_ip.to_string(), d.first_port)),
        Some(("127.0.0.2".into(), 40000))
    );
    assert!(once.admin.is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn go_durations() {
    for (text, ms) in [
        ("10s", 10_000),
        ("1m0s", 60_000),
        ("500ms", 500),
        ("1h2m3.5s", 3_723_500),
        ("0", 0),
        ("1.5m", 90_000),
    ] {
        assert_eq!(go_duration(text), Some(Duration::from_millis(ms)), "{text}");
    }
    for bad in ["", "10", "s", "1x", "-1s", "1e3s"] {
        assert_eq!(go_duration(bad), None, "{bad}");
    }
}

#[test]
fn every_flag_of_the_help_output_is_in_the_table() {
    let help = include_str!("../../../tests/e2e/data/go_proxy_help.txt");
    for line in help.lines() {
        let Some(rest) = line.trim_start().strip_prefix("--") else { continue };
        let name = rest.split_whitespace().next().unwrap();
        assert!(FLAGS.iter().any(|f| f.name == name), "--{name} missing from FLAGS");
    }
    assert_eq!(
        FLAGS.len(),
        help.lines().filter(|l| l.trim_start().starts_with("--")).count() + 2,
        "plus --forward-proxy and --dynamic-sequential-min-port"
    );
}
