"""Hardening, round two (issue 11): what a hostile client or origin can still do, one class per test group.

The origins and exits here are faults.RawServer handlers that record every byte they receive, so "nothing was
forwarded" is checked byte for byte (and "nothing was dialled" by the accept count).
"""
from __future__ import annotations

import socket
import subprocess
import threading
import time

from faults import RawServer, direct, proc_rss, quiet_flags, recv_until
from helpers import Conn, basic, build_request, exitpool_bin, socks5_auth, socks5_greet

CHUNKED_REPLY = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                 b"3\r\nabc\r\n0\r\nX-Ok-R: 1\r\nSet-Cookie: s=1\r\nProxy-Authenticate: Basic realm=x\r\n"
                 b"Content-Length: 99\r\nTransfer-Encoding: gzip\r\n\r\n")
PLAIN_REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class Recorder:
    """A RawServer handler: records what each connection sends until it has been quiet for `quiet`
    seconds (or closed), then answers `reply`."""

    def __init__(self, reply: bytes = PLAIN_REPLY, quiet: float = 0.4):
        self.reply, self.quiet = reply, quiet
        self.received: list[bytes] = []
        self.lock = threading.Lock()

    def __call__(self, conn: socket.socket, srv: RawServer) -> None:
        conn.settimeout(self.quiet)
        data = b""
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, OSError):
            pass
        with self.lock:
            self.received.append(data)
        try:
            conn.sendall(self.reply)
        except OSError:
            pass

    def all(self) -> bytes:
        with self.lock:
            return b"".join(self.received)


def gateway(start_gateway, *args: str, **kw):
    return start_gateway([direct(1)], *quiet_flags(), *args, **kw)


def read_all(c: Conn) -> bytes:
    return c.read_to_eof()


# ---------------------------------------------------------------- 1. trailers, both directions

def test_request_trailers_lose_credentials_and_forbidden_fields(start_gateway):
    rec = Recorder()
    with RawServer(rec) as origin:
        gw = gateway(start_gateway)
        with Conn("127.0.0.1", gw.port) as c:
            c.send(build_request("POST", origin.url("/t"), {"Transfer-Encoding": "chunked", "Connection": "X-Hop"}) +
                   b"5\r\nhello\r\n0\r\nX-Ok: 1\r\nProxy-Authorization: Basic c2VjcmV0OnB3\r\nContent-Length: 5\r\n"
                   b"Transfer-Encoding: chunked\r\nHost: evil.example\r\nAuthorization: Bearer tok\r\n"
                   b"X-Hop: 2\r\nCookie: c=1\r\nX-Ok-2: 3\r\n\r\n")
            resp = c.read_response("POST")
            assert resp.status == 200, resp
        sent = rec.all()
        assert sent.endswith(b"5\r\nhello\r\n0\r\nX-Ok: 1\r\nX-Ok-2: 3\r\n\r\n"), sent
        for secret in (b"c2VjcmV0OnB3", b"evil.example", b"tok", b"X-Hop: 2", b"c=1", b"Content-Length: 5"):
            assert secret not in sent, (secret, sent)


def test_response_trailers_are_filtered(start_gateway):
    with RawServer(Recorder(CHUNKED_REPLY, quiet=0.2)) as origin:
        gw = gateway(start_gateway)
        with Conn("127.0.0.1", gw.port) as c:
            c.send(build_request("GET", origin.url("/"), {"Connection": "close"}))
            raw = read_all(c)
        body = raw.split(b"\r\n\r\n", 1)[1]
        assert body == b"3\r\nabc\r\n0\r\nX-Ok-R: 1\r\n\r\n", raw


# ---------------------------------------------------------------- 2. Host from the absolute-form URI

def test_host_is_rebuilt_from_the_uri_for_origins_and_http_exits(start_gateway):
    rec = Recorder()
    with RawServer(rec) as origin:
        gw = gateway(start_gateway)
        with Conn("127.0.0.1", gw.port) as c:
            c.send(build_request("GET", origin.url("/h"), {"Connection": "close"}, host="victim.example"))
            assert c.read_response().status == 200
        head = rec.all().split(b"\r\n\r\n")[0]
        assert f"\r\nHost: {origin.hostport}\r\n".encode() in head + b"\r\n", head
        assert b"victim.example" not in head
    # Through an HTTP proxy exit: the exit gets absolute-form and the URI's Host too.
    exit_rec = Recorder()
    with RawServer(exit_rec) as exit_proxy:
        gw = start_gateway([f"http://127.0.0.1:{exit_proxy.port} id=hx"], *quiet_flags())
        with Conn("127.0.0.1", gw.port) as c:
            c.send(build_request("GET", "http://a.example:8080/x", {"Connection": "close"}, host="b.example"))
            assert c.read_response().status == 200
        head = exit_rec.all()
        assert head.startswith(b"GET http://a.example:8080/x HTTP/1.1\r\nHost: a.example:8080\r\n"), head
        assert b"b.example" not in head


# ---------------------------------------------------------------- 3. schemes other than http

def test_other_schemes_are_refused_and_nothing_is_dialled(start_gateway):
    rec = Recorder()
    with RawServer(rec) as origin:
        gw = gateway(start_gateway)
        for scheme, says in (("https", "must use CONNECT"), ("ftp", "not supported"), ("gopher", "not supported"),
                             ("HTTPS", "must use CONNECT")):
            with Conn("127.0.0.1", gw.port) as c:
                c.send(build_request("GET", f"{scheme}://{origin.hostport}/", {"Cookie": "s=1"}))
                resp = c.read_response()
            assert resp.status == 400, (scheme, resp)
            assert says in (resp.header("X-Exitpool-Error") or ""), (scheme, resp.headers)
        time.sleep(0.2)
        assert origin.count() == 0 and rec.all() == b""


# ---------------------------------------------------------------- 4. Max-Forwards

def test_max_forwards_zero_is_answered_here_and_larger_decremented(start_gateway):
    rec = Recorder()
    with RawServer(rec) as origin:
        gw = gateway(start_gateway)
        with Conn("127.0.0.1", gw.port) as c:
            resp = c.request("TRACE", origin.url("/t"), {"Max-Forwards": "0", "Proxy-Authorization": basic("u", "pw"),
                                                         "X-Probe": "1"})
            assert resp.status == 200, resp
            assert resp.header("Content-Type") == "message/http"
            assert resp.body.startswith(f"TRACE {origin.url('/t')} HTTP/1.1\r\n".encode()), resp.body
            assert b"X-Probe: 1" in resp.body and b"Proxy-Authorization" not in resp.body
            # The same connection carries on (keep-alive).
            resp = c.request("OPTIONS", origin.url("/"), {"Max-Forwards": "0"})
            assert resp.status == 200 and "OPTIONS" in (resp.header("Allow") or ""), resp
        time.sleep(0.2)
        assert origin.count() == 0
        with Conn("127.0.0.1", gw.port) as c:
            assert c.request("OPTIONS", origin.url("/"), {"Max-Forwards": "3", "Connection": "close"}).status == 200
        head = rec.all()
        assert b"\r\nMax-Forwards: 2\r\n" in head and b"Max-Forwards: 3" not in head, head


# ---------------------------------------------------------------- 5. log injection

def test_control_bytes_from_socks5_credentials_never_start_a_log_line(start_gateway):
    gw = gateway(start_gateway)
    forged = "[info] FORGED"
    for user, password in ((f"alice-co\r\n{forged}\r\nuntry-us", "x"),
                           ("alice", f"pw_sesstime-\n{forged}"),
                           (f"alice-sessbusy-\r{forged}", "x")):
        with Conn("127.0.0.1", gw.port) as c:
            assert socks5_greet(c, b"\x02") == 2
            assert socks5_auth(c, user, password) != 0
    time.sleep(0.3)
    log = gw.log()
    assert log.count("FORGED") == 3, log[-2000:]  # each was logged ...
    for line in log.splitlines():
        assert not line.startswith(forged), line  # ... but never as a line of its own
    assert "\\x0d\\x0a[info] FORGED" in log and "\\x0a[info] FORGED" in log and "\\x0d[info] FORGED" in log


# ---------------------------------------------------------------- 6. unencodable targets never reach an exit

def test_overlong_target_to_socks5h_exit_is_refused_without_dialling(start_gateway):
    def socks_exit(conn: socket.socket, srv: RawServer) -> None:
        conn.settimeout(3)
        srv.note("accept")
        try:
            conn.recv(3)
            conn.sendall(b"\x05\x00")
            req = recv_until(conn, b"\x00\x50", limit=400)
            srv.note("request")
            conn.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x50")
            recv_until(conn, b"\r\n\r\n")
            conn.sendall(PLAIN_REPLY)
        except OSError:
            pass

    with RawServer(socks_exit) as ex:
        gw = start_gateway([f"socks5h://127.0.0.1:{ex.port} id=sx"], *quiet_flags(), "--dial-timeout", "3",
                           "--eject-after", "2")
        long_host = "a" * 300 + ".example"
        for i in range(5):
            with Conn("127.0.0.1", gw.port, timeout=5) as c:
                t0 = time.monotonic()
                if i % 2:
                    c.send(f"CONNECT {long_host}:80 HTTP/1.1\r\nHost: {long_host}:80\r\n\r\n".encode())
                else:
                    c.send(build_request("GET", f"http://{long_host}/", {"Connection": "close"}))
                resp = c.read_response("CONNECT" if i % 2 else "GET")
                assert resp.status == 400, resp
                assert time.monotonic() - t0 < 1.0
                assert "too long" in (resp.header("X-Exitpool-Error") or ""), resp.headers
        assert ex.count() == 0
        # The exit was never blamed: it still serves.
        with Conn("127.0.0.1", gw.port, timeout=5) as c:
            resp = c.request("GET", "http://ok.example/", {"Connection": "close"})
            assert resp.status == 200, resp


def test_provider_credentials_too_long_for_socks5_are_the_clients_fault(start_gateway):
    """A socks5:// provider line renders its user name per request from the client's options: one that
    comes out over RFC 1929's 255 bytes is refused with a prompt 400 before the exit is reached, and the
    exit keeps serving (a static line with such credentials is refused at load, see the unit tests)."""
    logins: list[bytes] = []

    def socks_exit(conn: socket.socket, srv: RawServer) -> None:
        conn.settimeout(3)
        srv.note("accept")
        def exact(n: int) -> bytes:
            out = b""
            while len(out) < n:
                got = conn.recv(n - len(out))
                if not got:
                    raise OSError("closed")
                out += got
            return out

        try:
            exact(exact(2)[1])  # greeting: version, NMETHODS, methods
            conn.sendall(b"\x05\x02")
            user = exact(exact(2)[1])
            exact(exact(1)[0])
            logins.append(user)
            conn.sendall(b"\x01\x00")
            recv_until(conn, b"\x00\x50", limit=400)
            conn.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x50")
            recv_until(conn, b"\r\n\r\n")
            conn.sendall(PLAIN_REPLY)
        except (OSError, IndexError):
            pass

    base = "u" * 180
    with RawServer(socks_exit) as ex:
        gw = start_gateway([f"socks5h://{base}:pw@127.0.0.1:{ex.port} "
                            "user_template={user}-city-{city}-session-{session} cities=* id=p"],
                           *quiet_flags(), "--dial-timeout", "3", "--eject-after", "2")
        long_city = "c" * 60  # 180 + 6 + 60 + 9 + 12 = 267 bytes rendered
        for i in range(4):
            t0 = time.monotonic()
            with Conn("127.0.0.1", gw.port, timeout=5) as c:
                resp = c.request("GET", "http://ok.example/",
                                 {"Connection": "close", "Proxy-Authorization": basic(f"bob-city-{long_city}", "x")})
            assert resp.status == 400, resp
            assert time.monotonic() - t0 < 1.0
            assert "too long" in (resp.header("X-Exitpool-Error") or ""), resp.headers
        assert ex.count() == 0
        with Conn("127.0.0.1", gw.port, timeout=5) as c:
            resp = c.request("GET", "http://ok.example/",
                             {"Connection": "close", "Proxy-Authorization": basic("bob-city-ams", "x")})
        assert resp.status == 200, resp
        assert logins and logins[-1].startswith(f"{base}-city-ams-session-".encode()), logins


# ---------------------------------------------------------------- 7. bounded client-chosen keys

def test_long_session_ids_and_user_names_are_refused_and_memory_stays_flat(start_gateway):
    rec = Recorder()
    with RawServer(rec) as origin:
        gw = gateway(start_gateway)
        before = proc_rss(gw.proc.pid)
        for i in range(2000):
            with Conn("127.0.0.1", gw.port) as c:
                user = f"u-session-{i:05d}" + "s" * 10000
                c.send(build_request("GET", origin.url("/"), {"Proxy-Authorization": basic(user, "pw")}))
                resp = c.read_head()
                assert resp.status == 407, resp
                assert "too long" in (resp.header("X-Exitpool-Error") or "")
        grown = proc_rss(gw.proc.pid) - before
        assert grown < 16 << 20, f"RSS grew by {grown >> 20} MiB"
        assert origin.count() == 0
        # Options too, on the SOCKS5 front (its fields are 255 bytes at most anyway).
        with Conn("127.0.0.1", gw.port) as c:
            assert socks5_greet(c, b"\x02") == 2
            assert socks5_auth(c, "u-session-" + "s" * 100, "pw") == 1
        with Conn("127.0.0.1", gw.port) as c:
            resp = c.request("GET", origin.url("/"), {"Proxy-Authorization": basic("u-session-" + "s" * 64, "pw"),
                                                      "Connection": "close"})
            assert resp.status == 200, resp


def test_the_session_table_bound_is_configurable_and_refuses_with_429(start_gateway, origin, tmp_path):
    """--max-sticky-sessions bounds the live sessions (a client chooses their ids): new ones beyond get a 429
    naming the limit, sessions already live keep working."""
    gw = gateway(start_gateway, "--max-sticky-sessions", "128")
    accepted, refused = [], 0
    for i in range(300):
        with Conn("127.0.0.1", gw.port, timeout=5) as c:
            resp = c.request("GET", origin.url("/"), {"Proxy-Authorization": basic(f"u-session-s{i}", "pw"),
                                                      "Connection": "close"})
            if resp.status == 429:
                refused += 1
                assert "at most 128" in (resp.header("X-Exitpool-Error") or ""), resp.headers
            else:
                assert resp.status == 200, resp
                accepted.append(i)
    assert len(accepted) <= 128 and refused >= 300 - 128, (len(accepted), refused)
    with Conn("127.0.0.1", gw.port, timeout=5) as c:
        resp = c.request("GET", origin.url("/"), {"Proxy-Authorization": basic(f"u-session-s{accepted[0]}", "pw")})
        assert resp.status == 200, resp
    pool = tmp_path / "pool.txt"
    pool.write_text(direct(1) + "\n")
    bad = subprocess.run([exitpool_bin(), "serve", "--pool", str(pool), "--listen", "127.0.0.1:1",
                          "--max-sticky-sessions", "3"], capture_output=True, text=True, timeout=10)
    assert bad.returncode != 0 and "--max-sticky-sessions" in bad.stderr, (bad.returncode, bad.stderr)


# ---------------------------------------------------------------- 9. chunked bodies checked before the head goes out

def test_bad_first_chunk_size_forwards_nothing(start_gateway):
    rec = Recorder()
    with RawServer(rec) as origin:
        gw = gateway(start_gateway)
        head = build_request("POST", origin.url("/c"), {"Transfer-Encoding": "chunked"})
        for split in (False, True):
            with Conn("127.0.0.1", gw.port) as c:
                if split:
                    c.send(head + b"1")  # the size line is not complete yet: nothing may leave
                    time.sleep(0.3)
                    c.send(b"z\r\nhello\r\n0\r\n\r\n")
                else:
                    c.send(head + b"zz\r\nhello\r\n0\r\n\r\n")
                resp = c.read_response("POST")
                assert resp.status == 400, resp
                assert "chunk" in (resp.header("X-Exitpool-Error") or ""), resp.headers
        time.sleep(0.3)
        assert origin.count() == 0 and rec.all() == b""
        # A good body still goes through, also when its first size line comes late.
        with Conn("127.0.0.1", gw.port) as c:
            c.send(head + b"5")
            time.sleep(0.2)
            c.send(b"\r\nhello\r\n0\r\n\r\n")
            assert c.read_response("POST").status == 200
        assert rec.all().endswith(b"5\r\nhello\r\n0\r\n\r\n")
