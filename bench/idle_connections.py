"""What an idle client connection costs kafka-proxy: memory and file descriptors.

Starts tansu and the proxy (the given binary, each runtime), opens N client
connections to the bootstrap port, has each complete one ApiVersions round trip
(so its upstream connection is open and its buffers have been used), leaves them
idle, and reads the proxy's VmRSS and open descriptors from /proc before and
after. Prints one line per runtime: KiB and descriptors per connection.

Usage: python bench/idle_connections.py [--proxy target/dist/kafka-proxy] [--connections 2000]
(the deps env file from scripts/install-test-deps.sh must be sourced).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from kafka_e2e.ports import pick_port, pick_proxy_base  # noqa: E402
from kafka_e2e.proxy import KafkaProxy, PortLayout, render_config  # noqa: E402
from kafka_e2e.tansu import TansuBroker  # noqa: E402
from kafka_e2e.wire import KafkaWire  # noqa: E402


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def measure(binary: Path, runtime: str, n: int, work: Path) -> str:
    layout = PortLayout(pick_proxy_base())
    span = set(range(layout.base, layout.broker_port(layout.max_broker_id) + 1))
    tansu = TansuBroker(pick_port(avoid=span), work / f"tansu-{runtime}")
    tansu.start()
    config = work / f"proxy-{runtime}.yaml"
    config.write_text(render_config([tansu.bootstrap], layout))
    proxy = KafkaProxy(config, layout, runtime, work, binary=binary)
    conns = []
    try:
        proxy.start()
        pid = proxy.process.pid
        time.sleep(1.0)
        rss0, fd0 = rss_kib(pid), fds(pid)
        for _ in range(n):
            w = KafkaWire("127.0.0.1", layout.bootstrap_port(0), timeout=10)
            w.__enter__()
            w.api_versions(0)
            conns.append(w)
        time.sleep(2.0)
        rss1, fd1 = rss_kib(pid), fds(pid)
    finally:
        for w in conns:
            w.__exit__(None, None, None)
        proxy.stop()
        tansu.stop()
    return (f"{runtime}: {n} idle connections: RSS {rss0} -> {rss1} KiB "
            f"({(rss1 - rss0) / n:.1f} KiB each), descriptors {fd0} -> {fd1} ({(fd1 - fd0) / n:.2f} each)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proxy", type=Path, default=REPO / "target/release/kafka-proxy")
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--runtimes", default="tokio,mio")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kafka-proxy-idle.") as tmp:
        for runtime in args.runtimes.split(","):
            print(measure(args.proxy.resolve(), runtime, args.connections, Path(tmp)), flush=True)


if __name__ == "__main__":
    main()
