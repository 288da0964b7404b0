"""Both client libraries with SASL (and TLS), and the client-side flows of the SASL tests.

- `Login`, `sasl_client_lib` (TLS as `tls.ClientTls`): settings for librdkafka (confluent-kafka) and
  kafka-python, including OAUTHBEARER token callbacks and kafka-python on SaslHandshake v0.
- `produce_consume`, `stream`: produce and read back by partition assignment (no consumer
  group: tansu delays a new group's first join by seconds), once or continuously.
- `auth_failure_seen_by_client`, `KafkaPythonLog`: what a library reports about a refusal,
  and which requests (with versions) kafka-python sent.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable

from .clients import ClientError, client_lib
from .tls import ClientTls, client_tls_settings

# --------------------------------------------------------------------- clients


@dataclass(frozen=True)
class Login:
    """A client's SASL identity: a password, or (OAUTHBEARER) a function returning a fresh token.

    librdkafka is told the token's own `exp` (less `expiry_margin_s`, as token providers
    refresh early) as its lifetime, and refreshes at 80% of it; it refuses to send a token it
    believes expired, so `believed_lifetime_s` overrides what it is told, to make it send an
    expired token anyway.
    """

    mechanism: str
    username: str
    password: str | None = None
    token: Callable[[], str] | None = field(default=None, compare=False)
    believed_lifetime_s: float | None = None
    expiry_margin_s: float = 0.0


def sasl_client_lib(name: str, login: Login | None, tls: ClientTls | None = None,
                    handshake_v0: bool = False, **extra):
    """Client library `name` (clients.CLIENT_LIBS) with SASL and/or TLS settings in `lib.extra`.

    handshake_v0 (kafka-python only): pin the client to Kafka 0.11.0's API versions,
    where SaslHandshake is v0 and the SASL tokens follow as raw frames.
    """
    lib = client_lib(name)
    protocol = {(False, False): "PLAINTEXT", (True, False): "SASL_PLAINTEXT",
                (False, True): "SSL", (True, True): "SASL_SSL"}[(login is not None, tls is not None)]
    if name == "confluent":
        conf = {"security.protocol": protocol}
        if login is not None:
            conf["sasl.mechanism"] = login.mechanism
            if login.mechanism == "OAUTHBEARER":
                def oauth_cb(_config, login=login):
                    token = login.token()
                    expiry = (jwt_expiry(token) - login.expiry_margin_s if login.believed_lifetime_s is None
                              else time.time() + login.believed_lifetime_s)
                    return token, expiry, login.username
                conf["oauth_cb"] = oauth_cb
            else:
                conf["sasl.username"] = login.username
                conf["sasl.password"] = login.password
        if tls is not None:
            conf.update(client_tls_settings(name, tls))
        if handshake_v0:
            raise ValueError("librdkafka always uses SaslHandshake v1 against brokers that offer it")
    else:
        conf = dict(security_protocol=protocol)
        if login is not None:
            conf["sasl_mechanism"] = login.mechanism
            if login.mechanism == "OAUTHBEARER":
                conf["sasl_oauth_token_provider"] = kafka_python_token_provider(login)
            else:
                conf["sasl_plain_username"] = login.username
                conf["sasl_plain_password"] = login.password
        if tls is not None:
            conf.update(client_tls_settings(name, tls))
        if handshake_v0:
            conf["api_version"] = (0, 11, 0)
    conf.update(extra)
    lib.extra = conf
    return lib


def jwt_expiry(token: str) -> float:
    """The `exp` claim of a JWT (seconds since the epoch), read without checking the signature."""
    payload = token.split(".")[1]
    return float(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"])


def kafka_python_token_provider(login: Login):
    from kafka.net.sasl.oauth import AbstractTokenProvider

    class Provider(AbstractTokenProvider):
        def token(self):
            return login.token()

    return Provider()


@dataclass
class Exchanged:
    produced: int
    consumed: int


def produce(lib, bootstrap: str, topic: str, records: list[tuple[bytes, bytes]],
            timeout: float = 30.0) -> None:
    """Produce every record and wait for every acknowledgement; raises ClientError otherwise."""
    producer = lib.producer(bootstrap, topic)
    try:
        for k, v in records:
            producer.send(k, v)
        producer.flush(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            acked, failed = producer.counts()
            if failed or acked == len(records):
                break
            time.sleep(0.05)
        acked, failed = producer.counts()
        if failed or acked != len(records):
            raise ClientError(f"{lib.name} produce via {bootstrap}: {acked}/{len(records)} acknowledged, "
                              f"failures: {producer.failed[:3]}")
    finally:
        producer.close()


class AssignedConsumer:
    """A consumer that reads partitions from the beginning by assignment (no group)."""

    def __init__(self, lib, bootstrap: str, topic: str, partitions: int = 1, **overrides):
        self.lib = lib
        if lib.name == "confluent":
            from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

            conf = {
                "bootstrap.servers": bootstrap, "group.id": f"assign-{os.getpid()}",
                "enable.auto.commit": False, "auto.offset.reset": "earliest",
                "socket.timeout.ms": 10000, "reconnect.backoff.ms": 100, "reconnect.backoff.max.ms": 1000,
                **lib.extra, **overrides,
            }
            self.c = Consumer(conf)
            self.c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        else:
            from kafka import KafkaConsumer, TopicPartition

            conf = dict(bootstrap_servers=[bootstrap], group_id=None, enable_auto_commit=False,
                        auto_offset_reset="earliest", request_timeout_ms=15000,
                        reconnect_backoff_ms=100, reconnect_backoff_max_ms=1000)
            conf.update(lib.extra)
            conf.update(overrides)
            self.c = KafkaConsumer(**conf)
            tps = [TopicPartition(topic, p) for p in range(partitions)]
            self.c.assign(tps)
            self.c.seek_to_beginning(*tps)
        self.errors: list[str] = []

    def poll(self, timeout: float) -> list[bytes]:
        out = []
        if self.lib.name == "confluent":
            for m in self.c.consume(num_messages=500, timeout=timeout):
                if m.error():
                    self.errors.append(str(m.error()))
                else:
                    out.append(m.value())
        else:
            for records in self.c.poll(timeout_ms=int(timeout * 1000), max_records=500).values():
                out.extend(r.value for r in records)
        return out

    def read(self, want: set[bytes], timeout: float) -> set[bytes]:
        seen: set[bytes] = set()
        deadline = time.monotonic() + timeout
        while not want <= seen and time.monotonic() < deadline:
            seen.update(self.poll(0.5))
        return seen

    def close(self) -> None:
        if self.lib.name == "confluent":
            self.c.close()
        else:
            self.c.close(autocommit=False)


def produce_consume(lib, bootstrap: str, topic: str, n: int = 50, timeout: float = 30.0,
                    prefix: str = "r") -> Exchanged:
    """Produce n records to partition-count-1 `topic` (which exists) and read them all back."""
    records = [(f"k{i % 5}".encode(), f"{prefix}-{i:05d}".encode()) for i in range(n)]
    produce(lib, bootstrap, topic, records, timeout)
    want = {v for _, v in records}
    consumer = AssignedConsumer(lib, bootstrap, topic)
    try:
        seen = consumer.read(want, timeout)
    finally:
        consumer.close()
    missing = sorted(want - seen)
    if missing:
        raise AssertionError(f"{lib.name} via {bootstrap}: consumed {len(want & seen)}/{n}; "
                             f"first missing {missing[:3]}; consumer errors {consumer.errors[-3:]}")
    return Exchanged(n, len(want & seen))


@dataclass
class StreamResult:
    sent: int
    acked: int
    failed: list
    consumed: int
    missing: list


def stream(lib, bootstrap: str, topic: str, seconds: float, rate_per_s: int = 100,
           drain_timeout: float = 20.0) -> StreamResult:
    """Produce at about `rate_per_s` and consume (by assignment) for `seconds`, on long-lived
    connections; then wait for every acknowledgement and read every acknowledged record."""
    producer = lib.producer(bootstrap, topic)
    consumer = AssignedConsumer(lib, bootstrap, topic)
    seen: set[bytes] = set()
    sent = 0
    try:
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            while sent < elapsed * rate_per_s:
                producer.send(f"k{sent % 5}".encode(), f"s-{sent:07d}".encode())
                sent += 1
            seen.update(consumer.poll(0.05))
        producer.flush(drain_timeout)
        deadline = time.monotonic() + drain_timeout
        while sum(producer.counts()) < sent and time.monotonic() < deadline:
            time.sleep(0.05)
        acked_values = {v for _, v, _, _ in producer.acked}
        deadline = time.monotonic() + drain_timeout
        while not acked_values <= seen and time.monotonic() < deadline:
            seen.update(consumer.poll(0.2))
    finally:
        producer.close()
        consumer.close()
    acked, _ = producer.counts()
    return StreamResult(sent, acked, list(producer.failed), len(seen & acked_values),
                        sorted(acked_values - seen)[:5])


def streams_in_parallel(jobs: dict[str, tuple], seconds: float) -> dict[str, StreamResult]:
    """Run `stream(lib, bootstrap, topic, seconds)` for every job (name -> (lib, bootstrap, topic))
    at the same time, each on its own thread; the results by name."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {name: pool.submit(stream, lib, bootstrap, topic, seconds)
                   for name, (lib, bootstrap, topic) in jobs.items()}
        return {name: f.result(timeout=seconds + 90) for name, f in futures.items()}


# --------------------------------------------------------------------- refusals seen by clients


def auth_failure_seen_by_client(lib, bootstrap: str, timeout: float = 6.0) -> list[str]:
    """Connect with `lib`'s settings; the authentication errors the library reports.

    librdkafka reports them to `error_cb` (code _AUTHENTICATION and the broker's message);
    kafka-python logs them ("[Error 58] SaslAuthenticationFailedError: <message>") and
    its bootstrap then times out.
    """
    errors: list[str] = []
    if lib.name == "confluent":
        from confluent_kafka import KafkaError, Producer

        def on_error(err):
            if err.code() == KafkaError._AUTHENTICATION:
                errors.append(err.str())

        producer = Producer({"bootstrap.servers": bootstrap, "reconnect.backoff.ms": 500,
                             **lib.extra, "error_cb": on_error})
        deadline = time.monotonic() + timeout
        while not errors and time.monotonic() < deadline:
            producer.poll(0.1)
        producer.flush(0)
        return errors

    from kafka import KafkaAdminClient

    class Collect(logging.Handler):
        def emit(self, record):
            msg = record.getMessage()
            if "[Error " in msg and ("Sasl" in msg or "Authentication" in msg):
                errors.append(msg)

    handler = Collect(level=logging.DEBUG)
    logger = logging.getLogger("kafka")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        admin = KafkaAdminClient(bootstrap_servers=[bootstrap], bootstrap_timeout_ms=int(timeout * 250),
                                 request_timeout_ms=int(timeout * 1000), **lib.extra)
        admin.close()
    except Exception as e:  # KafkaTimeoutError: unable to bootstrap
        errors.append(f"raised {e!r}")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    return errors


class KafkaPythonLog:
    """Collects kafka-python's log messages (its requests, with versions, at DEBUG) while open."""

    def __init__(self):
        self.messages: list[str] = []
        outer = self

        class Collect(logging.Handler):
            def emit(self, record):
                outer.messages.append(record.getMessage())

        self._handler = Collect(level=logging.DEBUG)
        self._logger = logging.getLogger("kafka")
        self._level = self._logger.level

    def __enter__(self) -> "KafkaPythonLog":
        self._logger.addHandler(self._handler)
        self._logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc) -> None:
        self._logger.removeHandler(self._handler)
        self._logger.setLevel(self._level)

    def requests(self, name: str) -> list[str]:
        """The logged requests of one type, e.g. 'SaslHandshakeRequest(version=0'."""
        return [m for m in self.messages if f": {name}" in m or f" {name}" in m]
