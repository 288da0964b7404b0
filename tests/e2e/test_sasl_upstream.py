"""The proxy towards a broker that requires SASL SCRAM (tansu built with sqlite, --authentication):

(a) one service identity for every client (downstream PLAINTEXT);
(b) auth swap: two downstream users mapped to two upstream users, a third without mapping
    refused with 58;
(c) pass-through: SASL on both sides, no credentials at the proxy; the client's own SCRAM
    exchange reaches the broker (kafka-python also on SaslHandshake v0 with raw tokens);
(d) SASL_SSL upstream: TLS (stunnel in front of the broker) verified against a CA file, then SCRAM.

Which identity the broker authenticated is read from the broker's own log, and the proxy's
`logged in at the broker user=...` lines are matched to the client's session.
"""

from __future__ import annotations

import time

import pytest

from kafka_e2e.clients import CLIENT_LIBS
from kafka_e2e.paths import tansu_sqlite_binary
from kafka_e2e.ports import HOST
from kafka_e2e.sasl import SASL_AUTHENTICATION_FAILED, SaslWire, plain_token, scram_login
from kafka_e2e.sasl_clients import (
    KafkaPythonLog, Login, auth_failure_seen_by_client, produce_consume, sasl_client_lib,
)
from kafka_e2e.sasl_fixtures import BROKER_USERS, broker_logins, start_proxy, start_scram_tansu, track
from kafka_e2e.tls import Stunnel
from kafka_e2e.sasl_proxy import by_session, lines_with, proxy_config, reserve_layout, reserve_port


def broker_mark(tansu) -> int:
    return len(tansu.process.log_text())


def broker_logins_since(tansu, mark: int) -> list[str]:
    return broker_logins(tansu.process.log_text()[mark:])


def create_topic(lib, bootstrap: str, topic: str) -> str:
    """CreateTopics through the proxy (the broker's own CLI cannot authenticate)."""
    lib.create_topic(bootstrap, topic, 1)
    return topic


# ------------------------------------------------------------------- (a) service identity


@pytest.fixture(scope="module")
def service_proxy(request, tmp_path_factory, scram_tansu, sasl_runtime):
    workdir = tmp_path_factory.mktemp(f"service-{sasl_runtime}")
    layout = reserve_layout()
    upstream = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
                "sasl_username": "svc-a", "sasl_password": BROKER_USERS["svc-a"][0]}
    text = proxy_config([scram_tansu.bootstrap], layout, {"security_protocol": "PLAINTEXT"}, upstream)
    proxy = start_proxy(request, workdir, text, layout, sasl_runtime, name="proxy-service")
    yield proxy
    proxy.stop()


@pytest.mark.parametrize("lib_name", CLIENT_LIBS)
def test_service_identity(service_proxy, scram_tansu, lib_name, unique):
    """Clients without credentials; the broker sees only svc-a."""
    lib = sasl_client_lib(lib_name, None)
    mark, bmark = service_proxy.mark(), broker_mark(scram_tansu)
    topic = create_topic(lib, service_proxy.bootstrap, f"up-svc-{unique}")
    assert produce_consume(lib, service_proxy.bootstrap, topic, n=40).consumed == 40
    log = service_proxy.log_since(mark)
    logins = by_session(log, "logged in at the broker", "user")
    assert len(logins) >= 2 and set(logins.values()) == {"svc-a"}, logins
    assert not lines_with(log, "client authenticated"), "PLAINTEXT clients are not authenticated"
    seen = broker_logins_since(scram_tansu, bmark)
    assert len(seen) >= 2 and set(seen) == {"svc-a"}, seen


def test_service_identity_wrong_password(request, tmp_path, scram_tansu, sasl_runtime):
    """The broker refuses the proxy's login: the client's connection is closed, the log says why."""
    layout = reserve_layout()
    upstream = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
                "sasl_username": "svc-a", "sasl_password": "not-the-secret"}
    text = proxy_config([scram_tansu.bootstrap], layout, {"security_protocol": "PLAINTEXT"}, upstream)
    proxy = start_proxy(request, tmp_path, text, layout, sasl_runtime, name="proxy-badsvc")
    try:
        with SaslWire(HOST, layout.bootstrap_port(0), timeout=5) as w:
            w.send_only(3, 1, (-1).to_bytes(4, "big", signed=True), flexible_header=False)
            closed, got = w.closed_by_peer(timeout=5)
        assert closed and got == b"", (closed, got)
        time.sleep(0.2)
        failures = [ln for ln in lines_with(proxy.log_text(), "reason=") if "SCRAM" in ln or "login" in ln]
        assert failures, proxy.log_text()[-3000:]
    finally:
        proxy.stop()


# ------------------------------------------------------------------- (b) auth swap

SWAP_USERS = {"u1": "u1-Pa55", "u2": "u2-Pa55", "u3": "u3-Pa55"}


@pytest.fixture(scope="module")
def swap_proxy(request, tmp_path_factory, scram_tansu, sasl_runtime):
    workdir = tmp_path_factory.mktemp(f"swap-{sasl_runtime}")
    layout = reserve_layout()
    downstream = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanisms": ["PLAIN", "SCRAM-SHA-512"]}
    upstream = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256"}
    auth_swap = {
        "enabled": True,
        "downstream_credentials": [f"{u}={p}" for u, p in SWAP_USERS.items()],
        "upstream_credentials": [f"{u}={BROKER_USERS[u][0]}" for u in ("svc-a", "svc-b")],
        "mapping": ["u1=svc-a", "u2=svc-b"],  # u3 has none
    }
    text = proxy_config([scram_tansu.bootstrap], layout, downstream, upstream, auth_swap=auth_swap)
    proxy = start_proxy(request, workdir, text, layout, sasl_runtime, name="proxy-swap")
    yield proxy
    proxy.stop()


@pytest.mark.parametrize("lib_name", CLIENT_LIBS)
def test_auth_swap_two_users(swap_proxy, scram_tansu, lib_name, unique):
    """u1 (PLAIN) acts as svc-a, u2 (SCRAM-SHA-512) as svc-b: in the proxy's sessions and at the broker."""
    expected = {"u1": "svc-a", "u2": "svc-b"}
    for user, mechanism in (("u1", "PLAIN"), ("u2", "SCRAM-SHA-512")):
        lib = sasl_client_lib(lib_name, Login(mechanism, user, SWAP_USERS[user]))
        mark, bmark = swap_proxy.mark(), broker_mark(scram_tansu)
        topic = create_topic(lib, swap_proxy.bootstrap, f"up-swap-{user}-{unique}")
        assert produce_consume(lib, swap_proxy.bootstrap, topic, n=30, prefix=user).consumed == 30
        log = swap_proxy.log_since(mark)
        principals = by_session(log, "client authenticated", "principal")
        upstream_users = by_session(log, "logged in at the broker", "user")
        assert principals and set(principals.values()) == {user}, principals
        for session in principals:
            assert upstream_users.get(session) == expected[user], (session, principals, upstream_users)
        seen = broker_logins_since(scram_tansu, bmark)
        assert seen and set(seen) == {expected[user]}, seen


def test_auth_swap_unmapped_user_refused(swap_proxy):
    """u3's password is right but it has no upstream identity: 58, the bad-credentials message, closed."""
    mark = swap_proxy.mark()
    with SaslWire(HOST, swap_proxy.layout.bootstrap_port(0), timeout=5) as w:
        assert w.sasl_handshake("PLAIN").error_code == 0
        r = w.sasl_authenticate(plain_token("u3", SWAP_USERS["u3"]))
        assert r.error_code == SASL_AUTHENTICATION_FAILED, r
        assert r.error_message == ("Authentication failed during authentication due to invalid "
                                   "credentials with SASL mechanism PLAIN")
        closed, got = w.closed_by_peer(3)
        assert closed and got == b""
    time.sleep(0.2)
    refusals = lines_with(swap_proxy.log_since(mark), "refusing client")
    assert any("u3" in ln for ln in refusals), refusals
    assert not lines_with(swap_proxy.log_since(mark), "logged in at the broker")


@pytest.mark.parametrize("lib_name", CLIENT_LIBS)
def test_auth_swap_unmapped_user_seen_by_client(swap_proxy, lib_name):
    lib = sasl_client_lib(lib_name, Login("SCRAM-SHA-512", "u3", SWAP_USERS["u3"]))
    errors = auth_failure_seen_by_client(lib, swap_proxy.bootstrap)
    message = ("Authentication failed during authentication due to invalid credentials "
               "with SASL mechanism SCRAM-SHA-512")
    assert any(message in e for e in errors), errors


# ------------------------------------------------------------------- (c) pass-through


@pytest.fixture(scope="module")
def passthrough_proxy(request, tmp_path_factory, scram_tansu, sasl_runtime):
    workdir = tmp_path_factory.mktemp(f"passthrough-{sasl_runtime}")
    layout = reserve_layout()
    text = proxy_config([scram_tansu.bootstrap], layout, {"security_protocol": "SASL_PLAINTEXT"},
                        {"security_protocol": "SASL_PLAINTEXT"})
    proxy = start_proxy(request, workdir, text, layout, sasl_runtime, name="proxy-passthrough")
    yield proxy
    proxy.stop()


PASSTHROUGH_CASES = [("confluent", "SCRAM-SHA-256", "svc-a", False),
                     ("kafka-python", "SCRAM-SHA-256", "svc-b", False),
                     ("confluent", "SCRAM-SHA-512", "svc-c", False),
                     ("kafka-python", "SCRAM-SHA-512", "svc-c", True)]


@pytest.mark.parametrize("lib_name,mechanism,user,v0", PASSTHROUGH_CASES,
                         ids=[f"{c[0]}-{c[1]}{'-handshake-v0' if c[3] else ''}" for c in PASSTHROUGH_CASES])
def test_pass_through(passthrough_proxy, scram_tansu, lib_name, mechanism, user, v0, unique):
    """The client's own SCRAM exchange goes to the broker: the proxy authenticates nobody."""
    lib = sasl_client_lib(lib_name, Login(mechanism, user, BROKER_USERS[user][0]), handshake_v0=v0)
    mark, bmark = passthrough_proxy.mark(), broker_mark(scram_tansu)
    with KafkaPythonLog() as client_log:
        topic = create_topic(lib, passthrough_proxy.bootstrap, f"up-pt-{unique}")
        assert produce_consume(lib, passthrough_proxy.bootstrap, topic, n=30).consumed == 30
    if lib_name == "kafka-python":
        handshakes = client_log.requests("SaslHandshakeRequest")
        assert handshakes and all(f"version={0 if v0 else 1}," in h for h in handshakes), handshakes[:3]
        # v0: the SCRAM messages went as raw frames, not SaslAuthenticate requests.
        assert bool(client_log.requests("SaslAuthenticateRequest")) != v0
    log = passthrough_proxy.log_since(mark)
    assert not lines_with(log, "client authenticated") and not lines_with(log, "logged in at the broker")
    seen = broker_logins_since(scram_tansu, bmark)
    assert len(seen) >= 2 and set(seen) == {user}, seen


def test_pass_through_wrong_password(passthrough_proxy, scram_tansu):
    """The broker's refusal reaches the client through the proxy unchanged. (tansu 0.6.0 does
    not answer 58: it sends error 0 with the RFC 5802 server-error `e=invalid-proof`, or
    `e=unknown-user`, and keeps the connection; librdkafka reports "broker responded with
    invalid-proof", kafka-python fails on the missing `v=` with KeyError 'v'.)"""
    answers = {}
    for where, port in (("direct", scram_tansu.port), ("proxy", passthrough_proxy.layout.bootstrap_port(0))):
        for user in ("svc-a", "nobody"):
            with SaslWire(HOST, port, timeout=5) as w:
                r, _ = scram_login(w, "SCRAM-SHA-256", user, "not-the-secret")
                answers[where, user] = (r.error_code, r.error_message, r.auth_bytes)
    assert answers["direct", "svc-a"] == (0, "NONE", b"e=invalid-proof"), answers
    assert answers["direct", "nobody"] == (0, "NONE", b"e=unknown-user"), answers
    assert answers["proxy", "svc-a"] == answers["direct", "svc-a"]
    assert answers["proxy", "nobody"] == answers["direct", "nobody"]
    lib = sasl_client_lib("confluent", Login("SCRAM-SHA-256", "svc-a", "not-the-secret"))
    errors = auth_failure_seen_by_client(lib, passthrough_proxy.bootstrap)
    assert any("broker responded with invalid-proof" in e for e in errors), errors


# ------------------------------------------------------------------- (d) SASL_SSL upstream


@pytest.fixture(scope="module")
def tls_scram_tansu(request, tmp_path_factory, certs):
    """The sqlite tansu behind stunnel: it advertises stunnel's TLS port."""
    binary = tansu_sqlite_binary()
    if binary is None:
        pytest.skip("needs tansu with sqlite (scripts/install-test-deps.sh --with-sasl-broker)")
    workdir = tmp_path_factory.mktemp("tansu-tls")
    tls_port = reserve_port()
    broker = start_scram_tansu(request, binary, reserve_port(), workdir, advertised_port=tls_port,
                               name="tansu-sqlite-behind-stunnel")
    tunnel = Stunnel(tls_port, broker.bootstrap, certs.server, workdir, name=f"stunnel-{tls_port}")
    track(request, tunnel.process)
    tunnel.start()
    yield broker, tunnel
    tunnel.stop()
    broker.stop()


@pytest.mark.parametrize("lib_name", CLIENT_LIBS)
def test_sasl_ssl_upstream(request, tmp_path, tls_scram_tansu, certs, sasl_runtime, lib_name, unique):
    broker, tunnel = tls_scram_tansu
    layout = reserve_layout()
    upstream = {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_username": "svc-c", "sasl_password": BROKER_USERS["svc-c"][0],
                "tls": {"ca_certs": str(certs.ca)}}
    text = proxy_config([tunnel.address], layout, {"security_protocol": "PLAINTEXT"}, upstream)
    proxy = start_proxy(request, tmp_path, text, layout, sasl_runtime, name="proxy-sasl-ssl-up")
    try:
        lib = sasl_client_lib(lib_name, None)
        bmark = broker_mark(broker)
        topic = create_topic(lib, proxy.bootstrap, f"up-tls-{unique}")
        assert produce_consume(lib, proxy.bootstrap, topic, n=30).consumed == 30
        assert set(broker_logins_since(broker, bmark)) == {"svc-c"}
        assert set(by_session(proxy.log_text(), "logged in at the broker", "user").values()) == {"svc-c"}
    finally:
        proxy.stop()
