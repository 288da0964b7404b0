"""Debian's kcat 1.7.1, which links librdkafka 2.0.2.

librdkafka 2.0.2 mis-skips the tagged fields tansu writes at the end of its
ApiVersions v3 response, so it cannot talk to tansu directly; a proxy that
re-encodes ApiVersions canonically makes it work.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from .paths import kcat_binary
from .wire import Broker

_BROKER_LINE = re.compile(r"^\s*broker (\d+) at ([^:\s]+):(\d+)")


def run(args: list[str], timeout: float = 30.0, stdin: str | None = None,
        libdir: Path | None = None) -> subprocess.CompletedProcess:
    """Run kcat with `args`; `libdir` puts another librdkafka.so.1 in front (LD_LIBRARY_PATH)."""
    binary = kcat_binary()
    if binary is None:
        raise FileNotFoundError("kcat is not installed (scripts/install-test-deps.sh installs it)")
    env = dict(os.environ)
    if libdir is not None:
        env["LD_LIBRARY_PATH"] = str(libdir)
    return subprocess.run([str(binary), *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, env=env)


def brokers_from_listing(stdout: str) -> list[Broker]:
    """Brokers of a `kcat -L` listing."""
    out = []
    for line in stdout.splitlines():
        m = _BROKER_LINE.match(line)
        if m:
            out.append(Broker(int(m.group(1)), m.group(2), int(m.group(3))))
    return out


def librdkafka_216_dir(tmp: Path) -> Path:
    """A directory with librdkafka.so.1 pointing at the confluent-kafka wheel's librdkafka 2.16."""
    import confluent_kafka

    libs = Path(confluent_kafka.__file__).parent.parent / "confluent_kafka.libs"
    candidates = sorted(libs.glob("librdkafka-*.so.1"))
    if not candidates:
        raise FileNotFoundError(f"no librdkafka in {libs}")
    tmp.mkdir(parents=True, exist_ok=True)
    link = tmp / "librdkafka.so.1"
    if not link.exists():
        link.symlink_to(candidates[0])
    return tmp
