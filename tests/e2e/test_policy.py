"""The policy, on each runtime, between real clients (librdkafka, kafka-python) and tansu.

One proxy per runtime authenticates PLAIN principals itself and carries the policy:
DeleteTopics forbidden to everyone, Produce forbidden to alice, `slow` limited to 1 MB/s
of Produce (measured over 2 windows of 1 s), `limited` allowed one connection. bob is
not listed. A second, plaintext proxy per runtime has connection limits per process and
per client address, and is reloaded with SIGHUP.

- An admin client deleting a topic gets an authorization error; the topic still exists.
- alice's producer gets TOPIC_AUTHORIZATION_FAILED while bob produces and consumes through
  the same proxy.
- `slow` moves 10 MB in 8–12 s, its client reports the throttling, nothing is lost, and bob
  (librdkafka) moving 10 MB at the same time is not slowed.
- `limited` authenticates once; a second connection fails authentication with a message
  the client reports.
- Connections beyond the process and per-address limits are accepted and closed at once.
- SIGHUP applies a new forbidden list; `check` prints the effective policy per principal.

Each refusal and throttle shows in /metrics (scraped with Prometheus' parser).
"""

from __future__ import annotations

import json
import signal
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from kafka_e2e.admin import Admin
from kafka_e2e.clients import CLIENT_LIBS, ConfluentLib
from kafka_e2e.ports import HOST, pick_port
from kafka_e2e.procs import wait_until
from kafka_e2e.proxy import run_check
from kafka_e2e.sasl_clients import AssignedConsumer, Login, auth_failure_seen_by_client, produce_consume, \
    sasl_client_lib
from kafka_e2e.sasl_fixtures import start_proxy
from kafka_e2e.sasl_proxy import lines_with, proxy_config, reserve_layout
from kafka_e2e.wire import KafkaWire, WireError, _string

USERS = {name: f"{name}-Pa55" for name in ("admin", "alice", "bob", "slow", "limited")}

POLICY = {
    "forbidden_api_keys": ["DeleteTopics"],
    "quota_window_num": 2,
    "quota_window_size_seconds": 1,
    "principals": {
        "alice": {"forbidden_api_keys": ["Produce"]},
        "slow": {"producer_byte_rate": 1_000_000},
        "limited": {"max_connections": 1},
    },
}

# What the quota test moves: 10 000 records of 1 000 bytes.
RECORDS, RECORD_BYTES = 10_000, 1_000


def login(user: str) -> Login:
    return Login("PLAIN", user, USERS[user])


def _admin(layout, tansu) -> Admin:
    """An admin endpoint port clear of the proxy's span and the broker."""
    return Admin(pick_port(avoid=set(range(layout.base, layout.broker_port(layout.max_broker_id) + 1))
                           | {tansu.port}))


@pytest.fixture(scope="module")
def policy_proxy(request, tmp_path_factory, memory_tansu, sasl_runtime):
    """The SASL PLAIN proxy with POLICY, one per runtime, with its admin endpoint (`.admin`)."""
    workdir = tmp_path_factory.mktemp(f"policy-{sasl_runtime}")
    layout = reserve_layout()
    admin = _admin(layout, memory_tansu)
    downstream = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
                  "credentials": {"users": USERS}}
    text = proxy_config([memory_tansu.bootstrap], layout, downstream, policy=POLICY,
                        admin={"bind": f"{HOST}:{admin.port}"})
    proxy = start_proxy(request, workdir, text, layout, sasl_runtime, name="proxy-policy")
    proxy.admin = admin
    yield proxy
    proxy.stop()


def _metric(proxy, name: str, **labels: str) -> float:
    return proxy.admin.scrape().value(name, **labels)


def _metric_grows(proxy, before: float, name: str, by: float = 1, **labels: str) -> float:
    """Waits until the metric is at least `before + by` (sessions' counts are folded about
    once a second and when they end); its value then."""
    return wait_until(lambda: (v := _metric(proxy, name, **labels)) >= before + by and v, 10, interval=0.2,
                      what=f"{name}{labels} to grow by {by} from {before}")


def _topic(tansu, name: str) -> str:
    tansu.create_topic(name)
    return name


def _topic_exists(tansu, topic: str) -> bool:
    """Whether the broker lists `topic` (asked for every topic: a Metadata request
    naming it would create it, as tansu auto-creates topics)."""
    return topic in ConfluentLib().admin(tansu.bootstrap).list_topics(timeout=10).topics


# --------------------------------------------------------------------- forbidden APIs


def _delete_topic_error(lib_name: str, bootstrap: str, topic: str) -> str:
    """Deletes `topic` as `admin` through the proxy; the error the library reports."""
    lib = sasl_client_lib(lib_name, login("admin"))
    if lib_name == "confluent":
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000, **lib.extra})
        future = admin.delete_topics([topic], operation_timeout=10, request_timeout=15)[topic]
        try:
            future.result(timeout=20)
        except KafkaException as e:
            return f"{e.args[0].name()} ({e.args[0].code()})"
        return "deleted"
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=[bootstrap], request_timeout_ms=15000, **lib.extra)
    try:
        admin.delete_topics([topic], timeout_ms=10000)
    except Exception as e:  # kafka.errors.TopicAuthorizationFailedError
        return f"{type(e).__name__} ({getattr(e, 'errno', '?')})"
    finally:
        admin.close()
    return "deleted"


@pytest.mark.parametrize("lib_name", CLIENT_LIBS)
def test_deleting_a_topic_is_refused_with_an_authorization_error(policy_proxy, memory_tansu, lib_name, unique):
    topic = _topic(memory_tansu, f"keep-{unique}")
    mark = policy_proxy.mark()
    refusals = {"api": "DeleteTopics", "reason": "authorization_error"}
    before = _metric(policy_proxy, "kafka_proxy_policy_refusals_total", **refusals)
    error = _delete_topic_error(lib_name, policy_proxy.bootstrap, topic)
    assert error.endswith("(29)"), error
    assert "TOPIC_AUTHORIZATION_FAILED" in error or "TopicAuthorizationFailed" in error, error
    assert _topic_exists(memory_tansu, topic), "the topic is still there"
    refused = lines_with(policy_proxy.log_since(mark), "request forbidden by policy", "DeleteTopics(20)")
    assert len(refused) <= 1, "logged at most once a minute per principal and API"
    _metric_grows(policy_proxy, before, "kafka_proxy_policy_refusals_total", **refusals)


def _produce_failures(lib_name: str, user: str, bootstrap: str, topic: str, n: int = 3) -> list[str]:
    """Produces n records as `user`; the delivery errors (empty when all were acknowledged)."""
    producer = sasl_client_lib(lib_name, login(user)).producer(bootstrap, topic)
    try:
        for i in range(n):
            producer.send(b"k", f"v{i}".encode())
        producer.flush(20)
        wait_until(lambda: sum(producer.counts()) == n, 20, what="every delivery report")
    finally:
        producer.close()
    return [err for _, _, err in producer.failed]


@pytest.mark.parametrize("lib_name", CLIENT_LIBS)
def test_a_principal_forbidden_to_produce_is_refused_while_another_produces(policy_proxy, memory_tansu, lib_name,
                                                                           unique):
    topic = _topic(memory_tansu, f"forbidden-{unique}")
    refusals = {"api": "Produce", "reason": "authorization_error"}
    before = _metric(policy_proxy, "kafka_proxy_policy_refusals_total", **refusals)
    failures = _produce_failures(lib_name, "alice", policy_proxy.bootstrap, topic)
    assert len(failures) == 3, failures
    assert all("TOPIC_AUTHORIZATION_FAILED" in f or "TopicAuthorizationFailed" in f for f in failures), failures
    _metric_grows(policy_proxy, before, "kafka_proxy_policy_refusals_total", **refusals)
    # bob is not listed: the same proxy serves him as if there were no policy for him.
    exchanged = produce_consume(sasl_client_lib(lib_name, login("bob")), policy_proxy.bootstrap, topic, n=20)
    assert exchanged.consumed == 20


# --------------------------------------------------------------------- quotas


@dataclass
class Moved:
    seconds: float
    acked: int
    failed: int
    max_throttle_ms: float


def _move(lib_name: str, user: str, bootstrap: str, topic: str) -> Moved:
    """Produces RECORDS records of RECORD_BYTES as `user` and waits for every acknowledgement.

    The largest throttle the library reports: librdkafka in its statistics (per broker
    `throttle` window), kafka-python in its metrics (`throttle-time-max`).
    """
    seen = {"max": 0.0}
    if lib_name == "confluent":
        def on_stats(text):
            for broker in json.loads(text).get("brokers", {}).values():
                seen["max"] = max(seen["max"], broker.get("throttle", {}).get("max", 0))
        overrides = {"statistics.interval.ms": 200, "stats_cb": on_stats, "linger.ms": 20,
                     "batch.size": 262144, "queue.buffering.max.kbytes": 65536}
    else:
        overrides = {"linger_ms": 20, "batch_size": 1048576, "max_request_size": 2097152}
    producer = sasl_client_lib(lib_name, login(user)).producer(bootstrap, topic, **overrides)
    value = b"x" * RECORD_BYTES
    start = time.monotonic()
    try:
        for i in range(RECORDS):
            producer.send(f"{i % 7}".encode(), value[:-6] + f"{i:06d}".encode())
        producer.flush(40)
        wait_until(lambda: sum(producer.counts()) >= RECORDS, 40, interval=0.05, what="every acknowledgement")
        seconds = time.monotonic() - start
        if lib_name == "kafka-python":
            for group in producer.p.metrics().values():
                for name, value_ in group.items():
                    if name.endswith("throttle-time-max") and value_ == value_ and value_ != float("-inf"):
                        seen["max"] = max(seen["max"], value_)
        else:
            deadline = time.monotonic() + 2
            while seen["max"] == 0 and time.monotonic() < deadline:
                producer.p.poll(0.2)  # one more statistics report
    finally:
        producer.close()
    acked, failed = producer.counts()
    return Moved(seconds, acked, failed, seen["max"])


def _count(lib_name: str, bootstrap: str, topic: str, want: int) -> int:
    """Reads `topic` back (as bob) until `want` distinct values are seen or 30 s pass."""
    consumer = AssignedConsumer(sasl_client_lib(lib_name, login("bob")), bootstrap, topic)
    seen: set[bytes] = set()
    deadline = time.monotonic() + 30
    try:
        while len(seen) < want and time.monotonic() < deadline:
            seen.update(consumer.poll(0.5))
    finally:
        consumer.close()
    return len(seen)


@pytest.mark.parametrize("lib_name", CLIENT_LIBS)
def test_a_producer_quota_is_enforced_without_slowing_anyone_else(policy_proxy, memory_tansu, lib_name, unique):
    slow_topic = _topic(memory_tansu, f"slow-{unique}")
    fast_topic = _topic(memory_tansu, f"fast-{unique}")
    throttled_before = _metric(policy_proxy, "kafka_proxy_quota_throttle_seconds_total", api="Produce")
    with ThreadPoolExecutor(max_workers=2) as pool:
        slow = pool.submit(_move, lib_name, "slow", policy_proxy.bootstrap, slow_topic)
        time.sleep(0.5)  # both are moving when bob starts
        # bob produces with librdkafka whatever the limited client is: its C threads leave
        # kafka-python (pure Python) the interpreter, so each is bounded only by the proxy.
        fast = pool.submit(_move, "confluent", "bob", policy_proxy.bootstrap, fast_topic)
        slow, fast = slow.result(timeout=90), fast.result(timeout=90)
    megabytes = RECORDS * RECORD_BYTES / 1e6
    print(f"{lib_name}: slow {megabytes:.0f} MB in {slow.seconds:.1f} s (max throttle {slow.max_throttle_ms} ms), "
          f"bob in {fast.seconds:.1f} s")
    assert (slow.acked, slow.failed) == (RECORDS, 0), slow
    assert 8.0 <= slow.seconds <= 12.0, f"1 MB/s for {megabytes} MB: {slow}"
    assert slow.max_throttle_ms > 0, f"the client reports throttling: {slow}"
    # bob is never throttled, and (started half a second later) finishes first.
    assert (fast.acked, fast.failed) == (RECORDS, 0), fast
    assert fast.max_throttle_ms == 0, f"bob is not limited: {fast}"
    assert fast.seconds + 0.5 < slow.seconds, f"bob is not slowed to the quota: {fast} vs {slow}"
    assert _count(lib_name, policy_proxy.bootstrap, slow_topic, RECORDS) == RECORDS, "nothing is lost"
    # Most of the time was spent throttled, and the metrics say so.
    _metric_grows(policy_proxy, throttled_before, "kafka_proxy_quota_throttle_seconds_total", by=4, api="Produce")


# --------------------------------------------------------------------- connections per principal


def _authenticate(host: str, port: int, user: str, password: str) -> tuple[KafkaWire, int, str]:
    """A raw connection authenticated with SaslHandshake v1 + SaslAuthenticate v1 (PLAIN):
    the connection, the SaslAuthenticate error code and message."""
    wire = KafkaWire(host, port, timeout=10)
    handshake = wire.request(17, 1, _string("PLAIN"), flexible_header=False)
    assert struct.unpack(">h", handshake[:2])[0] == 0, handshake
    token = f"\0{user}\0{password}".encode()
    reply = wire.request(36, 1, struct.pack(">i", len(token)) + token, flexible_header=False)
    error = struct.unpack(">h", reply[:2])[0]
    (length,) = struct.unpack(">h", reply[2:4])
    message = reply[4 : 4 + length].decode() if length >= 0 else ""
    return wire, error, message


@pytest.mark.parametrize("lib_name", CLIENT_LIBS)
def test_a_principal_over_max_connections_fails_authentication(policy_proxy, lib_name):
    port = policy_proxy.layout.bootstrap_port(0)
    held, error, _ = _authenticate(HOST, port, "limited", USERS["limited"])
    try:
        assert error == 0, "the first connection is admitted"
        limit = {"limit": "principal_max_connections"}
        before = _metric(policy_proxy, "kafka_proxy_connection_limit_refusals_total", **limit)
        mark = policy_proxy.mark()
        errors = auth_failure_seen_by_client(sasl_client_lib(lib_name, login("limited")), policy_proxy.bootstrap)
        assert any("limited already holds 1 connection" in e for e in errors), errors
        assert lines_with(policy_proxy.log_since(mark), "policy max_connections"), "logged with its reason"
        _metric_grows(policy_proxy, before, "kafka_proxy_connection_limit_refusals_total", **limit)
        assert _metric(policy_proxy, "kafka_proxy_authentication_failures_total", reason="max_connections") >= 1
    finally:
        held.close()

    def admitted_again():
        wire, error, message = _authenticate(HOST, port, "limited", USERS["limited"])
        wire.close()
        return error == 0 or None

    wait_until(admitted_again, 10, interval=0.2, what="the freed slot to be usable")


# --------------------------------------------------------------------- process and per-address limits


def _plain_proxy(request, workdir, tansu, runtime, with_admin: bool = False, **sections):
    layout = reserve_layout()
    admin = _admin(layout, tansu) if with_admin else None
    if admin:
        sections["admin"] = {"bind": f"{HOST}:{admin.port}"}
    text = proxy_config([tansu.bootstrap], layout, {"security_protocol": "PLAINTEXT"}, **sections)
    proxy = start_proxy(request, workdir, text, layout, runtime, name="proxy-plain")
    request.addfinalizer(proxy.stop)
    proxy.admin = admin
    return proxy


@pytest.fixture
def limited_proxy(request, tmp_path, memory_tansu, sasl_runtime):
    """A plaintext proxy with at most 3 connections, 2 per client address, and its admin endpoint."""
    return _plain_proxy(request, tmp_path, memory_tansu, sasl_runtime, with_admin=True,
                        limits={"max_connections": 3, "max_connections_per_ip": 2})


@pytest.fixture
def plain_proxy(request, tmp_path, memory_tansu, sasl_runtime):
    """A plaintext proxy with no policy yet."""
    return _plain_proxy(request, tmp_path, memory_tansu, sasl_runtime)


def _served(source: str, port: int) -> socket.socket | None:
    """A connection from `source` that the proxy serves (it answers ApiVersions), or None
    when it was closed at once."""
    sock = socket.create_connection((HOST, port), timeout=3, source_address=(source, 0))
    header = struct.pack(">hhi", 18, 0, 1) + _string("limits")
    try:
        sock.sendall(struct.pack(">i", len(header)) + header)
        if not sock.recv(4):
            sock.close()
            return None
    except (ConnectionResetError, BrokenPipeError):
        sock.close()
        return None
    except socket.timeout:
        sock.close()
        raise AssertionError(f"a connection from {source} was left hanging") from None
    return sock


def test_connections_beyond_the_limits_are_closed_at_once(limited_proxy):
    port = limited_proxy.layout.bootstrap_port(0)
    mark = limited_proxy.mark()
    # The start-up probe's connection may not be reaped yet: the first waits for its slot.
    held = [wait_until(lambda: _served("127.0.0.1", port), 5, what="a first connection")]
    held.append(_served("127.0.0.1", port))
    assert all(held), "two from one address are served"
    started = time.monotonic()
    assert _served("127.0.0.1", port) is None, "a third from the same address is closed"
    assert time.monotonic() - started < 2.0, "at once, not left hanging"
    held.append(_served("127.0.0.2", port))
    assert held[-1] is not None, "another address is served"
    assert _served("127.0.0.3", port) is None, "beyond 3 in all, closed"
    log = limited_proxy.log_since(mark)
    assert lines_with(log, "connection refused and closed", "limits.max_connections_per_ip"), log[-2000:]
    assert lines_with(log, "connection refused and closed", "limits.max_connections)"), log[-2000:]
    for limit in ("max_connections", "max_connections_per_ip"):
        assert _metric(limited_proxy, "kafka_proxy_connection_limit_refusals_total", limit=limit) >= 1, limit
    held.pop().close()
    wait_until(lambda: _served("127.0.0.3", port), 10, interval=0.1, what="a freed slot")
    for sock in held:
        sock.close()


def test_sighup_applies_a_new_policy_and_check_prints_it(plain_proxy, memory_tansu, unique):
    topic = f"reloaded-{unique}"
    proxy = plain_proxy
    plain = sasl_client_lib("confluent", None)
    plain.create_topic(proxy.bootstrap, f"before-{unique}", 1)
    config = json.loads(proxy.config_path.read_text())
    config["policy"] = {"forbidden_api_keys": ["CreateTopics"],
                        "principals": {"$anonymous": {"max_connections": 50, "producer_byte_rate": 5000000}}}
    proxy.config_path.write_text(json.dumps(config, indent=2))
    checked = run_check(proxy.config_path)
    assert checked.returncode == 0, checked.stderr
    assert "forbidden for everyone: CreateTopics(19)" in checked.stdout, checked.stdout
    assert "principal $anonymous: forbidden CreateTopics(19); produce 5000000 B/s, fetch unlimited, " \
           "connections at most 50" in checked.stdout, checked.stdout
    mark = proxy.mark()
    proxy.process.signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in proxy.log_since(mark), 10, what="the reload")
    with pytest.raises(Exception, match="TOPIC_AUTHORIZATION_FAILED"):
        plain.create_topic(proxy.bootstrap, topic, 1, timeout=10)
    assert not _topic_exists(memory_tansu, topic)
