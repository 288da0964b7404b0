#!/usr/bin/env bash
# The benchmark: tansu (memory storage) direct vs through kafka-proxy on tokio and mio,
# same native load driver (bench/loadgen, librdkafka), 1 KiB records, >= 1 GiB per workload.
# Results (Markdown + JSON) go to bench/results/.
#
# Usage: bench/run.sh [--gb N] [--modes direct,tokio,mio] [--workloads produce-large,consume,produce-16k]
#                     [--metrics off,on]
#                     [--record-size BYTES] [--timeout SECONDS]
# Environment: KAFKA_PROXY_PROFILE=dist measures the binary that ships (cargo profile dist:
# fat LTO, one codegen unit); the default is release.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

t0=$SECONDS
scripts/install-test-deps.sh
# shellcheck disable=SC1091
source "${KAFKA_PROXY_DEPS:-$HOME/.cache/kafka-proxy}/env.sh"
# The TLS load driver links the system OpenSSL (librdkafka's ssl feature).
if ! dpkg-query -W -f='${Status}' libssl-dev pkg-config 2>/dev/null | grep -q "install ok installed.*install ok installed"; then
  echo "==> installing Debian libssl-dev and pkg-config (TLS load driver)"
  apt-get install -y -qq libssl-dev pkg-config >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq libssl-dev pkg-config >/dev/null; }
fi
PROFILE="${KAFKA_PROXY_PROFILE:-release}"
echo "==> cargo build --profile $PROFILE (kafka-proxy)"
cargo build --profile "$PROFILE" --locked -p kafka-proxy
echo "==> cargo build --release (bench/loadgen: librdkafka from rdkafka-sys sources, gcc + make)"
(cd bench/loadgen && cargo build --release --locked)
echo "==> setup took $((SECONDS - t0)) s"
exec "$PYTHON" bench/bench.py --proxy "target/$PROFILE/kafka-proxy" "$@"
