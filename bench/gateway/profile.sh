#!/usr/bin/env bash
# bench/gateway/profile.sh — perf profile of exitpool under the benchmark's loads (loopback only).
#
#   bench/gateway/profile.sh            HTTP absolute-form (wrk) and new tunnels (CONNECT, SOCKS5)
#   PDUR=10 THREADS=2 bench/gateway/profile.sh
#
# For each load: `perf record -F 1999 -g -p <exitpool>` while the load runs, then the top entries by
# self time (perf report --no-children) and by DSO. Written to bench/results/profile-<load>.txt.
# Needs perf (linux-perf) and the binaries run.sh builds (build-bench/exitpool, build-bench/tools).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD_BENCH:-$REPO/build-bench}
BIN=${EXITPOOL_BIN:-$BUILD/exitpool}
TOOLS=$BUILD/tools
PDUR=${PDUR:-8}
THREADS=${THREADS:-2}
CONC=${CONC:-64}
BULK_MB=16
HOLD_N=100
NOFILE=$(ulimit -Hn)
OUTDIR=${OUTDIR:-$REPO/bench/results}
source "$REPO/bench/gateway/lib.sh"
command -v perf >/dev/null || die "perf missing (apt-get install linux-perf)"
[[ -x "$BIN" && -x "$TOOLS/tunnel_load" ]] || die "run bench/gateway/run.sh first (it builds $BIN and $TOOLS)"

WORK=$(mktemp -d /tmp/exitpool-bench-prof.XXXXXX)
chmod 755 "$WORK"
cleanup() { stop_all; [[ "${KEEP:-0}" == 1 ]] || rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

start_nginx
write_wrk_lua
start_peer exitpool
mkdir -p "$OUTDIR"

profile() {  # profile NAME cmd...
  local name=$1
  shift
  "$@" >"$WORK/$name.load" 2>&1 &
  local load=$!
  sleep 0.5
  perf record -F 1999 -g -p "${PID[exitpool]}" -o "$WORK/$name.perf" -- sleep "$PDUR" >/dev/null 2>"$WORK/$name.perf.err" || true
  wait "$load" || true
  {
    echo "# exitpool --threads $THREADS, load: $*"
    echo "# load result: $(tail -4 "$WORK/$name.load" | tr '\n' ' ')"
    echo
    echo "## by DSO (self)"
    perf report -i "$WORK/$name.perf" --no-children --sort dso --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//; s/[[:space:]]+$//' | cut -c1-200 | head -8 || true
    echo
    echo "## top symbols (self)"
    perf report -i "$WORK/$name.perf" --no-children --sort dso,symbol --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//; s/[[:space:]]+$//' | cut -c1-200 | head -40 || true
    echo
    echo "## top symbols (children: inclusive)"
    perf report -i "$WORK/$name.perf" --children --sort symbol --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//; s/[[:space:]]+$//' | cut -c1-200 | head -40 || true
  } >"$OUTDIR/profile-$name.txt"
  log "wrote $OUTDIR/profile-$name.txt"
}

LOAD_DUR=$((PDUR + 1))
profile http wrk -c "$CONC" -t 2 -d "${LOAD_DUR}s" --latency -s "$WORK/abs.lua" "http://127.0.0.1:${PORT[exitpool]}/"
profile tunnel-connect "$TOOLS/tunnel_load" --mode connect --proxy "127.0.0.1:${PORT[exitpool]}" --target "$ORIGIN" \
  --conc "$CONC" --duration "$LOAD_DUR"
profile tunnel-socks5 "$TOOLS/tunnel_load" --mode socks5 --proxy "127.0.0.1:${PORT[exitpool]}" --target "$ORIGIN" \
  --conc "$CONC" --duration "$LOAD_DUR"
