#!/usr/bin/env bash
# bench/fleet/run.sh — one gateway with in-process state vs the same gateway with `--state redis://`
# (issue 12), in one run on this machine, loopback only. Never part of `make check`.
#
#   bench/fleet/run.sh                       # ROUNDS=3 DUR=5 CONC=64 THREADS=2
#   EXITPOOL_BIN=build/exitpool ROUNDS=1 DUR=3 bench/fleet/run.sh
#
# Both gateways run with the per-exit limits on but never refusing (--per-exit-rate 10000000
# --per-exit-burst 100000 --per-exit-concurrency 1000000), --admin, one direct exit (every request
# takes that one exit's tokens: the worst case for the token batches), --check-interval 0.
# Each round measures, in-process then redis (the order alternates per round):
#   http    wrk -c CONC -t 2, absolute-form `GET http://origin/` over keep-alive connections: req/s
#   tunnel  tunnel_load --mode connect: a new CONNECT tunnel per request (connect, CONNECT, one GET,
#           read to EOF, close): tunnels/s
# and, for redis, the Redis commands the gateway sent per proxied request: the calls counted by
# `INFO commandstats` (the INFO and CONFIG RESETSTAT of the script itself taken out) over the
# requests wrk and tunnel_load made. Ratios are redis / in-process, medians of the rounds.
# Writes bench/results/fleet-latest.md (OUT_MD). Needs redis-server, redis-cli, nginx, wrk, g++.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD_BENCH:-$REPO/build-bench}
BIN=${EXITPOOL_BIN:-$BUILD/exitpool}
TOOLS=${TOOLS:-$BUILD/tools}
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-5}
CONC=${CONC:-64}
THREADS=${THREADS:-2}
# shellcheck disable=SC2034  # read by lib.sh (start_nginx)
BULK_MB=1
OUT_MD=${OUT_MD:-$REPO/bench/results/fleet-latest.md}
NOFILE=$(ulimit -Hn)
[[ "$NOFILE" == unlimited ]] && NOFILE=1048576
((NOFILE > 1048576)) && NOFILE=1048576
ulimit -n "$NOFILE"

# shellcheck source=bench/gateway/lib.sh
source "$REPO/bench/gateway/lib.sh"
for tool in nginx wrk redis-server redis-cli g++; do
  command -v "$tool" >/dev/null || die "$tool missing: scripts/install-deps.sh --bench"
done
[[ -x "$BIN" ]] || die "no exitpool at $BIN: build it (bench/gateway/run.sh builds build-bench/) or set EXITPOOL_BIN"
build_tunnel_load

WORK=$(mktemp -d /tmp/exitpool-fleet-bench.XXXXXX)
chmod 755 "$WORK"
trap 'stop_all; [[ "${KEEP:-0}" == 1 ]] || rm -rf "$WORK"' EXIT
echo "direct:// id=local" >"$WORK/pool.txt"

start_nginx
write_wrk_lua

PORT[redis]=$(free_port)
start_bg redis "$WORK/redis.log" redis-server --port "${PORT[redis]}" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$WORK"
wait_port "${PORT[redis]}" || die "redis-server did not start: $(tail -5 "$WORK/redis.log")"
rcli() { redis-cli -p "${PORT[redis]}" "$@"; }

# Calls of every command since the last CONFIG RESETSTAT, less this script's own INFO.
redis_calls() {
  rcli INFO commandstats | tr -d '\r' | awk -F'[:=,]' '
    /^cmdstat_/ { if ($1 != "cmdstat_info" && $1 != "cmdstat_config") n += $3 }
    END { print n + 0 }'
}

start_gw() {  # start_gw NAME [--state URL]
  local name=$1
  shift
  PORT[$name]=$(free_port)
  start_bg "$name" "$WORK/$name.log" "$BIN" serve --pool "$WORK/pool.txt" --listen "127.0.0.1:${PORT[$name]}" \
    --threads "$THREADS" --check-interval 0 --admin "127.0.0.1:$(free_port)" --per-exit-rate 10000000 \
    --per-exit-burst 100000 --per-exit-concurrency 1000000 --max-connections 1000000 --log-level warn "$@"
  wait_port "${PORT[$name]}" 60 || die "$name did not start: $(tail -5 "$WORK/$name.log")"
  sleep 0.3
}

TCK=$(getconf CLK_TCK)
us_per() { awk -v t="$1" -v n="$2" -v k="$TCK" 'BEGIN { printf "%.1f", t * 1e6 / k / n }'; }

# measure NAME: prints "rps tunnels_per_s requests cpu_us_per_http_request cpu_us_per_tunnel" for the
# gateway NAME. CPU: the gateway process's utime+stime over each load, per request: far less sensitive
# to what else runs on the machine than the rates are.
measure() {
  local name=$1 out rps tun n_http n_tun c0 c1 c2
  c0=$(cpu_ticks "${PID[$name]}")
  out=$(wrk -c "$CONC" -t 2 -d "${DUR}s" -s "$WORK/abs.lua" "http://127.0.0.1:${PORT[$name]}/" 2>&1)
  c1=$(cpu_ticks "${PID[$name]}")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  n_http=$(awk '/requests in/ {print $1}' <<<"$out")
  [[ -n "$rps" && -n "$n_http" ]] || die "wrk failed for $name: $out"
  out=$("$TOOLS/tunnel_load" --mode connect --proxy "127.0.0.1:${PORT[$name]}" --target "$ORIGIN" --conc "$CONC" \
    --duration "$DUR" 2>&1) || true
  c2=$(cpu_ticks "${PID[$name]}")
  [[ "$out" == tunnels=* ]] || die "tunnel_load failed for $name: $out"
  n_tun=$(sed -E 's/.*tunnels=([0-9]+).*/\1/' <<<"$out")
  tun=$(sed -E 's/.*rate=([0-9.]+).*/\1/' <<<"$out")
  echo "$rps $tun $((n_http + n_tun)) $(us_per $((c1 - c0)) "$n_http") $(us_per $((c2 - c1)) "$n_tun")"
}

RESULTS=$WORK/results.tsv
: >"$RESULTS"
run_local() {
  start_gw gw_local
  read -r rps tun n cpu_h cpu_t < <(measure gw_local)
  stop_one gw_local
  log "round $1 in-process: $rps req/s, $tun tunnels/s; CPU $cpu_h us/request, $cpu_t us/tunnel"
  printf 'local\t%s\t%s\t%s\t-\t-\t%s\t%s\t%s\n' "$1" "$rps" "$tun" "$n" "$cpu_h" "$cpu_t" >>"$RESULTS"
}
run_redis() {
  rcli FLUSHALL >/dev/null
  start_gw gw_redis --state "redis://127.0.0.1:${PORT[redis]}"
  rcli CONFIG RESETSTAT >/dev/null
  read -r rps tun n cpu_h cpu_t < <(measure gw_redis)
  local calls
  calls=$(redis_calls)
  stop_one gw_redis
  local per
  per=$(awk -v c="$calls" -v n="$n" 'BEGIN { printf "%.5f", c / n }')
  log "round $1 redis: $rps req/s, $tun tunnels/s; CPU $cpu_h us/request, $cpu_t us/tunnel;" \
    "$calls Redis commands for $n requests ($per per request)"
  printf 'redis\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$rps" "$tun" "$per" "$calls" "$n" "$cpu_h" "$cpu_t" \
    >>"$RESULTS"
}
for r in $(seq "$ROUNDS"); do
  if ((r % 2)); then run_local "$r"; run_redis "$r"; else run_redis "$r"; run_local "$r"; fi
done

mkdir -p "$(dirname "$OUT_MD")"
/usr/bin/python3 - "$RESULTS" "$OUT_MD" "$BIN" "$ROUNDS" "$DUR" "$CONC" "$THREADS" <<'EOF'
import statistics, subprocess, sys, time
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
out, binary, rounds, dur, conc, threads = sys.argv[2:8]
loc = [r for r in rows if r[0] == "local"]
red = [r for r in rows if r[0] == "redis"]
med = lambda rs, i: statistics.median(float(r[i]) for r in rs)
http_l, http_r = med(loc, 2), med(red, 2)
tun_l, tun_r = med(loc, 3), med(red, 3)
per = med(red, 4)
cpu_hl, cpu_hr, cpu_tl, cpu_tr = med(loc, 7), med(red, 7), med(loc, 8), med(red, 8)
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2; nproc"],
                     capture_output=True, text=True).stdout.split("\n")
lines = [
    "# Fleet state: in-process vs `--state redis://` (bench/fleet/run.sh)",
    "",
    f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {cpu[0].strip()}, {cpu[1].strip()} CPUs (shared);",
    f"`{binary}`, --threads {threads}; {rounds} rounds of {dur} s per measure, {conc} connections; one direct "
    "exit, --per-exit-rate 10000000 --per-exit-burst 100000 --per-exit-concurrency 1000000; redis-server "
    "on loopback (no persistence). Medians of the rounds.",
    "",
    "| measure | in-process | redis | redis / in-process |",
    "|---|---:|---:|---:|",
    f"| HTTP keep-alive req/s (wrk) | {http_l:.0f} | {http_r:.0f} | {http_r / http_l:.2f} |",
    f"| new CONNECT tunnels/s (tunnel_load) | {tun_l:.0f} | {tun_r:.0f} | {tun_r / tun_l:.2f} |",
    f"| gateway CPU per HTTP request, us | {cpu_hl:.1f} | {cpu_hr:.1f} | {cpu_hr / cpu_hl:.2f} |",
    f"| gateway CPU per new tunnel, us | {cpu_tl:.1f} | {cpu_tr:.1f} | {cpu_tr / cpu_tl:.2f} |",
    f"| Redis commands per proxied request | - | {per:.4f} | |",
    "",
    "The CPU rows (utime + stime of the gateway process over each load, per request) vary far less with the",
    "rest of the machine's load than the rates do; on a shared machine read them first.",
    "",
    "Rounds (state, round, req/s, tunnels/s, commands per request, commands, requests, CPU us per HTTP "
    "request, CPU us per tunnel):",
    "",
    "```",
    *("\t".join(r) for r in rows),
    "```",
    "",
]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
EOF
log "wrote $OUT_MD"
