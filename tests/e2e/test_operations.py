"""Operating the proxy, on each runtime: the admin endpoint (metrics scraped with
Prometheus' parser, health, readiness), request deadlines against a broker that
stops answering, the graceful drain on SIGTERM, and a restart with no client error
(two processes on the same ports through SO_REUSEPORT)."""

from __future__ import annotations

import json
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kafka_e2e.admin import Admin, admin_config
from kafka_e2e.clients import client_lib, retry
from kafka_e2e.ports import HOST, pick_port
from kafka_e2e.procs import ManagedProcess, port_accepts, wait_until
from kafka_e2e.proxy import KafkaProxy, PortLayout, render_config
from kafka_e2e.scenarios import consume_until, stream_through_stages
from kafka_e2e.tansu import TANSU_NODE_ID, TansuBroker
from kafka_e2e.wire import KafkaWire, WireError

E2E_DIR = Path(__file__).resolve().parent
LIST_OFFSETS = 2


def _span(layout: PortLayout) -> set[int]:
    return set(range(layout.base, layout.broker_port(layout.max_broker_id) + 1))


def _start_proxy(request, tmp_path: Path, upstream: str, layout: PortLayout, runtime: str, extra: str,
                 name: str = "proxy") -> KafkaProxy:
    config = tmp_path / f"{name}.yaml"
    config.write_text(render_config([upstream], layout) + extra)
    proxy = KafkaProxy(config, layout, runtime, tmp_path / name)
    request.addfinalizer(proxy.stop)
    proxy.start()
    return proxy


def _fault_relay(request, tmp_path: Path, upstream: str, avoid: set[int], hold_seconds: float) -> str:
    """A relay to `upstream` that holds ListOffsets responses (`-1`: forever); its address."""
    port = pick_port(avoid=avoid)
    relay = ManagedProcess(
        "fault-relay",
        [sys.executable, "-m", "kafka_e2e.fault_relay", "--listen", f"{HOST}:{port}", "--upstream", upstream,
         "--hold-api", str(LIST_OFFSETS), "--hold-seconds", str(hold_seconds)],
        tmp_path / "fault-relay.log", cwd=E2E_DIR,
    )
    request.addfinalizer(relay.stop)
    relay.start()
    relay.wait_ready(HOST, port, 10)
    return f"{HOST}:{port}"


def _list_offsets(wire: KafkaWire) -> int:
    """Sends ListOffsets v1 (no topics) without waiting; its correlation id."""
    wire.api_versions(0)
    wire.send_only(LIST_OFFSETS, 1, struct.pack(">ii", -1, 0), False)
    return wire.correlation


def _read_response(wire: KafkaWire) -> int:
    """The correlation id of the next response."""
    (size,) = struct.unpack(">i", wire._recv_exact(4))
    return struct.unpack(">i", wire._recv_exact(size)[:4])[0]


def test_metrics_count_a_round_trip(request, tmp_path, tansu, layout, runtime, proxy_binary, unique):
    """Scrape /metrics before and after producing and consuming 200 records of 1000 bytes:
    the Go proxy's families and ours moved by the right amounts."""
    admin = Admin(pick_port(avoid=_span(layout) | {tansu.port}))
    proxy = _start_proxy(request, tmp_path, tansu.bootstrap, layout, runtime, admin_config(admin.port))
    wait_until(lambda: admin.ready()[0] == 200, 15, what="/ready to answer 200")
    assert admin.get("/health")[0] == 200
    before = admin.scrape()
    assert before.value("kafka_proxy_build_info", runtime=runtime) == 1

    lib = client_lib("confluent")
    topic, n, size = f"metrics-{unique}", 200, 1000
    retry(lambda: lib.create_topic(proxy.bootstrap, topic, 1), 30, what="create topic")
    producer = lib.producer(proxy.bootstrap, topic)
    for i in range(n):
        producer.send(b"k", f"{i:06d}".encode().ljust(size, b"x"))
    producer.flush(30)
    assert producer.counts() == (n, 0), producer.failed[:3]
    producer.close()
    consumer = lib.consumer(proxy.bootstrap, topic, f"g-{unique}")
    assert len(consume_until(consumer, n, 30)) == n
    consumer.close()
    del producer, consumer

    def settled():
        s = admin.scrape()
        return s if s.value("proxy_opened_connections") == 0 and s.value("kafka_proxy_client_connections_active") == 0 else None

    try:
        after = wait_until(settled, 15, interval=0.2, what="every client connection to close and be folded")
    except TimeoutError:
        s = admin.scrape()
        raise AssertionError(f"open: {[(n, l, v) for n, l, v in s.samples if 'opened' in n or n == 'kafka_proxy_client_connections_active']}")

    def delta(name, **labels):
        return after.value(name, **labels) - before.value(name, **labels)

    broker = tansu.bootstrap  # tansu advertises itself: every connection goes there
    produces = delta("proxy_requests_total", broker=broker, api_key="0")
    assert produces >= 1 and delta("proxy_requests_total", api_key="1") >= 1, after.series("proxy_requests_total")
    assert delta("proxy_requests_total", api_key="19") >= 1, "CreateTopics"
    assert delta("proxy_requests_total", api_key="18") >= 2, "ApiVersions, once per connection"
    assert delta("kafka_proxy_request_duration_seconds_count", api="Produce") == produces, \
        "every acks=all Produce got a response, and its latency was observed"
    assert delta("proxy_requests_bytes", broker=broker) >= n * size
    assert delta("proxy_responses_bytes", broker=broker) >= n * size
    # Plaintext on both sides: what the client sent is exactly its request frames.
    assert delta("kafka_proxy_received_bytes_total", side="client") == delta("proxy_requests_bytes")
    assert delta("kafka_proxy_sent_bytes_total", side="client") >= n * size
    assert delta("kafka_proxy_sent_bytes_total", side="broker") == delta("proxy_requests_bytes")
    assert delta("proxy_connections_total", broker=broker) >= 3, "admin, producer, consumer"
    assert delta("kafka_proxy_client_connections_total", listener=f"broker-{TANSU_NODE_ID}") >= 1
    assert delta("kafka_proxy_connections_closed_total", reason="client_closed") >= 3
    assert after.value("kafka_proxy_ready") == 1 and after.value("kafka_proxy_brokers") == 1
    assert after.value("kafka_proxy_listeners") == 2, "bootstrap and broker 111"
    assert after.types["kafka_proxy_request_duration_seconds"] == "histogram"
    assert after.types["proxy_requests_bytes"] == "counter", "the Go proxy's name and type"
    assert after.value("kafka_proxy_request_timeouts_total") == 0


def test_ready_then_a_graceful_drain(request, tmp_path, layout, runtime, proxy_binary):
    """/ready is 503 until the cluster is reachable, 200 after; SIGTERM turns it 503 at once,
    the listeners stop accepting, a request already forwarded gets its response, the
    connection then closes cleanly and the process exits 0."""
    span = _span(layout)
    tansu = TansuBroker(pick_port(avoid=span), tmp_path / "tansu")
    request.addfinalizer(tansu.stop)
    relay = _fault_relay(request, tmp_path, tansu.bootstrap, span | {tansu.port}, hold_seconds=3)
    admin = Admin(pick_port(avoid=span | {tansu.port, int(relay.rsplit(":", 1)[1])}))
    proxy = _start_proxy(request, tmp_path, relay, layout, runtime,
                         admin_config(admin.port, drain_timeout_ms=20000))
    wait_until(lambda: "have not been learned" in admin.ready()[1], 10, what="/ready to say the cluster is unknown")
    assert admin.ready()[0] == 503
    assert admin.get("/health")[0] == 200, "alive though not ready"
    tansu.start()
    wait_until(lambda: admin.ready()[0] == 200, 45, interval=0.2, what="/ready 200 once the cluster is learned")

    wire = KafkaWire(HOST, layout.bootstrap_port(0), timeout=15)
    request.addfinalizer(wire.close)
    correlation = _list_offsets(wire)  # the relay holds its response for 3 s
    time.sleep(0.3)
    proxy.process.signal(signal.SIGTERM)
    t0 = time.monotonic()
    wait_until(lambda: admin.ready() == (503, "not ready: draining: this instance is shutting down\n"), 2,
               interval=0.02, what="/ready to turn 503 at once")
    wait_until(lambda: not port_accepts(HOST, layout.bootstrap_port(0)), 3, what="the listener to close")
    assert _read_response(wire) == correlation, "the response to the forwarded request reached the client"
    assert time.monotonic() - t0 < 10
    with pytest.raises(WireError, match="closed by peer"):
        _read_response(wire)  # then a clean end of stream, at the request boundary
    proxy.process.proc.wait(timeout=10)
    assert proxy.process.returncode() == 0
    log = proxy.log_text()
    assert "termination signal: draining" in log and "drain deadline" not in log, log[-3000:]


def test_a_drain_deadline_cuts_and_says_what(request, tmp_path, tansu, layout, runtime, proxy_binary):
    """A request the broker never answers: the drain ends at limits.drain_timeout_ms, the
    connection is cut, and the log names it (client id, unanswered requests)."""
    span = _span(layout)
    relay = _fault_relay(request, tmp_path, tansu.bootstrap, span | {tansu.port}, hold_seconds=-1)
    proxy = _start_proxy(request, tmp_path, relay, layout, runtime, "limits:\n  drain_timeout_ms: 1500\n")
    wire = KafkaWire(HOST, layout.bootstrap_port(0), timeout=15, client_id="drain-victim")
    request.addfinalizer(wire.close)
    _list_offsets(wire)
    time.sleep(0.3)
    t0 = time.monotonic()
    proxy.process.signal(signal.SIGTERM)
    proxy.process.proc.wait(timeout=15)
    assert 1.4 < time.monotonic() - t0 < 10
    with pytest.raises(WireError):
        _read_response(wire)
    log = proxy.log_text()
    cut = [line for line in log.splitlines() if "closing a connection that had not finished" in line]
    assert len(cut) == 1, log[-3000:]
    assert 'client_id="drain-victim"' in cut[0] or "client_id=drain-victim" in cut[0], cut[0]
    assert "unanswered_requests=1" in cut[0], cut[0]
    assert re.search(r"drain deadline reached: connections cut.*connections=1", log), log[-3000:]


def test_a_broker_that_stops_answering_trips_the_deadline(request, tmp_path, tansu, layout, runtime,
                                                         proxy_binary):
    """The broker swallows one response: at limits.request_timeout_ms the client's connection
    pair closes, the log names broker, API, correlation id and client id, and it is counted."""
    span = _span(layout)
    relay = _fault_relay(request, tmp_path, tansu.bootstrap, span | {tansu.port}, hold_seconds=-1)
    admin = Admin(pick_port(avoid=span | {tansu.port, int(relay.rsplit(":", 1)[1])}))
    proxy = _start_proxy(request, tmp_path, relay, layout, runtime,
                         admin_config(admin.port, request_timeout_ms=2000))
    wire = KafkaWire(HOST, layout.bootstrap_port(0), timeout=15, client_id="deadline-victim")
    request.addfinalizer(wire.close)
    correlation = _list_offsets(wire)
    t0 = time.monotonic()
    with pytest.raises(WireError, match="closed by peer"):
        _read_response(wire)
    assert 1.9 < time.monotonic() - t0 < 8, "closed at the deadline, not before, not at the idle timeout"
    line = wait_until(
        lambda: next((l for l in proxy.log_text().splitlines() if "did not answer" in l), None), 5,
        what="the request timeout in the log")
    assert f"broker {relay} did not answer ListOffsets(2) v1 (correlation id {correlation})" in line, line
    assert "deadline-victim" in line, f"the client id is in the line: {line}"
    scrape = wait_until(lambda: (s := admin.scrape()).value("kafka_proxy_request_timeouts_total") and s, 5,
                        what="the timeout in /metrics")
    assert scrape.value("kafka_proxy_request_timeouts_total", api="ListOffsets") == 1
    assert scrape.value("kafka_proxy_connections_closed_total", reason="request_timeout") == 1


def _restart_stages(old: KafkaProxy, new: KafkaProxy, moments: dict, before: int = 300) -> list:
    """The upgrade procedure as stages of a running stream (each returns True when done):
    start the new process once `before` records are acknowledged, SIGTERM the old one once
    the new one listens on the broker port, then wait for the old one to exit."""

    def start_new(acked):
        if acked < before:
            return False
        new.process.start()
        moments["new started"] = time.monotonic()
        return True

    def stop_old_once_new_serves(acked):
        if f"listening listener=broker {TANSU_NODE_ID}" not in new.log_text():
            assert new.process.running(), new.log_text()[-3000:]
            return False
        old.process.signal(signal.SIGTERM)
        moments["old terminated"] = time.monotonic()
        return True

    def old_exited(acked):
        if old.process.running():
            return False
        moments["old exited"] = time.monotonic()
        return True

    return [start_new, stop_old_once_new_serves, old_exited]


def _two_proxies(request, tmp_path, tansu, layout, runtime) -> tuple[KafkaProxy, KafkaProxy]:
    """The old proxy (started) and the new one (not yet), with one configuration file."""
    config = tmp_path / "proxy.yaml"
    admin_port = pick_port(avoid=_span(layout) | {tansu.port})
    config.write_text(render_config([tansu.bootstrap], layout) + admin_config(admin_port, drain_timeout_ms=20000))
    old = KafkaProxy(config, layout, runtime, tmp_path / "old")
    new = KafkaProxy(config, layout, runtime, tmp_path / "new")
    for p in (old, new):
        request.addfinalizer(p.stop)
    old.start()
    return old, new


def _check_restart(old: KafkaProxy, new: KafkaProxy, moments: dict) -> None:
    assert old.process.returncode() == 0, old.log_text()[-3000:]
    assert "drain deadline" not in old.log_text(), "the old process drained within its deadline"
    assert "termination signal: draining" in old.log_text()
    assert new.process.running()
    print(f"old process drained in {moments['old exited'] - moments['old terminated']:.1f} s")


def test_restart_with_no_client_error(request, tmp_path, tansu, layout, runtime, lib, proxy_binary, unique):
    """The upgrade procedure: a second kafka-proxy with the same configuration starts on the
    same ports (SO_REUSEPORT) while the first runs, then SIGTERM drains the first. A producer
    (acks=all) and a group consumer streaming through it all along see no delivery error,
    and every acknowledged record is consumed."""
    old, new = _two_proxies(request, tmp_path, tansu, layout, runtime)
    moments: dict = {}
    r = stream_through_stages(lib, old.bootstrap, f"restart-{unique}", f"g-{unique}",
                              _restart_stages(old, new, moments), after=300, timeout=120)
    assert not r.failed, f"{len(r.failed)} deliveries failed, e.g. {r.failed[:3]}"
    assert not r.lost, f"{len(r.lost)} acknowledged records never consumed, e.g. {r.lost[:5]}"
    assert r.acked_after_disruption >= 300
    _check_restart(old, new, moments)


def test_restart_with_no_kafkajs_error(request, tmp_path, tansu, layout, runtime, proxy_binary, unique):
    """The same upgrade procedure under kafkajs 2.2.4 (Node), the third client library."""
    node, node_path = os.environ.get("NODE"), os.environ.get("KAFKAJS_NODE_PATH")
    if not node or not node_path or not Path(node_path, "kafkajs").is_dir():
        pytest.fail("kafkajs missing: run scripts/install-test-deps.sh and source its env.sh")
    old, new = _two_proxies(request, tmp_path, tansu, layout, runtime)
    script = E2E_DIR / "tools" / "kafkajs_stream.js"
    stream = subprocess.Popen(
        [node, str(script), old.bootstrap, f"restart-js-{unique}", f"g-js-{unique}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "NODE_PATH": node_path},
    )
    request.addfinalizer(lambda: stream.poll() is None and stream.kill())
    lines: list[dict] = []
    reader = threading.Thread(target=lambda: [lines.append(json.loads(l)) for l in stream.stdout
                                              if l.startswith("{")], daemon=True)
    reader.start()
    acked = lambda: lines[-1].get("acked", 0) if lines else 0  # noqa: E731
    moments: dict = {}
    stages = _restart_stages(old, new, moments)
    deadline = time.monotonic() + 120
    while stages:
        assert time.monotonic() < deadline, f"stages left: {len(stages)}; last: {lines[-1:]}"
        assert stream.poll() is None, f"kafkajs stream exited: {lines[-3:]}"
        if stages[0](acked()):
            stages.pop(0)
        time.sleep(0.1)
    mark = acked()
    wait_until(lambda: acked() >= mark + 300, 60, what="300 more records acknowledged after the restart")
    stream.stdin.write("stop\n")
    stream.stdin.flush()
    stream.wait(timeout=90)
    reader.join(5)
    final = lines[-1]
    assert final.get("final"), lines[-3:]
    assert not final["failed"], f"{len(final['failed'])} deliveries failed, e.g. {final['failed'][:3]}"
    assert not final["lost"], f"{len(final['lost'])} acknowledged records never consumed, e.g. {final['lost'][:5]}"
    assert final["acked"] >= mark + 300
    _check_restart(old, new, moments)
