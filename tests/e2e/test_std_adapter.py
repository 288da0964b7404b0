"""The std-only adapter (core/examples/std_blocking.rs) between tansu and real clients.

It proves the example documents a complete driving contract: the core, driven
by nothing but std::net in one thread, serves librdkafka and kafka-python
(bootstrap connection, then broker connections, consumer group) and exposes
only its own addresses. The binary is built by scripts/test.sh's build phase;
this test builds nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess

import pytest

from kafka_e2e.paths import STD_ADAPTER
from kafka_e2e.ports import HOST
from kafka_e2e.procs import ManagedProcess
from kafka_e2e.clients import retry
from kafka_e2e.scenarios import consume_until, roundtrip
from kafka_e2e.tansu import TANSU_NODE_ID
from kafka_e2e.wire import Broker

BUILD = "cargo build --release --locked -p kafka-proxy-core --example std_blocking"


@pytest.fixture
def adapter_binary():
    if not STD_ADAPTER.is_file():
        pytest.fail(f"{STD_ADAPTER} is missing: run `{BUILD}` first (scripts/test.sh's build phase builds it with the dist profile)")
    return STD_ADAPTER


@pytest.fixture
def std_adapter(tmp_path, tansu, layout, adapter_binary, real_proxy):
    """The example between `tansu` and the clients, port_offset base `layout.base`."""
    proc = ManagedProcess("std_blocking", [adapter_binary, tansu.bootstrap, layout.base, HOST],
                          tmp_path / "std_blocking.log")
    proc.start()
    try:
        proc.wait_ready(HOST, layout.bootstrap_port(0))
        yield proc
    finally:
        proc.stop()


@contextlib.contextmanager
def adapter_log_on_failure(proc: ManagedProcess):
    """Prints the adapter's log when the block fails (pytest shows it with the failure)."""
    try:
        yield
    except BaseException:
        print(f"--- {proc.name} log ---\n{proc.log_tail()}")
        raise


def test_roundtrip_through_std_adapter(lib, tansu, layout, std_adapter, unique):
    """Create a topic, produce 200 keyed records, consume them all back in a group, commit."""
    with adapter_log_on_failure(std_adapter):
        r = roundtrip(lib, layout.bootstrap, f"std-{unique}", f"g-{unique}", n=200)
    assert r.consumed == 200 and r.committed_total == 200
    # The client reached the broker through the adapter's broker listener, never directly.
    assert tansu.port not in r.peer_ports, f"a client connected to tansu directly: {r.peer_ports}"
    assert layout.broker_port(TANSU_NODE_ID) in r.peer_ports, r.peer_ports
    assert std_adapter.running(), "the adapter is still serving"


def test_metadata_holds_only_adapter_addresses(lib, tansu, layout, std_adapter):
    with adapter_log_on_failure(std_adapter):
        brokers = lib.metadata(layout.bootstrap)
    assert brokers == [Broker(TANSU_NODE_ID, HOST, layout.broker_port(TANSU_NODE_ID))]
    # Listeners it opened: the bootstrap port, then the broker port the Metadata named.
    log = std_adapter.log_text()
    assert f"listening on {HOST}:{layout.bootstrap_port(0)}" in log
    assert f"listening on {HOST}:{layout.broker_port(TANSU_NODE_ID)}" in log


def test_megabyte_frames_are_copied_intact(lib, tansu, layout, std_adapter, unique):
    """~1 MiB Produce requests and multi-megabyte Fetch responses take the core's cut-through
    paths; the adapter only copies (no splice), and every byte comes back as sent."""
    producer_conf = {"confluent": {"batch.size": 1_000_000, "linger.ms": 50, "message.max.bytes": 2_000_000},
                     "kafka-python": {"batch_size": 1_000_000, "linger_ms": 50, "max_request_size": 2_000_000}}
    consumer_conf = {"confluent": {"fetch.max.bytes": 16_000_000, "max.partition.fetch.bytes": 8_000_000},
                     "kafka-python": {"fetch_max_bytes": 16_000_000, "max_partition_fetch_bytes": 8_000_000}}
    topic, group, count = f"std-big-{unique}", f"g-big-{unique}", 30
    values = [f"{unique}-{i:04d}-".encode() + os.urandom(200 * 1024) for i in range(count)]
    with adapter_log_on_failure(std_adapter):
        retry(lambda: lib.create_topic(layout.bootstrap, topic, 1), 30, what=f"create topic {topic}")
        producer = lib.producer(layout.bootstrap, topic, **producer_conf[lib.name])
        try:
            for v in values:
                producer.send(v[:16], v)
            producer.flush(60)
            acked, failed = producer.counts()
            assert failed == 0 and acked == count, f"produce: {acked}/{count}, failures {producer.failed[:2]}"
        finally:
            producer.close()
        consumer = lib.consumer(layout.bootstrap, topic, group, **consumer_conf[lib.name])
        try:
            seen = consume_until(consumer, count, 60)
        finally:
            consumer.close()
    assert len(seen) == count, f"consumed {len(seen)}/{count}"
    assert {hashlib.sha256(v).digest() for v in seen} == {hashlib.sha256(v).digest() for v in values}


def test_bad_arguments_print_the_usage(adapter_binary):
    for argv in ([], ["127.0.0.1"], ["127.0.0.1:9092", "not-a-port"], ["127.0.0.1:9092", "30000", "localhost"]):
        done = subprocess.run([adapter_binary, *argv], capture_output=True, text=True, timeout=10)
        assert done.returncode == 2, (argv, done)
        assert "usage: std_blocking UPSTREAM_HOST:PORT BASE_PORT [BIND_IP]" in done.stderr, (argv, done.stderr)
