"""Hostile clients, on both runtimes, against the real binary in front of real tansu.

What a client may not do to the proxy: leak sessions by sending part of a request and
closing (issue 15's mio leak: a short read hid the end of stream under edge-triggered
epoll), spend the broker's connections before it earned one (idle, partial or
unauthenticated clients), hold a connection with a trickling request, reach the broker
with API keys Kafka does not define or garbage headers, make the proxy allocate for
oversize or negative frames, try passwords at line rate, or be left connected to a
proxy whose broker died. And what it may: pipeline 10,000 requests.

File descriptors are counted in /proc/PID/fd, broker connections in the kernel's socket
table on the broker's port. Budgets have margins for a loaded 2-core CI machine.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time

import pytest

from kafka_e2e.hostile import (
    broker_connections,
    close_wait_from,
    closed_by_peer,
    connect,
    open_fds,
    plain_login,
    read_frame,
    request_frame,
    rss_kib,
    settle,
    tls_context,
)
from kafka_e2e.ports import HOST
from kafka_e2e.sasl_proxy import SaslProxy, proxy_config, reserve_layout
from kafka_e2e.tansu import TANSU_NODE_ID
from kafka_e2e.tls_fixtures import track
from kafka_e2e.wire import KafkaWire, _string

# Short enough to be seen in a test, long enough for a loaded machine.
READ_TIMEOUT_MS = 2000
LIMITS = {"request_read_timeout_ms": READ_TIMEOUT_MS}
DOWN_PLAINTEXT = {"security_protocol": "PLAINTEXT"}


def start_proxy(tmp_path, tansu, runtime, downstream=None, **sections) -> SaslProxy:
    layout = reserve_layout()
    text = proxy_config([tansu.bootstrap], layout, downstream or DOWN_PLAINTEXT,
                        limits={**LIMITS, **sections.pop("limits", {})}, **sections)
    proxy = SaslProxy(tmp_path / "proxy", text, layout, runtime)
    return proxy


@pytest.fixture
def hostile_proxy(request, tmp_path, direct_tansu, runtime, real_proxy):
    """The proxy (PLAINTEXT both sides, a 2 s request read timeout) in front of tansu,
    with the cluster learned (its probe done) and no client connected yet."""
    proxy = start_proxy(tmp_path, direct_tansu, runtime)
    track(request, proxy.process)
    proxy.start()
    settle(lambda: "broker learned" in proxy.log_text(), 10)
    settle(lambda: broker_connections(direct_tansu.port) == 0, 5)
    yield proxy
    proxy.stop()


def baseline(proxy: SaslProxy, tansu) -> tuple[int, int]:
    """(open fds, broker connections) of an idle proxy, once steady."""
    pid = proxy.process.pid
    settle(lambda: broker_connections(tansu.port) == 0, 5)
    return open_fds(pid), broker_connections(tansu.port)


def test_partial_request_then_close_leaves_nothing(hostile_proxy, direct_tansu):
    """1,000 clients send 2 bytes (or 6: a size and part of a header) and close at once:
    within 2 s the proxy holds no extra fd, no half-closed client socket, no broker
    connection. Before the fix the mio runtime kept each one (CLOSE-WAIT plus a broker
    connection) until the 600 s idle timeout."""
    proxy, port = hostile_proxy, hostile_proxy.layout.bootstrap_port(0)
    pid = proxy.process.pid
    fds0, up0 = baseline(proxy, direct_tansu)
    for i in range(1000):
        s = connect(port)
        s.sendall(b"\x00\x00" if i % 2 else b"\x00\x00\x00\x20\x00\x12")
        s.close()
    t0 = time.monotonic()
    (_, waited) = settle(lambda: open_fds(pid) <= fds0 and close_wait_from(port) == 0, 10)
    fds, half_closed = open_fds(pid), close_wait_from(port)
    assert fds <= fds0 and half_closed == 0, (
        f"{fds - fds0} extra fds and {half_closed} CLOSE-WAIT sockets {time.monotonic() - t0:.1f}s later")
    assert waited < 2.0, f"took {waited:.2f}s to let go of 1,000 dead clients"
    assert broker_connections(direct_tansu.port) == up0 == 0


def test_partial_request_then_close_after_tls_handshake(request, tmp_path, direct_tansu, runtime,
                                                         real_proxy, pki):
    """The same after a completed TLS handshake: 200 clients, nothing left within 2 s."""
    pki.copy_to(tmp_path / "proxy")
    downstream = {"security_protocol": "SSL",
                  "tls": {"enabled": True, "cert": "server.pem", "key": "server_key.pem"}}
    proxy = start_proxy(tmp_path, direct_tansu, runtime, downstream)
    track(request, proxy.process)
    proxy.start()
    try:
        port, pid = proxy.layout.bootstrap_port(0), proxy.process.pid
        fds0, _ = baseline(proxy, direct_tansu)
        ctx = tls_context(pki.ca)
        for _ in range(200):
            raw = connect(port)
            s = ctx.wrap_socket(raw, server_hostname="localhost")
            s.sendall(b"\x00\x00")
            s.close()
        # Broken TLS too: a ClientHello cut short, then garbage.
        for junk in (b"\x16\x03\x01\x02\x00\x01", b"GET / HTTP/1.1\r\n\r\n"):
            for _ in range(50):
                s = connect(port)
                s.sendall(junk)
                s.close()
        (_, waited) = settle(lambda: open_fds(pid) <= fds0 and close_wait_from(port) == 0, 10)
        assert open_fds(pid) <= fds0, f"{open_fds(pid) - fds0} extra fds"
        assert close_wait_from(port) == 0
        assert waited < 2.0, f"took {waited:.2f}s"
        assert broker_connections(direct_tansu.port) == 0, "no broker connection for any of them"
    finally:
        proxy.stop()


def test_idle_and_partial_clients_open_no_broker_connection(hostile_proxy, direct_tansu):
    """100 clients connect (half send part of a request) and wait: the broker sees no
    connection from the proxy. One complete request then opens exactly one."""
    port = hostile_proxy.layout.bootstrap_port(0)
    clients = []
    try:
        for i in range(100):
            s = connect(port)
            if i % 2:
                s.sendall(request_frame(18, 0, 1)[:7])
            clients.append(s)
        time.sleep(0.5)
        assert broker_connections(direct_tansu.port) == 0
        with KafkaWire(HOST, port) as w:
            assert w.api_versions(0).error_code == 0
            assert broker_connections(direct_tansu.port) == 1
    finally:
        for s in clients:
            s.close()


def test_trickling_request_is_closed_at_its_deadline(hostile_proxy, direct_tansu):
    """One byte every 0.3 s resets the idle timer each time; the request read deadline
    (2 s here) closes the connection anyway, with a logged reason."""
    s = connect(hostile_proxy.layout.bootstrap_port(0))
    frame = request_frame(3, 1, 1, struct.pack(">i", -1))
    t0 = time.monotonic()
    closed_at = None
    for byte in frame:
        try:
            s.sendall(bytes([byte]))
        except OSError:
            closed_at = time.monotonic() - t0
            break
        if closed_by_peer(s, 0.3) is not None:
            closed_at = time.monotonic() - t0
            break
    s.close()
    assert closed_at is not None, "the trickling request was never cut off"
    assert READ_TIMEOUT_MS / 1000 - 0.1 <= closed_at < READ_TIMEOUT_MS / 1000 + 2.0, closed_at
    settle(lambda: "whole request within" in hostile_proxy.log_text(), 5)
    assert "client did not send a whole request within 2000 ms" in hostile_proxy.log_text()
    assert broker_connections(direct_tansu.port) == 0


def test_unknown_api_keys_and_garbage_headers_are_refused(hostile_proxy, direct_tansu):
    """Never forwarded: an API key Kafka does not define, a negative version, a client
    id longer than the frame. Each closes its connection promptly with a WARN line."""
    port = hostile_proxy.layout.bootstrap_port(0)
    frames = {
        "unknown api key": request_frame(31000, 0, 1, b"hello"),
        "negative version": request_frame(3, -7, 1),
        "garbage header": struct.pack(">i", 11) + bytes([0, 3, 0, 1, 0, 0, 0, 1, 1, 44, ord("x")]),
    }
    for what, frame in frames.items():
        s = connect(port)
        s.sendall(frame)
        assert closed_by_peer(s, 2.0) is not None, f"{what}: not closed"
        s.close()
    assert broker_connections(direct_tansu.port) == 0, "garbage reached the broker"
    log = hostile_proxy.log_text()
    assert any("WARN" in l and "unknown api_key(31000) v0" in l for l in log.splitlines()), log[-2000:]
    assert any("WARN" in l and "malformed header" in l for l in log.splitlines()), log[-2000:]


def test_oversize_and_negative_frames_allocate_nothing(hostile_proxy, direct_tansu):
    """Size prefixes of 2 GiB and -2: closed at once, logged, and the proxy's memory
    does not grow by what they announced."""
    port, pid = hostile_proxy.layout.bootstrap_port(0), hostile_proxy.process.pid
    rss0 = rss_kib(pid)
    for prefix in (struct.pack(">i", 0x7FFFFFFF), struct.pack(">i", -2)) * 20:
        s = connect(port)
        s.sendall(prefix + b"\x00" * 64)
        assert closed_by_peer(s, 2.0) is not None
        s.close()
    assert rss_kib(pid) - rss0 < 32 * 1024, f"RSS grew by {rss_kib(pid) - rss0} KiB"
    log = hostile_proxy.log_text()
    assert "exceeds the limit" in log and "negative frame size -2" in log


def test_ten_thousand_pipelined_requests_are_all_answered_in_order(hostile_proxy):
    """10,000 ApiVersions requests in one write: 10,000 answers, in order."""
    s = connect(hostile_proxy.layout.bootstrap_port(0), timeout=30)
    n = 10_000
    payload = b"".join(request_frame(18, 0, i) for i in range(n))
    sender = threading.Thread(target=s.sendall, args=(payload,), daemon=True)
    sender.start()
    for i in range(n):
        body = read_frame(s)
        assert struct.unpack(">i", body[:4])[0] == i
    sender.join(10)
    s.close()


def test_dead_broker_reaches_the_client_within_a_second(request, tmp_path, runtime, real_proxy):
    """SIGKILL tansu under a connected client (idle, and with a Fetch waiting at the
    broker): the proxy closes the client connection as promptly as the broker's own
    death would have (under 1 s)."""
    from kafka_e2e.ports import pick_port
    from kafka_e2e.tansu import TansuBroker

    tansu = TansuBroker(pick_port(), tmp_path / "tansu-dying")
    track(request, tansu.process)
    tansu.start()
    proxy = start_proxy(tmp_path, tansu, runtime)
    track(request, proxy.process)
    proxy.start()
    try:
        tansu.create_topic("dying", 1)
        settle(lambda: "broker learned" in proxy.log_text(), 10)
        port = proxy.layout.broker_port(TANSU_NODE_ID)
        idle = KafkaWire(HOST, port)
        idle.api_versions(0)
        fetching = KafkaWire(HOST, port)
        fetching.metadata(1)
        fetch = (struct.pack(">iiii", -1, 20_000, 1, 1 << 20) + b"\x00" + struct.pack(">i", 1)
                 + _string("dying") + struct.pack(">i", 1) + struct.pack(">iqi", 0, 0, 1 << 20))
        fetching.send_only(1, 4, fetch, False)
        time.sleep(0.3)
        tansu.kill()
        for name, w in (("idle", idle), ("fetching", fetching)):
            took = closed_by_peer(w.sock, 5.0)
            w.close()
            assert took is not None, f"{name}: still connected 5 s after the broker died"
            assert took < 1.0, f"{name}: the client learned of the dead broker after {took:.2f}s"
    finally:
        proxy.stop()
        tansu.stop()


def test_login_brute_force_is_throttled(request, tmp_path, direct_tansu, runtime, real_proxy):
    """A proxy that authenticates (SASL PLAIN): 20 parallel connections from 127.0.0.1
    guess passwords for 4 s, reconnecting after each refusal; fewer than 20 guesses a
    second get an answer. Meanwhile alice logs in from 127.0.0.2 at once, and no
    unauthenticated client cost the broker a connection."""
    downstream = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanisms": ["PLAIN"],
                  "credentials": {"users": {"alice": "alice-secret"}}}
    proxy = start_proxy(tmp_path, direct_tansu, runtime, downstream)
    track(request, proxy.process)
    proxy.start()
    try:
        port = proxy.layout.bootstrap_port(0)
        settle(lambda: "broker learned" in proxy.log_text(), 10)
        settle(lambda: broker_connections(direct_tansu.port) == 0, 5)
        answered = []
        stop = time.monotonic() + 4.0
        peak_broker = [0]

        def guess(n: int):
            while time.monotonic() < stop:
                try:
                    with connect(port, timeout=6) as s:
                        s.sendall(request_frame(18, 0, 0))
                        read_frame(s)  # ApiVersions, answered by the proxy
                        code = plain_login(s, "alice", f"guess-{n}-{len(answered)}")
                        if time.monotonic() < stop:
                            answered.append(code)
                except (OSError, ConnectionError):
                    pass
                peak_broker[0] = max(peak_broker[0], broker_connections(direct_tansu.port))

        threads = [threading.Thread(target=guess, args=(n,), daemon=True) for n in range(20)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        t0 = time.monotonic()
        with connect(port, source="127.0.0.2") as s:
            assert plain_login(s, "alice", "alice-secret") == 0
        assert time.monotonic() - t0 < 1.0, "the right password from another address waited"
        for t in threads:
            t.join(15)
        assert all(code == 58 for code in answered), set(answered)
        rate = len(answered) / 4.0
        assert rate < 20, f"{rate:.1f} wrong passwords answered per second"
        assert len(answered) >= 4, "throttled, not blocked"
        assert peak_broker[0] == 0, "unauthenticated clients opened broker connections"
    finally:
        proxy.stop()
