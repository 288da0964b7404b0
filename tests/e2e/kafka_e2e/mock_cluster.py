"""librdkafka's mock cluster: N brokers in one process, the only multi-broker peer here.

The confluent-kafka wheel bundles librdkafka 2.16, whose mock cluster
(`rd_kafka_mock_cluster_new`) serves a PLAINTEXT Kafka cluster of N brokers on
loopback ports, with partition leaders spread over them. It has no
CreateTopics: topics are created through its C API (`rd_kafka_mock_topic_create`)
when the helper starts. Run as a child process (`python -m kafka_e2e.mock_cluster
--brokers 3 --topic NAME:PARTITIONS ...`): it prints one line `bootstraps
HOST:PORT,...` once serving, and serves until SIGTERM/SIGINT.

`MockCluster` below starts and stops that helper by PID like every other peer.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import signal
import sys
import threading
from pathlib import Path

from .procs import ManagedProcess, ProcessError, wait_until


def _librdkafka() -> ctypes.CDLL:
    """The librdkafka the confluent-kafka wheel loads (its own copy, 2.16)."""
    import confluent_kafka

    libs = Path(confluent_kafka.__file__).resolve().parents[1] / "confluent_kafka.libs"
    found = sorted(glob.glob(str(libs / "librdkafka-*.so.1")))
    if not found:
        raise RuntimeError(f"no librdkafka in {libs}")
    lib = ctypes.CDLL(found[0])
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_conf_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                      ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_new.restype = ctypes.c_void_p
    lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_mock_cluster_new.restype = ctypes.c_void_p
    lib.rd_kafka_mock_cluster_new.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.rd_kafka_mock_cluster_bootstraps.restype = ctypes.c_char_p
    lib.rd_kafka_mock_cluster_bootstraps.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_topic_create.restype = ctypes.c_int
    lib.rd_kafka_mock_topic_create.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
    lib.rd_kafka_mock_cluster_destroy.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_destroy.argtypes = [ctypes.c_void_p]
    return lib


def serve(brokers: int, topics: list[tuple[str, int]]) -> None:
    """Runs the mock cluster until SIGTERM/SIGINT (the helper process's main)."""
    lib = _librdkafka()
    errstr = ctypes.create_string_buffer(512)
    conf = lib.rd_kafka_conf_new()
    # The handle only owns the cluster; it never connects anywhere itself.
    if lib.rd_kafka_conf_set(conf, b"client.id", b"e2e-mock-cluster", errstr, len(errstr)) != 0:
        raise RuntimeError(errstr.value.decode())
    rk = lib.rd_kafka_new(0, conf, errstr, len(errstr))  # RD_KAFKA_PRODUCER
    if not rk:
        raise RuntimeError(f"rd_kafka_new: {errstr.value.decode()}")
    cluster = lib.rd_kafka_mock_cluster_new(rk, brokers)
    if not cluster:
        raise RuntimeError("rd_kafka_mock_cluster_new failed")
    for name, partitions in topics:
        err = lib.rd_kafka_mock_topic_create(cluster, name.encode(), partitions, 1)
        if err != 0:
            raise RuntimeError(f"rd_kafka_mock_topic_create({name}): error {err}")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"bootstraps {lib.rd_kafka_mock_cluster_bootstraps(cluster).decode()}", flush=True)
    while not stop.wait(1.0):
        pass
    lib.rd_kafka_mock_cluster_destroy(cluster)
    lib.rd_kafka_destroy(rk)


class MockCluster:
    """The helper process; `bootstraps` are its brokers' HOST:PORT, broker id i+1 at index i."""

    def __init__(self, workdir: Path, brokers: int, topics: list[tuple[str, int]]):
        self.brokers = brokers
        argv = [sys.executable, "-m", "kafka_e2e.mock_cluster", "--brokers", str(brokers)]
        for name, partitions in topics:
            argv += ["--topic", f"{name}:{partitions}"]
        self.process = ManagedProcess("mock-cluster", argv, Path(workdir) / "mock-cluster.log",
                                      cwd=Path(__file__).resolve().parents[1],
                                      env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.bootstraps: list[str] = []

    def start(self, timeout: float = 15.0) -> "MockCluster":
        self.process.start()

        def announced():
            if not self.process.running():
                raise ProcessError(f"mock cluster exited early:\n{self.process.log_tail()}")
            # Only this start's lines: the log file is appended to across starts.
            for line in self.process.log_text().rsplit("===== start #", 1)[-1].splitlines():
                if line.startswith("bootstraps "):
                    return line.split(" ", 1)[1].strip().split(",")
            return None

        self.bootstraps = wait_until(announced, timeout, what="the mock cluster's bootstrap line")
        return self

    def stop(self) -> None:
        self.process.stop()


def _topic(text: str) -> tuple[str, int]:
    name, _, partitions = text.rpartition(":")
    return name, int(partitions)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--brokers", type=int, default=3)
    ap.add_argument("--topic", type=_topic, action="append", default=[], metavar="NAME:PARTITIONS")
    args = ap.parse_args()
    serve(args.brokers, args.topic)
