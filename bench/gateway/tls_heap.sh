#!/usr/bin/env bash
# bench/gateway/tls_heap.sh BIN — where the heap of an idle tunnel through an https:// exit goes: heaptrack
# runs the gateway while N (default 1,000) tunnels through stunnel (in front of squid) are held, then the
# gateway is killed, so that every allocation still live then counts as "leaked"; those are grouped by call
# path (OpenSSL's SSL object, the exit's certificate, cipher contexts, tickets, key shares; ours) and
# printed per tunnel. Loopback only. Needs heaptrack (apt-get install heaptrack) and the tools
# bench/gateway/run.sh builds.
#
#   bench/gateway/tls_heap.sh build/exitpool
#   N=500 bench/gateway/tls_heap.sh build/exitpool
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
TOOLS=${BUILD_BENCH:-$REPO/build-bench}/tools
BULK_MB=1
NOFILE=$(ulimit -Hn)
N=${N:-1000}
command -v heaptrack >/dev/null || { echo "heaptrack missing: apt-get install heaptrack" >&2; exit 1; }
WORK=$(mktemp -d /tmp/exitpool-tls-heap.XXXXXX); chmod 755 "$WORK"
source "$REPO/bench/gateway/lib.sh"
trap 'stop_all; rm -rf "$WORK"' EXIT
build_tunnel_load
start_nginx
start_squid
start_stunnel_squid
echo "https://127.0.0.1:${PORT[stunnel]} id=tls-exit tls_verify=false" >"$WORK/pool-tls.txt"
PORT[ex]=$(free_port)
start_bg heaptrack "$WORK/heaptrack.log" heaptrack -o "$WORK/ht" "$1" serve --pool "$WORK/pool-tls.txt" \
  --listen "127.0.0.1:${PORT[ex]}" --threads 2 --check-interval 0 --log-level warn
wait_port "${PORT[ex]}" 60 || die "the gateway did not start: $(tail -5 "$WORK/heaptrack.log")"
"$TOOLS/tunnel_load" --mode connect --proxy "127.0.0.1:${PORT[ex]}" --target "$ORIGIN" --conc 1 --duration 0.3 >/dev/null 2>&1 || true
mkfifo "$WORK/f"
"$TOOLS/tunnel_load" --mode connect --proxy "127.0.0.1:${PORT[ex]}" --target "$ORIGIN" --conc 200 --hold "$N" \
  --hold-deadline 60 --hold-secs 120 >"$WORK/f" 2>&1 &
holder=$!
read -r -t 90 line <"$WORK/f" || true
log "$line"
sleep 2
gw=$(pgrep -P "${PID[heaptrack]}" -f "serve --pool $WORK" || pgrep -f "serve --pool $WORK/pool-tls.txt")
kill -9 $gw  # live allocations now = "leaked" in the heaptrack data
wait "${PID[heaptrack]}" 2>/dev/null
PID[heaptrack]=""
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
heaptrack_print -f "$WORK"/ht*.zst --print-leaks 0 --print-peaks 0 --print-allocators 0 --print-temporary 0 \
  -F "$WORK/leaked.txt" --flamegraph-cost-type leaked >/dev/null 2>&1
opened=$(sed -n 's/.*open=\([0-9]*\).*/\1/p' <<<"$line")
$PY - "$WORK/leaked.txt" "${opened:-$N}" <<'PY'
import sys
from collections import Counter

def group(stack):
    if "SSL_new" in stack:
        return "SSL_new: the SSL object"
    if "try_handshake" in stack:
        if "EVP_CipherInit_ex" in stack:
            return "handshake: cipher contexts"
        if any(k in stack for k in ("ASN1_item_d2i_ex", "X509_new_ex", "BN_MONT", "X509_chain_up_ref", "DigestVerify")):
            return "handshake: the exit's certificate (parsed, chain, key)"
        if "EVP_PKEY" in stack:
            return "handshake: key shares"
        return "handshake: other"
    if "SSL_read_ex" in stack:
        return "SSL_read: TLS 1.3 tickets (the session re-made)"
    if "SSL_set_fd" in stack:
        return "SSL_set_fd: socket BIO"
    if "exitpool" in stack and any(k in stack for k in ("relay", "session", "adopt_socket", "awaitable_async_op", "_Sp_alloc_shared")):
        return "exitpool: session, relay, sockets, pending waits"
    return None  # start-up and shared state, not per tunnel

n = int(sys.argv[2])
agg = Counter()
for line in open(sys.argv[1]):
    stack, _, cost = line.rstrip().rpartition(" ")
    g = group(stack)
    if g:
        agg[g] += int(cost)
print(f"live heap per idle TLS tunnel ({n} held), bytes:")
for g, v in agg.most_common():
    print(f"  {v / n:8.0f}  {g}")
print(f"  {sum(agg.values()) / n:8.0f}  total")
PY
