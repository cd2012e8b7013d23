"""A DNS server for the integration tests (python3-dnslib), on loopback UDP: a few fixed names, one
of them answered late, and a line per query on stdout so that tests can count what reached it.

    fast.test      A 127.0.0.1                TTL 300
    short.test     A 127.0.0.1                TTL 2
    slow.test      A 127.0.0.1                TTL 300, answered after --slow seconds (3)
    dual.test      A 127.0.0.1, AAAA ::1      TTL 300
    v6only.test    AAAA ::1                   TTL 300
    *.cold.test    A 127.0.0.1                TTL 300 (every name a new one: bench/dns/run.sh's cold lookups)
    servfail.test  SERVFAIL
    anything else  NXDOMAIN (nx.test, ...)

Each query is answered on its own timer thread, so a slow answer holds up no other.
Run: dns_server.py --listen 127.0.0.1 --port N [--slow 3]; prints "ready" once bound, then
"query NAME TYPE" per query received.
"""
from __future__ import annotations

import argparse
import socket
import sys
import threading

from dnslib import AAAA, QTYPE, RCODE, RR, A, DNSRecord

RECORDS = {
    "fast.test": {"A": ["127.0.0.1"], "ttl": 300},
    "short.test": {"A": ["127.0.0.1"], "ttl": 2},
    "slow.test": {"A": ["127.0.0.1"], "ttl": 300, "slow": True},
    "dual.test": {"A": ["127.0.0.1"], "AAAA": ["::1"], "ttl": 300},
    "v6only.test": {"AAAA": ["::1"], "ttl": 300},
}
SERVFAIL = {"servfail.test"}

_print_lock = threading.Lock()


def log(line: str) -> None:
    with _print_lock:
        print(line, flush=True)


def answer(query: DNSRecord) -> tuple[bytes, bool]:
    reply = query.reply()
    name = str(query.q.qname).rstrip(".").lower()
    qtype = QTYPE[query.q.qtype]
    slow = False
    if name in SERVFAIL:
        reply.header.rcode = RCODE.SERVFAIL
    elif name in RECORDS or name.endswith(".cold.test"):
        rec = RECORDS.get(name, RECORDS["fast.test"])
        slow = bool(rec.get("slow"))
        for value in rec.get(qtype, []):
            rdata = A(value) if qtype == "A" else AAAA(value)
            reply.add_answer(RR(query.q.qname, query.q.qtype, rdata=rdata, ttl=rec["ttl"]))
    else:
        reply.header.rcode = RCODE.NXDOMAIN
    return reply.pack(), slow


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--slow", type=float, default=3.0)
    ap.add_argument("--quiet", action="store_true", help="no line per query (benchmarks)")
    args = ap.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((args.listen, args.port))
    log("ready")
    while True:
        data, peer = sock.recvfrom(4096)
        try:
            query = DNSRecord.parse(data)
        except Exception as e:  # noqa: BLE001 - a test server: say what it was and go on
            log(f"garbage {e!r}")
            continue
        if not args.quiet:
            log(f"query {str(query.q.qname).rstrip('.').lower()} {QTYPE[query.q.qtype]}")
        packet, slow = answer(query)
        threading.Timer(args.slow if slow else 0, sock.sendto, (packet, peer)).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
