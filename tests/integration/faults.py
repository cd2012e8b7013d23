"""Fault servers and small shared helpers for the issue-3 tests (bans, limits, health, reload, metrics).

Everything here binds to 127.0.0.0/8 only, runs in daemon threads of the test process (or, for the
killable upstream, in a subprocess of its own), and is bounded in time: every socket has a timeout,
every wait has a deadline, and each server stops (and closes what it accepted) when its test ends.

    RecordingOrigin   an HTTP origin (threads) that records each request: arrival time, source
                      address, method, path, and how many requests from that source were in flight;
                      what it answers is up to a `decide(request) -> Answer` function
    TcpFault          an "upstream proxy" that accepts and then never answers (blackhole), or answers
                      garbage and closes; counts the connections it accepted
    start_microsocks  a real SOCKS5 upstream in its own process, for a test to kill mid-test
"""
from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

from helpers import Conn, Response, build_request, exitpool_bin, free_port, start_process

# ------------------------------------------------------------------------------------ the origin


@dataclass
class Hit:
    t: float  # time.monotonic() when the request head had arrived
    src: str  # the address the request came from, i.e. the exit it left through
    method: str
    path: str
    host: str  # the Host header
    body: bytes = b""


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds to sleep before answering (bounded by the handler's timeout)
    reason: str | None = None  # the status line's reason phrase; None: the standard one


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # per-connection socket timeout: no handler thread outlives a silent peer for long
    server: "_Server"

    def log_message(self, *args):  # quiet
        pass

    def _handle(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(n, 1 << 20)) if n > 0 else b""
        origin: RecordingOrigin = self.server.origin
        hit = Hit(time.monotonic(), self.client_address[0], self.command, self.path,
                  self.headers.get("Host", ""), body)
        origin._enter(hit)
        try:
            ans = origin.decide(hit)
            if ans.delay:
                time.sleep(min(ans.delay, 5.0))
            self.send_response(ans.status, ans.reason)
            for k, v in ans.headers.items():
                self.send_header(k, v)
            self.send_header("X-Origin-Remote-Addr", hit.src)
            if origin.close:
                self.send_header("Connection", "close")
            self.send_header("Content-Length", str(len(ans.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(ans.body)
        finally:
            origin._leave(hit)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = do_OPTIONS = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def ok_with_source(hit: Hit) -> Answer:
    return Answer(200, f"{hit.src}\n".encode())


class RecordingOrigin:
    """An HTTP/1.1 origin on (host, port) in threads. `decide(hit)` chooses the answer (default: 200 with
    the source address as the body, like the nginx origin). Keeps connections alive unless `close`, so the
gateway may reuse one upstream connection for several requests. Use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", decide: Callable[[Hit], Answer] = ok_with_source,
                 port: int = 0, close: bool = False):
        self.decide = decide
        self.close = close  # answer every request with Connection: close (no upstream connection reuse)
        self.lock = threading.Lock()
        self.hits: list[Hit] = []
        self.inflight: dict[str, int] = {}
        self.max_inflight: dict[str, int] = {}
        self.srv = _Server((host, port), _Handler)
        self.srv.origin = self
        self.host, self.port = self.srv.server_address[:2]
        self.thread = threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True, name=f"origin-{host}:{self.port}")

    def start(self) -> "RecordingOrigin":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _enter(self, hit: Hit) -> None:
        with self.lock:
            self.hits.append(hit)
            n = self.inflight.get(hit.src, 0) + 1
            self.inflight[hit.src] = n
            self.max_inflight[hit.src] = max(self.max_inflight.get(hit.src, 0), n)

    def _leave(self, hit: Hit) -> None:
        with self.lock:
            self.inflight[hit.src] -= 1

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def snapshot(self) -> list[Hit]:
        with self.lock:
            return list(self.hits)

    def count(self, src: str | None = None, method: str | None = None) -> int:
        return sum(1 for h in self.snapshot()
                   if (src is None or h.src == src) and (method is None or h.method == method))

    def by_source(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for h in self.snapshot():
            out[h.src] = out.get(h.src, 0) + 1
        return out


# ----------------------------------------------------------------------------- faulty upstreams


def start_microsocks(log_dir: Path, bind_ip: str, name: str = "killable-microsocks"):
    """A microsocks SOCKS5 upstream (leaving from `bind_ip`) in its own process group; returns the
    Service (`.stop()` kills it). Waits until it accepts."""
    ms = shutil.which("microsocks")
    if not ms:
        raise RuntimeError("microsocks is not installed: run scripts/install-deps.sh --test")
    port = free_port()
    svc = start_process(name, [ms, "-i", "127.0.0.1", "-p", str(port), "-b", bind_ip],
                        log_dir / f"{name}-{port}.log", port)
    svc.wait_ready(timeout=10)
    return svc


# ------------------------------------------------------------------------------- shared helpers


def direct(n: int, exit_id: str | None = None, **tags) -> str:
    """Pool line of a direct exit leaving from 127.0.0.n (every 127/8 address is local on Linux)."""
    line = f"direct://127.0.0.{n} id={exit_id or f'x{n}'}"
    return line + "".join(f" {k}={v}" for k, v in tags.items())


_help_cache: dict[str, str] = {}


def serve_help() -> str:
    if "serve" not in _help_cache:
        cp = subprocess.run([str(exitpool_bin()), "serve", "--help"], capture_output=True, timeout=10,
                            stdin=subprocess.DEVNULL)
        _help_cache["serve"] = cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace")
    return _help_cache["serve"]


def quiet_flags() -> list[str]:
    """Flags that keep a gateway deterministic for these tests: no active health checks (they would
    dial the exits on their own and skew every count). Only passed when the binary knows them."""
    return ["--check-interval", "0"] if "--check-interval" in serve_help() else []


def max_in_window(times: list[float], window: float) -> int:
    """The most arrivals in any closed interval of `window` seconds."""
    times = sorted(times)
    best, j = 0, 0
    for i in range(len(times)):
        while times[i] - times[j] > window:
            j += 1
        best = max(best, i - j + 1)
    return best


def wait_until(pred: Callable[[], object], timeout: float, interval: float = 0.05, what: str = "condition"):
    """Polls `pred` until it returns something truthy (returned) or `timeout` seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def wait_log(gw, pattern: str, timeout: float = 5.0, start: int = 0) -> re.Match:
    """Waits until the gateway's log (from byte `start` on) matches `pattern` (a regex)."""
    rx = re.compile(pattern)

    def probe():
        return rx.search(gw.svc.log_path.read_text(errors="replace")[start:])

    try:
        return wait_until(probe, timeout, what=f"/{pattern}/ in the gateway log")
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- gateway log ---\n{gw.log()}") from None


def log_size(gw) -> int:
    return len(gw.svc.log_path.read_text(errors="replace"))


def request(gw_port: int, method: str, url: str, body: bytes | None = None, headers: dict | None = None,
            timeout: float = 10.0) -> Response:
    """One absolute-form request through the gateway on a new connection."""
    with Conn("127.0.0.1", gw_port, timeout=timeout) as c:
        return c.request(method, url, {"Connection": "close", **(headers or {})}, body)


def exits_seen(gw_port: int, origin, n: int, src: dict[str, str], headers: dict | None = None) -> set[str]:
    """n plain requests to `origin` (a RecordingOrigin answering with the caller's address); every one must
    succeed, and each exit named (X-Exitpool-Exit) must be the one the origin saw (`src`: exit id → address)."""
    seen = set()
    for i in range(n):
        r = request(gw_port, "GET", origin.url(f"/u{i}"), headers=headers)
        assert r.status == 200, (r.status, r.text)
        exit_id = r.header("X-Exitpool-Exit")
        assert r.text == f"{src.get(exit_id)}\n", (exit_id, r.text)
        seen.add(exit_id)
    return seen


def connect_tunnel(gw_port: int, hostport: str, timeout: float = 10.0) -> tuple[Conn, Response]:
    """Opens a CONNECT tunnel; returns (connection, the gateway's answer). The caller closes it."""
    c = Conn("127.0.0.1", gw_port, timeout=timeout)
    c.send(build_request("CONNECT", hostport))
    return c, c.read_response("CONNECT")


def admin_get(port: int, path: str, auth: tuple[str, str] | None = None,
              timeout: float = 5.0) -> tuple[int, dict, bytes]:
    """GET http://127.0.0.1:port/path on the admin endpoint (no proxy): (status, headers, body)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if auth:
        import base64
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def admin_exits(port: int) -> dict[str, dict]:
    """/exits as {id: exit}; accepts a bare JSON array or {"exits": [...]}."""
    status, _, body = admin_get(port, "/exits")
    assert status == 200, (status, body[:300])
    doc = json.loads(body)
    exits = doc["exits"] if isinstance(doc, dict) else doc
    assert isinstance(exits, list), doc
    return {e["id"]: e for e in exits}


# ------------------------------------------------------------------ issue-5 fault servers and probes
# Used by test_faults.py and bench/soak. Same rules as above: 127.0.0.0/8 only, a thread per
# connection, every socket with a timeout, every server stopped (its connections closed) by its test.

import os  # noqa: E402
import struct  # noqa: E402


class RawServer:
    """A TCP listener on (host, 0) that runs `handler(conn, server)` in a daemon thread for each connection
    it accepts. The handler owns the connection (the server closes it too when stopping). `events` is a list
    a handler may append (time, what) records to; `accepts` counts connections. Use as a context manager."""

    def __init__(self, handler: Callable[[socket.socket, "RawServer"], None], host: str = "127.0.0.1",
                 lifetime: float = 60.0):
        self.handler = handler
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, 0))
        self.lsock.listen(128)
        self.lsock.settimeout(0.05)
        self.host, self.port = self.lsock.getsockname()[:2]
        self.lifetime = lifetime
        self.lock = threading.Lock()
        self.accepts = 0
        self.conns: list[socket.socket] = []
        self.events: list[tuple[float, str]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name=f"raw-{self.port}")

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def note(self, what: str) -> None:
        with self.lock:
            self.events.append((time.monotonic(), what))

    def count(self) -> int:
        """Connections accepted so far."""
        with self.lock:
            return self.accepts

    def noted(self, prefix: str) -> list[float]:
        with self.lock:
            return [t for t, w in self.events if w.startswith(prefix)]

    def start(self) -> "RawServer":
        self.thread.start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.lsock.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.close()
                except OSError:
                    pass
            self.conns.clear()

    def _loop(self) -> None:
        deadline = time.monotonic() + self.lifetime  # a forgotten server still stops
        while not self.stopping.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = self.lsock.accept()
            except (socket.timeout, OSError):
                continue
            conn.settimeout(10)
            with self.lock:
                self.accepts += 1
                self.conns.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            self.handler(conn, self)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass


GARBAGE = b"\x00\xffgarbage, not a proxy\r\n\r\n"


def _blackhole(conn: socket.socket, server: "RawServer") -> None:
    # Reads whatever comes and never writes, until the peer or the test closes.
    while not server.stopping.is_set():
        try:
            if not conn.recv(4096):
                return
        except socket.timeout:
            continue


def _garbage(conn: socket.socket, server: "RawServer") -> None:
    # Waits up to 0.5 s for the first bytes, then answers what no proxy protocol accepts
    # (neither a SOCKS5 method reply nor an HTTP status line) and closes.
    conn.settimeout(0.5)
    try:
        conn.recv(4096)
    except socket.timeout:
        pass
    conn.sendall(GARBAGE)
    conn.shutdown(socket.SHUT_RDWR)


def TcpFault(mode: str) -> "RawServer":
    """A listener on 127.0.0.1 that plays a broken upstream proxy: "blackhole" accepts and never answers,
    "garbage" answers bytes no proxy protocol accepts. `.count()` is the connections accepted."""
    handlers = {"blackhole": _blackhole, "garbage": _garbage}
    assert mode in handlers, mode
    return RawServer(handlers[mode], lifetime=120)


def recv_until(conn: socket.socket, delim: bytes, limit: int = 65536) -> bytes:
    """Reads until `delim` (included) or EOF; what was read (bounded by the socket's timeout and `limit`)."""
    buf = b""
    while delim not in buf and len(buf) < limit:
        chunk = conn.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf


def recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def recv_to_eof(conn: socket.socket, limit: int = 1 << 20) -> bytes:
    buf = b""
    while len(buf) < limit:
        chunk = conn.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def trickle(conn: socket.socket, data: bytes, gap: float) -> None:
    """Sends `data` one byte at a time, `gap` seconds apart."""
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(len(data)):
        conn.sendall(data[i:i + 1])
        time.sleep(gap)


def reset(conn: socket.socket) -> None:
    """Closes with an RST (SO_LINGER 0) instead of a FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


CONNECT_OK = b"HTTP/1.1 200 Connection established\r\n\r\n"
SOCKS5_OK = b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x00"


def proxy_handshake(conn: socket.socket, proto: str, reply_gap: float = 0.0) -> tuple[str, bytes]:
    """The server side of an upstream proxy's handshake: proto "http" reads a request head and, for
    CONNECT, answers 200; "socks5" does the no-auth greeting and a CONNECT request and answers success.
    With `reply_gap` the answers go out one byte at a time. Returns (kind, leftover) where kind is "connect"
    (a tunnel is open) or "http" (an absolute-form request; leftover holds its head)."""
    send = (lambda d: trickle(conn, d, reply_gap)) if reply_gap else conn.sendall
    if proto == "http":
        head = recv_until(conn, b"\r\n\r\n")
        if not head.endswith(b"\r\n\r\n") and b"\r\n\r\n" not in head:
            raise EOFError("no request head")
        if head.startswith(b"CONNECT "):
            send(CONNECT_OK)
            return "connect", head.split(b"\r\n\r\n", 1)[1]
        return "http", head
    ver, n = recv_exact(conn, 2)
    recv_exact(conn, n)
    send(b"\x05\x00")
    _v, _cmd, _rsv, atyp = recv_exact(conn, 4)
    if atyp == 1:
        recv_exact(conn, 4)
    elif atyp == 4:
        recv_exact(conn, 16)
    else:
        recv_exact(conn, recv_exact(conn, 1)[0])
    recv_exact(conn, 2)
    send(SOCKS5_OK)
    return "connect", b""


# ---------------------------------------------------------------------- the gateway's own resources

def proc_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_is_meaningful() -> bool:
    """False under AddressSanitizer (scripts/check-asan.sh): VmRSS is then mostly shadow memory, redzones
    and quarantined frees, so memory bounds are not asserted there (fd bounds still are)."""
    return os.environ.get("EXITPOOL_SANITIZED") != "1"


def proc_rss(pid: int) -> int:
    """VmRSS in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def proc_cpu(pid: int) -> float:
    """utime + stime of the process (all its threads), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
              7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING"}


def proc_sockets(pid: int) -> list[tuple[str, tuple[str, int], tuple[str, int]]]:
    """The TCP sockets (IPv4) the process holds open: (state, (local ip, port), (remote ip, port))."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])

    def addr(s: str) -> tuple[str, int]:
        ip, port = s.split(":")
        return socket.inet_ntoa(struct.pack("<I", int(ip, 16))), int(port, 16)

    out = []
    with open(f"/proc/{pid}/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[9] in inodes:
                out.append((TCP_STATES.get(int(parts[3], 16), parts[3]), addr(parts[1]), addr(parts[2])))
    return out
