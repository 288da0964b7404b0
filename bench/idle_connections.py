"""What an idle client connection costs kafka-proxy: memory and file descriptors.

Starts tansu and the proxy (each given binary, each runtime), opens client
connections to the bootstrap port in steps up to each checkpoint (default
5,000 and 20,000), has each complete one ApiVersions round trip (so its
upstream connection is open and its buffers have been used), leaves them idle,
and reads the proxy's VmRSS, peak RSS (VmHWM) and open descriptors from /proc
at every checkpoint. Prints one line per binary and runtime: KiB per
connection from the empty proxy to the first checkpoint, and the RSS slope
between consecutive checkpoints (the cost of one more connection, free of
fixed costs), plus descriptors per connection.

The descriptor limit of this process (inherited by the proxy and tansu) is
raised to fit the largest checkpoint (two per connection in the proxy); raising
the hard limit needs CAP_SYS_RESOURCE (where it is missing and the hard limit
is 20,000, at most 9,872 connections fit).

Usage: python bench/idle_connections.py [--proxy target/release/kafka-proxy [--proxy OTHER ...]]
           [--connections 5000,20000] [--runtimes tokio,mio] [--json FILE]
(the deps env file from scripts/install-test-deps.sh must be sourced).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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

# How long the proxy gets to settle (its connections idle) before a sample.
SETTLE_S = 2.0


def status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def raise_fd_limit(connections: int) -> None:
    """The proxy holds two descriptors per connection, tansu one, this process one.

    Raises the soft limit (inherited by the proxy and tansu) and, where the
    process may (CAP_SYS_RESOURCE), the hard one; otherwise says how many
    connections fit.
    """
    want = 2 * connections + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError) as e:
        fit = (hard - 256) // 2
        raise SystemExit(f"cannot raise RLIMIT_NOFILE to {want} for {connections} connections "
                         f"(limit {soft}/{hard}: {e}); at most {fit} connections fit: "
                         f"use --connections with checkpoints up to {fit}") from e


def measure(binary: Path, runtime: str, checkpoints: list[int], work: Path) -> dict:
    layout = PortLayout(pick_proxy_base())
    span = set(range(layout.base, layout.broker_port(layout.max_broker_id) + 1))
    tansu = TansuBroker(pick_port(avoid=span), work / f"tansu-{runtime}")
    tansu.start()
    config = work / f"proxy-{runtime}.yaml"
    config.write_text(render_config([tansu.bootstrap], layout))
    proxy = KafkaProxy(config, layout, runtime, work, binary=binary)
    conns: list[KafkaWire] = []
    samples = []
    t0 = time.monotonic()
    try:
        proxy.start()
        pid = proxy.process.pid
        time.sleep(1.0)
        samples.append({"connections": 0, "rss_kib": status_kib(pid, "VmRSS"), "fds": fds(pid)})
        for target in checkpoints:
            while len(conns) < target:
                w = KafkaWire("127.0.0.1", layout.bootstrap_port(0), timeout=30)
                w.__enter__()
                conns.append(w)
                w.api_versions(0)
            time.sleep(SETTLE_S)
            samples.append({"connections": target, "rss_kib": status_kib(pid, "VmRSS"), "fds": fds(pid)})
        hwm = status_kib(pid, "VmHWM")
    finally:
        for w in conns:
            w.__exit__(None, None, None)
        proxy.stop()
        tansu.stop()
    first, base = samples[1], samples[0]
    result = {
        "binary": str(binary),
        "runtime": runtime,
        "samples": samples,
        "peak_rss_kib": hwm,
        "kib_per_conn_first": (first["rss_kib"] - base["rss_kib"]) / first["connections"],
        "fds_per_conn": (first["fds"] - base["fds"]) / first["connections"],
        "slopes": [
            {"from": a["connections"], "to": b["connections"],
             "kib_per_conn": (b["rss_kib"] - a["rss_kib"]) / (b["connections"] - a["connections"])}
            for a, b in zip(samples[1:], samples[2:])
        ],
        "seconds": round(time.monotonic() - t0, 1),
    }
    return result


def describe(r: dict) -> str:
    s = r["samples"]
    line = (f"{r['binary']} {r['runtime']}: RSS " + " -> ".join(f"{x['rss_kib']}" for x in s)
            + f" KiB at " + "/".join(str(x["connections"]) for x in s) + " connections; "
            + f"{r['kib_per_conn_first']:.2f} KiB each up to {s[1]['connections']}")
    for slope in r["slopes"]:
        line += f", slope {slope['from']}->{slope['to']}: {slope['kib_per_conn']:.2f} KiB/conn"
    line += f"; peak RSS {r['peak_rss_kib']} KiB; {r['fds_per_conn']:.2f} descriptors each ({r['seconds']} s)"
    return line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proxy", type=Path, action="append",
                    help="binary to measure (repeatable; default target/release/kafka-proxy)")
    ap.add_argument("--connections", default="5000,20000",
                    help="comma-separated checkpoints, ascending (a single number is one sample)")
    ap.add_argument("--runtimes", default="tokio,mio")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    checkpoints = sorted({int(c) for c in args.connections.split(",") if c})
    if not checkpoints or checkpoints[0] <= 0:
        raise SystemExit("--connections: give positive counts")
    raise_fd_limit(checkpoints[-1])
    binaries = [p.resolve() for p in (args.proxy or [REPO / "target/release/kafka-proxy"])]
    results = []
    with tempfile.TemporaryDirectory(prefix="kafka-proxy-idle.") as tmp:
        for binary in binaries:
            for runtime in args.runtimes.split(","):
                r = measure(binary, runtime, checkpoints, Path(tmp) / f"{len(results)}")
                results.append(r)
                print(describe(r), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
