"""Address-bearing responses at pinned versions, through the proxy's bootstrap and broker ports."""

from __future__ import annotations

import pytest

from kafka_e2e.ports import HOST
from kafka_e2e.procs import port_accepts, wait_until
from kafka_e2e.tansu import TANSU_NODE_ID
from kafka_e2e.wire import Broker, KafkaWire


@pytest.mark.parametrize("port_kind", ["bootstrap", "broker"])
def test_addresses_rewritten_at_every_probe_version(tansu, proxy, port_kind):
    broker_port = proxy.layout.broker_port(TANSU_NODE_ID)
    port = proxy.layout.bootstrap_port(0) if port_kind == "bootstrap" else broker_port
    me = Broker(TANSU_NODE_ID, HOST, broker_port)
    # Clients learn broker ports from bootstrap metadata; the proxy may open them only then.
    with KafkaWire(HOST, proxy.layout.bootstrap_port(0)) as w:
        assert w.metadata(1).brokers == [me]
    wait_until(lambda: port_accepts(HOST, broker_port), 5, what=f"proxy broker port {broker_port}")
    with KafkaWire(HOST, port) as w:
        assert w.metadata(1).brokers == [me]
        assert w.metadata(12).brokers == [me]
        assert w.find_coordinator("g-wire", 1).node == me
        assert w.find_coordinator("g-wire", 4).node == me
        assert w.describe_cluster().brokers == [me]


def test_api_versions_within_the_brokers_ranges(tansu, proxy):
    """The proxy may narrow the broker's version ranges, never widen them."""
    with KafkaWire(HOST, tansu.port) as w:
        broker = w.api_versions(3).ranges
    with KafkaWire(HOST, proxy.layout.bootstrap_port(0)) as w:
        for version in (0, 3):
            seen = w.api_versions(version)
            assert seen.error_code == 0
            for key, (lo, hi) in seen.ranges.items():
                assert key in broker, f"api {key} advertised by the proxy, not by the broker"
                assert broker[key][0] <= lo <= hi <= broker[key][1], (key, (lo, hi), broker[key])
