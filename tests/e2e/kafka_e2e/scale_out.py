"""N kafka-proxy replicas behind one load balancer, and client streams that count every record.

`Replica` is the release binary bound to its own loopback address (127.0.0.2,
.3, ...) with a configuration every replica shares but for `bind_address`: the
same mapping (port_offset base or SNI port and naming rule), the same
advertised host (the load balancer's), so any replica can serve any connection.

`Stream` is one client library producing with acks=all and consuming in a
group, on its own thread, for as long as the test disrupts the replicas; it
keeps every acknowledgement, every failure and every (partition, offset) each
value was consumed at, so the test can tell lost records from duplicated ones
and duplicates from re-deliveries.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .clients import ClientError, retry
from .paths import PROXY_BINARY
from .procs import ManagedProcess, wait_until


@dataclass(frozen=True)
class PortOffsetMapping:
    base: int
    max_broker_id: int
    advertised_host: str = "127.0.0.1"

    def broker_port(self, node_id: int) -> int:
        return self.base + 20 + node_id

    def lb_ports(self) -> list[tuple[int, int]]:
        """The bootstrap slot and every broker port: what the load balancer forwards."""
        return [(self.base, self.base), (self.broker_port(0), self.broker_port(self.max_broker_id))]

    @property
    def check_port(self) -> int:
        return self.base

    def section(self) -> dict:
        return {"mode": "port_offset", "port_offset": {
            "hostname": self.advertised_host, "base": self.base, "max_broker_id": self.max_broker_id}}


@dataclass(frozen=True)
class SniMapping:
    port: int
    upstream: str
    downstream: str
    cert: Path
    key: Path

    def lb_ports(self) -> list[tuple[int, int]]:
        return [(self.port, self.port)]

    @property
    def check_port(self) -> int:
        return self.port

    def section(self) -> dict:
        return {"mode": "sni", "sni": {"bind_port": self.port, "upstream": self.upstream,
                                       "downstream": self.downstream}}


def render_replica_config(address: str, upstream: list[str], mapping) -> str:
    """The configuration of one replica (JSON, which is YAML): only bind_address differs."""
    down: dict = {"security_protocol": "PLAINTEXT"}
    if isinstance(mapping, SniMapping):
        down = {"security_protocol": "SSL", "tls": {"cert": str(mapping.cert), "key": str(mapping.key)}}
    doc = {
        "bind_address": address,
        "upstream": {"bootstrap_servers": upstream, "security_protocol": "PLAINTEXT"},
        "downstream": down,
        "broker_mapping": mapping.section(),
    }
    return json.dumps(doc, indent=2) + "\n"


class Replica:
    """One kafka-proxy replica on `address`; restartable, stopped by PID."""

    def __init__(self, name: str, address: str, config: str, runtime: str, workdir: Path,
                 ready_port: int, binary: Path = PROXY_BINARY):
        self.name = name
        self.address = address
        self._drain_started = 0.0
        self.ready_port = ready_port
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / f"{name}.yaml"
        path.write_text(config)
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info"), "RUST_BACKTRACE": "1"}
        self.process = ManagedProcess(f"{name}[{runtime}]",
                                      [binary, "--config", path, "--runtime", runtime],
                                      workdir / f"{name}.log", env=env)

    def start(self, timeout: float = 15.0) -> "Replica":
        self.process.start()
        self.process.wait_ready(self.address, self.ready_port, timeout)
        return self

    def kill(self) -> None:
        self.process.kill()

    def drain(self) -> None:
        """One SIGTERM: the replica stops accepting and drains (a second would exit at once)."""
        self._drain_started = time.monotonic()
        self.process.signal(signal.SIGTERM)

    def wait_exit(self, timeout: float = 40.0) -> tuple[int | None, float]:
        """After `drain()`: (exit code, seconds the drain took)."""
        self.process.proc.wait(timeout=timeout)
        return self.process.returncode(), time.monotonic() - self._drain_started

    def stop(self) -> None:
        self.process.stop()


@dataclass
class StreamCounts:
    """What one stream saw, for the test's assertions."""

    acked: set[bytes]
    failed: list
    placements: dict[bytes, set[tuple[int, int]]]  # value -> every (partition, offset) consumed

    @property
    def lost(self) -> list[bytes]:
        return sorted(self.acked - set(self.placements))

    @property
    def duplicated(self) -> list[bytes]:
        """Values written more than once (at distinct offsets), not merely consumed twice."""
        return sorted(v for v, at in self.placements.items() if len(at) > 1)


class Stream:
    """A producer (acks=all) and a group consumer of one library on one topic, on a thread.

    Values are `s-<seq>`; `in_flight()` names the values sent but not yet
    acknowledged nor failed (what a broken connection may make the client resend).
    """

    MAX_IN_FLIGHT = 200
    BATCH = 10
    # At most BATCH records per PERIOD (500 a second): enough to keep every connection busy.
    PERIOD = 0.02

    def __init__(self, lib, bootstrap: str, topic: str, group: str, overrides: dict | None = None):
        self.lib = lib
        self.name = lib.name
        self.topic = topic
        self.producer = lib.producer(bootstrap, topic, **(overrides or {}))
        self.consumer = lib.consumer(bootstrap, topic, group, **(overrides or {}))
        self.lock = threading.Lock()
        self.sent: list[bytes] = []
        self.placements: dict[bytes, set[tuple[int, int]]] = defaultdict(set)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stream-{self.name}", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> "Stream":
        self._thread.start()
        return self

    def _consume(self, timeout: float) -> None:
        for rec in self.consumer.poll(timeout):
            with self.lock:
                self.placements[rec.value].add((rec.partition, rec.offset))

    def _run(self) -> None:
        seq = 0
        last_commit = time.monotonic()
        try:
            while not self._stop.is_set():
                next_round = time.monotonic() + self.PERIOD
                acked, failed = self.producer.counts()
                if seq - acked - failed < self.MAX_IN_FLIGHT:
                    for _ in range(self.BATCH):
                        value = f"s-{seq:07d}".encode()
                        with self.lock:
                            self.sent.append(value)
                        self.producer.send(f"key-{seq % 12}".encode(), value)
                        seq += 1
                self._consume(0.05)
                if time.monotonic() - last_commit > 1.0:
                    try:
                        self.consumer.commit(asynchronous=True)
                    except Exception:
                        pass  # a commit may fail while a replica goes away; the last one must not
                    last_commit = time.monotonic()
                time.sleep(max(0.0, next_round - time.monotonic()))
        except BaseException as e:  # reported by finish()
            self.error = e

    def acked(self) -> int:
        return self.producer.counts()[0]

    def failed(self) -> int:
        return self.producer.counts()[1]

    def in_flight(self) -> set[bytes]:
        with self.producer.lock:
            done = {v for _, v, _, _ in self.producer.acked} | {v for _, v, _ in self.producer.failed}
        with self.lock:
            return set(self.sent) - done

    def wait_acked(self, n: int, timeout: float, what: str) -> None:
        def enough():
            if self.error:
                raise ClientError(f"{self.name} stream failed: {self.error!r}")
            return self.acked() >= n

        try:
            wait_until(enough, timeout, interval=0.05, what=f"{self.name}: {n} acknowledged ({what})")
        except TimeoutError as e:
            raise ClientError(f"{e}; acked {self.acked()}, failures {self.producer.failed[:3]}, "
                              f"consumer errors {self.consumer.errors[-3:]}") from None

    def finish(self, timeout: float = 60.0) -> StreamCounts:
        """Stops producing, waits for every delivery, consumes until every acknowledged
        value is seen (or `timeout`), commits, closes."""
        self._stop.set()
        self._thread.join(timeout=10)
        try:
            if self.error:
                raise ClientError(f"{self.name} stream failed: {self.error!r}")
            self.producer.flush(30)
            with self.producer.lock:
                acked = {v for _, v, _, _ in self.producer.acked}
                failed = list(self.producer.failed)
            deadline = time.monotonic() + timeout
            while not acked <= set(self.placements) and time.monotonic() < deadline:
                self._consume(0.5)
            retry(self.consumer.commit, 20, what=f"{self.name}: final commit")
        finally:
            self.producer.close()
            self.consumer.close()
        return StreamCounts(acked, failed, dict(self.placements))


@dataclass
class Timeline:
    """What happened to the replicas, for the test's report."""

    events: list[str] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)

    def note(self, text: str) -> None:
        self.events.append(f"{time.monotonic() - self.t0:6.1f}s {text}")
