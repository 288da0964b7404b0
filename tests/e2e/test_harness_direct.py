"""Direct-to-tansu smoke tests (no proxy): they prove the harness, the clients
and the facts the proxy scenarios rely on."""

from __future__ import annotations

import pytest

from kafka_e2e import kcat
from kafka_e2e.clients import ClientError, Sasl, client_lib
from kafka_e2e.ports import HOST
from kafka_e2e.scenarios import roundtrip
from kafka_e2e.tansu import SCRAM_USERS, TANSU_NODE_ID
from kafka_e2e.wire import Broker, KafkaWire


def test_roundtrip_direct(lib, direct_tansu, unique):
    r = roundtrip(lib, direct_tansu.bootstrap, f"direct-{unique}", f"g-{unique}", n=100)
    assert r.consumed == 100 and r.committed_total == 100
    assert direct_tansu.port in r.peer_ports


def test_metadata_direct(lib, direct_tansu):
    assert lib.metadata(direct_tansu.bootstrap) == [Broker(TANSU_NODE_ID, HOST, direct_tansu.port)]


def test_wire_probes_direct(direct_tansu):
    me = Broker(TANSU_NODE_ID, HOST, direct_tansu.port)
    with KafkaWire(HOST, direct_tansu.port) as w:
        assert w.api_versions(0).error_code == 0
        assert w.api_versions(3).error_code == 0
        assert w.metadata(1).brokers == [me]
        assert w.metadata(12).brokers == [me]
        assert w.find_coordinator("g", 1).node == me
        assert w.find_coordinator("g", 4).node == me
        assert w.describe_cluster().brokers == [me]


def test_kcat_librdkafka_2_0_fails_direct(direct_tansu):
    """The premise of test_kcat_through_proxy: Debian kcat cannot talk to tansu itself."""
    r = kcat.run(["-b", direct_tansu.bootstrap, "-L", "-m", "3"], timeout=30)
    assert r.returncode != 0, r.stdout
    assert "ApiVersionRequest failed" in r.stderr, r.stderr[-2000:]


def test_kcat_with_librdkafka_2_16_works_direct(direct_tansu, tmp_path, unique):
    """Same kcat binary, the wheel's librdkafka 2.16 in front: works (so kcat usage is right)."""
    libdir = kcat.librdkafka_216_dir(tmp_path / "rdk216")
    r = kcat.run(["-b", direct_tansu.bootstrap, "-L", "-m", "10"], libdir=libdir)
    assert r.returncode == 0, r.stderr[-2000:]
    assert kcat.brokers_from_listing(r.stdout) == [Broker(TANSU_NODE_ID, HOST, direct_tansu.port)]
    topic = f"kcat-{unique}"
    direct_tansu.create_topic(topic, partitions=1)
    lines = [f"k{i}:v{i}" for i in range(10)]
    r = kcat.run(["-b", direct_tansu.bootstrap, "-P", "-t", topic, "-K:"], stdin="\n".join(lines) + "\n",
                 libdir=libdir)
    assert r.returncode == 0, r.stderr[-2000:]
    r = kcat.run(["-b", direct_tansu.bootstrap, "-C", "-t", topic, "-o", "beginning", "-c", "10", "-q",
                  "-f", "%k:%s\\n"], libdir=libdir)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.splitlines() == lines


@pytest.mark.parametrize("mechanism", sorted(SCRAM_USERS))
def test_sasl_scram_direct(lib, sasl_tansu, mechanism, unique):
    """The SASL peer works: SCRAM logins and a full round trip against the sqlite tansu."""
    user, password, _ = SCRAM_USERS[mechanism]
    authed = client_lib(lib.name, Sasl(mechanism, user, password))
    r = roundtrip(authed, sasl_tansu.bootstrap, f"sasl-{unique}", f"g-{unique}", n=50)
    assert r.consumed == 50


def test_sasl_wrong_password_is_refused_direct(lib, sasl_tansu):
    user, _, _ = SCRAM_USERS["SCRAM-SHA-256"]
    refused = client_lib(lib.name, Sasl("SCRAM-SHA-256", user, "not-the-password"))
    with pytest.raises(ClientError):
        refused.metadata(sasl_tansu.bootstrap, timeout=3)
