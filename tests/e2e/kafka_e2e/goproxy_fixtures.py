"""Fixtures of issue 13's tests (imported by name into each test module; `runtime` comes
from conftest.py)."""

from __future__ import annotations

import pytest

from .paths import PROXY_BINARY
from .ports import HOST, pick_port, pick_proxy_base
from .proxy import KafkaProxy, PortLayout
from .tansu import TansuBroker
from .tls import generate_certs


@pytest.fixture(scope="module")
def shared_tansu(tmp_path_factory):
    """One tansu for the whole module (each test uses its own topic)."""
    broker = TansuBroker(pick_port(), tmp_path_factory.mktemp("tansu-shared"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def sasl_ssl_front(shared_tansu, tmp_path):
    """A SASL_SSL endpoint (PLAIN, myuser/mysecret) in front of tansu: a kafka-proxy from YAML."""
    pki = generate_certs(PROXY_BINARY, tmp_path / "pki", "front.test")
    layout = PortLayout(pick_proxy_base())
    config = tmp_path / "front.yaml"
    config.write_text(
        f"bind_address: {HOST}\n"
        f"upstream:\n  bootstrap_servers: [\"{shared_tansu.bootstrap}\"]\n  security_protocol: PLAINTEXT\n"
        f"downstream:\n  security_protocol: SASL_SSL\n  sasl_mechanism: PLAIN\n"
        f"  tls: {{cert: {pki.server.cert}, key: {pki.server.key}}}\n"
        f"  credentials:\n    users: {{myuser: mysecret}}\n"
        f"broker_mapping:\n  mode: port_offset\n  port_offset: {{hostname: {HOST}, base: {layout.base}}}\n"
    )
    front = KafkaProxy(config, layout, "tokio", tmp_path / "front").start()
    yield front
    front.stop()
