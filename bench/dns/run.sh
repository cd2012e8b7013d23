#!/usr/bin/env bash
# bench/dns/run.sh — new tunnels/s through a direct exit to a named target, against the same target by
# IP literal (issue 15): the gateway resolves names itself (c-ares per shard, a cache per shard).
# Everything on loopback: nginx origin on 127.0.0.1, the tests' DNS server (tests/integration/dns_server.py,
# python3-dnslib) on 127.0.0.53, exitpool with --dns-server pointing at it. Never part of `make check`.
#
#   bench/dns/run.sh                DUR=5 s per measurement, REPS=3, medians (~1 min)
#   QUICK=1 bench/dns/run.sh        DUR=3, REPS=1
#
# Rows (tunnel_load --mode connect, CONC workers, a new tunnel per request):
#   literal   CONNECT 127.0.0.1:PORT                     no lookup
#   cached    CONNECT fast.test:PORT                     one lookup per shard, then the cache (TTL 300 s)
#   cold      CONNECT N.cold.test:PORT, N new each time  every tunnel a cache miss: a query to the server
# The cold row is bounded by the Python DNS server (one thread), not by exitpool: it shows the cost of a
# miss, not a ceiling. Results: stdout and bench/results/dns-latest.md (OUT_MD).
# Env: EXITPOOL_BIN (default build-bench/exitpool, built in Release unless NO_BUILD=1), DUR, REPS, CONC (64),
#      THREADS (exitpool shards, 2), KEEP=1 keeps the work dir.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD_BENCH:-$REPO/build-bench}
BIN=${EXITPOOL_BIN:-$BUILD/exitpool}
TOOLS=$BUILD/tools
QUICK=${QUICK:-0}
if [[ "$QUICK" == 1 ]]; then DUR=${DUR:-3}; REPS=${REPS:-1}; else DUR=${DUR:-5}; REPS=${REPS:-3}; fi
CONC=${CONC:-64}
THREADS=${THREADS:-2}
BULK_MB=1
NOFILE=$(ulimit -Hn); [[ "$NOFILE" == unlimited || "$NOFILE" -gt 1048576 ]] && NOFILE=1048576
OUT_MD=${OUT_MD:-$REPO/bench/results/dns-latest.md}

source "$REPO/bench/gateway/lib.sh"
for tool in nginx g++; do command -v "$tool" >/dev/null || die "$tool missing: scripts/install-deps.sh --bench"; done
$PY -c 'import dnslib' 2>/dev/null || die "python3-dnslib missing: scripts/install-deps.sh"

if [[ -z "${EXITPOOL_BIN:-}" && "${NO_BUILD:-0}" != 1 ]]; then
  log "building exitpool (Release, incremental) in $BUILD"
  cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEXITPOOL_TESTS=OFF >/dev/null
  cmake --build "$BUILD" -j"${JOBS:-2}" --target exitpool >/dev/null
fi
[[ -x "$BIN" ]] || die "$BIN not found"
mkdir -p "$TOOLS"
if [[ ! -x "$TOOLS/tunnel_load" || "$REPO/bench/gateway/tunnel_load.cpp" -nt "$TOOLS/tunnel_load" ]]; then
  log "building tunnel_load"
  g++ -std=c++20 -O2 -Wall -o "$TOOLS/tunnel_load" "$REPO/bench/gateway/tunnel_load.cpp" -pthread
fi

WORK=$(mktemp -d /tmp/exitpool-bench-dns.XXXXXX)
chmod 755 "$WORK"
cleanup() {
  stop_all
  [[ "${KEEP:-0}" == 1 ]] && log "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_nginx
DNS_PORT=$($PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.53",0)); print(s.getsockname()[1])')
start_bg dns "$WORK/dns.log" $PY "$REPO/tests/integration/dns_server.py" --listen 127.0.0.53 --port "$DNS_PORT" --quiet
for _ in $(seq 100); do grep -q ready "$WORK/dns.log" 2>/dev/null && break; sleep 0.05; done
grep -q ready "$WORK/dns.log" || die "dns_server.py did not start: $(cat "$WORK/dns.log")"

echo "direct:// id=local" >"$WORK/pool.txt"
PORT[exitpool]=$(free_port)
start_bg exitpool "$WORK/exitpool.log" "$BIN" serve --pool "$WORK/pool.txt" --listen "127.0.0.1:${PORT[exitpool]}" \
  --threads "$THREADS" --check-interval 0 --dns-server "127.0.0.53:$DNS_PORT" --log-level warn
wait_port "${PORT[exitpool]}" 60 || die "exitpool did not start: $(tail -5 "$WORK/exitpool.log")"
ORIGIN_PORT=${PORT[nginx]}
log "nginx on $ORIGIN, DNS on 127.0.0.53:$DNS_PORT, exitpool on ${PORT[exitpool]} ($THREADS shards); DUR=${DUR}s REPS=$REPS CONC=$CONC"

declare -A RATES P50 P99 ERRS
run_row() {  # run_row ROW [--name HOST]
  local row=$1; shift
  local out
  out=$("$TOOLS/tunnel_load" --mode connect --proxy "127.0.0.1:${PORT[exitpool]}" --target "$ORIGIN" \
    --conc "$CONC" --duration "$DUR" "$@" 2>&1) || true
  [[ "$out" == tunnels=* ]] || die "tunnel_load failed for $row: $out"
  log "$row: $out"
  local rate p50 p99 errs
  rate=$(sed -E 's/.*rate=([0-9.]+).*/\1/' <<<"$out")
  p50=$(sed -E 's/.*p50_us=([0-9]+).*/\1/' <<<"$out")
  p99=$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$out")
  errs=$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$out")
  RATES[$row]+="$rate "; P50[$row]+="$p50 "; P99[$row]+="$p99 "; ERRS[$row]+="$errs "
}
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# Warm-up: the first lookup of fast.test on each shard, and the origin's keep-alive-less path.
"$TOOLS/tunnel_load" --mode connect --proxy "127.0.0.1:${PORT[exitpool]}" --target "$ORIGIN" --name fast.test \
  --conc 8 --duration 0.5 >/dev/null
for ((rep = 1; rep <= REPS; rep++)); do
  run_row literal
  run_row cached --name fast.test
  run_row cold --name '{n}.cold.test'
done

lit=$(median "${RATES[literal]}")
{
  echo "# New tunnels/s to a named target through a direct exit ($(date -u +%Y-%m-%d), $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"
  echo
  echo "exitpool --threads $THREADS ($BIN), tunnel_load --mode connect --conc $CONC, ${DUR} s x $REPS (medians, rows"
  echo "interleaved so that drift in the machine's load hits each alike). Origin nginx on 127.0.0.1."
  echo
  echo "| target | tunnels/s | vs literal | p50 ms | p99 ms | errors |"
  echo "|---|---|---|---|---|---|"
  for row in literal cached cold; do
    r=$(median "${RATES[$row]}")
    printf '| %s | %.0f | %.2fx | %.2f | %.2f | %s |\n' "$row" "$r" "$(awk -v a="$r" -v b="$lit" 'BEGIN{print a/b}')" \
      "$(awk -v v="$(median "${P50[$row]}")" 'BEGIN{print v/1000}')" "$(awk -v v="$(median "${P99[$row]}")" 'BEGIN{print v/1000}')" \
      "$(median "${ERRS[$row]}")"
  done
  echo
  echo "literal: CONNECT 127.0.0.1:PORT; cached: CONNECT fast.test:PORT (TTL 300, cached per shard after its first"
  echo "lookup); cold: a new N.cold.test per tunnel, each a query to the single-threaded Python DNS server."
} | tee "$OUT_MD"
