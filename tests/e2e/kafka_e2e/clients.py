"""Two independent Kafka client libraries behind one small interface.

- `confluent`: confluent-kafka 2.16.1, i.e. librdkafka 2.16 (C);
- `kafka-python`: kafka-python 3.0.12 (pure Python, its own protocol code).

Every call takes or applies a timeout; nothing here can block forever.
Both use the classic consumer group protocol (tansu has no KIP-848).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from .wire import Broker

CLIENT_LIBS = ("confluent", "kafka-python")


@dataclass(frozen=True)
class Sasl:
    """SASL_PLAINTEXT credentials; mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."""

    mechanism: str
    username: str
    password: str


class ClientError(RuntimeError):
    """A client operation failed or did not finish in time."""


@dataclass(frozen=True)
class Consumed:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class StreamingProducer:
    """A long-lived producer; records acknowledgements and failures as they arrive."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked: list[tuple[bytes, bytes, int, int]] = []  # key, value, partition, offset
        self.failed: list[tuple[bytes, bytes, str]] = []

    def _ack(self, key, value, partition, offset):
        with self.lock:
            self.acked.append((key, value, partition, offset))

    def _fail(self, key, value, err):
        with self.lock:
            self.failed.append((key, value, str(err)))

    def counts(self) -> tuple[int, int]:
        with self.lock:
            return len(self.acked), len(self.failed)


# ---------------------------------------------------------------- librdkafka


class _ConfluentProducer(StreamingProducer):
    def __init__(self, bootstrap: str, topic: str, **overrides):
        from confluent_kafka import Producer

        super().__init__()
        self.topic = topic
        conf = {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 5,
            "message.timeout.ms": 30000,
            "socket.timeout.ms": 10000,
            "reconnect.backoff.ms": 100,
            "reconnect.backoff.max.ms": 1000,
            "enable.idempotence": False,
        }
        conf.update(overrides)
        self.p = Producer(conf)

    def send(self, key: bytes, value: bytes) -> None:
        def cb(err, msg):
            if err is None:
                self._ack(msg.key(), msg.value(), msg.partition(), msg.offset())
            else:
                self._fail(msg.key(), msg.value(), err)

        for _ in range(100):
            try:
                self.p.produce(self.topic, key=key, value=value, on_delivery=cb)
                break
            except BufferError:
                self.p.poll(0.05)
        self.p.poll(0)

    def counts(self) -> tuple[int, int]:
        self.p.poll(0)  # librdkafka runs delivery callbacks only from poll()
        return super().counts()

    def flush(self, timeout: float) -> int:
        """Wait for outstanding deliveries; returns how many are still outstanding."""
        return self.p.flush(timeout)

    def close(self) -> None:
        self.p.flush(1.0)


class _ConfluentConsumer:
    def __init__(self, bootstrap: str, topic: str, group: str, **overrides):
        from confluent_kafka import Consumer

        conf = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000,
            "socket.timeout.ms": 10000,
            "reconnect.backoff.ms": 100,
            "reconnect.backoff.max.ms": 1000,
        }
        conf.update(overrides)
        self.c = Consumer(conf)
        self.c.subscribe([topic])
        self.errors: list[str] = []

    def poll(self, timeout: float) -> list[Consumed]:
        out = []
        for m in self.c.consume(num_messages=500, timeout=timeout):
            if m.error():
                self.errors.append(str(m.error()))
                continue
            out.append(Consumed(m.partition(), m.offset(), m.key(), m.value()))
        return out

    def commit(self, asynchronous: bool = False) -> None:
        from confluent_kafka import KafkaException

        try:
            self.c.commit(asynchronous=asynchronous)
        except KafkaException as e:
            # _NO_OFFSET: nothing consumed since the last commit.
            if "NO_OFFSET" not in str(e):
                raise

    def committed(self, topic: str, partitions: int, timeout: float = 10.0) -> dict[int, int]:
        from confluent_kafka import TopicPartition

        tps = self.c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=timeout)
        return {tp.partition: tp.offset for tp in tps}

    def close(self) -> None:
        self.c.close()


class ConfluentLib:
    name = "confluent"

    def __init__(self, sasl: Sasl | None = None):
        self.extra = {} if sasl is None else {
            "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": sasl.mechanism,
            "sasl.username": sasl.username, "sasl.password": sasl.password,
        }

    def admin(self, bootstrap: str):
        from confluent_kafka.admin import AdminClient

        return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000, **self.extra})

    def create_topic(self, bootstrap: str, topic: str, partitions: int, timeout: float = 20.0,
                     exist_ok: bool = False) -> None:
        from confluent_kafka.admin import NewTopic

        admin = self.admin(bootstrap)  # must outlive the future
        fs = admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
            operation_timeout=timeout, request_timeout=timeout,
        )
        try:
            fs[topic].result(timeout=timeout)
        except Exception as e:
            if exist_ok and "TOPIC_ALREADY_EXISTS" in str(e):
                return
            raise ClientError(f"confluent create_topics({topic}) via {bootstrap}: {e}") from e

    def metadata(self, bootstrap: str, timeout: float = 10.0) -> list[Broker]:
        try:
            admin = self.admin(bootstrap)
            md = admin.list_topics(timeout=timeout)
        except Exception as e:
            raise ClientError(f"confluent list_topics via {bootstrap}: {e}") from e
        return [Broker(b.id, b.host, b.port) for b in md.brokers.values()]

    def topic_partitions(self, bootstrap: str, topic: str, timeout: float = 10.0) -> int | None:
        admin = self.admin(bootstrap)
        md = admin.list_topics(topic=topic, timeout=timeout)
        t = md.topics.get(topic)
        return None if t is None or t.error is not None else len(t.partitions)

    def producer(self, bootstrap: str, topic: str, **overrides) -> _ConfluentProducer:
        return _ConfluentProducer(bootstrap, topic, **{**self.extra, **overrides})

    def consumer(self, bootstrap: str, topic: str, group: str, **overrides) -> _ConfluentConsumer:
        return _ConfluentConsumer(bootstrap, topic, group, **{**self.extra, **overrides})


# -------------------------------------------------------------- kafka-python


class _KPProducer(StreamingProducer):
    def __init__(self, bootstrap: str, topic: str, **overrides):
        from kafka import KafkaProducer

        super().__init__()
        self.topic = topic
        conf = dict(
            bootstrap_servers=[bootstrap],
            acks="all",
            linger_ms=5,
            request_timeout_ms=10000,
            delivery_timeout_ms=30000,
            retry_backoff_ms=200,
            reconnect_backoff_ms=100,
            reconnect_backoff_max_ms=1000,
            max_block_ms=30000,
            enable_idempotence=False,
        )
        conf.update(overrides)
        self.p = KafkaProducer(**conf)

    def send(self, key: bytes, value: bytes) -> None:
        fut = self.p.send(self.topic, key=key, value=value)
        fut.add_callback(lambda md: self._ack(key, value, md.partition, md.offset))
        fut.add_errback(lambda e: self._fail(key, value, e))

    def flush(self, timeout: float) -> int:
        from kafka.errors import KafkaTimeoutError

        try:
            self.p.flush(timeout=timeout)
        except KafkaTimeoutError:
            pass
        # Outstanding = sent but neither acked nor failed; callers compare counts.
        return 0

    def close(self) -> None:
        self.p.close(timeout=2)


class _KPConsumer:
    def __init__(self, bootstrap: str, topic: str, group: str, **overrides):
        from kafka import KafkaConsumer

        conf = dict(
            bootstrap_servers=[bootstrap],
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=10000,
            heartbeat_interval_ms=1000,
            request_timeout_ms=15000,
            reconnect_backoff_ms=100,
            reconnect_backoff_max_ms=1000,
        )
        conf.update(overrides)
        self.c = KafkaConsumer(**conf)
        self.c.subscribe([topic])
        self.errors: list[str] = []

    def poll(self, timeout: float) -> list[Consumed]:
        out = []
        batches = self.c.poll(timeout_ms=int(timeout * 1000), max_records=500)
        for tp, records in batches.items():
            for r in records:
                out.append(Consumed(tp.partition, r.offset, r.key, r.value))
        return out

    def commit(self, asynchronous: bool = False) -> None:
        if asynchronous:
            self.c.commit_async()
        else:
            self.c.commit()

    def committed(self, topic: str, partitions: int, timeout: float = 10.0) -> dict[int, int]:
        from kafka import TopicPartition

        out = {}
        for p in range(partitions):
            off = self.c.committed(TopicPartition(topic, p))
            out[p] = -1001 if off is None else off
        return out

    def close(self) -> None:
        self.c.close(autocommit=False)


class KafkaPythonLib:
    name = "kafka-python"

    def __init__(self, sasl: Sasl | None = None):
        self.extra = {} if sasl is None else dict(
            security_protocol="SASL_PLAINTEXT", sasl_mechanism=sasl.mechanism,
            sasl_plain_username=sasl.username, sasl_plain_password=sasl.password,
        )

    def admin(self, bootstrap: str, timeout: float = 10.0):
        from kafka import KafkaAdminClient

        return KafkaAdminClient(bootstrap_servers=[bootstrap], request_timeout_ms=int(timeout * 1000),
                                bootstrap_timeout_ms=int(timeout * 1000), reconnect_backoff_max_ms=1000,
                                **self.extra)

    def create_topic(self, bootstrap: str, topic: str, partitions: int, timeout: float = 20.0,
                     exist_ok: bool = False) -> None:
        try:
            admin = self.admin(bootstrap, timeout)
            try:
                admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1}},
                                    timeout_ms=int(timeout * 1000))
            finally:
                admin.close()
        except Exception as e:
            if exist_ok and "TopicAlreadyExists" in repr(e):
                return
            raise ClientError(f"kafka-python create_topics({topic}) via {bootstrap}: {e!r}") from e

    def metadata(self, bootstrap: str, timeout: float = 10.0) -> list[Broker]:
        try:
            admin = self.admin(bootstrap, timeout)
            try:
                md = admin.describe_cluster()
            finally:
                admin.close()
        except Exception as e:
            raise ClientError(f"kafka-python describe_cluster via {bootstrap}: {e!r}") from e
        return [Broker(b["broker_id"], b["host"], b["port"]) for b in md["brokers"]]

    def producer(self, bootstrap: str, topic: str, **overrides) -> _KPProducer:
        return _KPProducer(bootstrap, topic, **{**self.extra, **overrides})

    def consumer(self, bootstrap: str, topic: str, group: str, **overrides) -> _KPConsumer:
        return _KPConsumer(bootstrap, topic, group, **{**self.extra, **overrides})


def client_lib(name: str, sasl: Sasl | None = None):
    if name == "confluent":
        return ConfluentLib(sasl)
    if name == "kafka-python":
        return KafkaPythonLib(sasl)
    raise ValueError(f"unknown client library {name!r}")


def retry(fn, timeout: float, interval: float = 0.5, what: str = "operation"):
    """Call fn until it returns without raising, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return fn()
        except Exception as e:  # the clients raise many exception types
            last = e
            time.sleep(interval)
    raise ClientError(f"{what} did not succeed within {timeout:.0f}s; last error: {last!r}")
