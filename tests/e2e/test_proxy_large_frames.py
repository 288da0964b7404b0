"""Large frames through the proxy, on each runtime, with librdkafka and kafka-python.

Megabyte Produce requests and Fetch responses take the proxy's streaming paths:
cut-through (forwarded as their bytes arrive), splice(2) between plaintext
sockets, and the Fetch walker that holds back only the KIP-951 tagged tail.
Every byte must come back exactly as sent.
"""

from __future__ import annotations

import hashlib
import os

from kafka_e2e.clients import retry
from kafka_e2e.scenarios import consume_until

RECORD = 200 * 1024  # 200 KiB values: several per request, requests of ~1 MiB
COUNT = 60

# Settings that make each client send ~1 MiB Produce requests and receive
# multi-megabyte Fetch responses.
PRODUCER = {
    "confluent": {"batch.size": 1_000_000, "linger.ms": 50, "message.max.bytes": 2_000_000},
    "kafka-python": {"batch_size": 1_000_000, "linger_ms": 50, "max_request_size": 2_000_000},
}
CONSUMER = {
    "confluent": {"fetch.max.bytes": 16_000_000, "max.partition.fetch.bytes": 8_000_000},
    "kafka-python": {"fetch_max_bytes": 16_000_000, "max_partition_fetch_bytes": 8_000_000},
}


def _values(tag: str) -> list[bytes]:
    """Distinct incompressible values, each starting with its index."""
    return [f"{tag}-{i:04d}-".encode() + os.urandom(RECORD) for i in range(COUNT)]


def test_megabyte_frames_round_trip(lib, tansu, proxy, unique):
    topic, group = f"big-{unique}", f"gbig-{unique}"
    retry(lambda: lib.create_topic(proxy.bootstrap, topic, 1), 30, what=f"create topic {topic}")
    values = _values(unique)
    producer = lib.producer(proxy.bootstrap, topic, **PRODUCER[lib.name])
    try:
        for v in values:
            producer.send(v[:16], v)
        producer.flush(60)
        acked, failed = producer.counts()
        assert failed == 0 and acked == COUNT, f"produce: {acked}/{COUNT}, failures {producer.failed[:2]}"
    finally:
        producer.close()
    consumer = lib.consumer(proxy.bootstrap, topic, group, **CONSUMER[lib.name])
    try:
        seen = consume_until(consumer, COUNT, 60)
    finally:
        consumer.close()
    want = {hashlib.sha256(v).hexdigest() for v in values}
    got = {hashlib.sha256(v).hexdigest() for v in seen}
    assert len(seen) == COUNT, f"consumed {len(seen)}/{COUNT}"
    assert got == want, "every byte of every record comes back as sent"
