"""`kafka-proxy server [Go flags]` (issue 13): seed 002's usage examples as written,
with addresses adapted to loopback (tansu on a free port, free local ports), on both
runtimes, between real clients and tansu; the printed configuration round trip; flags
without an equivalent refused.

--forbidden-api-keys runs on issue 11's policy, the encrypted client key of the
Kubernetes sidecar example on issue 14's key_password. The HTTP
endpoint Go serves by default on 0.0.0.0:9080 is moved to a free loopback port
(--http-listen-address), and answers at Go's paths, or at the ones the flags move it to.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kafka_e2e.admin import Admin
from kafka_e2e.clients import client_lib, retry
from kafka_e2e.goproxy import GoFlagsProxy, Relay, server
from kafka_e2e.goproxy_fixtures import sasl_ssl_front, shared_tansu  # noqa: F401 (fixtures)
from kafka_e2e.paths import PROXY_BINARY
from kafka_e2e.ports import HOST, pick_port, pick_proxy_base
from kafka_e2e.procs import wait_until
from kafka_e2e.proxy import KafkaProxy, PortLayout
from kafka_e2e.sasl_clients import produce_consume
from kafka_e2e.tansu import TANSU_NODE_ID
from kafka_e2e.tls import generate_certs


def http_args(*paths: str) -> tuple[list[str], int]:
    """Go serves /health and /metrics on 0.0.0.0:9080 by default: here on a free loopback port
    (`paths`: more --http-* flags)."""
    port = pick_port()
    return ["--http-listen-address", f"{HOST}:{port}", *paths], port


def exchange(bootstrap: str, unique: str, lib: str = "confluent", n: int = 20) -> None:
    c = client_lib(lib)
    topic = f"goflags-{unique}"
    retry(lambda: c.create_topic(bootstrap, topic, 1), 30, what=f"create {topic} via {bootstrap}")
    produce_consume(c, bootstrap, topic, n=n)


def brokers_seen(bootstrap: str, lib: str = "confluent") -> list[tuple[int, str, int]]:
    return sorted((b.node_id, b.host, b.port) for b in client_lib(lib).metadata(bootstrap))


def start(args: list[str], runtime: str, tmp_path: Path, ready_port: int,
          http: tuple[list[str], int] | None = None) -> tuple[GoFlagsProxy, Admin]:
    """The proxy from `args` (plus the HTTP flags), its admin endpoint checked alive."""
    extra, http_port = http or http_args()
    proxy = GoFlagsProxy(args + extra, runtime, tmp_path, ready_port).start()
    admin = Admin(http_port)
    health = "/healthz" if "/healthz" in extra else "/health"
    assert admin.get(health)[0] == 200
    return proxy, admin


def test_example_one_mapping(shared_tansu, runtime, tmp_path, unique):
    # build/kafka-proxy server --bootstrap-server-mapping "192.168.99.100:32400,0.0.0.0:32399"
    local = pick_port()
    proxy, admin = start(["--bootstrap-server-mapping", f"{shared_tansu.bootstrap},{HOST}:{local}"], runtime,
                         tmp_path, local)
    try:
        assert brokers_seen(f"{HOST}:{local}") == [(TANSU_NODE_ID, HOST, local)]
        exchange(f"{HOST}:{local}", unique)
        # The Go proxy's metric families, as its dashboards know them (folded within ~1 s).
        broker = shared_tansu.bootstrap
        wait_until(lambda: admin.scrape().value("proxy_requests_total", broker=broker, api_key="0") > 0, 10,
                   what="Produce counted in proxy_requests_total")
        assert admin.scrape().value("proxy_connections_total", broker=broker) > 0
    finally:
        proxy.stop()


def test_example_three_mappings_without_dynamic_listeners(shared_tansu, runtime, tmp_path, unique):
    # three --bootstrap-server-mapping (one per broker) and --dynamic-listeners-disable;
    # tansu is the first broker, the other two addresses have no broker behind them.
    ports = [pick_port() for _ in range(3)]
    dead = [pick_port(avoid=set(ports)) for _ in range(2)]
    remotes = [shared_tansu.bootstrap, f"{HOST}:{dead[0]}", f"{HOST}:{dead[1]}"]
    args = []
    for remote, local in zip(remotes, ports):
        args += ["--bootstrap-server-mapping", f"{remote},{HOST}:{local}"]
    http = http_args("--http-metrics-path", "/prom", "--http-health-path", "/healthz")
    proxy, admin = start(args + ["--dynamic-listeners-disable"], runtime, tmp_path, ports[0], http)
    try:
        assert admin.get("/metrics")[0] == 404, "moved to /prom"
        wait_until(lambda: admin.scrape("/prom").value("kafka_proxy_listeners") == 3, 5, what="3 listeners")
        assert brokers_seen(f"{HOST}:{ports[0]}", "kafka-python") == [(TANSU_NODE_ID, HOST, ports[0])]
        exchange(f"{HOST}:{ports[0]}", unique, lib="kafka-python")
        log = proxy.log_text()
        assert log.count("listening") >= 3, log[-2000:]
    finally:
        proxy.stop()


@pytest.mark.parametrize("lib", ["confluent", "kafka-python"])
def test_example_advertised_addresses_behind_a_port_forward(shared_tansu, runtime, tmp_path, unique, lib):
    # --bootstrap-server-mapping "kafka-0.example.com:9092,0.0.0.0:32401,kafka-0.grepplabs.com:9092"
    # --dynamic-listeners-disable: clients are told the advertised host:port, which a port
    # forward (the relay, standing in for NAT) leads to the proxy's bound port.
    bound, forwarded = pick_port(), pick_port()
    relay = Relay(forwarded, f"{HOST}:{bound}", tmp_path).start()
    args = ["--bootstrap-server-mapping", f"{shared_tansu.bootstrap},{HOST}:{bound},{HOST}:{forwarded}",
            "--dynamic-listeners-disable"]
    proxy, _ = start(args, runtime, tmp_path, bound)
    try:
        via_nat = f"{HOST}:{forwarded}"
        assert brokers_seen(via_nat, lib) == [(TANSU_NODE_ID, HOST, forwarded)], "the advertised port, not the bound one"
        exchange(via_nat, unique, lib=lib)
    finally:
        proxy.stop()
        relay.stop()


def test_example_external_mappings_and_forbidden_api_keys(shared_tansu, runtime, tmp_path, unique):
    # --bootstrap-server-mapping "192.168.99.100:32400,127.0.0.1:32400"
    # --external-server-mapping "192.168.99.100:32401,127.0.0.1:32402" (x2) --forbidden-api-keys 20
    local = pick_port()
    args = ["--bootstrap-server-mapping", f"{shared_tansu.bootstrap},{HOST}:{local}"]
    for _ in range(2):
        args += ["--external-server-mapping", f"{HOST}:{pick_port()},{HOST}:{pick_port()}"]
    proxy, _ = start(args + ["--forbidden-api-keys", "20"], runtime, tmp_path, local)
    try:
        bootstrap = f"{HOST}:{local}"
        exchange(bootstrap, unique)
        admin = client_lib("confluent").admin(bootstrap)
        with pytest.raises(Exception):
            admin.delete_topics([f"goflags-{unique}"], operation_timeout=10)[f"goflags-{unique}"].result(timeout=15)
    finally:
        proxy.stop()


def test_example_tls_and_sasl_towards_the_brokers(sasl_ssl_front, runtime, tmp_path, unique):
    # --bootstrap-server-mapping "kafka-0.grepplabs.com:9093,0.0.0.0:32399"
    # --tls-enable --tls-insecure-skip-verify --sasl-enable --sasl-username myuser --sasl-password mysecret
    local = pick_port()
    args = ["--bootstrap-server-mapping", f"{sasl_ssl_front.bootstrap},{HOST}:{local}",
            "--tls-enable", "--tls-insecure-skip-verify",
            "--sasl-enable", "--sasl-username", "myuser", "--sasl-password", "mysecret"]
    proxy, _ = start(args, runtime, tmp_path, local)
    try:
        exchange(f"{HOST}:{local}", unique)
        assert "logged in at the broker" in proxy.log_text()
    finally:
        proxy.stop()


def test_kubernetes_sidecar_example(shared_tansu, runtime, tmp_path, unique):
    # The sidecar's args: --log-format=json, mappings, --tls-enable with a CA, a client certificate
    # and its encrypted key (--tls-client-key-password), --sasl-enable with a JAAS file; here the
    # cluster is an mTLS + SASL_SSL endpoint (a kafka-proxy from YAML) in front of tansu.
    from cryptography.hazmat.primitives import serialization

    pki = generate_certs(PROXY_BINARY, tmp_path / "pki", "front.test")
    layout = PortLayout(pick_proxy_base(), hostname="localhost")
    config = tmp_path / "front.yaml"
    config.write_text(
        f"bind_address: {HOST}\n"
        f"upstream:\n  bootstrap_servers: [\"{shared_tansu.bootstrap}\"]\n  security_protocol: PLAINTEXT\n"
        f"downstream:\n  security_protocol: SASL_SSL\n  sasl_mechanism: PLAIN\n"
        f"  tls: {{cert: {pki.server.cert}, key: {pki.server.key}, mtls_enabled: true, ca_certs: {pki.ca}}}\n"
        f"  credentials:\n    users: {{svc: svc-secret}}\n"
        f"broker_mapping:\n  mode: port_offset\n  port_offset: {{hostname: localhost, base: {layout.base}}}\n"
    )
    front = KafkaProxy(config, layout, "tokio", tmp_path / "front").start()
    key = serialization.load_pem_private_key(pki.client(1).key.read_bytes(), password=None)
    encrypted = tmp_path / "client.key.pem"
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"key-password")))
    (tmp_path / "jaas.config").write_text(
        'KafkaClient {\n org.apache.kafka.common.security.plain.PlainLoginModule required\n'
        ' username="svc"\n password="svc-secret";\n};\n')
    local = pick_port()
    args = ["--log-format=json", f"--bootstrap-server-mapping=localhost:{layout.base},{HOST}:{local}",
            "--tls-enable", f"--tls-ca-chain-cert-file={pki.ca}", f"--tls-client-cert-file={pki.client(1).cert}",
            f"--tls-client-key-file={encrypted}", "--tls-client-key-password=key-password",
            "--sasl-enable", "--sasl-jaas-config-file=jaas.config"]
    proxy, _ = start(args, runtime, tmp_path, local)
    try:
        exchange(f"{HOST}:{local}", unique)
        assert '"logged in at the broker"' in proxy.log_text() or "logged in at the broker" in proxy.log_text()
    finally:
        proxy.stop()
        front.stop()


def test_print_config_is_a_configuration_check_accepts(shared_tansu, tmp_path):
    local, forwarded = pick_port(), pick_port()
    args = ["--bootstrap-server-mapping", f"{shared_tansu.bootstrap},{HOST}:{local},{HOST}:{forwarded}",
            "--external-server-mapping", f"{HOST}:1,{HOST}:2", "--dynamic-sequential-min-port", "20000",
            "--log-level", "warning", "--kafka-dial-timeout", "3s", *http_args("--http-metrics-path=/prom")[0]]
    printed = server(args + ["--print-config"], cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    path = tmp_path / "printed.yaml"
    path.write_text(printed.stdout)
    checked = subprocess.run([str(PROXY_BINARY), "check", "--config", str(path)], capture_output=True, text=True,
                             timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for line in (f"listener {HOST}:{local} -> broker {shared_tansu.bootstrap} (clients are told {HOST}:{forwarded})",
                 "external: broker 127.0.0.1:1 -> clients are told 127.0.0.1:2",
                 "other brokers: broker N -> listener 127.0.0.1:20000+N", "(/prom, /health, /ready)"):
        assert line in checked.stdout, checked.stdout


@pytest.mark.parametrize("flag, says", [
    (["--auth-gateway-server-enable"], "mTLS instead"),
    (["--debug-enable"], "--log-level=debug"),
])
def test_flags_without_an_equivalent_are_refused(flag, says, tmp_path):
    r = server(["--bootstrap-server-mapping", f"{HOST}:1,{HOST}:2", *flag], cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert says in r.stderr and r.stderr.startswith(f"error: {flag[0]}"), r.stderr
