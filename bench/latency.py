"""Round-trip latency percentiles, direct and through kafka-proxy.

One connection sends requests one at a time and times each round trip
(request written to response read, `time.perf_counter_ns`):

  api-versions       ApiVersions v0, sequential, on an idle broker
  metadata           Metadata v1 (all topics), sequential, on an idle broker
  api-versions-load  ApiVersions v0 on a second connection while the load driver
                     produces on its own connection (produce-16k settings)

The client is Python over a raw socket: its own cost (a few microseconds per
round trip) is the same on every path, so the difference between a proxy path
and the direct path is the proxy's. Used by bench/bench.py (`--latency`); runs
on its own too:

  python bench/latency.py --bootstrap 127.0.0.1:9092 [--requests 2000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from kafka_e2e.wire import KafkaWire  # noqa: E402

# Requests sent before timing starts (connection set up, caches warm).
WARMUP = 50


def percentile(sorted_ns: list[int], p: float) -> float:
    """The p-th percentile (nearest rank) in microseconds."""
    if not sorted_ns:
        return float("nan")
    rank = max(0, min(len(sorted_ns) - 1, int(round(p / 100 * len(sorted_ns) + 0.5)) - 1))
    return sorted_ns[rank] / 1000


def summary(samples_ns: list[int]) -> dict:
    s = sorted(samples_ns)
    return {"n": len(s), "p50_us": percentile(s, 50), "p99_us": percentile(s, 99),
            "p999_us": percentile(s, 99.9), "max_us": (s[-1] / 1000) if s else float("nan")}


def _request(host: str, port: int, api: str, n: int, until=None) -> list[int]:
    """Times `n` sequential requests (or, with `until`, as many as fit until it returns True)."""
    samples = []
    with KafkaWire(host, port, timeout=30, client_id="bench-latency") as w:
        send = (lambda: w.api_versions(0)) if api == "api-versions" else (lambda: w.metadata(1))
        for _ in range(WARMUP):
            send()
        while len(samples) < n and not (until and until()):
            t0 = time.perf_counter_ns()
            send()
            samples.append(time.perf_counter_ns() - t0)
    return samples


def sequential(bootstrap: str, api: str, n: int) -> dict:
    host, port = bootstrap.rsplit(":", 1)
    return summary(_request(host, int(port), api, n))


def under_load(bootstrap: str, n: int, load_argv: list[str], timeout: float) -> dict:
    """ApiVersions round trips while `load_argv` (the load driver) runs on its own connection;
    stops after `n` samples or when the load ends, and stops the load (by PID) if it is still going."""
    host, port = bootstrap.rsplit(":", 1)
    load = subprocess.Popen(load_argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # the producer is connected and pushing
        samples = _request(host, int(port), "api-versions", n, until=lambda: load.poll() is not None)
        loaded = load.poll() is None
    finally:
        if load.poll() is None:
            load.terminate()
        try:
            load.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            load.kill()
            load.communicate()
    result = summary(samples)
    result["load_ran_throughout"] = loaded
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--requests", type=int, default=2000)
    args = ap.parse_args()
    for api in ("api-versions", "metadata"):
        r = sequential(args.bootstrap, api, args.requests)
        print(f"{api}: p50 {r['p50_us']:.0f} us, p99 {r['p99_us']:.0f} us, p99.9 {r['p999_us']:.0f} us (n={r['n']})")


if __name__ == "__main__":
    main()
