#!/usr/bin/env bash
# reload_bench.sh: end-to-end pool reload of a big pool file on the real binary (issue 6: "reload under 2 s").
#
# Generates an N-line pool file (default 1,000,000 distinct http:// exits on 127.0.0.1-250, user and
# password, country and type tags; nothing is ever dialled), starts `exitpool serve` on loopback with
# --admin, then, three times each:
#   one  rewrite the file with one exit changed (the rest carry over), SIGHUP
#   all  rewrite the file with every exit changed (a new tag on each line: nothing carries over), SIGHUP
# and measures from the SIGHUP until the gateway logs "pool reloaded" (the new snapshot is serving).
# Reports the medians of the three, the gateway's own timing from that log line (read, parse, build),
# start-up time, and RSS per exit (RSS with the big pool minus RSS with a one-line pool, over N).
#
# Usage: bench/gateway/reload_bench.sh [-o OUT]      (default OUT: bench/results/latest-reload.txt)
# Env:   EXITPOOL_BIN  the binary (default build/exitpool)
#        BASELINE_BIN  optional second binary measured the same way in the same run, first
#        EXITS         pool size (default 1000000)      REPS  repetitions per scenario (default 3)
#        THREADS       gateway shards (default 2)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$REPO/bench/results/latest-reload.txt
while getopts "o:" opt; do
  case $opt in
    o) OUT=$OPTARG ;;
    *) echo "usage: $0 [-o OUT]" >&2; exit 2 ;;
  esac
done
BIN=${EXITPOOL_BIN:-$REPO/build/exitpool}
EXITS=${EXITS:-1000000}
REPS=${REPS:-3}
THREADS=${THREADS:-2}
[[ -x "$BIN" ]] || { echo "no exitpool binary at $BIN (build it or set EXITPOOL_BIN)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/exitpool-reload.XXXXXX)
GW_PID=
cleanup() {
  [[ -n "$GW_PID" ]] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END{if (NR) printf "%.3f", (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
wait_port() {  # wait_port PORT SECONDS
  local i
  for ((i = 0; i < $2 * 50; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.02
  done
  return 1
}

# Distinct exits: 250 loopback hosts x consecutive ports; the id is derived (user@host:port).
log "generating $EXITS-line pool file in $WORK"
awk -v n="$EXITS" 'BEGIN {
  split("residential isp datacenter", types, " ")
  for (i = 0; i < n; i++) {
    printf "http://u%d:pw%d@127.0.0.%d:%d country=c%c%c type=%s\n", i % 1000, i % 997, 1 + i % 250,
           1025 + int(i / 250), 97 + int(i / 26) % 8, 97 + i % 26, types[1 + i % 3]
  }
}' >"$WORK/base.txt"
echo "direct://127.0.0.1 id=local" >"$WORK/small.txt"

# Replaces the pool file the way deploy tools do: write a temp file, rename it over the pool.
write_pool() {  # write_pool one|all REP
  if [[ $1 == one ]]; then
    sed "$((1000 * $2 + 1))s/\$/ weight=2/" "$WORK/base.txt" >"$WORK/pool.tmp"
  else
    sed "s/\$/ rep=$2/" "$WORK/base.txt" >"$WORK/pool.tmp"
  fi
  mv "$WORK/pool.tmp" "$WORK/pool.txt"
}

start_gateway() {  # start_gateway BIN POOL LOG -> GW_PID, GW_PORT, GW_ADMIN
  GW_PORT=$(free_port)
  GW_ADMIN=$(free_port)
  "$1" serve --pool "$2" --listen "127.0.0.1:$GW_PORT" --admin "127.0.0.1:$GW_ADMIN" --threads "$THREADS" \
    --check-interval 0 --log-level info >"$3" 2>&1 &
  GW_PID=$!
  wait_port "$GW_PORT" 120 && wait_port "$GW_ADMIN" 10 || { log "gateway did not start: $(tail -3 "$3")"; exit 1; }
}

stop_gateway() {
  kill "$GW_PID" 2>/dev/null || true
  wait "$GW_PID" 2>/dev/null || true
  GW_PID=
}

# Sends SIGHUP and waits for the next "pool reloaded" (or "refused") line; prints seconds.
reload_once() {  # reload_once LOG
  local n0 t0 t1 i
  n0=$(grep -c 'pool reload' "$1" || true)
  t0=$(now)
  kill -HUP "$GW_PID"
  for ((i = 0; i < 12000; i++)); do
    if (($(grep -c 'pool reload' "$1" || true) > n0)); then
      t1=$(now)
      grep 'pool reload' "$1" | tail -1 | grep -q 'pool reloaded' || { log "reload refused: $(tail -1 "$1")"; exit 1; }
      elapsed "$t0" "$t1"
      return 0
    fi
    sleep 0.005
  done
  log "no reload line within 60 s: $(tail -3 "$1")"
  exit 1
}

run_binary() {  # run_binary LABEL BIN
  local label=$1 bin=$2 gwlog="$WORK/$1.log" t0 t1 rss_small rss_big rss_after scenario rep times internal
  start_gateway "$bin" "$WORK/small.txt" "$WORK/$label-small.log"
  sleep 0.5
  rss_small=$(rss_kib "$GW_PID")
  stop_gateway

  cp "$WORK/base.txt" "$WORK/pool.txt"
  t0=$(now)
  start_gateway "$bin" "$WORK/pool.txt" "$gwlog"
  t1=$(now)
  sleep 0.5
  rss_big=$(rss_kib "$GW_PID")
  echo "[$label] $bin"
  echo "[$label] startup_s=$(elapsed "$t0" "$t1") rss_small_kib=$rss_small rss_${EXITS}_kib=$rss_big" \
    "bytes_per_exit=$(awk -v a="$rss_small" -v b="$rss_big" -v n="$EXITS" 'BEGIN{printf "%.0f", (b-a)*1024/n}')"
  for scenario in one all; do
    times=()
    for ((rep = 1; rep <= REPS; rep++)); do
      write_pool "$scenario" "$rep"
      sync "$WORK/pool.txt" 2>/dev/null || true
      times+=("$(reload_once "$gwlog")")
      # The gateway's own account of the reload: "... in T s (read R, parse P, build B): ..."
      internal=$(grep 'pool reloaded' "$gwlog" | tail -1 | grep -o ' in [0-9.]* s ([^)]*)' || echo " (no timing in the log line)")
      echo "[$label] $scenario rep=$rep sighup_to_reloaded_s=${times[-1]}$internal"
    done
    # Still serving after the reloads: the admin endpoint answers from shard 0.
    serving=no
    curl -fsS -m 5 "http://127.0.0.1:$GW_ADMIN/healthz" >/dev/null 2>&1 && serving=yes
    echo "[$label] $scenario median_sighup_to_reloaded_s=$(echo "${times[*]}" | median) serving_after=$serving"
  done
  sleep 1  # the old snapshot is released (and its pages trimmed) just after the log line
  rss_after=$(rss_kib "$GW_PID")
  echo "[$label] rss_after_reloads_kib=$rss_after"
  echo "[$label] last log line: $(grep 'pool reloaded' "$gwlog" | tail -1 | cut -c1-240)"
  stop_gateway
}

{
  echo "# reload_bench.sh $(date -u +%FT%TZ) on $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# $EXITS exits, $(wc -c <"$WORK/base.txt") bytes; $REPS reloads per scenario; gateway --threads $THREADS"
  echo "# one: one exit changed per reload; all: every exit changed. Time: SIGHUP until the 'pool reloaded' log line."
  if [[ -n "${BASELINE_BIN:-}" ]]; then
    run_binary baseline "$BASELINE_BIN"
  fi
  run_binary current "$BIN"
  echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$WORK/report.txt"
mkdir -p "$(dirname "$OUT")"
cp "$WORK/report.txt" "$OUT"
log "wrote $OUT"
