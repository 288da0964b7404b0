#!/usr/bin/env bash
# THE test command of kafka-proxy (CI runs exactly this through .ci/run).
#
# Phases, in order, stopping at the first failure:
#   deps      scripts/install-test-deps.sh --with-sasl-broker (pinned peers, cached in
#             $KAFKA_PROXY_DEPS, default ~/.cache/kafka-proxy; the sqlite tansu build
#             runs only when it is missing: 12-15 min cold on 2 cores)
#   lint      cargo fmt --all --check; cargo clippy --workspace --all-targets -- -D warnings;
#             cargo-machete (unused dependencies); scripts/cargo-deny.sh (advisories from the
#             ../shared/advisory-db snapshot, licenses, bans, sources; offline)
#   unit      cargo test --workspace
#   build     cargo build --profile dist (what ships, and what package and e2e test:
#             target/dist/kafka-proxy, and the std adapter example)
#   package   pytest tests/deploy on the dist binary: the .deb
#             (cargo-deb) installed with dpkg, checked and purged; the unit's system-call
#             filter against strace; the container image built with buildah and inspected;
#             the Kubernetes manifests against the proxy's config
#   e2e       pytest tests/e2e: real tansu, the dist binary on tokio and mio, real clients
#   fuzz      a short run of every fuzz target, when cargo-fuzz is installed
#
# Options: --quick  skip the sqlite tansu build (SASL-broker tests skip)
#          --skip PHASE[,PHASE]  skip phases (e.g. --skip lint,fuzz)
# Environment: FUZZ_SECONDS (default 20 per target), PYTEST_ARGS (extra pytest arguments).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

DEPS_FLAGS=(--with-sasl-broker)
SKIP=","
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) DEPS_FLAGS=() ;;
    --skip) SKIP=",$2,"; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

TIMINGS=()
CURRENT=""
T_START=$SECONDS
LOGDIR="$(mktemp -d "${TMPDIR:-/tmp}/kafka-proxy-test.XXXXXX")"

# Total of the cargo test and pytest counts seen so far, as one "N passed, N failed" line.
totals() {
  local passed=0 failed=0 skipped=0 n
  if [ -f "$LOGDIR/unit.log" ]; then
    n=$(grep -E '^test result:' "$LOGDIR/unit.log" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
    passed=$((passed + n))
    n=$(grep -E '^test result:' "$LOGDIR/unit.log" | grep -oE '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
    failed=$((failed + n))
    n=$(grep -E '^test result:' "$LOGDIR/unit.log" | grep -oE '[0-9]+ ignored' | awk '{s+=$1} END {print s+0}')
    skipped=$((skipped + n))
  fi
  local log line
  for log in "$LOGDIR/package.log" "$LOGDIR/e2e.log"; do
    [ -f "$log" ] || continue
    line=$(grep -E '[0-9]+ (passed|failed|skipped|errors?).* in [0-9.]+s' "$log" | tail -1 || true)
    n=$(grep -oE '[0-9]+ passed' <<<"$line" | awk '{s+=$1} END {print s+0}'); passed=$((passed + n))
    n=$(grep -oE '[0-9]+ (failed|errors?)' <<<"$line" | awk '{s+=$1} END {print s+0}'); failed=$((failed + n))
    n=$(grep -oE '[0-9]+ skipped' <<<"$line" | awk '{s+=$1} END {print s+0}'); skipped=$((skipped + n))
  done
  echo "tests: $passed passed, $failed failed, $skipped skipped"
}

summary() {
  local rc=$?
  set +e +o pipefail  # counting below must not abort the report
  echo
  echo "==================== test.sh summary ===================="
  for t in "${TIMINGS[@]}"; do echo "  $t"; done
  if [ "$rc" -ne 0 ] && [ -n "$CURRENT" ]; then
    echo "  FAILED in phase '$CURRENT' (exit $rc) after $((SECONDS - T_START)) s"
  elif [ "$rc" -eq 0 ]; then
    echo "  all phases passed in $((SECONDS - T_START)) s"
  fi
  echo "  logs: $LOGDIR"
  echo "=========================================================="
  totals
}
trap summary EXIT

# phase NAME COMMAND...: run one phase, timed; skipped when listed in --skip.
phase() {
  local name=$1; shift
  if [[ "$SKIP" == *",$name,"* ]]; then
    TIMINGS+=("$(printf '%-8s skipped (--skip)' "$name")")
    return 0
  fi
  CURRENT=$name
  echo
  echo "==> [$name] $*"
  local t0=$SECONDS
  "$@"
  TIMINGS+=("$(printf '%-8s %4d s' "$name" $((SECONDS - t0)))")
  CURRENT=""
}

deps() {
  scripts/install-test-deps.sh "${DEPS_FLAGS[@]}"
  # shellcheck disable=SC1091
  source "${KAFKA_PROXY_DEPS:-$HOME/.cache/kafka-proxy}/env.sh"
}

lint() {
  cargo fmt --all --check
  cargo clippy --workspace --all-targets --locked -- -D warnings
  if [ -z "${CARGO_MACHETE:-}" ] || [ -z "${CARGO_DENY:-}" ]; then
    # shellcheck disable=SC1091
    source "${KAFKA_PROXY_DEPS:-$HOME/.cache/kafka-proxy}/env.sh" \
      || { echo "lint: no deps env file: run scripts/install-test-deps.sh" >&2; return 1; }
  fi
  if [ -z "${CARGO_MACHETE:-}" ] || [ ! -x "$CARGO_MACHETE" ]; then
    echo "lint: cargo-machete missing from the deps (run scripts/install-test-deps.sh)" >&2
    return 1
  fi
  echo "lint: cargo-machete $("$CARGO_MACHETE" --version)"
  "$CARGO_MACHETE" --skip-target-dir
  scripts/cargo-deny.sh
}

e2e() {
  if [ -z "${PYTHON:-}" ]; then
    # shellcheck disable=SC1091
    source "${KAFKA_PROXY_DEPS:-$HOME/.cache/kafka-proxy}/env.sh" \
      || { echo "e2e: no deps env file: run scripts/install-test-deps.sh" >&2; return 1; }
  fi
  local rc=0
  # shellcheck disable=SC2086
  KAFKA_PROXY_BIN="$DIST_BIN" KAFKA_PROXY_STD_ADAPTER="$DIST_STD_ADAPTER" \
    "$PYTHON" -m pytest tests/e2e ${PYTEST_ARGS:-} 2>&1 | tee "$LOGDIR/e2e.log" || rc=$?
  if [ "$rc" -eq 5 ]; then
    echo "e2e: pytest collected no tests: the suite is broken" >&2
  fi
  return "$rc"
}

# ---- fuzz ---------------------------------------------------------------------
# Every target of fuzz/ for FUZZ_SECONDS (cargo-fuzz from the deps cache; the
# toolchain is stable, RUSTC_BOOTSTRAP=1 unlocks the flags cargo-fuzz needs).
# Each run starts from the target's seed corpus in fuzz/seeds/ when there is one.
fuzz_smoke() {
  local secs=${FUZZ_SECONDS:-20} t
  [ -n "${CARGO_FUZZ:-}" ] && [ -x "$CARGO_FUZZ" ] || { echo "fuzz: cargo-fuzz missing from the deps (run scripts/install-test-deps.sh)" >&2; return 1; }
  for t in $(cd fuzz && "$CARGO_FUZZ" fuzz list); do
    echo "fuzz: $t for ${secs}s"
    (cd fuzz && RUSTC_BOOTSTRAP=1 "$CARGO_FUZZ" fuzz run "$t" -- -max_total_time="$secs" 2>&1 | tail -3)
  done
}
# ------------------------------------------------------------------------------

phase deps deps
phase lint lint
unit() { cargo test --workspace --locked 2>&1 | tee "$LOGDIR/unit.log"; }

phase unit unit
# What ships and what the tests run are one binary: the dist profile (fat LTO,
# one codegen unit, hot code first, stripped; ~3-6 min on 2 cores), and the std
# adapter example (core/examples, run by tests/e2e/test_std_adapter.py) with the
# same profile so it shares the build's dependencies. The symbol-order check
# fails when cli/symbol-order.txt no longer matches what was linked.
DIST_BIN="$REPO/target/dist/kafka-proxy"
DIST_STD_ADAPTER="$REPO/target/dist/examples/std_blocking"
build() {
  cargo build --profile dist --locked -p kafka-proxy \
    && python3 scripts/symbol-order.py --check \
    && cargo build --profile dist --locked -p kafka-proxy-core --example std_blocking
}

phase build build

package() {
  if [ -z "${PYTHON:-}" ]; then
    # shellcheck disable=SC1091
    source "${KAFKA_PROXY_DEPS:-$HOME/.cache/kafka-proxy}/env.sh" \
      || { echo "package: no deps env file: run scripts/install-test-deps.sh" >&2; return 1; }
  fi
  local rc=0
  KAFKA_PROXY_BIN="$DIST_BIN" "$PYTHON" -m pytest tests/deploy 2>&1 \
    | tee "$LOGDIR/package.log" || rc=$?
  return "$rc"
}
phase package package
phase e2e e2e
phase fuzz fuzz_smoke
