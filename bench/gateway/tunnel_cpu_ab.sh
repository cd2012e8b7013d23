#!/usr/bin/env bash
# bench/gateway/tunnel_cpu_ab.sh BIN_A BIN_B [ROUNDS] — proxy CPU per new tunnel (or per
# keep-alive HTTP request), two builds of exitpool alternated in one run (loopback only).
#
#   bench/gateway/tunnel_cpu_ab.sh old/exitpool build-bench/exitpool 3
#   MODE=socks5 DUR=6 CONC=32 bench/gateway/tunnel_cpu_ab.sh A B
#   MODE=http CONC=64 bench/gateway/tunnel_cpu_ab.sh A B     # wrk, absolute-form GETs
#   MODE=http1m CONC=16 bench/gateway/tunnel_cpu_ab.sh A B   # the same, 1 MiB responses (spliced)
#
# Each round starts A, then B (`serve --threads 1`, the bench's feature flags), runs tunnel_load
# (MODE connect or socks5) or wrk (MODE http) for DUR seconds and reads the proxy's utime+stime
# from /proc: CPU per unit depends far less on what else the machine runs than the rate does.
# Needs the tools bench/gateway/run.sh builds (and wrk for MODE http).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
TOOLS=${BUILD_BENCH:-$REPO/build-bench}/tools
BULK_MB=1
NOFILE=$(ulimit -Hn)
WORK=$(mktemp -d /tmp/exitpool-cpu-ab.XXXXXX)
chmod 755 "$WORK"
source "$REPO/bench/gateway/lib.sh"
[[ -x "$TOOLS/tunnel_load" ]] || die "run bench/gateway/run.sh first (it builds $TOOLS/tunnel_load)"
trap 'stop_all; rm -rf "$WORK"' EXIT
MODE=${MODE:-connect}
DUR=${DUR:-6}
CONC=${CONC:-32}
TCK=$(getconf CLK_TCK)
start_nginx
write_wrk_lua
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run_one() {  # run_one LABEL BIN
  BIN=$2
  start_exitpool ex 1
  local pid=${PID[ex]} t0 t1 out n rate
  sleep 0.3
  t0=$(cpu_ticks "$pid")
  if [[ $MODE == http || $MODE == http1m ]]; then
    local lua=$WORK/abs.lua
    [[ $MODE == http1m ]] && lua=$WORK/abs1m.lua
    out=$(wrk -c "$CONC" -t 2 -d "${DUR}s" -s "$lua" "http://127.0.0.1:${PORT[ex]}/")
    t1=$(cpu_ticks "$pid")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    rate=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  else
    out=$("$TOOLS/tunnel_load" --mode "$MODE" --proxy "127.0.0.1:${PORT[ex]}" --target "127.0.0.1:${PORT[nginx]}" \
      --conc "$CONC" --duration "$DUR")
    t1=$(cpu_ticks "$pid")
    n=$(sed -E 's/.*tunnels=([0-9]+).*/\1/' <<<"$out")
    rate=$(sed -E 's/.*rate=([0-9.]+).*/\1/' <<<"$out")
  fi
  awk -v l="$1" -v n="$n" -v r="$rate" -v c="$((t1 - t0))" -v k="$TCK" 'BEGIN {
    s = c / k; printf "%s %s n=%d rate=%s cpu_s=%.2f us_per_unit=%.1f per_cpu_s=%.0f\n",
    l, ENVIRON["MODE"], n, r, s, s * 1e6 / n, n / s }'
  stop_one ex
  unset 'PID[ex]'
}
export MODE
for _ in $(seq "${3:-3}"); do
  run_one A "$1"
  run_one B "$2"
done
