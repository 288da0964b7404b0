"""Client flows shared by the direct-to-broker smoke tests and the proxy scenarios.

Each flow takes a client library (clients.py) and a bootstrap address, so the
same code is proven against tansu directly and then run through the proxy.
Records are counted by consuming them (tansu's ListOffsets(latest) is wrong
with memory storage).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

from .clients import ClientError, Consumed, retry
from .netcheck import own_tcp_peer_ports


def keyed_records(n: int, prefix: str = "v", keys: int = 10) -> list[tuple[bytes, bytes]]:
    """n records over `keys` distinct keys; values are unique and carry the sequence number."""
    return [(f"key-{i % keys}".encode(), f"{prefix}-{i:06d}".encode()) for i in range(n)]


def consume_until(consumer, want: int, timeout: float, seen: dict | None = None,
                  poll: float = 0.5) -> dict[bytes, Consumed]:
    """Poll until `want` distinct values are seen or `timeout` passes; values -> record."""
    seen = {} if seen is None else seen
    deadline = time.monotonic() + timeout
    while len(seen) < want and time.monotonic() < deadline:
        for rec in consumer.poll(poll):
            seen.setdefault(rec.value, rec)
    return seen


@dataclass
class RoundTrip:
    produced: int
    consumed: int
    committed_total: int
    peer_ports: set[int] = field(default_factory=set)


def roundtrip(lib, bootstrap: str, topic: str, group: str, n: int = 200, partitions: int = 3,
              timeout: float = 60.0) -> RoundTrip:
    """Create a topic, produce n keyed records, consume them all in a group and commit.

    Checks content, per-key ordering and the committed offsets (OffsetFetch);
    returns what was seen, including this process's TCP peer ports while connected.
    """
    retry(lambda: lib.create_topic(bootstrap, topic, partitions), 30, what=f"create topic {topic}")
    records = keyed_records(n)
    producer = lib.producer(bootstrap, topic)
    try:
        for k, v in records:
            producer.send(k, v)
        producer.flush(timeout / 2)
        acked, failed = producer.counts()
        if failed or acked != n:
            raise ClientError(f"produce: {acked}/{n} acknowledged, failures: {producer.failed[:3]}")
    finally:
        producer.close()

    consumer = lib.consumer(bootstrap, topic, group)
    try:
        seen = consume_until(consumer, n, timeout / 2)
        consumer.commit()
        committed = consumer.committed(topic, partitions)
        peers = own_tcp_peer_ports()
    finally:
        consumer.close()

    expected = {v: k for k, v in records}
    got = {v: rec.key for v, rec in seen.items()}
    missing = sorted(set(expected) - set(got))
    if missing:
        raise AssertionError(f"consumed {len(got)}/{n}; first missing: {missing[:5]}")
    wrong = [v for v in expected if got[v] != expected[v]]
    if wrong:
        raise AssertionError(f"key mismatch for values {wrong[:5]}")
    # Same key -> same partition, and offsets grow with the sequence number.
    by_key: dict[bytes, list[Consumed]] = defaultdict(list)
    for v in sorted(expected):
        by_key[expected[v]].append(seen[v])
    for key, recs in by_key.items():
        if len({r.partition for r in recs}) != 1:
            raise AssertionError(f"key {key!r} spread over partitions {sorted({r.partition for r in recs})}")
        offsets = [r.offset for r in recs]
        if offsets != sorted(offsets):
            raise AssertionError(f"key {key!r} out of order: {offsets[:10]}")
    # Committed offsets: one past the last record of every partition.
    last = defaultdict(lambda: -1)
    for rec in seen.values():
        last[rec.partition] = max(last[rec.partition], rec.offset)
    for p, off in last.items():
        if committed.get(p) != off + 1:
            raise AssertionError(f"partition {p}: committed {committed.get(p)}, expected {off + 1}")
    return RoundTrip(n, len(seen), sum(v for v in committed.values() if v >= 0), peers)


@dataclass
class StreamResult:
    acked: int
    failed: list
    consumed: int
    lost: list
    acked_after_disruption: int


def stream_through_disruption(lib, bootstrap: str, topic: str, group: str, disrupt,
                              before: int = 300, after: int = 300, partitions: int = 3,
                              timeout: float = 90.0) -> StreamResult:
    """Produce and consume continuously; call `disrupt()` mid-stream; check recovery.

    The stream runs until `before` records are acknowledged, then `disrupt()` runs
    (e.g. SIGKILL and restart the proxy) while producer and consumer stay alive,
    then until `after` more are acknowledged. Every acknowledged record must be
    consumed afterwards by the same group consumer (duplicates are allowed).
    """

    def at_before(acked: int) -> bool:
        if acked < before:
            return False
        disrupt()
        return True

    return stream_through_stages(lib, bootstrap, topic, group, [at_before], after, partitions, timeout)


def stream_through_stages(lib, bootstrap: str, topic: str, group: str, stages: list,
                          after: int = 300, partitions: int = 3, timeout: float = 90.0) -> StreamResult:
    """Produce and consume continuously while `stages` run one after the other.

    Each stage is called with the number of acknowledged records on every turn
    of the loop until it returns True (it must not block for long: the clients
    keep running between calls); then the next one starts. After the last, the
    stream runs until `after` more records are acknowledged. Every acknowledged
    record must then be consumed by the same group consumer (duplicates are
    allowed); `acked_after_disruption` counts from the end of the last stage.
    """
    retry(lambda: lib.create_topic(bootstrap, topic, partitions), 30, what=f"create topic {topic}")
    producer = lib.producer(bootstrap, topic)
    consumer = lib.consumer(bootstrap, topic, group)
    seen: dict[bytes, Consumed] = {}
    deadline = time.monotonic() + timeout
    seq = 0
    pending = list(stages)
    disrupted_at = None
    last_commit = time.monotonic()
    try:
        while time.monotonic() < deadline:
            acked, _ = producer.counts()
            if pending and pending[0](acked):
                pending.pop(0)
                if not pending:
                    disrupted_at = acked
            if disrupted_at is not None and acked >= disrupted_at + after:
                break
            in_flight = seq - acked - len(producer.failed)
            if in_flight < 200:
                for _ in range(10):
                    producer.send(f"key-{seq % 10}".encode(), f"s-{seq:07d}".encode())
                    seq += 1
            for rec in consumer.poll(0.05):
                seen.setdefault(rec.value, rec)
            if time.monotonic() - last_commit > 1.0:
                try:
                    consumer.commit(asynchronous=True)
                except Exception:
                    pass  # a commit may fail while the path is down; the final one must not
                last_commit = time.monotonic()
        else:
            acked, _ = producer.counts()
            raise ClientError(
                f"stream did not recover: {acked} acknowledged "
                f"(stages left: {len(pending)}, last stage ended at {disrupted_at}, wanted {after} more), "
                f"failures: {producer.failed[:3]}, consumer errors: {consumer.errors[-3:]}"
            )
        producer.flush(30)
        acked_values = {v for _, v, _, _ in producer.acked}
        consume_until(consumer, len(acked_values), 45, seen)
        retry(consumer.commit, 20, what="final commit")
    finally:
        producer.close()
        consumer.close()
    lost = sorted(acked_values - set(seen))
    return StreamResult(len(acked_values), list(producer.failed), len(seen), lost,
                        len(acked_values) - (disrupted_at or 0))
