#!/usr/bin/env bash
# bench/fetch/run.sh — `exitpool fetch` against its peers, in one run, on loopback only.
#
#   bench/fetch/run.sh                 100,000 small pages (N=100000)
#   N=20000 SCRAPY_N=5000 bench/fetch/run.sh
#   N=1000000 PEERS= bench/fetch/run.sh  exitpool alone (e.g. to watch memory on a long list)
#
# Setup: one nginx (2 workers) answering a small page on four loopback addresses 127.0.0.31-34;
# the same URL list (spread over the four hosts) fetched by
#   - exitpool fetch through a pool of 8 direct exits (127.0.0.41-48), --concurrency $CONC, JSONL
#     output with inline bodies, resume checkpoint and all (its real bookkeeping);
#   - curl --parallel --parallel-max $CONC, -o /dev/null, direct;
#   - Scrapy (Debian's python3-scrapy, if installed) at CONCURRENT_REQUESTS=$CONC, on SCRAPY_N URLs
#     (default 10,000: at ~300 pages/s the full list would take minutes).
# Each client runs under /usr/bin/time -v: pages/s (wall), CPU seconds (user+sys) per 1,000 pages,
# peak RSS. The table goes to bench/results/fetch-latest.md. Not part of `make check`.
# Needs: nginx, curl, /usr/bin/time, a built exitpool (EXITPOOL_BIN, default ./build/exitpool).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${EXITPOOL_BIN:-$REPO/build/exitpool}
N=${N:-100000}
SCRAPY_N=${SCRAPY_N:-10000}
CONC=${CONC:-128}
THREADS=${THREADS:-$(nproc)}
OUT_MD=${OUT_MD:-$REPO/bench/results/fetch-latest.md}
PY=/usr/bin/python3
PEERS=${PEERS-curl,scrapy}

[[ -x "$BIN" ]] || { echo "run.sh: $BIN not found: build first (make build) or set EXITPOOL_BIN" >&2; exit 2; }
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || { echo "run.sh: nginx missing (scripts/install-deps.sh --test)" >&2; exit 2; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

WORK=$(mktemp -d /tmp/exitpool-bench-fetch.XXXXXX)
chmod 755 "$WORK"
NGINX_PID=""
cleanup() {
  if [[ -n "$NGINX_PID" ]]; then kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; fi
  [[ -n "${KEEP:-}" ]] || rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.31",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/nginx"/{body,proxy,fastcgi,uwsgi,scgi}
user_line=""; [[ $(id -u) -eq 0 ]] && user_line="user root;"
cat > "$WORK/nginx/nginx.conf" <<EOF
$user_line
worker_processes 2;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    default_type text/html;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    server {
        listen 127.0.0.31:$PORT; listen 127.0.0.32:$PORT; listen 127.0.0.33:$PORT; listen 127.0.0.34:$PORT;
        location / { return 200 "<html><body><p>page \$uri from \$server_addr for \$remote_addr</p></body></html>\n"; }
    }
}
EOF
"$NGINX" -c "$WORK/nginx/nginx.conf" -g "daemon off; master_process on;" &
NGINX_PID=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.34:$PORT/" && break; sleep 0.1; done

# URLs: round-robin over the four hosts.
$PY - "$WORK" "$N" "$PORT" <<'EOF'
import sys
work, n, port = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(f"{work}/urls.txt", "w") as f, open(f"{work}/curl.cfg", "w") as c:
    for i in range(n):
        u = f"http://127.0.0.{31 + i % 4}:{port}/p/{i}"
        f.write(u + "\n")
        c.write(f'url = "{u}"\noutput = "/dev/null"\n')
EOF
head -n "$SCRAPY_N" "$WORK/urls.txt" > "$WORK/urls-scrapy.txt"
for i in $(seq 41 48); do echo "direct://127.0.0.$i id=e$i"; done > "$WORK/pool.txt"

declare -a ROWS
measure() {  # name pages cmd... -> appends a table row
  local name=$1 pages=$2; shift 2
  local tlog="$WORK/time-$name.log"
  echo "run.sh: $name ($pages pages)..." >&2
  /usr/bin/time -v -o "$tlog" "$@" > "$WORK/$name.stdout" 2> "$WORK/$name.stderr" || {
    echo "run.sh: $name failed; stderr tail:" >&2; tail -5 "$WORK/$name.stderr" >&2; }
  ROWS+=("$($PY - "$tlog" "$name" "$pages" <<'EOF'
import re, sys
t, name, pages = open(sys.argv[1]).read(), sys.argv[2], int(sys.argv[3])
def f(key):
    return re.search(re.escape(key) + r":\s*(.+)", t).group(1).strip()
wall = f("Elapsed (wall clock) time (h:mm:ss or m:ss)")
parts = [float(p) for p in wall.split(":")]
secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
cpu = float(f("User time (seconds)")) + float(f("System time (seconds)"))
rss = int(f("Maximum resident set size (kbytes)")) / 1024
print(f"| {name} | {pages:,} | {secs:.2f} | {pages / secs:,.0f} | {cpu:.2f} | {cpu / pages * 1000:.3f} | {rss:.0f} |")
EOF
)")
}

measure exitpool "$N" "$BIN" fetch --pool "$WORK/pool.txt" --input "$WORK/urls.txt" --output "$WORK/out.jsonl" \
  --threads "$THREADS" --concurrency "$CONC" --per-host 64 --quiet
ok=$(grep -c '"status":200' "$WORK/out.jsonl" || true)
lines=$(wc -l < "$WORK/out.jsonl")
exits=$($PY -c 'import json,sys,collections; print(dict(collections.Counter(json.loads(l)["exit_ip"] for l in open(sys.argv[1]))))' "$WORK/out.jsonl")
[[ ",$PEERS," == *,curl,* ]] && measure "curl --parallel" "$N" curl --parallel --parallel-max "$CONC" --silent --noproxy '*' -K "$WORK/curl.cfg"

scrapy_note="not installed (scripts/install-deps.sh --bench)"
if [[ ",$PEERS," != *,scrapy,* ]]; then
  scrapy_note="not run (PEERS=$PEERS)"
elif $PY -c 'import scrapy' 2>/dev/null; then
  cat > "$WORK/spider.py" <<EOF
import scrapy
from scrapy.crawler import CrawlerProcess

class Pages(scrapy.Spider):
    name = "pages"
    def start_requests(self):
        with open("$WORK/urls-scrapy.txt") as f:
            for line in f:
                yield scrapy.Request(line.strip(), dont_filter=True)
    def parse(self, response):
        yield {"url": response.url, "status": response.status}

p = CrawlerProcess(settings={
    "CONCURRENT_REQUESTS": $CONC, "CONCURRENT_REQUESTS_PER_DOMAIN": $CONC, "CONCURRENT_REQUESTS_PER_IP": 0,
    "ROBOTSTXT_OBEY": False, "LOG_LEVEL": "WARNING", "COOKIES_ENABLED": False, "TELNETCONSOLE_ENABLED": False,
    "FEEDS": {"$WORK/scrapy.jsonl": {"format": "jsonlines"}}, "DOWNLOAD_DELAY": 0,
    "REACTOR_THREADPOOL_MAXSIZE": 4,
})
p.crawl(Pages)
p.start()
EOF
  measure scrapy "$SCRAPY_N" env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY $PY "$WORK/spider.py"
  scrapy_note="python3-scrapy $($PY -c 'import scrapy; print(scrapy.__version__)'), $SCRAPY_N URLs"
fi

mkdir -p "$(dirname "$OUT_MD")"
{
  echo "# fetch benchmark — $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load average at start"
  echo "$(cut -d' ' -f1-3 /proc/loadavg). All on loopback: one nginx (2 workers) on 127.0.0.31-34, small HTML pages."
  echo "exitpool: \`fetch --threads $THREADS --concurrency $CONC --per-host 64\` through 8 direct exits (127.0.0.41-48),"
  echo "JSONL with inline bodies; curl $(curl --version | head -1 | cut -d' ' -f2): \`--parallel --parallel-max $CONC -o /dev/null\`, direct;"
  echo "Scrapy: $scrapy_note, CONCURRENT_REQUESTS=$CONC."
  echo
  echo "| client | pages | wall s | pages/s | CPU s | CPU s / 1000 pages | peak RSS MiB |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "exitpool output: $lines lines, $ok with status 200; source addresses seen: $exits"
} > "$OUT_MD"
cat "$OUT_MD"
