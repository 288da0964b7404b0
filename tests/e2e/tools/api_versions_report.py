"""Which API versions does tansu advertise, and which do the clients really use against it?

Starts tansu (advertising a recording relay's port, so every connection passes
the relay), runs the suite's round trip (CreateTopics, Produce, group consume,
OffsetCommit/OffsetFetch) with each client library, and prints Markdown.

Run from tests/e2e: python tools/api_versions_report.py
"""

from __future__ import annotations

import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kafka_e2e.clients import client_lib  # noqa: E402
from kafka_e2e.paths import tansu_sqlite_binary  # noqa: E402
from kafka_e2e.ports import HOST, pick_port  # noqa: E402
from kafka_e2e.procs import ManagedProcess  # noqa: E402
from kafka_e2e.scenarios import roundtrip  # noqa: E402
from kafka_e2e.tansu import TansuBroker  # noqa: E402
from kafka_e2e.wire import API_NAMES, KafkaWire  # noqa: E402

FOCUS = [0, 1, 3, 10, 60, 17, 36, 18]


def _versions(record: Path) -> dict[int, set[int]]:
    per_api = defaultdict(set)
    for line in record.read_text().splitlines():
        key, version, _ = line.split(" ", 2)
        per_api[int(key)].add(int(version))
    return per_api


def recording_relay(name: str, work: Path, relay_port: int, tansu_port: int, record: Path) -> ManagedProcess:
    """The suite's relay on `relay_port` in front of tansu, writing each request's API key and
    version to `record` (not started)."""
    return ManagedProcess(
        name,
        [sys.executable, "-m", "kafka_e2e.relay", "--map", f"{HOST}:{relay_port}={HOST}:{tansu_port}",
         "--record", str(record)],
        work / f"{name}.log", cwd=Path(__file__).resolve().parents[1],
    )


def sasl_round(work: Path, relay_port: int, tansu_port: int, record: Path, used) -> None:
    """SCRAM-SHA-256 logins through the relay against the sqlite tansu, if it is installed."""
    binary = tansu_sqlite_binary()
    if binary is None:
        print("(TANSU_SQLITE not set: SASL versions not measured)", file=sys.stderr)
        return
    from confluent_kafka.admin import AdminClient
    from kafka import KafkaAdminClient

    sdir = work / "sqlite"
    broker = TansuBroker(tansu_port, sdir, advertised_port=relay_port, binary=binary,
                         storage="sqlite://tansu.db", name="tansu-sqlite")
    broker.start()
    broker.create_user("alice", "alice-secret", "scram256")
    broker.stop()
    broker.authentication = True
    relay = recording_relay("relay-sasl", work, relay_port, tansu_port, record)
    broker.start()
    relay.start()
    relay.wait_ready(HOST, relay_port)
    try:
        record.write_text("")
        AdminClient({"bootstrap.servers": f"{HOST}:{relay_port}", "security.protocol": "SASL_PLAINTEXT",
                     "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "alice",
                     "sasl.password": "alice-secret"}).list_topics(timeout=10)
        for k, vs in _versions(record).items():
            used["confluent"][k] |= vs
        record.write_text("")
        admin = KafkaAdminClient(bootstrap_servers=[f"{HOST}:{relay_port}"],
                                 security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
                                 sasl_plain_username="alice", sasl_plain_password="alice-secret",
                                 bootstrap_timeout_ms=10000)
        admin.describe_cluster()
        admin.close()
        for k, vs in _versions(record).items():
            used["kafka-python"][k] |= vs
    finally:
        relay.stop()
        broker.stop()


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="apiv-"))
    relay_port = pick_port()
    tansu_port = pick_port(avoid={relay_port})
    broker = TansuBroker(tansu_port, work, advertised_port=relay_port)
    record = work / "requests.txt"
    relay = recording_relay("relay", work, relay_port, tansu_port, record)
    broker.start()
    relay.start()
    relay.wait_ready(HOST, relay_port)
    try:
        with KafkaWire(HOST, tansu_port) as w:
            advertised = w.api_versions(3).ranges
        used: dict[str, dict[int, set[int]]] = {}
        for name in ("confluent", "kafka-python"):
            record.write_text("")
            roundtrip(client_lib(name), f"{HOST}:{relay_port}", f"apiv-{name}", f"g-{name}", n=50)
            used[name] = _versions(record)
    finally:
        relay.stop()
        broker.stop()
    sasl_round(work, relay_port, tansu_port, record, used)

    keys = sorted(set(advertised) | {k for u in used.values() for k in u},
                  key=lambda k: (k not in FOCUS, k))
    print("| API (key) | tansu 0.6.0 advertises | librdkafka 2.16 uses | kafka-python 3.0.12 uses |")
    print("|---|---|---|---|")
    for k in keys:
        adv = advertised.get(k)
        cells = [f"{API_NAMES.get(k, '?')} ({k})", f"v{adv[0]}–v{adv[1]}" if adv else "—"]
        for name in ("confluent", "kafka-python"):
            vs = sorted(used[name].get(k, ()))
            cells.append(", ".join(f"v{v}" for v in vs) if vs else "—")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
