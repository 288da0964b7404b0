"""Failures on either side of the proxy: the clients must get errors, not hangs, and recover."""

from __future__ import annotations

import re
import time

import pytest

from kafka_e2e.clients import ClientError, retry
from kafka_e2e.ports import HOST
from kafka_e2e.procs import port_accepts, wait_until
from kafka_e2e.scenarios import consume_until, stream_through_disruption
from kafka_e2e.tansu import TANSU_NODE_ID
from kafka_e2e.wire import KafkaWire

SHORT_DELIVERY = {
    "confluent": {"message.timeout.ms": 5000, "socket.timeout.ms": 3000},
    "kafka-python": {"delivery_timeout_ms": 5000, "request_timeout_ms": 3000},
}


def test_proxy_sigkill_and_restart_mid_stream(lib, tansu, proxy, unique):
    """SIGKILL the proxy while a producer and a group consumer stream; restart it on the
    same ports; both recover and every acknowledged record is consumed."""

    def disrupt():
        proxy.kill()
        time.sleep(1.0)
        proxy.start()

    r = stream_through_disruption(lib, proxy.bootstrap, f"kill-{unique}", f"g-{unique}", disrupt)
    assert proxy.process.starts == 2
    assert not r.lost, f"{len(r.lost)} acknowledged records never consumed, e.g. {r.lost[:5]}"
    assert not r.failed, f"{len(r.failed)} deliveries failed, e.g. {r.failed[:3]}"
    assert r.acked_after_disruption >= 300


def test_restarted_proxy_listens_on_known_broker_ports(tansu, proxy):
    """After a restart, broker ports clients already know must accept again without any
    client first going through bootstrap: kafka-python, for one, reconnects only to the
    broker addresses it has and never returns to its bootstrap servers."""
    broker_port = proxy.layout.broker_port(TANSU_NODE_ID)
    with KafkaWire(HOST, proxy.layout.bootstrap_port(0)) as w:
        w.metadata(12)
    wait_until(lambda: port_accepts(HOST, broker_port), 5, what=f"broker port {broker_port}")
    proxy.kill()
    proxy.start()
    wait_until(lambda: port_accepts(HOST, broker_port), 10,
               what=f"the restarted proxy to listen on broker port {broker_port} again")


def test_broker_down_errors_then_recovery(lib, tansu, proxy, unique):
    """Stop tansu behind a running proxy: clients get errors within bounded time, the proxy
    logs why; start tansu again (memory storage: recreate the topic) and clients recover."""
    topic = f"outage-{unique}"
    retry(lambda: lib.create_topic(proxy.bootstrap, topic, 1), 30, what="create topic")
    producer = lib.producer(proxy.bootstrap, topic, **SHORT_DELIVERY[lib.name])
    try:
        for i in range(20):
            producer.send(b"before", f"before-{i}".encode())
        producer.flush(20)
        assert producer.counts() == (20, 0), producer.failed[:3]

        tansu.stop()
        t0 = time.monotonic()
        with pytest.raises(ClientError):
            lib.metadata(proxy.bootstrap, timeout=3)
        assert time.monotonic() - t0 < 30, "metadata through the proxy hung while the broker was down"

        t0 = time.monotonic()
        producer.send(b"during", b"during-0")
        wait_until(lambda: producer.counts()[1] >= 1, 20, what="the in-outage delivery to fail")
        assert producer.counts() == (20, 1)
        assert time.monotonic() - t0 < 20

        upstream = re.escape(tansu.bootstrap)
        clear = re.compile(rf"(?im)^.*{upstream}.*(refused|unreachable|unavailable|connect).*$"
                           rf"|^.*(refused|unreachable|unavailable|connect).*{upstream}.*$")
        wait_until(lambda: clear.search(proxy.log_text()), 10,
                   what=f"a proxy log line naming {tansu.bootstrap} and why it failed")
        assert proxy.process.running(), "the proxy exited when the broker went away"

        tansu.start()
        retry(lambda: lib.create_topic(proxy.bootstrap, topic, 1, exist_ok=True), 30,
              what="recreate the topic after the broker restart")
        for i in range(20):
            producer.send(b"after", f"after-{i}".encode())
        wait_until(lambda: producer.counts()[0] >= 40, 30, interval=0.2,
                   what="the long-lived producer to recover")
    finally:
        producer.close()
    consumer = lib.consumer(proxy.bootstrap, topic, f"g-{unique}")
    try:
        seen = consume_until(consumer, 20, 30)
    finally:
        consumer.close()
    assert {f"after-{i}".encode() for i in range(20)} <= set(seen), sorted(seen)[:5]
