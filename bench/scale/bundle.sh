#!/usr/bin/env bash
# bench/scale/bundle.sh DIR — copies what bench/scale/run.sh needs onto a machine that has none of it
# (a lent many-core machine with a different distribution): exitpool, tunnel_load, wrk and nginx, each
# with every shared library it loads, Debian's dynamic loader included. run.sh starts each binary
# through that loader (DIR/lib/ld-linux-x86-64.so.2 --library-path DIR/lib), so the other machine's
# own libc and libraries play no part.
#
#   bench/scale/bundle.sh .devbundle            # after bench/gateway/run.sh has built build-bench/
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:?usage: bundle.sh DIR}
BUILD=${BUILD_BENCH:-$REPO/build-bench}
mkdir -p "$OUT/bin" "$OUT/lib"
bins=("$BUILD/exitpool" "$BUILD/tools/tunnel_load" "$(command -v wrk)" "$(command -v nginx || echo /usr/sbin/nginx)")
for b in "${bins[@]}"; do
  [[ -x "$b" ]] || { echo "bundle.sh: missing $b" >&2; exit 1; }
  cp -L "$b" "$OUT/bin/"
  # Every library the loader resolves for it, and the loader itself.
  ldd "$b" | awk '/=> \//{print $3} /^\s*\/lib.*ld-linux/{print $1}' | while read -r lib; do
    cp -Ln "$lib" "$OUT/lib/" 2>/dev/null || true
  done
done
cp -L /lib64/ld-linux-x86-64.so.2 "$OUT/lib/ld-linux-x86-64.so.2"
du -sh "$OUT"
