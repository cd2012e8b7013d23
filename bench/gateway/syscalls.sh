#!/usr/bin/env bash
# bench/gateway/syscalls.sh — system calls per new tunnel (issue 16's budget), loopback only.
#
#   bench/gateway/syscalls.sh [BIN]            CONNECT tunnels through one shard
#   MODE=socks5 N=3 bench/gateway/syscalls.sh  SOCKS5, strace for 3 s
#   MODE=http bench/gateway/syscalls.sh        keep-alive absolute-form GETs (wrk -c 4), per request
#   MODE=http1m bench/gateway/syscalls.sh      the same for 1 MiB responses (spliced bodies)
#
# Runs tunnel_load (4 at a time) through `exitpool serve --threads 1` to nginx while
# `strace -c -f` counts the proxy's calls, and prints each call per tunnel (and its errors,
# such as EAGAIN or EINPROGRESS). Needs strace and the binaries bench/gateway/run.sh builds.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD_BENCH:-$REPO/build-bench}
TOOLS=$BUILD/tools
BULK_MB=1
NOFILE=$(ulimit -Hn)
WORK=$(mktemp -d /tmp/exitpool-syscalls.XXXXXX)
chmod 755 "$WORK"
source "$REPO/bench/gateway/lib.sh"
command -v strace >/dev/null || die "strace missing (apt-get install strace)"
[[ -x "$TOOLS/tunnel_load" ]] || die "run bench/gateway/run.sh first (it builds $TOOLS/tunnel_load)"
trap 'stop_all; rm -rf "$WORK"' EXIT
MODE=${MODE:-connect}
N=${N:-2}
BIN=${1:-$BUILD/exitpool}
start_nginx
start_exitpool ex 1
write_wrk_lua
load() {
  if [[ $MODE == http || $MODE == http1m ]]; then
    local lua=$WORK/abs.lua
    [[ $MODE == http1m ]] && lua=$WORK/abs1m.lua
    wrk -c 4 -t 1 -d "${1}s" -s "$lua" "http://127.0.0.1:${PORT[ex]}/" | awk '/requests in/ {print "tunnels=" $1}'
  else
    "$TOOLS/tunnel_load" --mode "$MODE" --proxy "127.0.0.1:${PORT[ex]}" --target "127.0.0.1:${PORT[nginx]}" --conc 4 --duration "$1"
  fi
}
load 1 >/dev/null  # warm: first allocations, the pool's first picks
strace -c -f -p "${PID[ex]}" -o "$WORK/strace.txt" 2>/dev/null &
sp=$!
sleep 0.5
out=$(load "$N")
kill -INT "$sp"
wait "$sp" || true
n=$(sed -E 's/.*tunnels=([0-9]+).*/\1/' <<<"$out")
echo "# $MODE tunnels=$n ($BIN, 1 shard)"
awk -v n="$n" '$1 ~ /^[0-9.]+$/ && $4 ~ /^[0-9]+$/ {
    e = ($5 ~ /^[0-9]+$/) ? $5 : 0; name = ($5 ~ /^[0-9]+$/) ? $6 : $5
    if (name == "total") next
    if ($4 / n >= 0.01) printf "%-16s %6.2f per tunnel (errors %.2f)\n", name, $4 / n, e / n
    sum += $4 } END { printf "%-16s %6.2f per tunnel\n", "all", sum / n }' "$WORK/strace.txt"
