# bench/gateway/lib.sh — shared by run.sh and profile.sh (sourced, not run).
# Starts nginx (the origin), exitpool and the Debian peers on loopback, each from a config written
# into $WORK; every process started here is recorded in PIDS and stopped by stop_all.
# Needs: REPO, WORK, BIN (exitpool), TOOLS (dir with tunnel_load) set by the caller.

PY=/usr/bin/python3
declare -A PID PORT
PIDS=()

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

free_port() {
  $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {  # wait_port PORT [seconds]
  local port=$1 t=${2:-20} i
  for ((i = 0; i < t * 20; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}

# All PIDs of a process tree (the process and its descendants).
tree_pids() {
  local p=$1 c
  echo "$p"
  for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do tree_pids "$c"; done
}

# CPU ticks (utime+stime+cutime+cstime) of a process tree.
cpu_ticks() {
  local t=0 p f
  for p in $(tree_pids "$1"); do
    f=$(cut -d')' -f2- /proc/"$p"/stat 2>/dev/null) || continue
    # fields after "comm)": state=1 ... utime=12 stime=13 cutime=14 cstime=15
    t=$((t + $(awk '{print $12 + $13 + $14 + $15}' <<<"$f")))
  done
  echo $t
}

# VmRSS in KiB, summed over a process tree.
rss_kib() {
  local t=0 p v
  for p in $(tree_pids "$1"); do
    v=$(awk '/^VmRSS:/{print $2}' /proc/"$p"/status 2>/dev/null) || continue
    t=$((t + ${v:-0}))
  done
  echo $t
}

# Pss in KiB (proportional set: shared pages divided among the processes sharing them), summed over a
# process tree: for multi-process proxies (dante) an RSS sum would count shared pages once per process.
pss_kib() {
  local t=0 p v
  for p in $(tree_pids "$1"); do
    v=$(awk '/^Pss:/{print $2}' /proc/"$p"/smaps_rollup 2>/dev/null) || continue
    t=$((t + ${v:-0}))
  done
  echo $t
}

start_bg() {  # start_bg NAME LOGFILE cmd... : records PID[NAME]
  local name=$1 logf=$2
  shift 2
  "$@" >"$logf" 2>&1 &
  PID[$name]=$!
  PIDS+=("$!")
}

stop_one() {
  local name=$1 p=${PID[$1]:-}
  [[ -n "$p" ]] || return 0
  kill "$p" 2>/dev/null || true
  local i
  for ((i = 0; i < 60; i++)); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.05
  done
  kill -9 "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  # Children that outlived their parent (dante, squid helpers): their PIDs were saved at start.
  local k
  for k in ${KIDS[$name]:-}; do kill -9 "$k" 2>/dev/null || true; done
  PID[$name]=""
}

declare -A KIDS
remember_kids() { KIDS[$1]=$(tree_pids "${PID[$1]}" | tr '\n' ' '); }

stop_all() {
  local n
  for n in "${!PID[@]}"; do stop_one "$n"; done
}

# ----------------------------------------------------------------------------- origin

start_nginx() {
  local d=$WORK/nginx
  mkdir -p "$d"/{body,proxy,fastcgi,uwsgi,scgi,www}
  # ~150-byte page; a sparse file of BULK_MB MiB for the bulk test.
  printf '<html><head><title>exitpool bench</title></head><body><p>%s</p></body></html>\n' \
    "small static response for the proxy benchmark" >"$d/www/index.html"
  truncate -s "${BULK_MB}M" "$d/www/big"
  truncate -s 1M "$d/www/1m"  # the 1 MiB responses of the bodies section
  cat "$d/www/big" "$d/www/1m" >/dev/null  # into the page cache now, not during the first (direct) fetch
  PORT[nginx]=$(free_port)
  local user_line=""
  [[ $(id -u) -eq 0 ]] && user_line="user root;"
  cat >"$d/nginx.conf" <<EOF
$user_line
worker_processes 2;
worker_rlimit_nofile $NOFILE;
pid $d/nginx.pid;
error_log $d/error.log error;
daemon off;
events { worker_connections 40000; multi_accept on; }
http {
    access_log off;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    default_type text/html;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_header_timeout 300s;
    server {
        listen 127.0.0.1:${PORT[nginx]} backlog=4096 reuseport;
        root $d/www;
        location / { }
    }
}
EOF
  start_bg nginx "$d/stdout.log" nginx -c "$d/nginx.conf"
  wait_port "${PORT[nginx]}" || die "nginx did not start: $(cat "$d/error.log" "$d/stdout.log")"
  ORIGIN=127.0.0.1:${PORT[nginx]}
}

# ----------------------------------------------------------------------------- exitpool

# FEATURES=1 (the default): as deployed, with the features that cost per request switched on: active
# health checks every 5 s, the admin endpoint (metrics are counted either way), per-exit rate and
# concurrency limits set high enough never to refuse (their token bucket and counter still run on every
# request) and a connection limit. FEATURES=0: all of that off.
start_exitpool() {  # start_exitpool NAME THREADS [POOLFILE]
  local name=$1 threads=$2 pool=${3:-$WORK/pool-direct.txt}
  [[ -f "$WORK/pool-direct.txt" ]] || echo "direct:// id=local" >"$WORK/pool-direct.txt"
  PORT[$name]=$(free_port)
  local features=(--check-interval 0)
  if [[ "${FEATURES:-1}" == 1 ]]; then
    features=(--check-interval 5 --admin "127.0.0.1:$(free_port)" --per-exit-rate 10000000 --per-exit-burst 100000
              --per-exit-concurrency 1000000 --max-connections 1000000)
  fi
  start_bg "$name" "$WORK/$name.log" "$BIN" serve --pool "$pool" --listen "127.0.0.1:${PORT[$name]}" \
    --threads "$threads" "${features[@]}" --log-level "${EXITPOOL_LOG_LEVEL:-warn}"
  wait_port "${PORT[$name]}" 60 || die "$name did not start: $(tail -5 "$WORK/$name.log")"
}

# ----------------------------------------------------------------------------- peers

start_squid() {
  local d=$WORK/squid
  mkdir -p "$d" && chmod 777 "$d"
  PORT[squid]=$(free_port)
  cat >"$d/squid.conf" <<EOF
http_port 127.0.0.1:${PORT[squid]}
pid_filename $d/squid.pid
cache_log $d/cache.log
access_log none
cache_store_log none
cache deny all
cache_mem 8 MB
coredump_dir $d
netdb_filename none
icp_port 0
htcp_port 0
pinger_enable off
shutdown_lifetime 0 seconds
visible_hostname exitpool-bench-squid
via off
forwarded_for delete
logfile_rotate 0
max_filedescriptors $NOFILE
acl lab src 127.0.0.0/8
acl lab_dst dst 127.0.0.0/8
http_access allow lab lab_dst
http_access deny all
EOF
  chmod 644 "$d/squid.conf"
  start_bg squid "$d/stdout.log" squid -N -f "$d/squid.conf"
  wait_port "${PORT[squid]}" 30 || die "squid did not start: $(tail -5 "$d/cache.log")"
}

# stunnel on its own port in front of squid: an https:// exit (self-signed, so tls_verify=false).
start_stunnel_squid() {
  local d=$WORK/stunnel
  mkdir -p "$d"
  PORT[stunnel]=$(free_port)
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/key.pem" -out "$d/crt.pem" -days 2 -subj /CN=127.0.0.1 \
    >/dev/null 2>&1 || die "openssl could not make the stunnel certificate"
  cat >"$d/stunnel.conf" <<EOF
foreground = yes
pid =
debug = 0
[exit]
accept = 127.0.0.1:${PORT[stunnel]}
connect = 127.0.0.1:${PORT[squid]}
cert = $d/crt.pem
key = $d/key.pem
EOF
  start_bg stunnel "$d/stdout.log" stunnel4 "$d/stunnel.conf"
  wait_port "${PORT[stunnel]}" 30 || die "stunnel did not start: $(tail -5 "$d/stdout.log")"
}

# A second squid whose only way out is a TLS parent: the stunnel port (start_stunnel_squid) as
# `cache_peer ... tls`, never direct: the peer gateway for bulk through an https:// exit. Debian's squid
# is built with GnuTLS, whose TLS 1.3 reads from stunnel fail (squid answers ERR_READ_ERROR), so TLS 1.2.
start_squid_tls_parent() {
  local d=$WORK/squid-tls-parent
  mkdir -p "$d" && chmod 777 "$d"
  PORT[squid-tls-parent]=$(free_port)
  sed -e "s|^http_port .*|http_port 127.0.0.1:${PORT[squid-tls-parent]}|" -e "s|$WORK/squid|$d|g" \
    "$WORK/squid/squid.conf" >"$d/squid.conf"
  cat >>"$d/squid.conf" <<EOF
cache_peer 127.0.0.1 parent ${PORT[stunnel]} 0 no-query no-digest default tls tls-flags=DONT_VERIFY_PEER tls-options=NORMAL:-VERS-TLS1.3
never_direct allow all
EOF
  chmod 644 "$d/squid.conf"
  start_bg squid-tls-parent "$d/stdout.log" squid -N -f "$d/squid.conf"
  wait_port "${PORT[squid-tls-parent]}" 30 || die "squid (TLS parent) did not start: $(tail -5 "$d/cache.log")"
}

start_tinyproxy() {
  local d=$WORK/tinyproxy
  mkdir -p "$d" && chmod 777 "$d"
  PORT[tinyproxy]=$(free_port)
  cat >"$d/tinyproxy.conf" <<EOF
User nobody
Group nogroup
Port ${PORT[tinyproxy]}
Listen 127.0.0.1
Timeout 300
MaxClients $((HOLD_N + 500))
Allow 127.0.0.0/8
DisableViaHeader Yes
LogLevel Critical
PidFile "$d/tinyproxy.pid"
EOF
  chmod 644 "$d/tinyproxy.conf"
  start_bg tinyproxy "$d/stdout.log" tinyproxy -d -c "$d/tinyproxy.conf"
  wait_port "${PORT[tinyproxy]}" || die "tinyproxy did not start: $(tail -5 "$d/stdout.log")"
}

start_privoxy() {
  local d=$WORK/privoxy
  mkdir -p "$d" && chmod 777 "$d"
  PORT[privoxy]=$(free_port)
  # No actions or filter files: plain forwarding. Keep-alive both ways, like the others.
  cat >"$d/config" <<EOF
confdir $d
logdir $d
listen-address 127.0.0.1:${PORT[privoxy]}
toggle 0
enable-remote-toggle 0
enable-edit-actions 0
accept-intercepted-requests 0
keep-alive-timeout 300
default-server-timeout 60
socket-timeout 300
connection-sharing 1
max-client-connections $((HOLD_N + 500))
debug 0
EOF
  start_bg privoxy "$d/stdout.log" privoxy --no-daemon "$d/config"
  wait_port "${PORT[privoxy]}" || die "privoxy did not start: $(tail -5 "$d/stdout.log")"
}

start_dante() {
  local d=$WORK/dante
  mkdir -p "$d" && chmod 777 "$d"
  PORT[dante]=$(free_port)
  cat >"$d/danted.conf" <<EOF
logoutput: $d/danted.log
internal: 127.0.0.1 port = ${PORT[dante]}
external: 127.0.0.1
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {
    from: 127.0.0.0/8 to: 0.0.0.0/0
    log: error
}
socks pass {
    from: 127.0.0.0/8 to: 127.0.0.0/8
    command: connect
    log: error
}
socks block {
    from: 0.0.0.0/0 to: 0.0.0.0/0
    log: error
}
EOF
  chmod 644 "$d/danted.conf"
  start_bg dante "$d/stdout.log" danted -f "$d/danted.conf" -N "${DANTE_PROCS:-2}" -p "$d/danted.pid"
  wait_port "${PORT[dante]}" || die "danted did not start: $(tail -5 "$d/stdout.log")"
}

start_microsocks() {
  PORT[microsocks]=$(free_port)
  start_bg microsocks "$WORK/microsocks.log" microsocks -i 127.0.0.1 -p "${PORT[microsocks]}"
  wait_port "${PORT[microsocks]}" || die "microsocks did not start: $(cat "$WORK/microsocks.log")"
}

start_peer() {  # start_peer NAME (exitpool, exitpool1 = --threads 1, or a peer)
  case $1 in
    exitpool) start_exitpool exitpool "${THREADS:-2}" "${TLS_POOL:-}" ;;
    exitpool1) start_exitpool exitpool1 1 ;;
    squid) start_squid ;;
    tinyproxy) start_tinyproxy ;;
    privoxy) start_privoxy ;;
    dante) start_dante ;;
    microsocks) start_microsocks ;;
    *) die "unknown peer $1" ;;
  esac
  sleep 0.3
  remember_kids "$1"
}

# $TOOLS/tunnel_load, (re)built when missing or older than its source.
build_tunnel_load() {
  mkdir -p "$TOOLS"
  if [[ ! -x "$TOOLS/tunnel_load" || "$REPO/bench/gateway/tunnel_load.cpp" -nt "$TOOLS/tunnel_load" ]]; then
    log "building tunnel_load"
    g++ -std=c++20 -O2 -Wall -o "$TOOLS/tunnel_load" "$REPO/bench/gateway/tunnel_load.cpp" -pthread
  fi
}

# wrk Lua script: absolute-form GET to the origin, sent to whatever port wrk connects to.
write_wrk_lua() {
  cat >"$WORK/abs.lua" <<EOF
local req = "GET http://$ORIGIN/ HTTP/1.1\r\nHost: $ORIGIN\r\nUser-Agent: wrk\r\n\r\n"
request = function() return req end
EOF
  cat >"$WORK/abs1m.lua" <<EOF
local req = "GET http://$ORIGIN/1m HTTP/1.1\r\nHost: $ORIGIN\r\nUser-Agent: wrk\r\n\r\n"
request = function() return req end
EOF
}
