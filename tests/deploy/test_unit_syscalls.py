"""The systemd unit's system-call filter against the system calls the binary really makes.

packaging/debian/kafka-proxy.service allows `@system-service` less `@privileged`
and `@resources` (with EPERM for the rest). A filter that refuses a call the
proxy needs breaks it only in production, so the binary under test runs under
strace(1) here, on each runtime, through a start, a round trip of large records
(cut-through and splice(2) between plaintext sockets), a SIGHUP reload and a
SIGTERM drain; every system call it made must be one the unit's filter allows,
as systemd itself expands the groups (`systemd-analyze syscall-filter`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from commands import run
from kafka_e2e.clients import client_lib, retry
from kafka_e2e.ports import HOST, pick_port, pick_proxy_base
from kafka_e2e.procs import port_accepts, wait_until
from kafka_e2e.proxy import PortLayout, render_config
from kafka_e2e.scenarios import consume_until
from kafka_e2e.tansu import TansuBroker

UNIT = "packaging/debian/kafka-proxy.service"
RECORD = 256 * 1024
COUNT = 24


def syscall_groups() -> dict[str, list[str]]:
    """`systemd-analyze syscall-filter`: group -> members (names and nested @groups)."""
    groups: dict[str, list[str]] = {}
    current = None
    for line in run("systemd-analyze", "syscall-filter").stdout.splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if line.startswith("@"):
            current = groups.setdefault(text, [])
        elif current is not None:
            current.append(text.split()[0])
    return groups


def expand(names: list[str], groups: dict[str, list[str]]) -> set[str]:
    out: set[str] = set()
    for name in names:
        out |= expand(groups[name], groups) if name.startswith("@") else {name}
    return out


def allowed_by_unit(unit_text: str, groups: dict[str, list[str]]) -> set[str]:
    """SystemCallFilter= lines in order: the first allow-list, then `~` lines remove."""
    allowed: set[str] | None = None
    for value in re.findall(r"^SystemCallFilter=(.*)$", unit_text, re.M):
        deny = value.startswith("~")
        names = value.lstrip("~").split()
        if deny:
            assert allowed is not None, "a deny-list without an allow-list allows almost everything"
            allowed -= expand(names, groups)
        else:
            allowed = (allowed or set()) | expand(names, groups)
    assert allowed, f"{UNIT} has no SystemCallFilter"
    return allowed


def traced_syscalls(trace: Path) -> set[str]:
    names = set()
    for line in trace.read_text().splitlines():
        m = re.match(r"\d+\s+(?:<\.\.\. )?([a-z_0-9]+)[( ]", line)
        if m and m[1] not in ("exited", "killed", "resumed"):
            names.add(m[1])
    return names


@pytest.mark.parametrize("runtime", ["tokio", "mio"])
def test_every_system_call_is_allowed_by_the_unit(runtime, proxy_binary: Path, repo: Path, tmp_path: Path):
    if not shutil.which("strace") or not shutil.which("systemd-analyze"):
        pytest.skip("needs strace and systemd-analyze (scripts/install-test-deps.sh)")
    allowed = allowed_by_unit((repo / UNIT).read_text(), syscall_groups())

    layout = PortLayout(pick_proxy_base())
    tansu = TansuBroker(pick_port(avoid=set(range(layout.base, layout.broker_port(400) + 1))),
                        tmp_path / "tansu")
    config = tmp_path / "proxy.yaml"
    config.write_text(render_config([f"{HOST}:{tansu.port}"], layout))
    trace = tmp_path / "trace"
    tracer = None
    try:
        tansu.start()
        tracer = subprocess.Popen(
            ["strace", "-f", "-qq", "-o", str(trace), str(proxy_binary), "--config", str(config),
             "--runtime", runtime],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: port_accepts(HOST, layout.base), 20, what="the traced proxy to listen")
        proxy_pid = int(Path(f"/proc/{tracer.pid}/task/{tracer.pid}/children").read_text().split()[0])

        lib = client_lib("confluent")
        topic = f"syscalls-{runtime}"
        retry(lambda: lib.create_topic(layout.bootstrap, topic, 1), 30, what="create topic")
        producer = lib.producer(layout.bootstrap, topic, **{"batch.size": 1_000_000, "linger.ms": 50,
                                                            "message.max.bytes": 2_000_000})
        for i in range(COUNT):
            producer.send(f"k{i}".encode(), os.urandom(RECORD))
        producer.flush(60)
        producer.close()
        assert producer.counts() == (COUNT, 0), producer.failed[:2]
        consumer = lib.consumer(layout.bootstrap, topic, f"g-{topic}",
                                **{"fetch.max.bytes": 16_000_000, "max.partition.fetch.bytes": 8_000_000})
        try:
            assert len(consume_until(consumer, COUNT, 60)) == COUNT
        finally:
            consumer.close()

        os.kill(proxy_pid, signal.SIGHUP)
        time.sleep(0.5)
        os.kill(proxy_pid, signal.SIGTERM)
        assert tracer.wait(timeout=45) == 0
    finally:
        if tracer is not None and tracer.poll() is None:
            tracer.kill()
            tracer.wait(10)
        tansu.stop()

    used = traced_syscalls(trace)
    print(f"{runtime}: {len(used)} system calls: {' '.join(sorted(used))}")
    # The paths that matter were taken: serving, the signal thread, splicing large frames.
    assert {"accept4", "connect", "rt_sigtimedwait", "splice"} <= used, sorted(used)
    refused = sorted(used - allowed)
    assert not refused, f"the unit's SystemCallFilter refuses system calls {runtime} makes: {refused}"
