"""Debian kcat (librdkafka 2.0.2) works through the proxy although it cannot talk to tansu
directly (see test_harness_direct.test_kcat_librdkafka_2_0_fails_direct): the proxy
re-encodes ApiVersions canonically (default-valued tagged fields left out)."""

from __future__ import annotations

from kafka_e2e import kcat
from kafka_e2e.ports import HOST
from kafka_e2e.tansu import TANSU_NODE_ID
from kafka_e2e.wire import Broker


def test_kcat_2_0_through_proxy(tansu, proxy, real_proxy, unique):
    me = Broker(TANSU_NODE_ID, HOST, proxy.layout.broker_port(TANSU_NODE_ID))
    r = kcat.run(["-b", proxy.bootstrap, "-L", "-m", "10"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert kcat.brokers_from_listing(r.stdout) == [me]

    topic = f"kcat-{unique}"
    tansu.create_topic(topic, partitions=1)
    lines = [f"k{i}:v{i}" for i in range(10)]
    r = kcat.run(["-b", proxy.bootstrap, "-P", "-t", topic, "-K:"], stdin="\n".join(lines) + "\n")
    assert r.returncode == 0, r.stderr[-2000:]
    r = kcat.run(["-b", proxy.bootstrap, "-C", "-t", topic, "-o", "beginning", "-c", "10", "-q",
                  "-f", "%k:%s\\n"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.splitlines() == lines
