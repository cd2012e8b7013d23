#!/usr/bin/env python3
"""What an open dashboard costs the gateway: gateway req/s with and without a client polling
/dashboard.json the way the page does, alternating rounds (off, on, off, on, ...), medians reported.

    bench/dashboard/cost.py [--bin build/exitpool] [--rounds 3] [--seconds 5] [--workers 4] [--poll 2.0]
                            [--exits 1000]

Everything on loopback: an nginx origin, `exitpool serve --threads 1 --admin` over N direct exits
(127.0.0.21, ...), a bounded load loop (--workers processes, one keep-alive connection each, absolute-form
GETs), and the poller (one GET of /dashboard.json every --poll seconds, as the page does at its default
refresh of 2 s; --poll 0.25 is eight times harsher). Prints one line per round and the medians.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def load_worker(gw_port: int, origin_port: int, seconds: float, out) -> None:
    req = (f"GET http://127.0.0.1:{origin_port}/ HTTP/1.1\r\nHost: 127.0.0.1:{origin_port}\r\n\r\n").encode()
    n = 0
    deadline = time.monotonic() + seconds
    s = socket.create_connection(("127.0.0.1", gw_port), timeout=5)
    buf = b""
    while time.monotonic() < deadline:
        s.sendall(req)
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                head = buf[:end].decode("latin-1").lower()
                length = int(head.split("content-length:")[1].split("\r\n")[0]) if "content-length:" in head else 0
                if len(buf) >= end + 4 + length:
                    buf = buf[end + 4 + length:]
                    break
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("gateway closed the connection")
            buf += chunk
        n += 1
    s.close()
    out.put(n)


def poller(admin_port: int, period: float, limit: int, stop: threading.Event, stats: list) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while not stop.is_set():
        t0 = time.monotonic()
        with opener.open(f"http://127.0.0.1:{admin_port}/dashboard.json?limit={limit}", timeout=5) as r:
            size = len(r.read())
        stats.append((time.monotonic() - t0, size))
        stop.wait(max(0.0, period - (time.monotonic() - t0)))


def thread_cpu_s(pid: int, name: str) -> float:
    """utime + stime of the thread of `pid` called `name` (the gateway names its admin thread admin-0)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        if (task / "comm").read_text().strip() == name:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    raise RuntimeError(f"no thread {name} in {pid}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(REPO / "build" / "exitpool"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--poll", type=float, default=2.0)
    ap.add_argument("--exits", type=int, default=1000)
    ap.add_argument("--limit", type=int, default=100, help="exit rows per poll (the page asks for 100 by default)")
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="dash-cost-"))
    procs = []
    try:
        origin_port = free_port()
        (work / "nginx.conf").write_text(f"""
worker_processes 1; pid {work}/nginx.pid; error_log {work}/error.log warn;
{"user root;" if os.geteuid() == 0 else ""}
events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work};
  uwsgi_temp_path {work}; scgi_temp_path {work}; keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{origin_port}; location / {{ return 200 "ok\\n"; }} }} }}
""")
        procs.append(subprocess.Popen(["/usr/sbin/nginx", "-c", str(work / "nginx.conf"), "-g", "daemon off;"],
                                      start_new_session=True))
        wait_port(origin_port)
        pool = work / "pool.txt"
        pool.write_text("".join(f"direct://127.0.0.21 id=e{i} country={'us' if i % 2 else 'nl'}\n"
                                for i in range(a.exits)))
        gw_port, admin_port = free_port(), free_port()
        gw = subprocess.Popen([a.bin, "serve", "--pool", str(pool), "--listen", f"127.0.0.1:{gw_port}",
                                       "--admin", f"127.0.0.1:{admin_port}", "--threads", "1",
                                       "--check-interval", "0", "--log-level", "warn"],
                              stdout=subprocess.DEVNULL, start_new_session=True)
        procs.append(gw)
        wait_port(gw_port)
        wait_port(admin_port)
        results = {"off": [], "on": []}
        admin_ms: list = []
        for rnd in range(a.rounds):
            for mode in ("off", "on"):
                stop = threading.Event()
                polls: list = []
                t = (threading.Thread(target=poller, args=(admin_port, a.poll, a.limit, stop, polls))
                     if mode == "on" else None)
                cpu0 = thread_cpu_s(gw.pid, "admin-0")
                if t:
                    t.start()
                q = mp.Queue()
                ws = [mp.Process(target=load_worker, args=(gw_port, origin_port, a.seconds, q))
                      for _ in range(a.workers)]
                for w in ws:
                    w.start()
                total = sum(q.get(timeout=a.seconds + 30) for _ in ws)
                for w in ws:
                    w.join()
                stop.set()
                if t:
                    t.join()
                rps = total / a.seconds
                results[mode].append(rps)
                extra = ""
                if polls:
                    per_poll = 1000 * (thread_cpu_s(gw.pid, "admin-0") - cpu0) / len(polls)
                    admin_ms.append(per_poll)
                    extra = (f"  ({len(polls)} polls, median {1000 * statistics.median(p[0] for p in polls):.1f} ms, "
                             f"{polls[-1][1] / 1024:.0f} KiB each, admin thread CPU {per_poll:.2f} ms per poll)")
                print(f"round {rnd + 1} dashboard {mode:3}: {rps:8.0f} req/s{extra}", flush=True)
        off, on = statistics.median(results["off"]), statistics.median(results["on"])
        print(f"median: without the page {off:.0f} req/s, with it polling every {a.poll} s {on:.0f} req/s "
              f"({100 * (on - off) / off:+.1f} %); {a.exits} exits, {a.limit} rows per poll, 1 shard, "
              f"{a.workers} keep-alive clients")
        ms = statistics.median(admin_ms)
        print(f"admin thread CPU per poll: median {ms:.2f} ms, i.e. {ms / (10 * a.poll):.2f} % of one core "
              f"at one poll every {a.poll} s")
    finally:
        for p in reversed(procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
