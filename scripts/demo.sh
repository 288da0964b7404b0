#!/usr/bin/env bash
# THE demo: tansu + kafka-proxy on loopback, a librdkafka client through the proxy
# (create a topic, produce 10 keyed records, consume them in a group, show the
# broker addresses the client saw). Everything started is stopped by PID at the end.
#
# Usage: scripts/demo.sh [--runtime tokio|mio]
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

echo "==> installing the demo peers (pinned; cached in \${KAFKA_PROXY_DEPS:-~/.cache/kafka-proxy})"
scripts/install-test-deps.sh
# shellcheck disable=SC1091
source "${KAFKA_PROXY_DEPS:-$HOME/.cache/kafka-proxy}/env.sh"
echo "==> cargo build --release"
cargo build --release --locked
echo "==> demo"

"$PYTHON" scripts/demo.py "$@" &
DEMO_PID=$!
# The demo stops its own children by PID; this passes Ctrl-C / termination on to it.
trap 'kill -TERM "$DEMO_PID" 2>/dev/null || true; wait "$DEMO_PID" 2>/dev/null || true' INT TERM
wait "$DEMO_PID"
