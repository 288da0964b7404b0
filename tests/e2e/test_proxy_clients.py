"""Clients through the proxy, on each runtime, with librdkafka and kafka-python."""

from __future__ import annotations

from kafka_e2e.ports import HOST
from kafka_e2e.scenarios import roundtrip
from kafka_e2e.tansu import TANSU_NODE_ID
from kafka_e2e.wire import Broker


def test_roundtrip_through_proxy(lib, tansu, proxy, unique):
    """CreateTopics, Produce, FindCoordinator/JoinGroup/SyncGroup/Fetch/OffsetCommit/OffsetFetch."""
    r = roundtrip(lib, proxy.bootstrap, f"rt-{unique}", f"g-{unique}", n=300)
    assert r.consumed == 300 and r.committed_total == 300
    # While connected, the clients held connections to proxy ports only.
    assert tansu.port not in r.peer_ports, f"a client connected to tansu directly: {r.peer_ports}"
    assert proxy.layout.broker_port(TANSU_NODE_ID) in r.peer_ports


def test_metadata_holds_only_proxy_addresses(lib, tansu, proxy):
    brokers = lib.metadata(proxy.bootstrap)
    assert brokers == [Broker(TANSU_NODE_ID, HOST, proxy.layout.broker_port(TANSU_NODE_ID))]
    assert all(b.port != tansu.port for b in brokers)
