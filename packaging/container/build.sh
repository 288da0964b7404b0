#!/usr/bin/env bash
# Builds the kafka-proxy container image with buildah (podman works the same way):
# compiles the binary, lays out the build context (see Containerfile) and builds.
#
# Usage: packaging/container/build.sh [--profile dist|release] [--binary FILE]
#                                     [--tag NAME] [--context DIR]
#   --profile  cargo profile to build (default dist; CI uses release, which is faster)
#   --binary   use this already built binary instead of building one
#   --tag      image name (default localhost/kafka-proxy:<version>)
#   --context  where to lay out the build context (default: a temporary directory,
#              removed afterwards)
# Prints the image id on the last line. Needs buildah (or BUILDAH=podman), ldd, cargo.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROFILE=dist
BINARY=""
TAG=""
CONTEXT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) PROFILE=$2; shift ;;
    --binary) BINARY=$2; shift ;;
    --tag) TAG=$2; shift ;;
    --context) CONTEXT=$2; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
BUILDAH="${BUILDAH:-buildah}"
command -v "$BUILDAH" >/dev/null || { echo "build.sh: $BUILDAH not found (scripts/install-test-deps.sh installs buildah)" >&2; exit 1; }

if [ -z "$BINARY" ]; then
  (cd "$REPO" && cargo build --profile "$PROFILE" --locked -p kafka-proxy >&2)
  BINARY="$REPO/target/$PROFILE/kafka-proxy"
fi
[ -x "$BINARY" ] || { echo "build.sh: $BINARY is not an executable" >&2; exit 1; }

# "kafka-proxy 0.1.0 (commit abcdef012345, profile dist)"
VERSION_LINE="$("$BINARY" --version)"
VERSION="$(awk '{print $2}' <<<"$VERSION_LINE")"
COMMIT="$(sed -n 's/.*(commit \([^,]*\),.*/\1/p' <<<"$VERSION_LINE")"
TAG="${TAG:-localhost/kafka-proxy:$VERSION}"

if [ -z "$CONTEXT" ]; then
  CONTEXT="$(mktemp -d "${TMPDIR:-/tmp}/kafka-proxy-image.XXXXXX")"
  trap 'rm -rf "$CONTEXT"' EXIT
fi
ROOTFS="$CONTEXT/rootfs"
rm -rf "$ROOTFS"
mkdir -p "$ROOTFS"/{etc/ssl/certs,tmp,usr/bin}
chmod 1777 "$ROOTFS/tmp"

# The shared libraries the binary links against, the dynamic loader included, each at
# the path ldd resolved it to (symlinks followed: the image holds the files themselves).
while read -r lib; do
  mkdir -p "$ROOTFS$(dirname "$lib")"
  cp -L "$lib" "$ROOTFS$lib"
done < <(ldd "$BINARY" | grep -oE '/[^ ]+' | sort -u)

# Trust store for upstream TLS with system roots (rustls-native-certs reads this file).
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/"
fi
cat > "$ROOTFS/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
kafka-proxy:x:65532:65532:kafka-proxy:/nonexistent:/sbin/nologin
PASSWD
cat > "$ROOTFS/etc/group" <<'GROUP'
root:x:0:
kafka-proxy:x:65532:
GROUP
printf 'hosts: files dns\n' > "$ROOTFS/etc/nsswitch.conf"

cp "$BINARY" "$CONTEXT/kafka-proxy"
cp "$REPO/packaging/container/config.yaml" "$CONTEXT/config.yaml"
cp "$REPO/packaging/container/Containerfile" "$CONTEXT/Containerfile"

"$BUILDAH" build --layers=false --quiet \
  --build-arg "VERSION=$VERSION" --build-arg "COMMIT=$COMMIT" \
  -f "$CONTEXT/Containerfile" -t "$TAG" "$CONTEXT" >&2
"$BUILDAH" inspect --type image --format '{{.FromImageID}}' "$TAG"
