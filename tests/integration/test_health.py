"""Active health checks (`--check-interval`, `--check-url`, `--check-timeout`): exits are probed with no
client traffic at all; a dead one is ejected, comes back once it works again, and a failing check target is
not held against the exits.

An exit's state is read from the admin endpoint (`--admin`, GET /exits) when this build has one, else from
the gateway's log lines ("health check: exit X ejected ...", "... is healthy again").
"""
from __future__ import annotations

import json
import re
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from helpers import Service, exitpool_bin, free_port, run, start_process

CHECK_ARGS = ("--check-interval", "0.5", "--eject-after", "1", "--cooldown", "1", "--max-cooldown", "2")

# Accepts connections and closes them: enough for a handshake check of an http:// exit (a TCP connect).
LISTENER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(128)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    c.close()
"""


# ------------------------------------------------------------------------------------------ fixtures

@pytest.fixture
def listener(gateway_dir):
    """Factory: listener(port) starts a bare TCP listener process on 127.0.0.1:port; all stopped after the test."""
    started: list[Service] = []

    def start(port: int) -> Service:
        svc = start_process("tcp listener", [sys.executable, "-c", LISTENER, str(port)],
                            gateway_dir / f"listener-{port}-{len(started)}.log", port)
        started.append(svc)
        svc.wait_ready(timeout=10)
        return svc

    yield start
    for svc in started:
        svc.stop(grace=1)


class CountingOrigin:
    """A tiny HTTP origin: answers `status` with the caller's address and counts requests by source address."""

    def __init__(self, status: int = 200):
        self.status = status
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                addr = self.client_address[0]
                with origin.lock:
                    origin.hits[addr] = origin.hits.get(addr, 0) + 1
                body = f"{addr}\n".encode()
                self.send_response(origin.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/health") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.hits)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def counting_origin():
    made: list[CountingOrigin] = []

    def make(status: int = 200) -> CountingOrigin:
        o = CountingOrigin(status)
        made.append(o)
        return o

    yield make
    for o in made:
        o.close()


_ADMIN: bool | None = None


def admin_supported() -> bool:
    global _ADMIN
    if _ADMIN is None:
        cp = run([str(exitpool_bin()), "serve", "--help"], timeout=15)
        _ADMIN = b"--admin" in cp.stdout + cp.stderr
    return _ADMIN


class States:
    """Exit states of one gateway: from /exits when there is an admin endpoint, else from its log."""

    def __init__(self, gw, admin_port: int | None):
        self.gw = gw
        self.admin_port = admin_port

    def log(self) -> str:
        return Path(self.gw.svc.log_path).read_text(errors="replace")

    def mark(self) -> int:
        return len(self.log())

    def admin_state(self, exit_id: str) -> str | None:
        url = f"http://127.0.0.1:{self.admin_port}/exits"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                doc = json.loads(r.read())
        except OSError:
            return None
        for e in doc.get("exits", []):
            if e.get("id") == exit_id:
                return e.get("state")
        return None

    def logged(self, exit_id: str, state: str, since: int) -> bool:
        text = self.log()[since:]
        if state == "ejected":
            pattern = rf"health check: exit {re.escape(exit_id)} (ejected|still failing, ejected again) "
        else:
            pattern = rf"health check: exit {re.escape(exit_id)} is healthy again"
        return re.search(pattern, text) is not None

    def wait_for(self, exit_id: str, state: str, since: int, timeout: float) -> float | None:
        """Seconds until `exit_id` is seen in `state` (log lines after offset `since`); None on timeout."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.admin_port is not None:
                seen = self.admin_state(exit_id) == state
            else:
                seen = self.logged(exit_id, state, since)
            if seen:
                return time.monotonic() - t0
            time.sleep(0.05)
        return None

    def wait_logged(self, text: str, timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert time.monotonic() < deadline, f"{text!r} not logged within {timeout} s\n{self.log()[-3000:]}"
            time.sleep(0.05)

    def ejections(self, exit_id: str) -> int:
        return len(re.findall(rf"health check: exit {re.escape(exit_id)} (ejected|still failing)", self.log()))


def start_checked_gateway(start_gateway, pool_lines, *args: str) -> States:
    extra = list(args)
    admin_port = None
    if admin_supported():
        admin_port = free_port()
        extra += ["--admin", f"127.0.0.1:{admin_port}"]
    gw = start_gateway(pool_lines, *extra)
    return States(gw, admin_port)


# ---------------------------------------------------------------------------------------------- tests

def test_dead_exit_is_ejected_and_returns_without_client_traffic(start_gateway, listener):
    port = free_port()
    upstream = listener(port)
    pool = ["direct://127.0.0.21 id=live", f"http://127.0.0.1:{port} id=flaky"]
    states = start_checked_gateway(start_gateway, pool, *CHECK_ARGS)
    states.wait_logged("active health checks every 0.5 s (timeout 5.0 s): handshake with each exit")

    # Several passes while the listener is up: nothing is ejected.
    time.sleep(1.5)
    assert states.ejections("flaky") == 0, states.log()
    if states.admin_port is not None:
        assert states.admin_state("flaky") == "healthy"

    mark = states.mark()
    upstream.stop(grace=0)
    took = states.wait_for("flaky", "ejected", mark, timeout=5)
    assert took is not None, f"the dead exit was not ejected within 5 s\n{states.log()[-3000:]}"

    # A listener on the same port again: the exit is probed as soon as its cool-down ends and returns.
    mark = states.mark()
    listener(port)
    took = states.wait_for("flaky", "healthy", mark, timeout=6)
    assert took is not None, f"the exit did not return within 6 s of working again\n{states.log()[-3000:]}"

    assert states.ejections("live") == 0, states.log()
    if states.admin_port is not None:
        assert states.admin_state("live") == "healthy"


def test_check_url_is_fetched_through_every_exit(start_gateway, lab, counting_origin):
    origin = counting_origin()
    # Forward (HTTP proxy), tunnel (SOCKS5) and direct exits: the origin sees each one's own address.
    pool = [lab.line("squid"), lab.line("dante"), lab.line("d1")]
    states = start_checked_gateway(start_gateway, pool, "--check-url", origin.url(), "--check-interval", "0.5")
    want = {lab.ip("squid"), lab.ip("dante"), lab.ip("d1")}
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        hits = origin.snapshot()
        if all(hits.get(ip, 0) >= 2 for ip in want):
            break
        time.sleep(0.1)
    hits = origin.snapshot()
    assert all(hits.get(ip, 0) >= 2 for ip in want), f"origin saw {hits}, expected >= 2 checks from each of {want}"
    assert set(hits) <= want, f"checks from unexpected addresses: {hits}"
    states.wait_logged(f"GET {origin.url()} through each exit")


def test_check_url_on_nginx_ejects_a_dead_exit_only(start_gateway, origin, listener):
    port = free_port()
    upstream = listener(port)
    pool = ["direct://127.0.0.21 id=live", f"http://127.0.0.1:{port} id=flaky"]
    states = start_checked_gateway(start_gateway, pool, *CHECK_ARGS, "--check-url", origin.url("/"))
    mark = states.mark()
    upstream.stop(grace=0)
    assert states.wait_for("flaky", "ejected", mark, timeout=5) is not None, states.log()[-3000:]
    time.sleep(1)
    assert states.ejections("live") == 0, states.log()


def test_failing_check_target_is_not_the_exits_fault(start_gateway, counting_origin):
    origin = counting_origin(status=503)
    pool = ["direct://127.0.0.21 id=d1", "direct://127.0.0.22 id=d2"]
    states = start_checked_gateway(start_gateway, pool, *CHECK_ARGS, "--check-url", origin.url())
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline and min(origin.snapshot().get(ip, 0) for ip in ("127.0.0.21", "127.0.0.22")) < 3:
        time.sleep(0.1)
    hits = origin.snapshot()
    assert hits.get("127.0.0.21", 0) >= 3 and hits.get("127.0.0.22", 0) >= 3, hits
    assert states.ejections("d1") == 0 and states.ejections("d2") == 0, states.log()


@pytest.mark.parametrize("args, message", [
    (["--check-url", "https://127.0.0.1/"], "--check-url"),
    (["--check-url", "not a url"], "--check-url"),
    (["--check-interval", "-1"], "--check-interval"),
    (["--check-timeout", "0"], "--check-timeout"),
])
def test_bad_check_options_are_startup_errors(args, message):
    cp = run([str(exitpool_bin()), "serve", "--listen", f"127.0.0.1:{free_port()}", *args], timeout=15)
    assert cp.returncode == 2, (cp.returncode, cp.stdout, cp.stderr)
    assert message in cp.stderr.decode(), cp.stderr
