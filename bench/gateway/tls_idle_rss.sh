#!/usr/bin/env bash
# bench/gateway/tls_idle_rss.sh BIN... — RSS of 1,000 idle tunnels through an https:// exit (stunnel in
# front of squid), opened 200 at a time: right after they are open, 6 s later (the gateway trims the heap
# a few seconds after a burst of handshakes), and after the main thread's minute sweep (which trims it
# too). Loopback only; each binary in turn.
#
#   bench/gateway/tls_idle_rss.sh old/exitpool build/exitpool
#   SETTLE=62 bench/gateway/tls_idle_rss.sh build/exitpool   # baseline taken after a first sweep
#
# Needs the tools bench/gateway/run.sh builds (BUILD_BENCH, default build-bench), stunnel4 and squid.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
TOOLS=${BUILD_BENCH:-$REPO/build-bench}/tools
BULK_MB=1
NOFILE=$(ulimit -Hn)
WORK=$(mktemp -d /tmp/exitpool-trim.XXXXXX); chmod 755 "$WORK"
source "$REPO/bench/gateway/lib.sh"
trap 'stop_all; rm -rf "$WORK"' EXIT
build_tunnel_load
# Tunnels the gateway holds now: its established TCP connections to the exit (stunnel).
held() { ss -tnpH state established "( dport = :${PORT[stunnel]} )" 2>/dev/null | grep -c "pid=$1,"; }
per() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", (b - a) / 1000}'; }
FEATURES=0
start_nginx
start_squid
start_stunnel_squid
echo "https://127.0.0.1:${PORT[stunnel]} id=tls-exit tls_verify=false" >"$WORK/pool-tls.txt"
for b in "$@"; do
  BIN=$b
  start_exitpool ex 2 "$WORK/pool-tls.txt"
  pid=${PID[ex]}
  "$TOOLS/tunnel_load" --mode connect --proxy "127.0.0.1:${PORT[ex]}" --target "$ORIGIN" --conc 1 --duration 0.3 >/dev/null 2>&1 || true
  sleep ${SETTLE:-0.5}
  r0=$(rss_kib "$pid")
  mkfifo "$WORK/f"
  "$TOOLS/tunnel_load" --mode connect --proxy "127.0.0.1:${PORT[ex]}" --target "$ORIGIN" --conc 200 --hold 1000 --hold-deadline 30 --hold-secs 120 >"$WORK/f" 2>&1 &
  h=$!
  read -r -t 60 line <"$WORK/f" || true
  sleep 1
  r1=$(rss_kib "$pid")
  n1=$(held "$pid")
  sleep 5
  r5=$(rss_kib "$pid")
  sleep 56
  r2=$(rss_kib "$pid")
  n2=$(held "$pid")
  echo "$b: $line | RSS before $r0 KiB, held +1 s $r1 ($(per "$r0" "$r1") KiB per tunnel, $n1 held), +6 s $r5 ($(per "$r0" "$r5")), after the sweep $r2 ($(per "$r0" "$r2") KiB per tunnel, $n2 held)"
  kill $h 2>/dev/null; wait $h 2>/dev/null
  rm -f "$WORK/f"
  stop_one ex; unset 'PID[ex]'
done
