#!/usr/bin/env bash
# `cargo deny check` (advisories, licenses, bans, sources; deny.toml) without the
# network. No machine of this project reaches the RustSec advisory database, so
# this lays the snapshot beside the checkout out as the clone cargo-deny expects
# and runs cargo-deny --offline, which never fetches:
#
#   snapshot   $KAFKA_PROXY_ADVISORY_DB, default ../shared/advisory-db from the
#              repository root, or from the main checkout of a git worktree (a
#              copy of github.com/rustsec/advisory-db; its SNAPSHOT.md says
#              which). Missing: this fails and says so.
#   clone      target/advisory-dbs/advisory-db-3157b0e258782691 (deny.toml's
#              db-path; the directory cargo-deny names after the db-urls entry),
#              re-laid on every run; its fetch time is the date of the newest
#              advisory in the snapshot, which deny.toml's maximum-db-staleness
#              judges.
#   cargo-deny $CARGO_DENY (scripts/install-test-deps.sh writes it to env.sh), else
#              cargo-deny on PATH.
#
# Crate sources must be in the cargo cache already (`cargo metadata --offline`);
# the lint phase runs clippy first, which fetches them.
#
# Usage: scripts/cargo-deny.sh [CHECK...]   (default: every check)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

die() { printf 'cargo-deny.sh: ERROR: %s\n' "$*" >&2; exit 1; }

if [ -n "${KAFKA_PROXY_ADVISORY_DB:-}" ]; then
  SNAPSHOT="$KAFKA_PROXY_ADVISORY_DB"
else
  SNAPSHOT="$REPO/../shared/advisory-db"
  # A git worktree elsewhere: the snapshot beside the main checkout.
  common="$(git rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)"
  if [ ! -d "$SNAPSHOT" ] && [ -n "$common" ] && [ -d "$(dirname "$common")/../shared/advisory-db" ]; then
    SNAPSHOT="$(dirname "$common")/../shared/advisory-db"
  fi
fi
[ -d "$SNAPSHOT/crates" ] \
  || die "no advisory database snapshot at $SNAPSHOT (expected ../shared/advisory-db beside the checkout, with a crates/ folder; or set KAFKA_PROXY_ADVISORY_DB)"
SNAPSHOT="$(cd "$SNAPSHOT" && pwd)"

DENY="${CARGO_DENY:-$(command -v cargo-deny || true)}"
if [ -z "$DENY" ] || [ ! -x "$DENY" ]; then
  die "cargo-deny not found: run scripts/install-test-deps.sh and source its env.sh"
fi

# The newest advisory's date stands for the snapshot's age.
newest="$(grep -rhoE '^date = "[0-9]{4}-[0-9]{2}-[0-9]{2}"' "$SNAPSHOT/crates" | cut -d'"' -f2 | sort | tail -1)"
[ -n "$newest" ] || die "no advisory with a date under $SNAPSHOT/crates: not an advisory database"

# cargo-deny 0.20 opens <db-path>/<last url segment>-<xxh64 of the url> and reads the
# fetch time from .git/FETCH_HEAD's modification time.
ROOT="$REPO/target/advisory-dbs"
DB="$ROOT/advisory-db-3157b0e258782691"
mkdir -p "$ROOT"
rm -rf "$DB.new"
mkdir -p "$DB.new/.git"
cp -R "$SNAPSHOT/crates" "$DB.new/crates"
chmod -R u+w "$DB.new"
printf 'snapshot of the RustSec advisory database copied from %s\n' "$SNAPSHOT" > "$DB.new/.git/FETCH_HEAD"
touch -d "$newest 00:00:00 UTC" "$DB.new/.git/FETCH_HEAD"
rm -rf "$DB"
mv "$DB.new" "$DB"

echo "cargo-deny.sh: $("$DENY" --version), advisories from $SNAPSHOT (newest $newest, $(find "$DB/crates" -name '*.md' | wc -l) advisories)"
exec "$DENY" --offline --locked --manifest-path "$REPO/Cargo.toml" check "$@"
