"""The shipped binary's code layout: which functions go first (cli/symbol-order.txt).

    scripts/symbol-order.py            regenerate cli/symbol-order.txt, then rebuild dist
    scripts/symbol-order.py --check    how many of its names the last dist link resolved

Why: the kernel maps a binary's code in 64 KiB windows around each page that runs
(fault-around), so the few hundred functions a proxy runs, scattered over 6.5 MiB of
text, keep about 4 MiB of it resident. cli/build.rs hands the file to lld
(`--symbol-ordering-file`) when linking the dist profile, which puts those functions
first and together.

Regenerating builds a symbolized twin of the dist binary (KAFKA_PROXY_KEEP_SYMBOLS=1:
same profile, so the same symbol names), runs it under callgrind on each runtime through
what a proxy does in a typical life (start, /metrics, /ready, produce with large and
16 KiB batches, consume, 2.5 s idle so buffers are released and metrics folded, drain and
exit), once in PLAINTEXT against tansu and once with TLS on both sides (the benchmark's
TLS setup: stunnel in front of tansu), with the bench's load drivers, and writes every
function of the binary that ran: those of the plaintext runs first, then those only the TLS
runs needed, each group the most instructions first. Needs valgrind, the test peers
(scripts/install-test-deps.sh: tansu, stunnel) and the load driver (bench/run.sh builds it;
its TLS twin is built on first use, as the benchmark does).

The check reads the linker map cli/build.rs writes beside the dist build and fails when
fewer than half of the names resolve: names change with the toolchain, the dist profile
and dependency versions, and a stale file silently gives the memory back.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ORDER = REPO / "cli" / "symbol-order.txt"
DIST = REPO / "target" / "dist"
LOADGEN = REPO / "bench" / "loadgen" / "target" / "release" / "kafka-proxy-loadgen"
# Records per workload under callgrind: enough to run every path many times.
RECORDS = 20_000
MIN_RESOLVED = 0.5


def build(keep_symbols: bool) -> Path:
    env = dict(os.environ)
    env.pop("KAFKA_PROXY_KEEP_SYMBOLS", None)
    if keep_symbols:
        env["KAFKA_PROXY_KEEP_SYMBOLS"] = "1"
    subprocess.run(["cargo", "build", "--profile", "dist", "--locked", "-p", "kafka-proxy"],
                   cwd=REPO, env=env, check=True)
    return DIST / "kafka-proxy"


def _imports():
    sys.path.insert(0, str(REPO / "tests" / "e2e"))
    sys.path.insert(0, str(REPO / "bench"))


def _callgrind_wrapper(binary: Path, out: Path, work: Path, name: str) -> Path:
    wrapper = work / f"callgrind-{name}.sh"
    wrapper.write_text("#!/bin/sh\nexec valgrind --tool=callgrind --demangle=no --dump-instr=no "
                       f"--callgrind-out-file={out} {binary} \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper


def _life(proxy, admin, loadgen: Path, bootstrap: str, props: list[str]) -> None:
    """What a proxy does in a typical life once started; then SIGTERM: drain and exit,
    which callgrind records."""
    import bench

    try:
        if admin:
            for path in ("/metrics", "/ready", "/health"):
                admin.get(path, timeout=30)
        for wl in ("produce-large", "consume", "produce-16k"):
            kind, topic, wl_props = bench.WORKLOADS[wl]
            bench.run_loadgen(loadgen, kind, bootstrap, topic, RECORDS, 1024, wl_props + props, 600)
            if admin:
                admin.get("/metrics", timeout=30)
        time.sleep(2.5)  # buffers released, metrics folded
        if admin:
            admin.get("/metrics", timeout=30)
    finally:
        proxy.process.stop(timeout=120)


def trace_plaintext(binary: Path, runtime: str, out: Path, work: Path) -> None:
    """PLAINTEXT on both sides, with the admin endpoint, against tansu."""
    _imports()
    import bench
    from kafka_e2e.admin import Admin, admin_config
    from kafka_e2e.ports import pick_port, pick_proxy_base
    from kafka_e2e.proxy import KafkaProxy, PortLayout, render_config
    from kafka_e2e.tansu import TansuBroker

    wrapper = _callgrind_wrapper(binary, out, work, f"plain-{runtime}")
    tansu = TansuBroker(pick_port(), work / f"tansu-{runtime}", name=f"tansu-{runtime}")
    tansu.start()
    try:
        for topic in sorted({topic for _, topic, _ in bench.WORKLOADS.values()}):
            tansu.create_topic(topic, partitions=1)
        layout = PortLayout(pick_proxy_base(avoid={tansu.port}))
        admin = Admin(pick_port(avoid={tansu.port, *range(layout.base, layout.base + 421)}))
        config = work / f"proxy-{runtime}.yaml"
        config.write_text(render_config([tansu.bootstrap], layout) + admin_config(admin.port))
        proxy = KafkaProxy(config, layout, runtime, work / f"proxy-{runtime}", binary=wrapper)
        proxy.start(timeout=120)
        _life(proxy, admin, LOADGEN, proxy.bootstrap, [])
    finally:
        tansu.stop()


def trace_tls(binary: Path, runtime: str, out: Path, work: Path) -> None:
    """TLS on both sides (clients to the proxy, the proxy to stunnel in front of tansu),
    as the benchmark's TLS modes run it."""
    _imports()
    import bench
    from kafka_e2e.proxy import KafkaProxy

    loadgen = bench.tls_loadgen()
    wrapper = _callgrind_wrapper(binary, out, work, f"tls-{runtime}")
    with bench.tls_path(binary, work, f"tls-{runtime}") as tls:
        proxy = KafkaProxy(tls.config, tls.layout, runtime, work / f"proxy-tls-{runtime}", binary=wrapper)
        proxy.start(timeout=120)
        _life(proxy, None, loadgen, f"localhost:{tls.layout.bootstrap_port(0)}", tls.props)


def executed(profile: Path, binary: Path) -> collections.Counter:
    """Self instructions of each function of `binary` in a callgrind profile (names as
    linked: --demangle=no). Objects and functions are named once, then referred to by id."""
    objects: dict[str, str] = {}
    names: dict[str, str] = {}
    owner: dict[str, str | None] = {}
    cost: collections.Counter = collections.Counter()
    current_object = None
    current = None
    for line in profile.read_text().splitlines():
        if line.startswith(("ob=", "cob=")):
            m = re.match(r"c?ob=\((\d+)\)(?: (.*))?", line)
            if m:
                if m.group(2):
                    objects[m.group(1)] = m.group(2)
                if line.startswith("ob="):
                    current_object = objects.get(m.group(1))
        elif line.startswith(("fn=", "cfn=")):
            m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line)
            if not m:
                continue
            if m.group(2):
                names[m.group(1)] = m.group(2)
            if line.startswith("fn="):
                current = m.group(1)
                owner.setdefault(current, current_object)
        elif current and line[:1].isdigit():
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                cost[current] += int(fields[1])
    mine = str(binary.resolve())
    out: collections.Counter = collections.Counter()
    for fid, name in names.items():
        if owner.get(fid) == mine:
            out[name] += cost[fid]
    return out


def linked_symbols(binary: Path) -> set[str]:
    r = subprocess.run(["nm", "--defined-only", str(binary)], capture_output=True, text=True, check=True)
    return {line.split()[-1] for line in r.stdout.splitlines() if len(line.split()) == 3}


def newest_map() -> Path | None:
    maps = sorted(DIST.glob("build/kafka-proxy-*/out/kafka-proxy.map"), key=lambda p: p.stat().st_mtime)
    return maps[-1] if maps else None


def check() -> int:
    if not ORDER.is_file():
        print(f"symbol order: {ORDER.relative_to(REPO)} missing (scripts/symbol-order.py writes it)")
        return 1
    wanted = [line.strip() for line in ORDER.read_text().splitlines() if line.strip()]
    link_map = newest_map()
    if link_map is None:
        # cli/build.rs writes one for x86_64 Linux with rustc's default linker only.
        print("symbol order: not checked: no linker map under target/dist/build (not an x86_64 Linux "
              "build with rust-lld, or no dist build yet)")
        return 0
    # lld's map names input sections ("(.text.unlikely._ZN...E)") and symbols: every
    # dot-separated tail of a token is a candidate name.
    present = set()
    for token in re.findall(r"[\w.$]+", link_map.read_text(errors="replace")):
        parts = token.split(".")
        present.update(".".join(parts[i:]) for i in range(len(parts)))
    resolved = sum(1 for name in wanted if name in present)
    share = resolved / len(wanted) if wanted else 0.0
    print(f"symbol order: {resolved} of {len(wanted)} names resolve in {link_map.relative_to(REPO)} "
          f"({share:.0%})")
    if share < MIN_RESOLVED:
        print("symbol order: stale (toolchain, dist profile or dependencies changed): "
              "run scripts/symbol-order.py to regenerate cli/symbol-order.txt")
        return 1
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only report how many names the last dist link resolved")
    args = ap.parse_args()
    if args.check:
        return check()
    if not LOADGEN.is_file():
        print(f"{LOADGEN} missing: bench/run.sh builds it", file=sys.stderr)
        return 1
    twin = build(keep_symbols=True)
    symbols = linked_symbols(twin)
    # Per setup: a plaintext proxy then runs one contiguous prefix, a TLS one that prefix
    # and the TLS-only functions after it.
    ran_in: dict[str, collections.Counter] = {"plaintext": collections.Counter(), "tls": collections.Counter()}
    with tempfile.TemporaryDirectory(prefix="kafka-proxy-symbol-order-") as tmp:
        work = Path(tmp)
        for runtime in ("tokio", "mio"):
            for name, trace in (("plaintext", trace_plaintext), ("tls", trace_tls)):
                out = work / f"callgrind-{name}-{runtime}.out"
                trace(twin, runtime, out, work)
                if not out.is_file():
                    raise RuntimeError(f"callgrind wrote nothing for {name} on {runtime}: see {work}")
                ran = executed(out, twin)
                print(f"{name} on {runtime}: {len(ran)} functions ran", flush=True)
                ran_in[name].update(ran)
    plaintext = [n for n, _ in ran_in["plaintext"].most_common() if n in symbols]
    seen = set(plaintext)
    names = plaintext + [n for n, _ in ran_in["tls"].most_common() if n in symbols and n not in seen]
    ORDER.write_text("".join(f"{name}\n" for name in names))
    print(f"wrote {len(names)} names to {ORDER.relative_to(REPO)}")
    build(keep_symbols=False)
    return check()


if __name__ == "__main__":
    sys.exit(main())
