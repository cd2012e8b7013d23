#!/usr/bin/env bash
# bench/scale/run.sh — exitpool's scaling with shards on a many-core machine (issue 6, point 5: 1/2/4/8/16
# threads where a 16-core machine is lent). Loopback only, bounded: each point runs DUR seconds, REPS times.
#
#   HTTP:    wrk -t 4 -c CONC keep-alive absolute-form GETs through `exitpool serve --threads T` to nginx
#   tunnels: tunnel_load --threads 4 --conc CONC, a new CONNECT tunnel per request (one GET, then close)
#
# Cores are split with taskset so that the clients and the origin do not take the proxy's cores: exitpool
# on cores [0, T), nginx (4 workers) on 8-11, the client on 12-15. T=16 cannot be split that way: it runs
# unpinned, all three sharing the 16 cores (reported as such). The rows "nginx direct" give the ceiling
# of the client and origin alone. Medians over REPS; "per CPU-s" = per second of exitpool's own CPU time.
#
#   BUNDLE=.devbundle bench/scale/run.sh    # binaries from bench/scale/bundle.sh, through their own loader
#   bench/scale/run.sh                      # binaries from build-bench/ and PATH
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
DUR=${DUR:-5}
REPS=${REPS:-3}
CONC=${CONC:-256}
THREADS=${THREADS:-"1 2 4 8 16"}
OUT=${OUT_MD:-$REPO/bench/results/scale-latest.md}
NCPU=$(nproc)
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [[ -n "${BUNDLE:-}" ]]; then
  B=$(cd "$BUNDLE" && pwd)
else
  declare -A WHERE=([exitpool]=$REPO/build-bench/exitpool [tunnel_load]=$REPO/build-bench/tools/tunnel_load
                    [wrk]=$(command -v wrk) [nginx]=$(command -v nginx || echo /usr/sbin/nginx))
fi
bin_cmd() {  # the command line that starts binary $1, for taskset
  if [[ -n "${BUNDLE:-}" ]]; then echo "$B/lib/ld-linux-x86-64.so.2 --library-path $B/lib $B/bin/$1"; else echo "${WHERE[$1]}"; fi
}
command -v taskset >/dev/null || taskset() { shift 2; "$@"; }  # no util-linux: unpinned
WORK=$(mktemp -d /tmp/exitpool-scale.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

# ---- origin: nginx on 127.0.0.1, 4 workers on cores 8-11 ----
NGX=$WORK/nginx
mkdir -p "$NGX"/{body,proxy,fastcgi,uwsgi,scgi,www}
printf '<html><body><p>small static response for the proxy benchmark</p></body></html>\n' >"$NGX/www/index.html"
ORIGIN_PORT=18481
cat >"$NGX/nginx.conf" <<NGINX
$( [[ $(id -u) -eq 0 ]] && echo "user root;")
worker_processes 4;
worker_cpu_affinity 000100000000 001000000000 010000000000 100000000000;
worker_rlimit_nofile 200000;
pid $NGX/nginx.pid;
error_log $NGX/error.log error;
daemon off;
events { worker_connections 60000; multi_accept on; }
http {
  access_log off;
  client_body_temp_path $NGX/body; proxy_temp_path $NGX/proxy; fastcgi_temp_path $NGX/fastcgi;
  uwsgi_temp_path $NGX/uwsgi; scgi_temp_path $NGX/scgi;
  default_type text/html;
  keepalive_requests 10000000;
  server { listen 127.0.0.1:$ORIGIN_PORT reuseport backlog=65535; root $NGX/www; }
}
NGINX
# The worker_cpu_affinity masks are cores 8..11 (the rightmost bit is core 0).
[[ $NCPU -ge 16 ]] || sed -i '/worker_cpu_affinity/d' "$NGX/nginx.conf"
read -r -a NGX_CMD <<<"$(bin_cmd nginx)"
"${NGX_CMD[@]}" -c "$NGX/nginx.conf" -p "$NGX" >"$NGX/stdout.log" 2>&1 &
PIDS+=($!)
sleep 0.5
ORIGIN=127.0.0.1:$ORIGIN_PORT

cat >"$WORK/abs.lua" <<LUA
local req = "GET http://$ORIGIN/ HTTP/1.1\r\nHost: $ORIGIN\r\nUser-Agent: wrk\r\n\r\n"
request = function() return req end
LUA
: >"$WORK/pool.txt"
for i in 1 2 3 4 5 6 7 8; do echo "direct://127.0.0.$i id=d$i" >>"$WORK/pool.txt"; done

client_cpus() { [[ $NCPU -ge 16 ]] && echo "12-15" || echo "0-$((NCPU - 1))"; }
proxy_cpus() { local t=$1; if [[ $NCPU -ge 16 && $t -le 8 ]]; then echo "0-$((t - 1))"; else echo "0-$((NCPU - 1))"; fi; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
TICK=$(getconf CLK_TCK)

http_load() {  # http_load URL -> req/s
  taskset -c "$(client_cpus)" "${WRK_CMD[@]}" -t 4 -c "$CONC" -d "${DUR}s" -s "$WORK/abs.lua" "$1" 2>&1 |
    awk '/Requests\/sec/{print $2}'
}
tunnel_load() {  # tunnel_load MODE PROXY -> tunnels/s
  taskset -c "$(client_cpus)" "${TL_CMD[@]}" --mode "$1" --proxy "$2" --target "$ORIGIN" --conc "$CONC" --threads 4 \
    --duration "$DUR" 2>&1 | sed -n 's/.*rate=\([0-9.]*\).*/\1/p'
}
read -r -a WRK_CMD <<<"$(bin_cmd wrk)"
read -r -a TL_CMD <<<"$(bin_cmd tunnel_load)"

declare -A R
for rep in $(seq "$REPS"); do
  R[direct_http_$rep]=$(http_load "http://$ORIGIN/")
  R[direct_tun_$rep]=$(tunnel_load direct "$ORIGIN")
  for t in $THREADS; do
    port=$((18500 + t))
    read -r -a EP_CMD <<<"$(bin_cmd exitpool)"
    taskset -c "$(proxy_cpus "$t")" "${EP_CMD[@]}" serve --pool "$WORK/pool.txt" --listen "127.0.0.1:$port" \
      --threads "$t" --log-level error >"$WORK/ep-$t.log" 2>&1 &
    ep=$!
    sleep 0.5
    c0=$(cpu_ticks "$ep")
    R[http_${t}_$rep]=$(http_load "http://127.0.0.1:$port/")
    c1=$(cpu_ticks "$ep")
    R[httpcpu_${t}_$rep]=$(awk -v r="${R[http_${t}_$rep]:-0}" -v d="$DUR" -v c=$((c1 - c0)) -v k="$TICK" 'BEGIN{if (c > 0) printf "%.0f", r * d / (c / k); else print "nan"}')
    c0=$(cpu_ticks "$ep")
    R[tun_${t}_$rep]=$(tunnel_load connect "127.0.0.1:$port")
    c1=$(cpu_ticks "$ep")
    R[tuncpu_${t}_$rep]=$(awk -v r="${R[tun_${t}_$rep]:-0}" -v d="$DUR" -v c=$((c1 - c0)) -v k="$TICK" 'BEGIN{if (c > 0) printf "%.0f", r * d / (c / k); else print "nan"}')
    kill "$ep"; wait "$ep" 2>/dev/null
    echo "rep $rep threads $t: http ${R[http_${t}_$rep]} req/s (${R[httpcpu_${t}_$rep]}/CPU-s), tunnels ${R[tun_${t}_$rep]}/s (${R[tuncpu_${t}_$rep]}/CPU-s)" >&2
  done
done

med() { local k=$1; for rep in $(seq "$REPS"); do echo "${R[${k}_$rep]:-nan}"; done | median; }
h1=$(med http_1); u1=$(med tun_1)
{
  echo "# exitpool scaling with --threads"
  echo
  echo "- $(date -u +%FT%TZ), $NCPU cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
  echo "- settings: DUR=${DUR}s REPS=$REPS CONC=$CONC; medians over the repetitions; 8 direct:// exits (127.0.0.1-8); nginx 4 workers"
  echo "- cores: exitpool on [0,T), nginx on 8-11, client (wrk -t 4 / tunnel_load --threads 4) on 12-15; T=16 unpinned, shared with nginx and the client"
  echo
  echo "| target | HTTP req/s | vs 1 thread | req per proxy CPU-s | new tunnels/s | vs 1 thread | tunnels per proxy CPU-s |"
  echo "|---|--:|--:|--:|--:|--:|--:|"
  echo "| nginx direct (client + origin ceiling) | $(med direct_http) | | | $(med direct_tun) | | |"
  for t in $THREADS; do
    h=$(med "http_$t"); u=$(med "tun_$t")
    echo "| exitpool --threads $t$([[ $t -gt 8 || $NCPU -lt 16 ]] && echo ' (unpinned)') | $h | $(awk -v a="$h" -v b="$h1" 'BEGIN{printf "%.2f×", a / b}') | $(med "httpcpu_$t") | $u | $(awk -v a="$u" -v b="$u1" 'BEGIN{printf "%.2f×", a / b}') | $(med "tuncpu_$t") |"
  done
} | tee "$OUT"
