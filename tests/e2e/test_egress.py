"""Egress through a forward proxy (issue 13): every upstream connection of
`kafka-proxy server --forward-proxy URL` goes through real SOCKS5 (dante, and
microsocks with username/password) and HTTP CONNECT (tinyproxy) servers, on both
runtimes, with TLS and SASL towards the brokers on top; a refused CONNECT and a
dead forward proxy end the client's connection in bounded time with a clear log.
"""

from __future__ import annotations

import time

from kafka_e2e.admin import Admin
from kafka_e2e.clients import client_lib, retry
from kafka_e2e.goproxy import Danted, GoFlagsProxy, Microsocks, Tinyproxy
from kafka_e2e.goproxy_fixtures import sasl_ssl_front, shared_tansu  # noqa: F401 (fixtures)
from kafka_e2e.ports import HOST, pick_port
from kafka_e2e.procs import wait_until
from kafka_e2e.sasl import SaslWire
from kafka_e2e.sasl_clients import produce_consume


def go_proxy(upstream: str, forward: str, runtime: str, tmp_path, extra: list[str] = (),
             http: int | None = None) -> tuple[GoFlagsProxy, str]:
    local = pick_port()
    admin = [f"--http-listen-address={HOST}:{http}"] if http else ["--http-disable"]
    args = ["--bootstrap-server-mapping", f"{upstream},{HOST}:{local}", "--forward-proxy", forward,
            *admin, "--kafka-dial-timeout", "3s", *extra]
    return GoFlagsProxy(args, runtime, tmp_path, local).start(), f"{HOST}:{local}"


def exchange(bootstrap: str, unique: str, lib: str = "confluent") -> None:
    c = client_lib(lib)
    topic = f"egress-{unique}"
    retry(lambda: c.create_topic(bootstrap, topic, 1), 30, what=f"create {topic}")
    produce_consume(c, bootstrap, topic, n=20)


def refused_within(bootstrap: str, seconds: float) -> float:
    """Send ApiVersions; the proxy must close the connection (its upstream failed) in time."""
    host, port = bootstrap.rsplit(":", 1)
    started = time.monotonic()
    with SaslWire(host, int(port), timeout=seconds) as wire:
        wire.send_only(18, 0, b"", flexible_header=False)
        closed, _ = wire.closed_by_peer(seconds)
    took = time.monotonic() - started
    assert closed, f"the connection was still open after {seconds}s"
    return took


def test_socks5_through_dante(shared_tansu, runtime, tmp_path, unique):
    dante = Danted(pick_port(), tmp_path).start()
    proxy, bootstrap = go_proxy(shared_tansu.bootstrap, f"socks5://{HOST}:{dante.port}", runtime, tmp_path)
    try:
        exchange(bootstrap, unique, lib="kafka-python" if runtime == "mio" else "confluent")
        assert f"{shared_tansu.port}" in dante.process.log_text(), "dante carried the broker connections"
    finally:
        proxy.stop()
        dante.stop()


def test_socks5_with_username_and_password_then_tls_and_sasl(sasl_ssl_front, runtime, tmp_path, unique):
    socks = Microsocks(pick_port(), "alice", "s3cr3t", tmp_path).start()
    tls_sasl = ["--tls-enable", "--tls-insecure-skip-verify", "--sasl-enable",
                "--sasl-username", "myuser", "--sasl-password", "mysecret"]
    proxy, bootstrap = go_proxy(sasl_ssl_front.bootstrap, f"socks5://alice:s3cr3t@{HOST}:{socks.port}", runtime,
                                tmp_path, tls_sasl)
    try:
        exchange(bootstrap, unique)
        assert "logged in at the broker" in proxy.log_text()
    finally:
        proxy.stop()
    # The same with a wrong password: refused by the SOCKS server, said plainly, in bounded time.
    wrong, bootstrap = go_proxy(sasl_ssl_front.bootstrap, f"socks5://alice:wrong@{HOST}:{socks.port}", runtime,
                                tmp_path, tls_sasl)
    try:
        assert refused_within(bootstrap, 10) < 10
        assert "the SOCKS5 proxy refused the username and password" in wrong.log_text()
    finally:
        wrong.stop()
        socks.stop()


def test_http_connect_through_tinyproxy(shared_tansu, runtime, tmp_path, unique):
    tiny = Tinyproxy(pick_port(), [shared_tansu.port], tmp_path).start()
    proxy, bootstrap = go_proxy(shared_tansu.bootstrap, f"http://{HOST}:{tiny.port}", runtime, tmp_path)
    try:
        exchange(bootstrap, unique, lib="confluent" if runtime == "mio" else "kafka-python")
        assert "CONNECT" in tiny.process.log_text()
    finally:
        proxy.stop()
        tiny.stop()


def test_refused_connect_and_dead_forward_proxy_end_in_bounded_time(shared_tansu, runtime, tmp_path):
    # tinyproxy allows CONNECT to another port only: 403 for the broker.
    tiny = Tinyproxy(pick_port(), [shared_tansu.port + 1], tmp_path).start()
    http = pick_port()
    refused, bootstrap = go_proxy(shared_tansu.bootstrap, f"http://{HOST}:{tiny.port}", runtime, tmp_path, http=http)
    try:
        assert refused_within(bootstrap, 10) < 10
        assert "the HTTP proxy refused CONNECT: 403" in refused.log_text(), refused.log_text()[-2000:]
        wait_until(lambda: Admin(http).scrape().value("kafka_proxy_upstream_connect_failures_total",
                                                      broker=shared_tansu.bootstrap, reason="forward_proxy") >= 1,
                   5, what="the refused tunnel counted as a connect failure")
    finally:
        refused.stop()
        tiny.stop()
    # Nothing listens where the forward proxy should be.
    dead, bootstrap = go_proxy(shared_tansu.bootstrap, f"socks5://{HOST}:{pick_port()}", runtime, tmp_path)
    try:
        assert refused_within(bootstrap, 10) < 10
        assert "via socks5://" in dead.log_text(), dead.log_text()[-2000:]
    finally:
        dead.stop()
