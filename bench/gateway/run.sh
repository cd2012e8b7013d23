#!/usr/bin/env bash
# bench/gateway/run.sh — exitpool against squid, tinyproxy, privoxy, dante and microsocks, in one run,
# everything on 127.0.0.0/8, every process started and stopped here. `make bench` runs it; never part
# of `make check`.
#
#   bench/gateway/run.sh              full run: 10 s per measurement, 3 repetitions, medians (~13 min)
#   QUICK=1 bench/gateway/run.sh      3 s per measurement, 1 repetition (~3 min)
#   ONLY=http,tunnel,bulk,tlsbulk,bodies,mem,pool    a subset of the sections (default: all)
#
# Sections (one nginx origin: small static page, keep-alive, access_log off, a sparse BULK_MB file):
#   http    wrk -c 64 -t 2 --latency, absolute-form `GET http://origin/` sent to each HTTP proxy (a Lua
#           script sets the request line); exitpool --threads 2 and --threads 1; nginx direct = ceiling
#   tunnel  a new tunnel per request (tunnel_load: connect, CONNECT or SOCKS5, one GET, read to EOF,
#           close), 64 workers; direct = ceiling
#   bulk    one BULK_MB body through one CONNECT/SOCKS5 tunnel with curl, BULK_RUNS times per repetition;
#           direct = ceiling
#   tlsbulk one BULK_MB body through one CONNECT tunnel whose exit is squid behind stunnel (https://), next to
#           the same through squid as a plain exit; peer: squid with that stunnel as `cache_peer ... tls`
#           parent; proxy CPU and the exit chain's (stunnel + squid) CPU per transfer
#   bodies  plain-HTTP bodies forwarded (absolute-form, not tunnelled) by the HTTP proxies: 1 MiB responses
#           (wrk -c 16, keep-alive) and one BULK_MB body (curl -x, BULK_RUNS times); direct = ceiling
#   mem     RSS per idle tunnel: HOLD_N tunnels opened (one GET each) and held; (RSS after - before) / N
#   pool    pool_bench (Google Benchmark, exitpool_core): selection with 1,000,000 exits, memory per exit,
#           parse + build; then a real reload: SIGHUP to a gateway serving the 1,000,000-line file
# CPU: utime+stime (children included) of the proxy's process tree from /proc, before and after each
# run: requests per proxy CPU-second.
# The table goes to stdout and bench/results/latest.md (OUT_MD); raw numbers to bench/results/latest.tsv.
#
# Env: EXITPOOL_BIN (default build-bench/exitpool, which run.sh (re)builds in Release, incrementally, unless
#      NO_BUILD=1), DUR, REPS, CONC (64), BULK_MB (1024), HOLD_N (10000, capped by ulimit -Hn),
#      EXITS (1000000), KEEP=1 keeps the work dir, FEATURES (1: exitpool runs with active health checks,
#      --admin, per-exit rate/concurrency limits and --max-connections on, as deployed; 0: all off).
#      Many-core scaling (1/2/4/8/16 shards, pinned): bench/scale/run.sh.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD_BENCH:-$REPO/build-bench}
BIN=${EXITPOOL_BIN:-$BUILD/exitpool}
TOOLS=$BUILD/tools
QUICK=${QUICK:-0}
if [[ "$QUICK" == 1 ]]; then DUR=${DUR:-3}; REPS=${REPS:-1}; else DUR=${DUR:-10}; REPS=${REPS:-3}; fi
CONC=${CONC:-64}
BULK_MB=${BULK_MB:-1024}
BULK_RUNS=${BULK_RUNS:-5}  # transfers per target and repetition (medians over all of them)
EXITS=${EXITS:-1000000}
MEM_DEADLINE=${MEM_DEADLINE:-30}  # seconds to open the held tunnels
ONLY=${ONLY:-http,tunnel,bulk,tlsbulk,bodies,mem,pool}
OUT_MD=${OUT_MD:-$REPO/bench/results/latest.md}
OUT_TSV=${OUT_MD%.md}.tsv
CLK_TCK=$(getconf CLK_TCK)

source "$REPO/bench/gateway/lib.sh"
want() { [[ ",$ONLY," == *",$1,"* ]]; }

for tool in nginx wrk curl squid tinyproxy privoxy danted microsocks g++; do
  command -v "$tool" >/dev/null || die "$tool missing: scripts/install-deps.sh --bench"
done

# ---- file descriptors: 10,000 tunnels need ~20,000 in the proxy ----
NOFILE=$(ulimit -Hn)
[[ "$NOFILE" == unlimited ]] && NOFILE=1048576
((NOFILE > 1048576)) && NOFILE=1048576
ulimit -n "$NOFILE"
HOLD_WANT=${HOLD_N:-10000}
HOLD_N=$(((NOFILE - 200) / 2))
((HOLD_N > HOLD_WANT)) && HOLD_N=$HOLD_WANT
HOLD_NOTE=""
((HOLD_N < HOLD_WANT)) && HOLD_NOTE="(ulimit -Hn is $NOFILE here and cannot be raised: a proxy holds 2 fds per tunnel, so $HOLD_N tunnels instead of $HOLD_WANT)"

# ---- build: exitpool (Release) and the two tools ----
if [[ -z "${EXITPOOL_BIN:-}" && "${NO_BUILD:-0}" != 1 ]]; then
  log "building exitpool (Release, incremental) in $BUILD"
  cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEXITPOOL_TESTS=OFF >/dev/null
  cmake --build "$BUILD" -j"${JOBS:-2}" --target exitpool exitpool_core >/dev/null
fi
[[ -x "$BIN" ]] || die "$BIN not found"
mkdir -p "$TOOLS"
if [[ ! -x "$TOOLS/tunnel_load" || "$REPO/bench/gateway/tunnel_load.cpp" -nt "$TOOLS/tunnel_load" ]]; then
  log "building tunnel_load"
  g++ -std=c++20 -O2 -Wall -o "$TOOLS/tunnel_load" "$REPO/bench/gateway/tunnel_load.cpp" -pthread
fi
if want pool; then
  core=$BUILD/libexitpool_core.a
  [[ -f "$core" ]] || die "$core not found (cmake --build $BUILD --target exitpool_core)"
  if [[ ! -x "$TOOLS/pool_bench" || "$REPO/bench/gateway/pool_bench.cpp" -nt "$TOOLS/pool_bench" || "$core" -nt "$TOOLS/pool_bench" ]]; then
    log "building pool_bench"
    g++ -std=c++20 -O2 -I "$REPO/src" -o "$TOOLS/pool_bench" "$REPO/bench/gateway/pool_bench.cpp" "$core" \
      -lfmt -lbenchmark -lcrypto -pthread
  fi
fi

WORK=$(mktemp -d /tmp/exitpool-bench-gw.XXXXXX)
chmod 755 "$WORK"
cleanup() {
  stop_all
  [[ "${KEEP:-0}" == 1 ]] && log "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$(dirname "$OUT_MD")"
RAW=$WORK/raw.tsv
: >"$RAW"
record() { printf '%s\n' "$*" >>"$RAW"; }  # record SECTION TARGET REP key=value...

T_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "start: load average $LOAD_START; DUR=${DUR}s REPS=$REPS CONC=$CONC"

start_nginx
write_wrk_lua
log "nginx origin on $ORIGIN"

# ms from wrk's "50%  612.00us"
wrk_ms() {
  awk -v q="$1" '$1 == q {v = $2; u = v; gsub(/[0-9.]/, "", u); sub(/[a-z]+$/, "", v);
     m = (u == "us") ? v / 1000 : (u == "ms") ? v : (u == "s") ? v * 1000 : v * 60000; printf "%.3f", m}'
}

run_http() {  # run_http TARGET REP
  local name=$1 rep=$2 pid out c0 c1
  pid=${PID[$name]}
  c0=$(cpu_ticks "$pid")
  if [[ $name == nginx ]]; then
    out=$(wrk -c "$CONC" -t 2 -d "${DUR}s" --latency "http://$ORIGIN/" 2>&1)
  else
    out=$(wrk -c "$CONC" -t 2 -d "${DUR}s" --latency -s "$WORK/abs.lua" "http://127.0.0.1:${PORT[$name]}/" 2>&1)
  fi
  c1=$(cpu_ticks "$pid")
  local rps p50 p99 total errs non2xx
  rps=$(awk '/^Requests\/sec:/{print $2}' <<<"$out")
  p50=$(wrk_ms 50% <<<"$out")
  p99=$(wrk_ms 99% <<<"$out")
  total=$(awk '/requests in/{print $1}' <<<"$out")
  non2xx=$(awk '/Non-2xx/{print $NF}' <<<"$out")
  errs=$(awk '/Socket errors/{gsub(/,/,""); print $4+$6+$8+$10}' <<<"$out")
  [[ -n "$rps" ]] || { log "wrk failed for $name: $out"; return 0; }
  record http "$name" "$rep" rate="$rps" p50_ms="$p50" p99_ms="$p99" total="$total" \
    non2xx="${non2xx:-0}" sockerr="${errs:-0}" cpu_s=$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/t}')
  log "http $name #$rep: $rps req/s p50 ${p50}ms p99 ${p99}ms non-2xx ${non2xx:-0} socket errors ${errs:-0}"
}

run_tunnel() {  # run_tunnel TARGET MODE REP   (TARGET direct: no proxy)
  local name=$1 mode=$2 rep=$3 proxy pid c0 c1 out
  if [[ $name == direct ]]; then pid=${PID[nginx]}; proxy=$ORIGIN; else pid=${PID[$name]}; proxy=127.0.0.1:${PORT[$name]}; fi
  c0=$(cpu_ticks "$pid")
  out=$("$TOOLS/tunnel_load" --mode "$mode" --proxy "$proxy" --target "$ORIGIN" --conc "$CONC" --duration "$DUR" 2>&1) || true
  c1=$(cpu_ticks "$pid")
  [[ "$out" == tunnels=* ]] || { log "tunnel_load failed for $name: $out"; return 0; }
  local label=$name
  [[ $name == exitpool* ]] && label="$name-$mode"
  record tunnel "$label" "$rep" $out cpu_s=$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/t}')
  log "tunnel $label #$rep: $out"
}

# fetch_big SECTION LABEL REP PID [curl args...]: one BULK_MB GET of /big, recorded under SECTION with the
# CPU time of PID's process tree.
fetch_big() {
  local sec=$1 name=$2 rep=$3 pid=$4 c0 c1 speed
  shift 4
  c0=$(cpu_ticks "$pid")
  speed=$(curl -s --max-time 120 "$@" "http://$ORIGIN/big" -o /dev/null -w '%{speed_download} %{size_download}') || true
  c1=$(cpu_ticks "$pid")
  local size=${speed#* }
  speed=${speed% *}
  if [[ "$size" != $((BULK_MB * 1048576)) ]]; then log "$sec $name: got $size bytes"; return 0; fi
  record "$sec" "$name" "$rep" mb_s=$(awk -v s="$speed" 'BEGIN{printf "%.0f", s/1e6}') \
    cpu_s=$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/t}')
  log "$sec $name #$rep: $(awk -v s="$speed" 'BEGIN{printf "%.0f", s/1e6}') MB/s"
}

run_bulk() {  # run_bulk TARGET REP: through one tunnel (CONNECT or SOCKS5)
  local name=$1 rep=$2 args=() pid
  case $name in
    direct) args=() ;;
    exitpool) args=(-p -x "http://127.0.0.1:${PORT[exitpool]}") ;;
    squid) args=(-p -x "http://127.0.0.1:${PORT[squid]}") ;;
    dante) args=(--socks5 "127.0.0.1:${PORT[dante]}") ;;
    exitpool-socks5) args=(--socks5 "127.0.0.1:${PORT[exitpool]}") ;;
  esac
  if [[ $name == direct ]]; then pid=${PID[nginx]}; else pid=${PID[${name%-socks5}]}; fi
  fetch_big bulk "$name" "$rep" "$pid" "${args[@]}"
}

run_tlsbulk() {  # run_tlsbulk TARGET REP: one BULK_MB body through a CONNECT tunnel whose exit is squid, plain or TLS
  local name=$1 rep=$2 pid=${PID[$1]} c0 e0 c1 e1 speed size exits=${PID[squid]}
  [[ $name == *tls* ]] && exits="$exits ${PID[stunnel]}"
  c0=$(cpu_ticks "$pid")
  e0=$(for p in $exits; do cpu_ticks "$p"; done | awk '{s += $1} END {print s}')
  speed=$(curl -s --max-time 120 -p -x "http://127.0.0.1:${PORT[$name]}" "http://$ORIGIN/big" -o /dev/null \
    -w '%{speed_download} %{size_download}') || true
  c1=$(cpu_ticks "$pid")
  e1=$(for p in $exits; do cpu_ticks "$p"; done | awk '{s += $1} END {print s}')
  size=${speed#* }
  speed=${speed% *}
  if [[ "$size" != $((BULK_MB * 1048576)) ]]; then log "tlsbulk $name: got $size bytes"; return 0; fi
  record tlsbulk "$name" "$rep" mb_s=$(awk -v s="$speed" 'BEGIN{printf "%.0f", s/1e6}') \
    cpu_s=$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/t}') \
    exit_cpu_s=$(awk -v a="$e0" -v b="$e1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/t}')
  log "tlsbulk $name #$rep: $(awk -v s="$speed" 'BEGIN{printf "%.0f", s/1e6}') MB/s"
}

run_body1m() {  # run_body1m TARGET REP   (TARGET direct: no proxy)
  local name=$1 rep=$2 pid out c0 c1 rps
  if [[ $name == direct ]]; then pid=${PID[nginx]}; else pid=${PID[$name]}; fi
  c0=$(cpu_ticks "$pid")
  if [[ $name == direct ]]; then
    out=$(wrk -c 16 -t 2 -d "${DUR}s" "http://$ORIGIN/1m" 2>&1)
  else
    out=$(wrk -c 16 -t 2 -d "${DUR}s" -s "$WORK/abs1m.lua" "http://127.0.0.1:${PORT[$name]}/" 2>&1)
  fi
  c1=$(cpu_ticks "$pid")
  rps=$(awk '/^Requests\/sec:/{print $2}' <<<"$out")
  [[ -n "$rps" ]] || { log "wrk (1 MiB) failed for $name: $out"; return 0; }
  record body1m "$name" "$rep" rate="$rps" total="$(awk '/requests in/{print $1}' <<<"$out")" \
    non2xx="$(awk '/Non-2xx/{print $NF}' <<<"$out")" cpu_s=$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/t}')
  log "body1m $name #$rep: $rps req/s"
}

run_fwdbulk() {  # run_fwdbulk TARGET REP: forwarded (curl -x, absolute-form, no CONNECT)
  local name=$1 rep=$2
  if [[ $name == direct ]]; then
    fetch_big fwdbulk "$name" "$rep" "${PID[nginx]}"
  else
    fetch_big fwdbulk "$name" "$rep" "${PID[$name]}" -x "http://127.0.0.1:${PORT[$name]}"
  fi
}

run_mem() {  # run_mem TARGET MODE [N [LABEL [LATER]]]: LATER s after the first look, a second record LABEL+LATERs
  local name=$1 mode=$2 n=${3:-$HOLD_N} label=${4:-$1} later=${5:-}
  start_peer "$name"
  # One tunnel first, so that lazily built state (buffers pools, thread pools) is in the baseline.
  "$TOOLS/tunnel_load" --mode "$mode" --proxy "127.0.0.1:${PORT[$name]}" --target "$ORIGIN" --conc 1 --duration 0.3 >/dev/null 2>&1 || true
  sleep 0.5
  local before after pss0 pss1 pid=${PID[$name]} fifo=$WORK/hold.fifo holder line opened failed
  before=$(rss_kib "$pid")
  pss0=$(pss_kib "$pid")
  rm -f "$fifo"
  mkfifo "$fifo"
  "$TOOLS/tunnel_load" --mode "$mode" --proxy "127.0.0.1:${PORT[$name]}" --target "$ORIGIN" --conc 200 \
    --hold "$n" --hold-deadline "$MEM_DEADLINE" --hold-secs 120 >"$fifo" 2>&1 &
  holder=$!
  line=""
  read -r -t $((MEM_DEADLINE + 30)) line <"$fifo" || true
  sleep 1
  after=$(rss_kib "$pid")
  pss1=$(pss_kib "$pid")
  local nproc_tree
  nproc_tree=$(tree_pids "$pid" | wc -l)
  local alive=1
  kill -0 "$pid" 2>/dev/null || alive=0
  opened=$(sed -n 's/.*open=\([0-9]*\).*/\1/p' <<<"$line")
  failed=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<<"$line")
  record_mem() {  # record_mem LABEL RSS_AFTER PSS_AFTER
    record mem "$1" 1 tunnels="${opened:-0}" failed="${failed:-$n}" rss_before_kib="$before" \
      rss_after_kib="$2" pss_before_kib="$pss0" pss_after_kib="$3" procs="$nproc_tree" alive="$alive" \
      rss_kib_per_tunnel=$(awk -v a="$before" -v b="$2" -v n="${opened:-0}" 'BEGIN{if (n > 0) printf "%.2f", (b-a)/n; else print "nan"}') \
      kib_per_tunnel=$(awk -v a="$pss0" -v b="$3" -v n="${opened:-0}" 'BEGIN{if (n > 0) printf "%.2f", (b-a)/n; else print "nan"}')
  }
  record_mem "$label" "$after" "$pss1"
  log "mem $label: ${opened:-0} open, ${failed:-?} failed, RSS $before -> $after KiB, PSS $pss0 -> $pss1 KiB ($nproc_tree processes)"
  if [[ -n "$later" ]]; then
    sleep "$later"
    after=$(rss_kib "$pid")
    pss1=$(pss_kib "$pid")
    record_mem "$label+${later}s" "$after" "$pss1"
    log "mem $label, ${later} s later: RSS $after KiB, PSS $pss1 KiB"
  fi
  kill "$holder" 2>/dev/null || true
  wait "$holder" 2>/dev/null || true
  stop_one "$name"
  sleep 1
}

HTTP_TARGETS=(nginx exitpool exitpool1 squid tinyproxy privoxy)
TUNNEL_TARGETS=("direct direct" "exitpool connect" "exitpool socks5" "exitpool1 connect" "squid connect"
  "tinyproxy connect" "privoxy connect" "dante socks5" "microsocks socks5")
BULK_TARGETS=(direct exitpool exitpool-socks5 squid dante)
BODY_TARGETS=(direct exitpool squid tinyproxy privoxy)

if want http || want tunnel || want bulk || want bodies; then
  for p in exitpool exitpool1 squid tinyproxy privoxy dante microsocks; do start_peer "$p"; done
  log "proxies up: $(for p in exitpool exitpool1 squid tinyproxy privoxy dante microsocks; do printf '%s:%s ' "$p" "${PORT[$p]}"; done)"
  # Sanity: one request through each, absolute-form and tunnel.
  for p in exitpool squid tinyproxy privoxy; do
    curl -sf -o /dev/null --max-time 5 -x "http://127.0.0.1:${PORT[$p]}" "http://$ORIGIN/" || die "$p: absolute-form GET failed"
    curl -sf -o /dev/null --max-time 5 -p -x "http://127.0.0.1:${PORT[$p]}" "http://$ORIGIN/" || die "$p: CONNECT failed"
  done
  for p in exitpool dante microsocks; do
    curl -sf -o /dev/null --max-time 5 --socks5 "127.0.0.1:${PORT[$p]}" "http://$ORIGIN/" || die "$p: SOCKS5 failed"
  done
  for ((rep = 1; rep <= REPS; rep++)); do
    if want http; then for t in "${HTTP_TARGETS[@]}"; do run_http "$t" "$rep"; sleep 1; done; fi
    if want tunnel; then for t in "${TUNNEL_TARGETS[@]}"; do run_tunnel $t "$rep"; sleep 1; done; fi
    if want bulk; then
      # One 1 GiB transfer takes ~0.25 s here: several per repetition, interleaved, steady the median.
      for ((k = 1; k <= BULK_RUNS; k++)); do for t in "${BULK_TARGETS[@]}"; do run_bulk "$t" "$rep"; done; done
    fi
    if want bodies; then
      for t in "${BODY_TARGETS[@]}"; do run_body1m "$t" "$rep"; sleep 1; done
      for ((k = 1; k <= BULK_RUNS; k++)); do for t in "${BODY_TARGETS[@]}"; do run_fwdbulk "$t" "$rep"; done; done
    fi
  done
  for p in exitpool exitpool1 squid tinyproxy privoxy dante microsocks; do stop_one "$p"; done
fi

if want tlsbulk; then
  # Bulk through an https:// exit (issue 16): the same squid as exit, plain and behind stunnel (TLS 1.3
  # from exitpool), and as peer a second squid with that stunnel port as its TLS parent (TLS 1.2).
  if command -v stunnel4 >/dev/null; then
    start_squid
    start_stunnel_squid
    echo "http://127.0.0.1:${PORT[squid]} id=plain-exit" >"$WORK/pool-plain-exit.txt"
    echo "https://127.0.0.1:${PORT[stunnel]} id=tls-exit tls_verify=false" >"$WORK/pool-tls-exit.txt"
    start_exitpool exitpool@plain-exit "${THREADS:-2}" "$WORK/pool-plain-exit.txt"
    start_exitpool exitpool@tls-exit "${THREADS:-2}" "$WORK/pool-tls-exit.txt"
    start_squid_tls_parent
    remember_kids squid-tls-parent
    TLSBULK_TARGETS=(exitpool@plain-exit exitpool@tls-exit squid-tls-parent)
    for t in "${TLSBULK_TARGETS[@]}"; do
      curl -sf -o /dev/null --max-time 10 -p -x "http://127.0.0.1:${PORT[$t]}" "http://$ORIGIN/" || die "$t: CONNECT failed"
    done
    for ((rep = 1; rep <= REPS; rep++)); do
      for ((k = 1; k <= BULK_RUNS; k++)); do for t in "${TLSBULK_TARGETS[@]}"; do run_tlsbulk "$t" "$rep"; done; done
    done
    for p in "${TLSBULK_TARGETS[@]}" stunnel squid; do stop_one "$p"; done
  else
    log "stunnel4 missing: no TLS-exit bulk rows (apt-get install stunnel4)"
  fi
fi

if want mem; then
  # exitpool holds 2 fds per idle tunnel (client and upstream sockets; splice pipes exist only while a
  # bulk flow moves), like the peers.
  run_mem exitpool connect "$HOLD_N"
  for t in "microsocks socks5" "tinyproxy connect" "squid connect" "dante socks5"; do run_mem $t; done
  # The same through an https:// exit (issue 16's TLS idle memory): stunnel in front of squid; fewer
  # tunnels, as every one costs the exit a TLS handshake and stunnel a thread. Measured again 6 s later:
  # the gateway gives the handshakes' pages back once the burst is over (gateway/heap_trim.hpp).
  if command -v stunnel4 >/dev/null; then
    start_squid
    start_stunnel_squid
    echo "https://127.0.0.1:${PORT[stunnel]} id=tls-exit tls_verify=false" >"$WORK/pool-tls.txt"
    TLS_POOL=$WORK/pool-tls.txt run_mem exitpool connect "${TLS_HOLD_N:-1000}" exitpool@tls-exit 6
    stop_one stunnel
    stop_one squid
  else
    log "stunnel4 missing: no TLS-exit memory row (apt-get install stunnel4)"
  fi
fi

if want pool; then
  log "pool_bench: $EXITS exits"
  POOL1M=$WORK/pool-1m.txt
  mintime=0.5
  [[ "$QUICK" == 1 ]] && mintime=0.2
  reps_flag=()
  ((REPS > 1)) && reps_flag=(--benchmark_repetitions="$REPS" --benchmark_report_aggregates_only=true)
  EXITS=$EXITS POOL_FILE=$POOL1M "$TOOLS/pool_bench" --benchmark_min_time="$mintime" "${reps_flag[@]}" \
    --benchmark_format=console >"$WORK/pool_bench.txt" 2>&1 || log "pool_bench failed: $(tail -5 "$WORK/pool_bench.txt")"
  cp "$WORK/pool_bench.txt" "${OUT_MD%.md}-pool_bench.txt"
  mem_line=$(grep '^POOLMEM' "$WORK/pool_bench.txt" || true)
  record pool bench 1 ${mem_line#POOLMEM }
  # Google Benchmark lines: "BM_x  123 us  120 us  1000 ..." (with repetitions: the _median rows)
  awk '/^BM_/ && ($0 !~ /_mean|_stddev|_cv/) {name=$1; sub(/_median$/, "", name); sub(/\/iterations:1/, "", name);
       t=$2; u=$3; if (u=="ns") t/=1000; else if (u=="ms") t*=1000; else if (u=="s") t*=1e6;
       printf "pool %s 1 us=%.3f\n", name, t}' "$WORK/pool_bench.txt" >>"$RAW"

  # A real reload: the gateway serving the 1M-line file, SIGHUP, until the log says "pool reloaded".
  if [[ -s "$POOL1M" ]]; then
    EXITPOOL_LOG_LEVEL=info
    t0=$(date +%s.%N)
    start_exitpool exitpool-1m 2 "$POOL1M"
    t1=$(date +%s.%N)
    sleep 1
    start_exitpool exitpool-small 2
    sleep 1
    rss_big=$(rss_kib "${PID[exitpool-1m]}")
    rss_small=$(rss_kib "${PID[exitpool-small]}")
    stop_one exitpool-small
    reload_times=()
    for ((rep = 1; rep <= REPS; rep++)); do
      n0=$(grep -c 'pool reloaded' "$WORK/exitpool-1m.log" || true)
      r0=$(date +%s.%N)
      kill -HUP "${PID[exitpool-1m]}"
      ok=0
      for ((i = 0; i < 3000; i++)); do
        if (($(grep -c 'pool reloaded' "$WORK/exitpool-1m.log" || true) > n0)); then ok=1; break; fi
        sleep 0.01
      done
      r1=$(date +%s.%N)
      if ((ok)); then
        reload_times+=("$(awk -v a="$r0" -v b="$r1" 'BEGIN{printf "%.3f", b-a}')")
      else
        log "no 'pool reloaded' line within 30 s: $(tail -3 "$WORK/exitpool-1m.log")"
      fi
    done
    # Still up and accepting after the reloads? (The pool's exits are made-up 10.x proxies: no request
    # through them can succeed, so only the listener is checked.)
    serve_ok=0
    kill -0 "${PID[exitpool-1m]}" 2>/dev/null && wait_port "${PORT[exitpool-1m]}" 5 && serve_ok=1 || true
    record pool reload 1 startup_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}') \
      reload_s="$(tr ' ' ',' <<<"${reload_times[*]:-}")" rss_1m_kib="$rss_big" rss_small_kib="$rss_small" \
      exits="$(grep -c . "$POOL1M")" serves_after="$serve_ok"
    log "reload of $EXITS exits: ${reload_times[*]:-failed} s; gateway RSS $rss_small -> $rss_big KiB"
    stop_one exitpool-1m
    EXITPOOL_LOG_LEVEL=warn
  fi
fi

T_END=$(date +%s)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
{
  echo "# meta"
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host=$(nproc) cores, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
  echo "exitpool=$BIN ($(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$REPO" && git diff --quiet 2>/dev/null || echo ', working tree with local changes'))"
  echo "load_start=$LOAD_START"
  echo "load_end=$LOAD_END"
  echo "duration_s=$((T_END - T_START))"
  echo "settings=DUR=${DUR}s REPS=$REPS CONC=$CONC BULK_MB=$BULK_MB BULK_RUNS=$BULK_RUNS HOLD_N=$HOLD_N EXITS=$EXITS QUICK=$QUICK FEATURES=${FEATURES:-1}"
  echo "hold_note=$HOLD_NOTE"
  echo "versions=squid $(squid -v | sed -n 's/.*Version \([^ ]*\).*/\1/p' | head -1), tinyproxy $(tinyproxy -v 2>&1 | awk '{print $2}'), privoxy $(privoxy --version 2>&1 | awk '/version/{print $3; exit}'), dante $(dpkg-query -W -f='${Version}' dante-server 2>/dev/null), microsocks $(dpkg-query -W -f='${Version}' microsocks 2>/dev/null), nginx $(nginx -v 2>&1 | sed 's|.*/||'), wrk $(dpkg-query -W -f='${Version}' wrk 2>/dev/null)"
  cat "$RAW"
} >"$WORK/raw-all.tsv"
mkdir -p "$(dirname "$OUT_MD")"
cp "$WORK/raw-all.tsv" "$OUT_TSV"
$PY "$REPO/bench/gateway/report.py" "$WORK/raw-all.tsv" >"$OUT_MD"
cat "$OUT_MD"
log "wrote $OUT_MD and $OUT_TSV ($((T_END - T_START)) s)"
