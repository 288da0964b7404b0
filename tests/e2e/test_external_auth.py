"""External authentication of SASL PLAIN at the proxy (issue 13), on both runtimes, with
real clients: an exec plugin speaking the line-based JSON protocol, and OpenLDAP's slapd
(bind as the user; search with a service account, then bind; ldaps:// and StartTLS).
The right password gets in, a wrong one gets SASL_AUTHENTICATION_FAILED (58), and a
failing or slow backend gets 58 within the configured timeout, never a hang.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from kafka_e2e.admin import Admin, admin_config
from kafka_e2e.clients import Sasl, retry
from kafka_e2e.goproxy import LDAP_SERVICE, LDAP_SUFFIX, LDAP_USERS, GoFlagsProxy, Slapd
from kafka_e2e.goproxy_fixtures import shared_tansu  # noqa: F401 (fixtures)
from kafka_e2e.paths import PROXY_BINARY
from kafka_e2e.ports import HOST, pick_port, pick_proxy_base
from kafka_e2e.procs import wait_until
from kafka_e2e.proxy import KafkaProxy, PortLayout
from kafka_e2e.sasl import NONE, SASL_AUTHENTICATION_FAILED, SaslWire, plain_token
from kafka_e2e.sasl_clients import produce_consume
from kafka_e2e.clients import client_lib
from kafka_e2e.tls import generate_certs

PLUGIN = Path(__file__).resolve().parent / "tools" / "auth_plugin.py"
TIMEOUT_MS = 2000


def login(bootstrap: str, user: str, password: str, timeout: float = 10.0) -> tuple[int, float]:
    """PLAIN over SaslHandshake v1 / SaslAuthenticate v1: (error code, seconds taken)."""
    host, port = bootstrap.rsplit(":", 1)
    started = time.monotonic()
    with SaslWire(host, int(port), timeout=timeout) as wire:
        assert wire.sasl_handshake("PLAIN").error_code == NONE
        result = wire.sasl_authenticate(plain_token(user, password))
    return result.error_code, time.monotonic() - started


def exchange_as(bootstrap: str, user: str, password: str, unique: str, lib: str) -> None:
    c = client_lib(lib, Sasl("PLAIN", user, password))
    topic = f"ext-{unique}-{lib}"
    retry(lambda: c.create_topic(bootstrap, topic, 1), 30, what=f"create {topic}")
    produce_consume(c, bootstrap, topic, n=10)


def failures(admin: Admin, reason: str) -> float:
    """Client PLAIN logins refused for `reason`, as /metrics counts them."""
    return admin.scrape().value("kafka_proxy_authentication_failures_total", side="client", mechanism="PLAIN",
                                reason=reason)


def yaml_proxy(tmp_path: Path, tansu: str, external: str, runtime: str, env: dict | None = None,
               tail: str = "") -> KafkaProxy:
    layout = PortLayout(pick_proxy_base())
    config = tmp_path / f"external-{runtime}.yaml"
    config.write_text(
        f"bind_address: {HOST}\n"
        f"upstream:\n  bootstrap_servers: [\"{tansu}\"]\n  security_protocol: PLAINTEXT\n"
        f"downstream:\n  security_protocol: SASL_PLAINTEXT\n  sasl_mechanism: PLAIN\n"
        f"  credentials:\n    external:\n      timeout_ms: {TIMEOUT_MS}\n      cache_ttl_ms: 0\n{external}"
        f"broker_mapping:\n  mode: port_offset\n  port_offset: {{hostname: {HOST}, base: {layout.base}}}\n{tail}"
    )
    proxy = KafkaProxy(config, layout, runtime, tmp_path)
    if env:
        proxy.process.env = {**(proxy.process.env or {}), **env}
    return proxy.start()


def test_exec_plugin_from_the_go_flags(shared_tansu, runtime, tmp_path, unique, monkeypatch):
    # --auth-local-enable --auth-local-command PLUGIN --auth-local-param ... (the plugin speaks
    # kafka-proxy's JSON protocol), a slow user answered after the timeout.
    monkeypatch.setenv("AUTH_PLUGIN_USERS", "alice=alice-secret")
    monkeypatch.setenv("AUTH_PLUGIN_DELAY", "30")
    local, http = pick_port(), pick_port()
    args = ["--bootstrap-server-mapping", f"{shared_tansu.bootstrap},{HOST}:{local}",
            f"--http-listen-address={HOST}:{http}", "--auth-local-enable", f"--auth-local-command={sys.executable}", f"--auth-local-param={PLUGIN}",
            "--auth-local-timeout=2s"]
    proxy = GoFlagsProxy(args, runtime, tmp_path, local).start()
    bootstrap = f"{HOST}:{local}"
    try:
        exchange_as(bootstrap, "alice", "alice-secret", unique, "confluent" if runtime == "tokio" else "kafka-python")
        assert "plugin:alice" in proxy.log_text(), "the principal the plugin named"
        code, _ = login(bootstrap, "alice", "wrong")
        assert code == SASL_AUTHENTICATION_FAILED
        code, took = login(bootstrap, "slow", "whatever")
        assert code == SASL_AUTHENTICATION_FAILED and took < 5, (code, took)
        admin = Admin(http)
        # The session's deadline and the authenticator's own timeout are the same 2 s: either names it.
        wait_until(lambda: failures(admin, "backend_timeout") + failures(admin, "backend_error") == 1, 5,
                   what="the slow login counted")
        assert failures(admin, "invalid_credentials") == 1
        assert admin.scrape().value("kafka_proxy_authentications_total", side="client", mechanism="PLAIN") >= 1
    finally:
        proxy.stop()


def test_exec_plugin_that_dies_fails_logins_in_bounded_time(shared_tansu, runtime, tmp_path):
    # A "plugin" that exits at once: every login is 58, quickly; the proxy stays up.
    external = f"      exec:\n        command: /bin/sh\n        args: [\"-c\", \"exit 3\"]\n"
    proxy = yaml_proxy(tmp_path, shared_tansu.bootstrap, external, runtime)
    try:
        for _ in range(3):
            code, took = login(proxy.bootstrap, "alice", "alice-secret")
            assert code == SASL_AUTHENTICATION_FAILED and took < TIMEOUT_MS / 1000 + 2, (code, took)
        assert proxy.process.running()
        assert "external authentication plugin exited" in proxy.log_text(), proxy.log_text()[-2000:]
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    """slapd with ldap:// and ldaps:// (a certificate from kafka-proxy --generate-certs)."""
    work = tmp_path_factory.mktemp("slapd")
    pki = generate_certs(PROXY_BINARY, work / "pki", "ldap.test")
    server = Slapd(pick_port(), work, tls_port=pick_port(), cert=pki.server.cert, key=pki.server.key).start()
    server.ca = pki.ca
    yield server
    server.stop()


@pytest.mark.parametrize("lookup", ["bind", "search", "ldaps", "starttls"])
def test_ldap_logins(shared_tansu, slapd, runtime, tmp_path, unique, lookup):
    url = f"ldap://{HOST}:{slapd.port}"
    tls = ""
    if lookup == "ldaps":
        url, tls = f"ldaps://localhost:{slapd.tls_port}", f"        ca_certs: {slapd.ca}\n"
    if lookup == "starttls":
        url, tls = f"ldap://localhost:{slapd.port}", f"        start_tls: true\n        ca_certs: {slapd.ca}\n"
    if lookup == "search":
        how = (f"        bind_dn: \"{LDAP_SERVICE[0]}\"\n        bind_password: {LDAP_SERVICE[1]}\n"
               f"        base_dn: \"{LDAP_SUFFIX}\"\n        user_filter: \"(uid={{user}})\"\n")
    else:
        how = f"        user_dn: \"uid={{user}},ou=people,{LDAP_SUFFIX}\"\n"
    external = f"      ldap:\n        url: {url}\n{tls}{how}"
    proxy = yaml_proxy(tmp_path, shared_tansu.bootstrap, external, runtime)
    try:
        lib = "confluent" if (runtime == "tokio") == (lookup in ("bind", "ldaps")) else "kafka-python"
        exchange_as(proxy.bootstrap, "alice", LDAP_USERS["alice"], unique, lib)
        assert login(proxy.bootstrap, "bob", "not-bobs-password")[0] == SASL_AUTHENTICATION_FAILED
        assert login(proxy.bootstrap, "nobody", "x")[0] == SASL_AUTHENTICATION_FAILED
        assert login(proxy.bootstrap, "bob", LDAP_USERS["bob"])[0] == NONE
    finally:
        proxy.stop()


def test_ldap_server_down_is_58_within_the_timeout(shared_tansu, runtime, tmp_path):
    dead, http = pick_port(), pick_port()
    external = f"      ldap:\n        url: ldap://{HOST}:{dead}\n        user_dn: \"uid={{user}},ou=people,{LDAP_SUFFIX}\"\n"
    proxy = yaml_proxy(tmp_path, shared_tansu.bootstrap, external, runtime, tail=admin_config(http))
    try:
        code, took = login(proxy.bootstrap, "alice", LDAP_USERS["alice"])
        assert code == SASL_AUTHENTICATION_FAILED and took < TIMEOUT_MS / 1000 + 2, (code, took)
        assert "cannot reach" in proxy.log_text(), proxy.log_text()[-2000:]
        wait_until(lambda: failures(Admin(http), "backend_error") == 1, 5, what="the failed login counted")
    finally:
        proxy.stop()
