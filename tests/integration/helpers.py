"""Plumbing for the integration tests: processes, ports, curl, and raw HTTP/SOCKS5 clients.

Nothing here knows about exitpool's internals; it speaks the wire protocols the gateway must speak.
Everything binds and connects to 127.0.0.0/8 or ::1 only, and every wait is bounded.
"""
from __future__ import annotations

import atexit
import hashlib
import ipaddress
import os
import signal
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CURL = "/usr/bin/curl"

# Exit id (as the lab's pool lines name them) -> the source address the origin sees for that exit.
EXIT_IPS = {
    "squid": "127.0.0.11",
    "tinyproxy": "127.0.0.12",
    "dante": "127.0.0.13",
    "microsocks": "127.0.0.14",
    "ms-auth": "127.0.0.15",
    "tp-auth": "127.0.0.16",
    "squid-tls": "127.0.0.11",
    "d1": "127.0.0.21",
    "d2": "127.0.0.22",
}
IP_EXITS = {}
for _id, _ip in EXIT_IPS.items():
    IP_EXITS.setdefault(_ip, set()).add(_id)


def exitpool_bin() -> Path:
    """The binary under test: $EXITPOOL_BIN, else ./build/exitpool. Fails the test when missing."""
    p = Path(os.environ.get("EXITPOOL_BIN") or REPO / "build" / "exitpool")
    if not p.is_file() or not os.access(p, os.X_OK):
        import pytest
        pytest.fail(f"exitpool binary not found at {p}: run `make build` (or set EXITPOOL_BIN)", pytrace=False)
    return p

# Every process group a fixture started; killed at interpreter exit as a last resort, so that a crashed
# or interrupted run never leaves a daemon behind.
_live_groups: set[int] = set()


def _kill_all_groups() -> None:
    for pgid in list(_live_groups):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _live_groups.clear()


atexit.register(_kill_all_groups)


def _become_subreaper() -> None:
    # PID 1 of some sandboxes never reaps orphans: daemons' workers (danted's, squid's helpers) would stay
    # zombies once their parent is gone. As a child subreaper this process inherits and reaps them.
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


_become_subreaper()


def _group_members(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # fields after the parenthesised command: state ppid pgrp ...
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids


def _reap(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on `host` (the kernel picks it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused."""
    return free_port()


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class ServiceError(RuntimeError):
    pass


@dataclass
class Service:
    """A process started in its own process group, its stdout+stderr going to `log_path`."""

    name: str
    proc: subprocess.Popen
    port: int
    log_path: Path
    host: str = "127.0.0.1"
    extra: dict = field(default_factory=dict)

    def log(self, limit: int = 8000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return text[-limit:]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float = 15.0, host: str | None = None) -> None:
        host = host or self.host
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError(
                    f"{self.name} exited with code {self.proc.returncode} before listening on "
                    f"{host}:{self.port}\n--- {self.log_path} ---\n{self.log()}")
            if port_accepts(host, self.port, timeout=0.3):
                return
            time.sleep(0.05)
        self.stop()
        raise ServiceError(f"{self.name} did not listen on {host}:{self.port} within {timeout}s\n"
                           f"--- {self.log_path} ---\n{self.log()}")

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM to the whole process group, then SIGKILL after `grace` seconds. Returns the exit code."""
        return stop_process(self.proc, grace)


def start_process(name: str, argv: list[str], log_path: Path, port: int, *, cwd: Path | None = None,
                  env: dict | None = None, host: str = "127.0.0.1") -> Service:
    log = open(log_path, "ab")
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=cwd, env=env, start_new_session=True)
    finally:
        log.close()
    _live_groups.add(proc.pid)
    return Service(name=name, proc=proc, port=port, log_path=log_path, host=host)


def stop_process(proc: subprocess.Popen, grace: float = 5.0) -> int | None:
    """SIGTERM to the leader (it stops its own workers), then SIGKILL to whatever is left of its group."""
    pgid = proc.pid
    members = _group_members(pgid)
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    # Children (squid helpers, danted's workers) share the group: make sure none survives.
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    time.sleep(0.05)
    _reap([m for m in members + _group_members(pgid) if m != pgid])
    _live_groups.discard(pgid)
    return proc.returncode


def run(argv: list[str], timeout: float = 30.0, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, **kw)


# --------------------------------------------------------------------------------------------- curl

@dataclass
class CurlResult:
    rc: int
    body: bytes
    stderr: str
    status: int | None

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def curl(*args: str, max_time: float = 15.0) -> CurlResult:
    """Runs curl with the given arguments; the HTTP status is in .status (None when curl failed)."""
    marker = "\n@@exitpool-status:%{http_code}@@"
    argv = [CURL, "--silent", "--show-error", "--noproxy", "", "--max-time", str(max_time),
            "--write-out", marker, *args]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    cp = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=max_time + 10, env=env)
    out = cp.stdout
    status = None
    idx = out.rfind(b"\n@@exitpool-status:")
    if idx >= 0:
        tail = out[idx:].decode(errors="replace")
        code = tail.split(":", 1)[1].rstrip("@\n")
        status = int(code) if code.isdigit() and code != "000" else None
        out = out[:idx]
    return CurlResult(rc=cp.returncode, body=out, stderr=cp.stderr.decode(errors="replace"), status=status)


# ------------------------------------------------------------------------------------ raw HTTP/1.1

@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


class Conn:
    """A client connection with a buffered reader, for speaking HTTP or SOCKS5 by hand."""

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError(f"connection closed after {len(self.buf)} of {n} bytes")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_until(self, delim: bytes, limit: int = 1 << 20) -> bytes:
        while True:
            idx = self.buf.find(delim)
            if idx >= 0:
                out, self.buf = self.buf[:idx + len(delim)], self.buf[idx + len(delim):]
                return out
            if len(self.buf) > limit:
                raise ValueError("line too long")
            if not self._fill():
                raise EOFError(f"connection closed before {delim!r}; got {self.buf[:200]!r}")

    def read_to_eof(self, limit: int = 64 << 20) -> bytes:
        while len(self.buf) <= limit and self._fill():
            pass
        out, self.buf = self.buf, b""
        return out

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True when the peer closes (EOF or reset) within `timeout` seconds; data read meanwhile is dropped."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except ConnectionError:
            return True
        except socket.timeout:
            return False
        return False

    # -- HTTP

    def read_head(self) -> Response:
        head = self.read_until(b"\r\n\r\n").decode("iso-8859-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ValueError(f"bad status line: {lines[0]!r}")
        headers = []
        for line in lines[1:]:
            if not line:
                continue
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
        return Response(parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "", headers)

    def read_response(self, method: str = "GET") -> Response:
        resp = self.read_head()
        if method == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200:
            return resp
        if method == "CONNECT" and 200 <= resp.status < 300:
            return resp
        te = (resp.header("transfer-encoding") or "").lower()
        if "chunked" in te:
            body = b""
            while True:
                size_line = self.read_until(b"\r\n").split(b";")[0].strip()
                size = int(size_line, 16)
                if size == 0:
                    while self.read_until(b"\r\n") != b"\r\n":  # trailers
                        pass
                    break
                body += self.read_exact(size)
                self.read_exact(2)
            resp.body = body
        elif resp.header("content-length") is not None:
            resp.body = self.read_exact(int(resp.header("content-length")))
        else:
            resp.body = self.read_to_eof()
        return resp

    def request(self, method: str, target: str, headers: dict | None = None, body: bytes | None = None,
                host: str | None = None) -> Response:
        self.send(build_request(method, target, headers, body, host))
        return self.read_response(method)


def build_request(method: str, target: str, headers: dict | None = None, body: bytes | None = None,
                  host: str | None = None) -> bytes:
    hdrs = dict(headers or {})
    if host is None:
        if "://" in target:
            host = target.split("://", 1)[1].split("/", 1)[0]
        elif method == "CONNECT":
            host = target
        else:
            host = "localhost"
    hdrs.setdefault("Host", host)
    if body is not None and "Transfer-Encoding" not in hdrs:
        hdrs.setdefault("Content-Length", str(len(body)))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
    return head.encode("iso-8859-1") + (body or b"")


def chunked(data: bytes, size: int = 7000) -> bytes:
    out = b""
    for i in range(0, len(data), size):
        piece = data[i:i + size]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def basic(user: str, password: str) -> str:
    import base64
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# ----------------------------------------------------------------------------------- raw SOCKS5

SOCKS5_REPLY_NAMES = {
    0: "succeeded", 1: "general failure", 2: "not allowed by ruleset", 3: "network unreachable",
    4: "host unreachable", 5: "connection refused", 6: "TTL expired", 7: "command not supported",
    8: "address type not supported",
}


def socks5_greet(c: Conn, methods: bytes = b"\x00") -> int:
    """Sends the greeting; returns the method the server chose (0xFF: none acceptable)."""
    c.send(b"\x05" + bytes([len(methods)]) + methods)
    ver, method = c.read_exact(2)
    assert ver == 5, f"server greeting version {ver}"
    return method


def socks5_auth(c: Conn, user: str, password: str) -> int:
    """RFC 1929 sub-negotiation; returns the status (0: success)."""
    u, p = user.encode(), password.encode()
    c.send(b"\x01" + bytes([len(u)]) + u + bytes([len(p)]) + p)
    _ver, status = c.read_exact(2)
    return status


def socks5_address(host: str) -> bytes:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        h = host.encode()
        return b"\x03" + bytes([len(h)]) + h
    return (b"\x01" if ip.version == 4 else b"\x04") + ip.packed


def socks5_request(c: Conn, host: str, port: int, cmd: int = 1) -> tuple[int, str, int]:
    """Sends a request (1 CONNECT, 2 BIND, 3 UDP ASSOCIATE); returns (reply code, bound addr, bound port)."""
    c.send(b"\x05" + bytes([cmd, 0]) + socks5_address(host) + struct.pack(">H", port))
    return socks5_read_reply(c)


def socks5_read_reply(c: Conn) -> tuple[int, str, int]:
    ver, rep, _rsv, atyp = c.read_exact(4)
    assert ver == 5, f"reply version {ver}"
    if atyp == 1:
        addr = str(ipaddress.IPv4Address(c.read_exact(4)))
    elif atyp == 4:
        addr = str(ipaddress.IPv6Address(c.read_exact(16)))
    elif atyp == 3:
        addr = c.read_exact(c.read_exact(1)[0]).decode(errors="replace")
    else:
        raise ValueError(f"bad reply atyp {atyp}")
    (port,) = struct.unpack(">H", c.read_exact(2))
    return rep, addr, port


def socks5_connect(gw_port: int, host: str, port: int, user: str | None = None, password: str = "x",
                   timeout: float = 10.0) -> tuple[Conn, int]:
    """Opens a SOCKS5 CONNECT through the gateway; returns (connection, reply code)."""
    c = Conn("127.0.0.1", gw_port, timeout=timeout)
    if user is None:
        method = socks5_greet(c, b"\x00")
        assert method == 0, f"no-auth refused: method {method:#x}"
    else:
        method = socks5_greet(c, b"\x02")
        assert method == 2, f"user/pass refused: method {method:#x}"
        status = socks5_auth(c, user, password)
        if status != 0:
            return c, -1
    rep, _addr, _port = socks5_request(c, host, port)
    return c, rep


def host_header(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------ one request through the gateway

@dataclass
class Hop:
    """What one request through the gateway reported: the exit it named and the address the origin saw."""

    status: int
    exit_id: str | None
    origin_saw: str
    resp: Response | None = None

    def consistent(self) -> bool:
        """The exit named in X-Exitpool-Exit is the one the request really left through."""
        return self.exit_id is not None and EXIT_IPS.get(self.exit_id) == self.origin_saw


def _auth_headers(user: str | None, password: str) -> dict:
    return {"Proxy-Authorization": basic(user, password)} if user is not None else {}


def via_http(gw_port: int, url: str, user: str | None = None, password: str = "x") -> Hop:
    """GET in absolute-form on a new connection."""
    with Conn("127.0.0.1", gw_port) as c:
        r = c.request("GET", url, {**_auth_headers(user, password), "Connection": "close"})
    return Hop(r.status, r.header("X-Exitpool-Exit"), r.text.strip() if r.status == 200 else "", r)


def via_connect(gw_port: int, hostport: str, path: str = "/", user: str | None = None,
                password: str = "x") -> Hop:
    """CONNECT on a new connection, then a GET inside the tunnel."""
    with Conn("127.0.0.1", gw_port) as c:
        c.send(build_request("CONNECT", hostport, _auth_headers(user, password)))
        head = c.read_response("CONNECT")
        if head.status != 200:
            return Hop(head.status, head.header("X-Exitpool-Exit"), "", head)
        r = c.request("GET", path, {"Connection": "close"}, host=hostport)
    return Hop(head.status, head.header("X-Exitpool-Exit"), r.text.strip(), head)


def via_socks(gw_port: int, host: str, port: int, path: str = "/", user: str | None = None,
              password: str = "x") -> Hop:
    """SOCKS5 CONNECT on a new connection, then a GET inside. status: 200, or 1000 + SOCKS reply code,
    or 407 when the username/password sub-negotiation failed."""
    c, rep = socks5_connect(gw_port, host, port, user, password)
    with c:
        if rep == -1:
            return Hop(407, None, "")
        if rep != 0:
            return Hop(1000 + rep, None, "")
        r = c.request("GET", path, {"Connection": "close"}, host=host_header(host, port))
    saw = r.text.strip()
    ids = IP_EXITS.get(saw, set())
    return Hop(200, next(iter(ids)) if len(ids) == 1 else None, saw, r)
