"""kafka-proxy benchmark: the same broker and load driver, direct and through the proxy.

For each mode (direct, proxy on --runtime tokio, proxy on --runtime mio) a fresh
tansu (memory storage) is started; for each workload a fresh proxy is started
(so its peak RSS belongs to that workload), the native load driver
(bench/loadgen, librdkafka) moves the records, and the proxy's utime+stime
(/proc/<pid>/stat) and VmHWM (/proc/<pid>/status) are read before and after.

Workloads (1 KiB records, one producer or consumer connection, one partition):
  produce-large  linger 50 ms, batch.size 1 MB
  consume        read back everything produce-large wrote
  produce-16k    batch.size 16 KiB, linger 0

A `socat` mode runs the same workloads through a trivial relay (socat), the floor for
the proxy's CPU per GB. With `--metrics off,on` every plaintext proxy run is made twice, without and with the
admin endpoint (`admin.bind`: metrics folded from every session, /metrics scraped once a
second during the run, as Prometheus would), to show what metrics cost.

Run through bench/run.sh, which installs peers and builds both binaries.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(REPO / "bench"))

from kafka_e2e.admin import Admin, admin_config  # noqa: E402
from kafka_e2e.ports import pick_port, pick_proxy_base  # noqa: E402
from kafka_e2e.procs import proc_stats  # noqa: E402
from kafka_e2e.proxy import KafkaProxy, PortLayout, render_config  # noqa: E402
from kafka_e2e.tansu import TansuBroker  # noqa: E402

WORKLOADS = {
    "produce-large": ("produce", "bench-large", ["linger.ms=50", "batch.size=1000000",
                                                 "queue.buffering.max.kbytes=2097152"]),
    "consume": ("consume", "bench-large", ["fetch.max.bytes=52428800",
                                           "max.partition.fetch.bytes=16777216",
                                           "queued.max.messages.kbytes=1048576"]),
    "produce-16k": ("produce", "bench-16k", ["linger.ms=0", "batch.size=16384",
                                             "queue.buffering.max.kbytes=2097152"]),
}
MODES = ("direct", "tokio", "mio")


def run_loadgen(loadgen: Path, kind: str, bootstrap: str, topic: str, records: int, record_size: int,
                props: list[str], timeout: int) -> dict:
    argv = [str(loadgen), kind, "--bootstrap", bootstrap, "--topic", topic, "--records", str(records),
            "--record-size", str(record_size), "--timeout", str(timeout)]
    for p in props:
        argv += ["-X", p]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        raise RuntimeError(f"loadgen {kind} failed (exit {r.returncode}):\n{r.stdout}\n{r.stderr[-3000:]}")
    return json.loads(lines[-1])


def rss_split_kib(pid: int) -> tuple[int, int]:
    """(RssAnon, RssFile) of `pid` in KiB: private memory, and mapped file pages (code, shared libraries)."""
    anon = file = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                anon = int(line.split()[1])
            elif line.startswith("RssFile:"):
                file = int(line.split()[1])
    return anon, file


class KernelCounters:
    """`perf stat` attached to one process (and the children it forks meanwhile) for the length
    of a workload: system calls entered and context switches (each one a sleep and a wake-up,
    or a preemption). Off when perf is missing or may not attach; `result()` is then None."""

    EVENTS = ("raw_syscalls:sys_enter", "context-switches")

    def __init__(self, pid: int, out: Path):
        import shutil
        self.out = out
        self.proc = None
        if shutil.which("perf"):
            self.proc = subprocess.Popen(["perf", "stat", "-x", ",", "-e", ",".join(self.EVENTS),
                                          "-o", str(out), "-p", str(pid)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.3)  # attached before the first byte moves

    def result(self) -> dict | None:
        import signal
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        counts = {}
        try:
            for line in self.out.read_text().splitlines():
                fields = line.split(",")
                if len(fields) > 2 and fields[2] in self.EVENTS and fields[0].strip().isdigit():
                    counts[fields[2]] = int(fields[0])
        except OSError:
            return None
        finally:
            self.out.unlink(missing_ok=True)
        if len(counts) != len(self.EVENTS):
            return None
        return {"syscalls": counts["raw_syscalls:sys_enter"], "context_switches": counts["context-switches"]}


def measure(mode: str, wl: str, args, loadgen: Path, bootstrap: str, props: list[str],
            watched: dict, proxy=None, admin: Admin | None = None, relay_pid: int | None = None) -> dict:
    """Runs workload `wl` once, then stops `proxy` (if any): one result row, with the
    CPU-seconds per GB of every process in `watched` (name -> process, or None) and the
    proxy's peak RSS, with its private (anonymous) and file-backed parts sampled every 50 ms.
    The relay (the proxy, or `relay_pid`) gets system calls and context switches per MB
    when perf can attach. With `admin`, /metrics is scraped once a second meanwhile."""
    import threading

    kind, topic, _ = WORKLOADS[wl]
    watched = {name: process.pid for name, process in watched.items() if process is not None}
    relay_pid = relay_pid or watched.get("proxy")
    done = threading.Event()
    scrapes = []
    peak = {"anon": 0, "file": 0}

    def scrape_loop():
        while not done.wait(1.0):
            try:
                scrapes.append(len(admin.get("/metrics")[2]))
            except OSError:
                pass

    def sample_loop(pid: int):
        while True:
            try:
                anon, file = rss_split_kib(pid)
            except OSError:
                return
            peak["anon"] = max(peak["anon"], anon)
            peak["file"] = max(peak["file"], file)
            if done.wait(0.05):
                return

    threads = []
    if admin:
        threads.append(threading.Thread(target=scrape_loop, daemon=True))
    if "proxy" in watched:
        threads.append(threading.Thread(target=sample_loop, args=(watched["proxy"],), daemon=True))
    counters = None
    try:
        for t in threads:
            t.start()
        if relay_pid is not None and args.counters:
            counters = KernelCounters(relay_pid, Path(tempfile.mkstemp(prefix="perf-stat-", suffix=".csv")[1]))
        before = {name: proc_stats(pid) for name, pid in watched.items()}
        res = run_loadgen(loadgen, kind, bootstrap, topic, args.records, args.record_size, props, args.timeout)
        after = {name: proc_stats(pid) for name, pid in watched.items()}
    finally:
        kernel = counters.result() if counters else None
        done.set()
        for t in threads:
            t.join(5)
        if proxy:
            proxy.stop()
    gb = res["bytes"] / 1e9
    row = {
        "mode": mode, "workload": wl, "metrics": "on" if admin else "off", "scrapes": len(scrapes),
        "records": res["records"], "bytes": res["bytes"],
        "seconds": res["seconds"], "mb_per_s": res["mb_per_s"],
        "proxy_cpu_s_per_gb": None, "proxy_peak_rss_mib": None,
    }
    for name in watched:
        row[f"{name}_cpu_s_per_gb"] = (after[name].cpu_seconds - before[name].cpu_seconds) / gb
    if "proxy" in watched:
        row["proxy_peak_rss_mib"] = after["proxy"].vm_hwm_kib / 1024
        row["proxy_peak_anon_mib"] = peak["anon"] / 1024
        row["proxy_peak_file_mib"] = peak["file"] / 1024
    if kernel:
        mb = res["bytes"] / 1e6
        row["relay_syscalls_per_mb"] = kernel["syscalls"] / mb
        row["relay_context_switches_per_mb"] = kernel["context_switches"] / mb
    print(f"  {mode:10} {wl:13} metrics {row['metrics']:3} {row['mb_per_s']:8.1f} MB/s", flush=True)
    return row


def bench_mode(mode: str, args, work: Path) -> list[dict]:
    rows = []
    tansu = TansuBroker(pick_port(), work / f"tansu-{mode}", name=f"tansu-{mode}")
    tansu.start()
    try:
        for topic in {t for _, t, _ in WORKLOADS.values()}:
            tansu.create_topic(topic, partitions=1)
        layout = None
        config = None
        if mode != "direct":
            layout = PortLayout(pick_proxy_base(avoid={tansu.port}))
            config = work / f"proxy-{mode}.yaml"
            config.write_text(render_config([tansu.bootstrap], layout))
        for wl in args.workloads:
            props = WORKLOADS[wl][2]
            for metrics in (args.metrics if mode != "direct" else ["off"]):
                proxy = None
                admin = None
                bootstrap = tansu.bootstrap
                if mode != "direct":
                    proxy_config = config
                    if metrics == "on":
                        admin = Admin(pick_port(avoid={tansu.port, *range(layout.base, layout.base + 421)}))
                        proxy_config = work / f"proxy-{mode}-metrics.yaml"
                        proxy_config.write_text(config.read_text() + admin_config(admin.port))
                    proxy = KafkaProxy(proxy_config, layout, mode, work / f"{mode}-{wl}-metrics-{metrics}",
                                       binary=args.proxy)
                    proxy.start()
                    bootstrap = proxy.bootstrap
                rows.append(measure(mode, wl, args, args.loadgen, bootstrap, props,
                                    {"broker": tansu.process, "proxy": proxy and proxy.process}, proxy, admin))
    finally:
        tansu.stop()
    return rows


def markdown(rows: list[dict], args) -> str:
    out = [
        f"# kafka-proxy benchmark, {dt.datetime.now().isoformat(timespec='seconds')}",
        "",
        f"- {args.records} records of {args.record_size} B per workload "
        f"({args.records * args.record_size / 1e9:.2f} GB); one connection, one partition",
        "- broker: tansu 0.6.0, memory storage, fresh per mode; load driver: bench/loadgen (librdkafka)",
        f"- machine: {os.cpu_count()} cores, {platform.platform()}; load average at start "
        f"{args.loadavg}",
        "- MB = 10^6 bytes; CPU-s/GB = (utime+stime) over the workload / GB moved",
        "- peak RSS is VmHWM; its private (anonymous) and file-backed parts are their peaks sampled every "
        "50 ms. File-backed pages are the binary's code and the shared libraries, shared with every "
        "process that maps the same files",
        "- syscalls and context switches (perf stat on the relay: the proxy, or socat and its children) "
        "per MB; a produce-16k request is about 0.016 MB",
        "",
        "| workload | path | MB/s | proxy CPU-s/GB | proxy peak RSS (MiB) | private / file-backed (MiB) | "
        "syscalls per MB | context switches per MB | broker CPU-s/GB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = {w: i for i, w in enumerate(WORKLOADS)}
    for r in sorted(rows, key=lambda r: (order[r["workload"]], MODES.index(r["mode"]), r.get("metrics", "off"))):
        path = "direct" if r["mode"] == "direct" else f"proxy ({r['mode']})"
        if r.get("metrics") == "on":
            path = f"proxy ({r['mode']}, metrics on: {r['scrapes']} scrapes)"
        pcpu = "—" if r["proxy_cpu_s_per_gb"] is None else f"{r['proxy_cpu_s_per_gb']:.2f}"
        prss = "—" if r["proxy_peak_rss_mib"] is None else f"{r['proxy_peak_rss_mib']:.1f}"
        split = ("—" if r.get("proxy_peak_anon_mib") is None else
                 f"{r['proxy_peak_anon_mib']:.1f} / {r['proxy_peak_file_mib']:.1f}")
        sysc = "—" if r.get("relay_syscalls_per_mb") is None else f"{r['relay_syscalls_per_mb']:.1f}"
        ctxs = "—" if r.get("relay_context_switches_per_mb") is None else f"{r['relay_context_switches_per_mb']:.1f}"
        out.append(f"| {r['workload']} | {path} | {r['mb_per_s']:.1f} | {pcpu} | {prss} | {split} | {sysc} | "
                   f"{ctxs} | {r['broker_cpu_s_per_gb']:.2f} |")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=1.0, help="GiB per workload (default 1)")
    ap.add_argument("--record-size", type=int, default=1024)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--loadgen", type=Path, default=REPO / "bench/loadgen/target/release/kafka-proxy-loadgen")
    ap.add_argument("--proxy", type=Path, default=REPO / "target/release/kafka-proxy")
    ap.add_argument("--out", type=Path, default=REPO / "bench/results")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per workload run")
    ap.add_argument("--metrics", default="off",
                    help="off, on, or off,on: plaintext proxy runs without and/or with the admin endpoint")
    ap.add_argument("--latency", type=int, default=2000, metavar="N",
                    help="round trips per latency series on each plaintext path (0: no latency table)")
    ap.add_argument("--idle-connections", default="", metavar="N,M",
                    help="also measure memory per idle connection at these counts (e.g. 2500,5000)")
    ap.add_argument("--no-counters", dest="counters", action="store_false",
                    help="skip the relay's system calls and context switches (perf stat)")
    args = ap.parse_args()
    args.metrics = [m for m in args.metrics.split(",") if m]
    if not args.metrics or any(m not in ("off", "on") for m in args.metrics):
        ap.error("--metrics takes off, on or off,on")
    args.modes = [m for m in args.modes.split(",") if m]
    args.workloads = [w for w in args.workloads.split(",") if w]
    for m in args.modes:
        if m not in MODES:
            ap.error(f"unknown mode {m}")
    for w in args.workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w}")
    if "consume" in args.workloads and "produce-large" not in args.workloads:
        ap.error("consume reads what produce-large wrote: list both")
    if any(m != "direct" for m in args.modes) and not args.proxy.is_file():
        ap.error(f"{args.proxy} missing: build it (cargo build --release) or use --modes direct")
    args.records = int(args.gb * 1024**3) // args.record_size
    args.loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])

    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="kafka-proxy-bench-"))
    rows = []
    t0 = time.monotonic()
    for mode in args.modes:
        print(f"mode {mode}:", flush=True)
        rows += bench_mode(mode, args, work)
    extra = {}
    if args.latency > 0:
        extra["latency"] = latency_rows(args, work)
    if args.idle_connections:
        extra["idle"] = idle_rows(args, work)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    md = markdown(rows, args) + extra_markdown(extra)
    (args.out / f"bench-{stamp}.md").write_text(md)
    (args.out / f"bench-{stamp}.json").write_text(json.dumps(rows, indent=2))
    if extra:
        (args.out / f"bench-{stamp}-extra.json").write_text(json.dumps(extra, indent=2))
    print()
    print(md)
    print(f"results: {args.out}/bench-{stamp}.md (.json); logs: {work}; took {time.monotonic() - t0:.0f} s")
    return 0



# --------------------------------------------------------------------------- latency, idle connections
#
# Reported after the throughput table, from runs of their own (fresh broker and proxy per
# path), so the rows above are unchanged by them.

def latency_rows(args, work: Path) -> list[dict]:
    """p50/p99/p99.9 round trips per plaintext path: sequential ApiVersions and Metadata on an
    idle broker, and ApiVersions on a second connection while the load driver produces."""
    import latency

    rows = []
    _, topic, props = WORKLOADS["produce-16k"]
    for mode in [m for m in args.modes if m in ("direct", "tokio", "mio")]:
        print(f"latency {mode}:", flush=True)
        tansu = TansuBroker(pick_port(), work / f"tansu-latency-{mode}", name=f"tansu-latency-{mode}")
        tansu.start()
        proxy = None
        try:
            tansu.create_topic(topic, partitions=1)
            bootstrap = tansu.bootstrap
            if mode != "direct":
                layout = PortLayout(pick_proxy_base(avoid={tansu.port}))
                config = work / f"proxy-latency-{mode}.yaml"
                config.write_text(render_config([tansu.bootstrap], layout))
                proxy = KafkaProxy(config, layout, mode, work / f"latency-{mode}", binary=args.proxy)
                proxy.start()
                bootstrap = proxy.bootstrap
            for series in ("api-versions", "metadata"):
                rows.append({"mode": mode, "series": series, **latency.sequential(bootstrap, series, args.latency)})
            load = [str(args.loadgen), "produce", "--bootstrap", bootstrap, "--topic", topic,
                    "--records", str(args.records), "--record-size", str(args.record_size),
                    "--timeout", str(args.timeout)]
            for p in props:
                load += ["-X", p]
            rows.append({"mode": mode, "series": "api-versions under produce-16k load",
                         **latency.under_load(bootstrap, args.latency, load, 30)})
            for r in rows[-3:]:
                print(f"  {mode:7} {r['series']:36} p50 {r['p50_us']:7.0f} us  p99 {r['p99_us']:7.0f} us  "
                      f"p99.9 {r['p999_us']:7.0f} us", flush=True)
        finally:
            if proxy:
                proxy.stop()
            tansu.stop()
    return rows


def idle_rows(args, work: Path) -> list[dict]:
    """Memory per idle connection (bench/idle_connections.py) on each proxy runtime in --modes."""
    import idle_connections

    checkpoints = sorted({int(c) for c in args.idle_connections.split(",") if c})
    idle_connections.raise_fd_limit(checkpoints[-1])
    rows = []
    for runtime in [m for m in args.modes if m in ("tokio", "mio")]:
        r = idle_connections.measure(args.proxy.resolve(), runtime, checkpoints, work / f"idle-{runtime}")
        print(idle_connections.describe(r), flush=True)
        rows.append(r)
    return rows


def extra_markdown(extra: dict) -> str:
    out = []
    if extra.get("latency"):
        base = {r["series"]: r for r in extra["latency"] if r["mode"] == "direct"}
        out += ["", "Round-trip latency (Python raw-socket client, one request at a time; the client's own "
                "cost is the same on every path). Under load: a second connection while the load driver "
                "produces with produce-16k settings.", "",
                "| series | path | n | p50 µs | p99 µs | p99.9 µs | p50 over direct µs |",
                "|---|---|---:|---:|---:|---:|---:|"]
        for r in extra["latency"]:
            d = base.get(r["series"])
            over = "—" if d is None or r["mode"] == "direct" else f"{r['p50_us'] - d['p50_us']:+.0f}"
            path = "direct" if r["mode"] == "direct" else f"proxy ({r['mode']})"
            out.append(f"| {r['series']} | {path} | {r['n']} | {r['p50_us']:.0f} | {r['p99_us']:.0f} | "
                       f"{r['p999_us']:.0f} | {over} |")
    if extra.get("idle"):
        out += ["", "Idle connections (each after one ApiVersions round trip, upstream open): proxy RSS.", "",
                "| runtime | connections | RSS (KiB) | KiB per connection | slope (KiB/conn) |",
                "|---|---|---|---:|---|"]
        for r in extra["idle"]:
            counts = "/".join(str(x["connections"]) for x in r["samples"])
            rss = "/".join(str(x["rss_kib"]) for x in r["samples"])
            slopes = ", ".join(f"{x['from']}->{x['to']}: {x['kib_per_conn']:.2f}" for x in r["slopes"]) or "—"
            out.append(f"| {r['runtime']} | {counts} | {rss} | {r['kib_per_conn_first']:.2f} | {slopes} |")
    return ("\n".join(out) + "\n") if out else ""


# --------------------------------------------------------------------------- TLS paths
#
# Three more modes, measured like the plaintext ones and reported next to them:
#   direct-tls  loadgen --TLS--> stunnel --> tansu             (tansu advertises stunnel)
#   tokio-tls   loadgen --TLS--> proxy --TLS--> stunnel --> tansu
#   mio-tls     the same on --runtime mio
# The proxy terminates TLS from the client and opens its own TLS session to the broker
# endpoint (stunnel, since tansu 0.6.0 has no TLS of its own), verifying names on both
# hops against a CA from `kafka-proxy --generate-certs`. The load driver needs a
# librdkafka with TLS: a copy of bench/loadgen is built with rdkafka's `ssl` feature
# (system OpenSSL, libssl-dev) in the deps cache, once.

TLS_MODES = ("direct-tls", "tokio-tls", "mio-tls")
MODES = MODES + TLS_MODES
_TLS_LABELS = {
    "direct-tls": "direct via stunnel (TLS)",
    "tokio-tls": "proxy TLS->TLS (tokio)",
    "mio-tls": "proxy TLS->TLS (mio)",
}


AES_CIPHER = "aes-256-gcm"
_AES_CACHE: dict[str, float | None] = {}


def aes_gcm_cpu_s_per_gb() -> float | None:
    """CPU-seconds one core spends on one AES-256-GCM pass over 1 GB of 16 KiB records (the
    TLS record size), from `openssl speed`'s machine-readable output; None without openssl."""
    if AES_CIPHER not in _AES_CACHE:
        rate = None
        try:
            r = subprocess.run(["openssl", "speed", "-mr", "-evp", AES_CIPHER, "-bytes", "16384",
                                "-seconds", "2"], capture_output=True, text=True, timeout=60)
            for line in r.stdout.splitlines():
                if line.startswith("+F:"):  # +F:<index>:<cipher>:<bytes per second>
                    rate = float(line.rsplit(":", 1)[1])
        except (OSError, subprocess.TimeoutExpired, ValueError):
            rate = None
        _AES_CACHE[AES_CIPHER] = 1e9 / rate if rate else None
    return _AES_CACHE[AES_CIPHER]


def tls_loadgen() -> Path:
    """bench/loadgen built with TLS (rdkafka feature `ssl`) in <deps>/loadgen-tls; rebuilt when its sources change."""
    import hashlib
    import shutil

    deps = Path(os.environ.get("KAFKA_PROXY_DEPS", Path.home() / ".cache" / "kafka-proxy"))
    src = REPO / "bench" / "loadgen"
    dst = deps / "loadgen-tls"
    files = ["Cargo.toml", "Cargo.lock", "rustfmt.toml", "src/main.rs"]
    digest = hashlib.sha256(b"".join((src / f).read_bytes() for f in files)).hexdigest()
    binary = dst / "target" / "release" / "kafka-proxy-loadgen"
    stamp = dst / ".sources-sha256"
    if binary.is_file() and stamp.is_file() and stamp.read_text() == digest:
        return binary
    print(f"building the TLS load driver in {dst} (rdkafka feature ssl; once)", flush=True)
    (dst / "src").mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copyfile(src / f, dst / f)
    subprocess.run(["cargo", "build", "--release", "--features", "rdkafka/ssl"], cwd=dst, check=True,
                   timeout=1800)
    stamp.write_text(digest)
    return binary


@contextlib.contextmanager
def tls_path(proxy_binary: Path, work: Path, name: str):
    """The TLS setup of the TLS modes: certificates from `kafka-proxy --generate-certs`,
    tansu behind stunnel (tansu advertises stunnel), the topics of WORKLOADS, and a proxy
    config with TLS on both sides. Yields a namespace with `layout`, `config`, the load
    driver's `props`, the `direct` bootstrap (stunnel), `tansu` and `stunnel`; stops both after."""
    import types

    from kafka_e2e.tls import AdvertisingTansu, DownstreamTls, Stunnel, TlsProxyConfig, UpstreamTls, \
        generate_certs

    pki = generate_certs(proxy_binary, work / f"pki-{name}", "bench.kproxy.test")
    layout = PortLayout(pick_proxy_base(), hostname="localhost")
    span = set(range(layout.base, layout.broker_port(layout.max_broker_id) + 1))
    tansu_port = pick_port(avoid=span)
    stunnel_port = pick_port(avoid=span | {tansu_port})
    tansu = AdvertisingTansu(tansu_port, work / f"tansu-{name}", "localhost", stunnel_port, name=f"tansu-{name}")
    stunnel = Stunnel(stunnel_port, tansu.bootstrap, pki.server, work / f"stunnel-{name}")
    tansu.start()
    try:
        stunnel.start()
        for topic in sorted({t for _, t, _ in WORKLOADS.values()}):
            tansu.create_topic(topic, partitions=1)
        config = work / f"proxy-{name}.json"
        config.write_text(TlsProxyConfig(
            upstream=[f"localhost:{stunnel_port}"], mapping=layout,
            downstream_tls=DownstreamTls(pki.server), upstream_tls=UpstreamTls(ca=pki.ca),
        ).render())
        yield types.SimpleNamespace(
            layout=layout, config=config, direct=f"localhost:{stunnel_port}", tansu=tansu, stunnel=stunnel,
            props=["security.protocol=ssl", f"ssl.ca.location={pki.ca}",
                   "ssl.endpoint.identification.algorithm=https"])
    finally:
        stunnel.stop()
        tansu.stop()


def bench_tls_mode(mode: str, args, work: Path) -> list[dict]:
    runtime = mode.removesuffix("-tls")
    loadgen = tls_loadgen()
    rows = []
    with tls_path(args.proxy, work, mode) as tls:
        for wl in args.workloads:
            props = WORKLOADS[wl][2]
            proxy = None
            bootstrap = tls.direct
            if runtime != "direct":
                proxy = KafkaProxy(tls.config, tls.layout, runtime, work / f"{mode}-{wl}", binary=args.proxy)
                proxy.start()
                bootstrap = f"localhost:{tls.layout.bootstrap_port(0)}"
            rows.append(measure(mode, wl, args, loadgen, bootstrap, props + tls.props,
                                {"broker": tls.tansu.process, "stunnel": tls.stunnel.process,
                                 "proxy": proxy and proxy.process}, proxy))
    return rows


# --------------------------------------------------------------------------- socat floor
#
#   socat  loadgen --> socat (TCP relay, fork per connection, 64 KiB buffer) --> tansu
# tansu advertises socat's port, so every connection goes through the relay. socat's
# CPU includes its per-connection children (reaped: cutime + cstime). The floor for
# what any relay that copies through user space costs; the "proxy CPU-s/GB" column of
# its row is socat's.

SOCAT_MODE = "socat"
MODES = MODES + (SOCAT_MODE,)


def _cpu_with_children(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def bench_socat_mode(args, work: Path) -> list[dict]:
    from kafka_e2e.tls import AdvertisingTansu

    socat_bin = os.environ.get("SOCAT", "socat")
    tansu_port = pick_port()
    socat_port = pick_port(avoid={tansu_port})
    tansu = AdvertisingTansu(tansu_port, work / "tansu-socat", "127.0.0.1", socat_port, name="tansu-socat")
    tansu.start()
    rows = []
    relay = None
    try:
        for topic in {t for _, t, _ in WORKLOADS.values()}:
            tansu.create_topic(topic, partitions=1)
        relay = subprocess.Popen([socat_bin, "-b", "65536",
                                  f"TCP-LISTEN:{socat_port},bind=127.0.0.1,reuseaddr,fork",
                                  f"TCP:127.0.0.1:{tansu_port}"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        for wl in args.workloads:
            before = _cpu_with_children(relay.pid)
            row = measure(SOCAT_MODE, wl, args, args.loadgen, f"127.0.0.1:{socat_port}", WORKLOADS[wl][2],
                          {"broker": tansu.process}, relay_pid=relay.pid)
            # The children exit with their connections; their CPU counts once reaped.
            children = Path(f"/proc/{relay.pid}/task/{relay.pid}/children")
            deadline = time.monotonic() + 5
            while children.read_text().strip() and time.monotonic() < deadline:
                time.sleep(0.05)
            row["proxy_cpu_s_per_gb"] = (_cpu_with_children(relay.pid) - before) / (row["bytes"] / 1e9)
            rows.append(row)
    finally:
        if relay is not None:
            relay.terminate()
            try:
                relay.wait(timeout=10)
            except subprocess.TimeoutExpired:
                relay.kill()
                relay.wait()
        tansu.stop()
    return rows


_plain_bench_mode = bench_mode
_plain_markdown = markdown


def bench_mode(mode: str, args, work: Path) -> list[dict]:  # noqa: F811 (extends the plaintext modes)
    if mode in TLS_MODES:
        return bench_tls_mode(mode, args, work)
    if mode == SOCAT_MODE:
        return bench_socat_mode(args, work)
    return _plain_bench_mode(mode, args, work)


def markdown(rows: list[dict], args) -> str:  # noqa: F811 (labels TLS paths, adds the TLS cost table)
    text = _plain_markdown(rows, args)
    for mode, label in _TLS_LABELS.items():
        text = text.replace(f"| proxy ({mode}) |", f"| {label} |")
    text = text.replace(f"| proxy ({SOCAT_MODE}) |", "| socat relay (floor; its CPU) |")
    by = {(r["mode"], r["workload"]): r for r in rows}
    tls_rows = [r for r in rows if r["mode"] in TLS_MODES]
    if not tls_rows:
        return text
    def fmt(value, digits=2):
        return "—" if value is None else f"{value:.{digits}f}"

    aes = aes_gcm_cpu_s_per_gb()
    aes_note = ("unmeasured (no openssl)" if aes is None else
                f"{aes:.3f} CPU-s/GB per pass, from `openssl speed -evp {AES_CIPHER} -bytes 16384` on one core")
    out = [
        "",
        "TLS cost: proxy CPU-s/GB with TLS on both sides (clients and broker endpoint) next to",
        "plaintext; stunnel (the broker's TLS endpoint, on every TLS path) for scale. The computed",
        "floor is the plaintext path plus two AES-GCM passes over every byte (decrypt from one",
        f"side, encrypt to the other; TLS 1.3 AES-256-GCM on both hops): {aes_note}.",
        "",
        "| workload | runtime | plaintext proxy CPU-s/GB | TLS proxy CPU-s/GB | computed floor | "
        "TLS over floor | TLS MB/s | direct-via-stunnel MB/s | stunnel CPU-s/GB (proxy path) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for wl in WORKLOADS:
        for rt in ("tokio", "mio"):
            tls = by.get((f"{rt}-tls", wl))
            if tls is None:
                continue
            plain = by.get((rt, wl))
            direct = by.get(("direct-tls", wl))
            plain_cpu = plain["proxy_cpu_s_per_gb"] if plain else None
            direct_mbps = direct["mb_per_s"] if direct else None
            floor = None if plain_cpu is None or aes is None else plain_cpu + 2 * aes
            over = None if floor is None else tls["proxy_cpu_s_per_gb"] / floor
            out.append(
                f"| {wl} | {rt} | {fmt(plain_cpu)} | {fmt(tls['proxy_cpu_s_per_gb'])} | {fmt(floor)} | "
                f"{'—' if over is None else f'{over:.2f}x'} | "
                f"{fmt(tls['mb_per_s'], 1)} | {fmt(direct_mbps, 1)} | {fmt(tls['stunnel_cpu_s_per_gb'])} |"
            )
    return text + "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
