"""Run inside a network namespace of its own (test_ipv6_prefix.py starts it under `unshare -n`):
routes an IPv6 prefix to lo, starts an origin on [::1] that answers each connection (HTTP/1.0) with the
address it came from, and an exitpool gateway whose only exit is that prefix; opens tunnels through it and
prints one JSON object: the source address of each tunnel, plain and in sticky sessions, and of each URL
`exitpool fetch` got through the same pool.

    netns_prefix.py --bin EXITPOOL --prefix 2001:db8:42::/64 --tunnels 100 --work DIR
"""
from __future__ import annotations

import argparse
import base64
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=10)


def origin(sock: socket.socket) -> None:
    """Answers every connection with its peer's address and closes it."""
    while True:
        try:
            c, peer = sock.accept()
        except OSError:
            return
        with c:
            c.settimeout(5)
            try:
                c.recv(4096)
                body = peer[0].encode()
                c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            except OSError:
                pass


def tunnel(gw_port: int, target: str, user: str | None) -> str:
    """CONNECT through the gateway; returns the address the origin saw, or 'status N'."""
    with socket.create_connection(("127.0.0.1", gw_port), timeout=10) as c:
        auth = ""
        if user is not None:
            auth = "Proxy-Authorization: Basic " + base64.b64encode(f"{user}:x".encode()).decode() + "\r\n"
        c.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = c.recv(4096)
            if not chunk:
                return "closed before the CONNECT answer"
            head += chunk
        status = head.split(b" ", 2)[1].decode()
        if status != "200":
            return f"status {status}: {head.decode(errors='replace').strip()}"
        c.sendall(f"GET / HTTP/1.0\r\nHost: {target}\r\n\r\n".encode())
        answer = b""
        while chunk := c.recv(4096):
            answer += chunk
        return answer.split(b"\r\n\r\n", 1)[-1].decode().strip()


def fetched(bin_: str, work: Path, pool: Path, target: str, n: int) -> list[str]:
    """`exitpool fetch` of n URLs at the origin through the same pool: the address each came from."""
    urls = work / "urls.txt"
    urls.write_text("".join(f"http://{target}/{i}\n" for i in range(n)))
    out = work / "fetch.jsonl"
    r = subprocess.run([bin_, "fetch", "--pool", str(pool), "--input", str(urls), "--output", str(out),
                        "--threads", "1"], capture_output=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"fetch failed: {r.stderr.decode()}")
    return [json.loads(line).get("body") or json.loads(line).get("error") or "?"
            for line in out.read_text().splitlines()]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--prefix", default="2001:db8:42::/64")
    ap.add_argument("--tunnels", type=int, default=100)
    ap.add_argument("--sticky", type=int, default=20)
    ap.add_argument("--fetch", type=int, default=20)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    sh("ip", "link", "set", "lo", "up")
    sh("ip", "-6", "route", "add", "local", args.prefix, "dev", "lo")

    o = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    o.bind(("::1", 0))
    o.listen(256)
    origin_port = o.getsockname()[1]
    threading.Thread(target=origin, args=(o,), daemon=True).start()

    g = socket.socket()
    g.bind(("127.0.0.1", 0))
    gw_port = g.getsockname()[1]
    g.close()
    net, length = args.prefix.split("/")
    pool = work / "pool.txt"
    pool.write_text(f"direct://[{net}]/{length} id=v6\n")
    log = open(work / "gateway.log", "w")
    gw = subprocess.Popen([args.bin, "serve", "--pool", str(pool), "--listen", f"127.0.0.1:{gw_port}",
                           "--threads", "2", "--check-interval", "0"], stdout=log, stderr=subprocess.STDOUT)
    out: dict = {}
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", gw_port), timeout=1).close()
                break
            except OSError:
                if gw.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gateway did not start: {(work / 'gateway.log').read_text()}")
                time.sleep(0.05)
        target = f"[::1]:{origin_port}"
        out["plain"] = [tunnel(gw_port, target, None) for _ in range(args.tunnels)]
        out["sticky_a"] = [tunnel(gw_port, target, "alice-session-a1") for _ in range(args.sticky)]
        out["sticky_b"] = [tunnel(gw_port, target, "bob-session-b7") for _ in range(args.sticky)]
        out["fetch"] = fetched(args.bin, work, pool, target, args.fetch)
    finally:
        gw.terminate()
        try:
            gw.wait(10)
        except subprocess.TimeoutExpired:
            gw.kill()
        o.close()
    out["gateway_exit"] = gw.returncode
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
