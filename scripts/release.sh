#!/usr/bin/env bash
# Builds Latch release binaries: static (no cgo), reproducible (the same
# commit and Go version give byte-identical files on any machine, in any
# directory), with the version and commit embedded for `latch version`, and
# a SHA256SUMS file beside them.
#
#   scripts/release.sh                          # every target below
#   TARGETS="linux/amd64" scripts/release.sh    # just one
#   VERSION=v1.2.0 OUT=/tmp/dist scripts/release.sh
#
# Variables: VERSION (default: `git describe --tags --always --dirty`),
# TARGETS (default: linux/amd64 linux/arm64 darwin/arm64 windows/amd64),
# OUT (default: dist).
#
# Reproducibility: CGO_ENABLED=0 (no C toolchain in the result), -trimpath
# (no local paths), -buildid= (no per-build id), -buildvcs=false (the commit
# comes from the flags below, not from the checkout's state), and the same
# Go release (go.mod's go line; `latch version` names it). Verify a release
# by building the same commit again and comparing SHA256SUMS.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then
  COMMIT="$COMMIT-dirty"
fi
TARGETS=${TARGETS:-"linux/amd64 linux/arm64 darwin/arm64 windows/amd64"}
OUT=${OUT:-dist}

mkdir -p "$OUT"
rm -f "$OUT"/latch_* "$OUT"/SHA256SUMS

pkg=github.com/latchhq/latch/cli
ldflags="-s -w -buildid= -X $pkg.Version=$VERSION -X $pkg.Commit=$COMMIT"
for target in $TARGETS; do
  goos=${target%/*}
  goarch=${target#*/}
  name="latch_${VERSION}_${goos}_${goarch}"
  [ "$goos" = windows ] && name="$name.exe"
  echo "building $OUT/$name"
  CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch GOFLAGS=-mod=readonly \
    go build -trimpath -buildvcs=false -ldflags="$ldflags" -o "$OUT/$name" .
done

(cd "$OUT" && sha256sum latch_* > SHA256SUMS)
echo "wrote $OUT/SHA256SUMS ($(go env GOVERSION), commit $COMMIT)"
cat "$OUT/SHA256SUMS"
