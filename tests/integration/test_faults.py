"""Faults (issue 5): upstreams and origins that reset mid-transfer, stall after answering CONNECT, half-close,
answer byte by byte or send more than they announced; slowloris clients; fd/RSS leaks under mixed load; fd
exhaustion. The client must always get either the full data or a clean error/close, never a hang, and the
gateway must keep serving everyone else.

The fault servers (faults.RawServer handlers) run in threads of this process on 127.0.0.1; the exits are
direct:// exits leaving from 127.0.0.21-24, the fault servers posing as upstream proxies, and (for the leak
test) the lab's squid and microsocks. Every wait is bounded.
"""
from __future__ import annotations

import hashlib
import os
import random
import select
import socket
import stat
import threading
import time

import pytest

from faults import (RawServer, direct, proc_cpu, proc_fds, proc_rss, proc_sockets, proxy_handshake, quiet_flags,
                    recv_to_eof, recv_until, reset, rss_is_meaningful, trickle, wait_until)
from helpers import Conn, basic, build_request, closed_port, exitpool_bin, socks5_connect

D21 = direct(21, "d21", country="cc")
PARTIAL_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
PARTIAL_BODY = b"p" * 1000
# The target a fault upstream "connects" to (it never does): any port --allow-ports lets through.
FAKE_PORT = 60009
FAKE_TARGET = f"127.0.0.1:{FAKE_PORT}"


# ------------------------------------------------------------------------------------------ helpers

def auth(user: str | None) -> dict:
    return {"Proxy-Authorization": basic(user, "x")} if user else {}


def open_connect(gw_port: int, hostport: str, user: str | None = None, timeout: float = 5.0) -> Conn:
    """A CONNECT tunnel through the gateway; asserts the gateway answered 200."""
    c = Conn("127.0.0.1", gw_port, timeout=timeout)
    c.send(build_request("CONNECT", hostport, auth(user)))
    head = c.read_response("CONNECT")
    assert head.status == 200, (head.status, head.headers, head.body)
    return c


def open_socks(gw_port: int, host: str, port: int, user: str | None = None, timeout: float = 5.0) -> Conn:
    c, rep = socks5_connect(gw_port, host, port, user=user, timeout=timeout)
    assert rep == 0, f"SOCKS5 reply {rep}"
    return c


def drain_until_closed(c: Conn, timeout: float) -> tuple[bytes, str, float]:
    """Reads until the peer closes. Returns (data incl. what Conn had buffered, "eof" | "reset" | "hang",
    seconds it took)."""
    t0 = time.monotonic()
    data, c.buf = c.buf, b""
    c.sock.settimeout(0.2)
    while time.monotonic() - t0 < timeout:
        try:
            chunk = c.sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return data, "reset", time.monotonic() - t0
        if not chunk:
            return data, "eof", time.monotonic() - t0
        data += chunk
    return data, "hang", time.monotonic() - t0


def served_by_d21(gw_port: int, url: str, user: str | None = "u-country-cc") -> None:
    """Another client's request is served, through d21."""
    with Conn("127.0.0.1", gw_port, timeout=5) as c:
        r = c.request("GET", url, {"Connection": "close", **auth(user)})
    assert r.status == 200 and r.text == "127.0.0.21\n", (r.status, r.headers, r.text)


def run_threads(fns, timeout: float) -> list:
    """Runs each fn in a thread; returns their results (an exception is re-raised here)."""
    results: list = [None] * len(fns)

    def wrap(i, fn):
        try:
            results[i] = ("ok", fn())
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            results[i] = ("err", e)

    threads = [threading.Thread(target=wrap, args=(i, fn), daemon=True) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "a client thread hung"
    out = []
    for kind, v in results:
        if kind == "err":
            raise v
        out.append(v)
    return out


# -------------------------------------------------------------------- reset in the middle of a transfer

def reset_mid_transfer(proto: str):
    """An upstream proxy that opens the tunnel (or takes an absolute-form request), sends part of a
    response, then resets the connection."""
    def handler(conn: socket.socket, srv: RawServer) -> None:
        kind, _ = proxy_handshake(conn, proto)
        if kind == "connect":
            recv_until(conn, b"\r\n\r\n")  # the client's request through the tunnel
        conn.sendall(PARTIAL_HEAD + PARTIAL_BODY)
        time.sleep(0.3)
        srv.note(f"reset-{kind}")
        reset(conn)
    return handler


def test_upstream_reset_mid_transfer(start_gateway, origin):
    with RawServer(reset_mid_transfer("http")) as fh, RawServer(reset_mid_transfer("socks5")) as fs:
        gw = start_gateway([f"http://127.0.0.1:{fh.port} id=fh country=aa",
                            f"socks5://127.0.0.1:{fs.port} id=fs country=bb", D21], *quiet_flags())
        # A tunnel of another client, open before the faults and used after them.
        bystander = open_connect(gw.port, origin.hostport, "u-country-cc")

        cases = []
        c = open_connect(gw.port, FAKE_TARGET, "u-country-aa")
        c.send(build_request("GET", "/", {}, host=FAKE_TARGET))
        cases.append(("CONNECT via http upstream", c))
        c = open_socks(gw.port, "127.0.0.1", FAKE_PORT, "u-country-bb")
        c.send(build_request("GET", "/", {}, host=FAKE_TARGET))
        cases.append(("SOCKS5 client via socks5 upstream", c))
        c = open_connect(gw.port, FAKE_TARGET, "u-country-bb")
        c.send(build_request("GET", "/", {}, host=FAKE_TARGET))
        cases.append(("CONNECT via socks5 upstream", c))

        for name, c in cases:
            with c:
                data, how, took = drain_until_closed(c, 5.0)
            assert how in ("eof", "reset"), f"{name}: the client was left hanging ({len(data)} bytes read)"
            assert data == PARTIAL_HEAD + PARTIAL_BODY, f"{name}: {len(data)} bytes: {data[:80]!r}"
            assert took < 3.0, (name, took)

        # Plain HTTP forwarding through the http upstream: a short body and a close, or a clean 502;
        # never a kept-alive connection waiting for the rest of the body.
        with Conn("127.0.0.1", gw.port, timeout=5) as c:
            c.send(build_request("GET", f"http://{FAKE_TARGET}/", auth("u-country-aa")))
            head = c.read_head()
            assert head.status in (200, 502), (head.status, head.headers)
            data, how, took = drain_until_closed(c, 5.0)
            assert how in ("eof", "reset"), f"plain HTTP: the client was left hanging ({len(data)} bytes)"
            if head.status == 200:
                assert 0 < len(data) < 100000 and set(data) == {ord("p")}, (len(data), data[:80])
            assert took < 3.0, took
        assert len(fh.noted("reset-")) == 2 and len(fs.noted("reset-")) == 2, (fh.events, fs.events)

        # The gateway kept serving others: the bystander's tunnel and new requests.
        with bystander:
            r = bystander.request("GET", "/", {}, host=origin.hostport)
            assert r.status == 200 and r.text == "127.0.0.21\n", (r.status, r.text)
        served_by_d21(gw.port, origin.url())
        with open_socks(gw.port, "127.0.0.1", origin.port, "u-country-cc") as c:
            r = c.request("GET", "/", {"Connection": "close"}, host=origin.hostport)
            assert r.status == 200 and r.text == "127.0.0.21\n", (r.status, r.text)


# ------------------------------------------------------------------- stall after answering CONNECT

def stall_after_connect(proto: str):
    def handler(conn: socket.socket, srv: RawServer) -> None:
        proxy_handshake(conn, proto)
        srv.note("open")
        conn.settimeout(8)
        try:
            recv_to_eof(conn)  # never answers; reads until the gateway gives up on this tunnel
            srv.note("closed")
        except ConnectionResetError:
            srv.note("closed")
        except socket.timeout:
            srv.note("still-open")
    return handler


def echo(conn: socket.socket, srv: RawServer) -> None:
    conn.settimeout(5)
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            return
        conn.sendall(chunk)


def test_stalled_tunnel_closed_by_idle_timeout(start_gateway):
    with RawServer(stall_after_connect("http")) as fh, RawServer(stall_after_connect("socks5")) as fs, \
            RawServer(echo) as echo_origin:
        gw = start_gateway([f"http://127.0.0.1:{fh.port} id=fh country=aa",
                            f"socks5://127.0.0.1:{fs.port} id=fs country=bb", D21],
                           "--idle-timeout", "1", *quiet_flags())
        tunnels = [("http upstream", fh, open_connect(gw.port, FAKE_TARGET, "u-country-aa")),
                   ("socks5 upstream", fs, open_socks(gw.port, "127.0.0.1", FAKE_PORT, "u-country-bb"))]
        t0 = time.monotonic()
        for _, _, c in tunnels:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")

        def watch(name, srv, c):
            with c:
                data, how, _ = drain_until_closed(c, 6.0)
            took = time.monotonic() - t0
            print(f"{name}: client side closed ({how}) after {took:.2f} s, upstream events {srv.events}")
            assert how in ("eof", "reset"), f"{name}: the stalled tunnel is still open after {took:.1f} s"
            assert data == b"", (name, data)
            assert 0.8 <= took <= 4.0, (name, took)
            # The upstream side was closed too, within a few seconds.
            wait_until(lambda: srv.noted("closed") or srv.noted("still-open"), 5.0, what=f"{name} upstream")
            assert srv.noted("closed"), f"{name}: the gateway kept its upstream connection open"
            assert srv.noted("closed")[0] - t0 <= 4.5, (name, srv.noted("closed")[0] - t0)

        # Meanwhile a tunnel with traffic every 0.4 s outlives the 1 s idle timeout.
        def busy():
            with open_connect(gw.port, echo_origin.hostport, "u-country-cc") as c:
                for i in range(7):
                    msg = f"ping {i}\n".encode()
                    c.send(msg)
                    assert c.read_exact(len(msg)) == msg, i
                    time.sleep(0.4)

        run_threads([lambda: watch(*tunnels[0][:2], tunnels[0][2]),
                     lambda: watch(*tunnels[1][:2], tunnels[1][2]), busy], timeout=15)


# ---------------------------------------------------------------------------------------- half-close

def reply_after_eof(conn: socket.socket, srv: RawServer) -> None:
    """Reads the whole request (until the client's FIN), then answers with its size and digest."""
    data = recv_to_eof(conn, limit=8 << 20)
    srv.note("eof")
    conn.sendall(b"got %d bytes %s\n" % (len(data), hashlib.sha256(data).hexdigest().encode()))


def banner_then_half_close(conn: socket.socket, srv: RawServer) -> None:
    """Sends a banner and shuts its write side down, then keeps reading what the client sends."""
    conn.sendall(b"banner\n")
    conn.shutdown(socket.SHUT_WR)
    data = recv_to_eof(conn)
    srv.note("got:" + data.decode(errors="replace"))


@pytest.mark.parametrize("via", ["connect", "socks5"])
def test_half_close_both_directions(start_gateway, via):
    with RawServer(reply_after_eof) as eof_origin, RawServer(banner_then_half_close) as banner_origin:
        gw = start_gateway([D21], *quiet_flags())

        def tunnel(srv):
            if via == "connect":
                return open_connect(gw.port, srv.hostport)
            return open_socks(gw.port, "127.0.0.1", srv.port)

        # Client → origin FIN: the origin sees EOF, and its reply still comes back.
        payload = os.urandom(300_000)
        with tunnel(eof_origin) as c:
            c.send(payload)
            c.sock.shutdown(socket.SHUT_WR)
            data, how, _ = drain_until_closed(c, 5.0)
        assert how == "eof", (how, data)
        assert data == b"got %d bytes %s\n" % (len(payload), hashlib.sha256(payload).hexdigest().encode()), data

        # Origin → client FIN: the client sees EOF after the banner, and can still send.
        with tunnel(banner_origin) as c:
            assert c.read_exact(7) == b"banner\n"
            data, how, _ = drain_until_closed(c, 3.0)
            assert (data, how) == (b"", "eof"), (data, how)
            c.send(b"late data")
            c.sock.shutdown(socket.SHUT_WR)
            wait_until(lambda: banner_origin.noted("got:"), 5.0, what="the origin to read the late data")
            assert banner_origin.events[-1][1] == "got:late data", banner_origin.events
            data, how, _ = drain_until_closed(c, 5.0)  # both directions done: the gateway closes
            assert (data, how) == (b"", "eof"), (data, how)


# ------------------------------------------------------------------------------------------ slow peers

SLOW_BODY = b"0123456789abcdefghijklmnopqrstuvwxyzABCD"  # 40 bytes, 1 per 50 ms
SLOW_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\nX-Slow: yes\r\n\r\n"


def slow_http_origin(conn: socket.socket, srv: RawServer) -> None:
    recv_until(conn, b"\r\n\r\n")
    trickle(conn, SLOW_HEAD, 0.005)
    trickle(conn, SLOW_BODY, 0.05)
    time.sleep(2)  # keeps the connection open: the client's framing, not our close, ends the body


def slow_tunnel_origin(conn: socket.socket, srv: RawServer) -> None:
    recv_until(conn, b"\n")
    trickle(conn, SLOW_BODY, 0.05)


def slow_upstream(proto: str):
    """An upstream proxy that answers its handshake one byte at a time, then trickles the data too."""
    def handler(conn: socket.socket, srv: RawServer) -> None:
        proxy_handshake(conn, proto, reply_gap=0.02)
        recv_until(conn, b"\n")
        trickle(conn, SLOW_BODY, 0.05)
    return handler


def test_slow_byte_by_byte_peers(start_gateway):
    with RawServer(slow_http_origin) as http_origin, RawServer(slow_tunnel_origin) as tunnel_origin, \
            RawServer(slow_upstream("http")) as fh, RawServer(slow_upstream("socks5")) as fs:
        gw = start_gateway([f"http://127.0.0.1:{fh.port} id=fh country=aa",
                            f"socks5://127.0.0.1:{fs.port} id=fs country=bb", D21], *quiet_flags())

        def plain():
            with Conn("127.0.0.1", gw.port, timeout=8) as c:
                r = c.request("GET", http_origin.url("/slow"), auth("u-country-cc"))
            assert r.status == 200 and r.header("X-Slow") == "yes" and r.body == SLOW_BODY, (r.status, r.body)

        def tunnel(open_fn):
            def run():
                with open_fn() as c:
                    c.send(b"go\n")
                    data, how, _ = drain_until_closed(c, 8.0)
                assert (data, how) == (SLOW_BODY, "eof"), (data, how)
            return run

        run_threads([
            plain,
            tunnel(lambda: open_connect(gw.port, tunnel_origin.hostport, "u-country-cc")),
            tunnel(lambda: open_socks(gw.port, "127.0.0.1", tunnel_origin.port, "u-country-cc")),
            tunnel(lambda: open_connect(gw.port, FAKE_TARGET, "u-country-aa", timeout=8)),
            tunnel(lambda: open_socks(gw.port, "127.0.0.1", FAKE_PORT, "u-country-bb", timeout=8)),
        ], timeout=20)


# --------------------------------------------------------------------- more body than Content-Length

EXTRA = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nSMUGG"


def overlong_origin(conn: socket.socket, srv: RawServer) -> None:
    """Keep-alive origin: /over answers Content-Length 10 followed by a bogus second response (in the same
    write, or 0.2 s later for /over-late); any other path answers "second" properly."""
    conn.settimeout(5)
    for _ in range(5):
        head = recv_until(conn, b"\r\n\r\n")
        if not head.endswith(b"\r\n\r\n"):
            return
        path = head.split(b" ", 2)[1]
        srv.note(path.decode())
        if path.startswith(b"/over"):
            first = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"
            if path == b"/over-late":
                conn.sendall(first)
                time.sleep(0.2)
                conn.sendall(EXTRA)
            else:
                conn.sendall(first + EXTRA)
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")


@pytest.mark.parametrize("path", ["/over", "/over-late"])
def test_origin_sends_more_than_content_length(start_gateway, origin, path):
    with RawServer(overlong_origin) as bad:
        gw = start_gateway([D21], *quiet_flags())
        c = Conn("127.0.0.1", gw.port, timeout=5)
        try:
            r = c.request("GET", bad.url(path))
            assert r.status == 200 and r.body == b"0123456789", (r.status, r.body)
            # Nothing after the announced body reaches the client: silence, or a clean close.
            time.sleep(0.5)
            c.sock.settimeout(0.5)
            try:
                extra = c.buf + c.sock.recv(65536)
                closed = extra == b""
            except socket.timeout:
                extra, closed = c.buf, False
            except ConnectionResetError:
                extra, closed = c.buf, True
            assert extra == b"", f"bytes past Content-Length reached the client: {extra!r}"
            # The next requests on this connection (same origin, then another) get their own answers.
            for url, want in ((bad.url("/ok"), b"second"), (origin.url(), b"127.0.0.21\n")):
                if closed:
                    c.close()
                    c = Conn("127.0.0.1", gw.port, timeout=5)
                try:
                    r = c.request("GET", url)
                except (EOFError, ConnectionResetError):
                    closed = True  # a clean close instead of an answer: allowed, once more on a new one
                    c.close()
                    c = Conn("127.0.0.1", gw.port, timeout=5)
                    r = c.request("GET", url)
                assert r.status == 200 and r.body == want, (url, r.status, r.headers, r.body)
                assert b"SMUGG" not in r.body
            print(f"{path}: closed after the first response: {closed}; origin connections {bad.accepts},"
                  f" requests {[w for _, w in bad.events]}")
        finally:
            c.close()


# ------------------------------------------------------------------------------------------ slowloris

def slow_client(gw_port: int, data: bytes, gap: float, limit: float) -> tuple[float, bytes]:
    """Sends `data` one byte every `gap` s; returns (seconds until the gateway closed, what it answered).
    Fails if the connection is still open after `limit` seconds."""
    s = socket.create_connection(("127.0.0.1", gw_port), timeout=2)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.monotonic()
    got = b""
    try:
        for i in range(len(data)):
            if time.monotonic() - t0 > limit:
                break
            try:
                s.sendall(data[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - t0, got
            end = time.monotonic() + gap
            while (left := end - time.monotonic()) > 0:
                r, _, _ = select.select([s], [], [], left)
                if not r:
                    continue
                try:
                    chunk = s.recv(4096)
                except ConnectionResetError:
                    return time.monotonic() - t0, got
                if not chunk:
                    return time.monotonic() - t0, got
                got += chunk
        raise AssertionError(f"still connected after {time.monotonic() - t0:.1f} s; got {got!r}")
    finally:
        s.close()


def test_slowloris_cut_at_handshake_timeout(start_gateway, origin):
    gw = start_gateway([D21], "--handshake-timeout", "2", *quiet_flags())
    head = (f"GET {origin.url()} HTTP/1.1\r\nHost: {origin.hostport}\r\nX-Pad: ".encode() + b"a" * 64)
    socks = b"\x05\x01\x00" + b"\x05\x01\x00\x01\x7f\x00\x00\x01" + origin.port.to_bytes(2, "big")
    served = []

    def others():
        end = time.monotonic() + 2.6
        while time.monotonic() < end:
            served_by_d21(gw.port, origin.url(), user=None)
            served.append(1)
            time.sleep(0.2)

    (http_took, http_got), (socks_took, socks_got), _ = run_threads(
        [lambda: slow_client(gw.port, head, 0.3, 8.0), lambda: slow_client(gw.port, socks, 0.3, 8.0), others],
        timeout=20)
    print(f"slowloris cut after {http_took:.2f} s (HTTP, got {http_got[:40]!r}), {socks_took:.2f} s (SOCKS5,"
          f" got {socks_got!r}); {len(served)} other requests served meanwhile")
    assert 1.0 <= http_took <= 3.0, (http_took, http_got)
    assert http_got == b"" or http_got.startswith(b"HTTP/1.1 4"), http_got
    assert 1.0 <= socks_took <= 3.0, (socks_took, socks_got)
    assert socks_got in (b"", b"\x05\x00") or socks_got.startswith(b"\x05\x00\x05"), socks_got
    assert len(served) >= 5, served


# -------------------------------------------------------------------------------- fd and memory leaks

def _mixed_op(i: int, gw_port: int, origin, dead_target: int) -> str:
    """One of several kinds of client behaviour, chosen by i; returns a short outcome. Asserts what a
    working gateway must answer."""
    kind = i % 16
    url = origin.url()
    if kind == 0:  # plain HTTP, rotating over every exit (dead ones included: retried elsewhere)
        with Conn("127.0.0.1", gw_port, timeout=10) as c:
            r = c.request("GET", url, {"Connection": "close"})
        assert r.status in (200, 502, 503), r.status
        return f"http-any {r.status}"
    if kind == 1:
        with Conn("127.0.0.1", gw_port, timeout=10) as c:
            r = c.request("GET", url, {"Connection": "close", **auth("u-country-sq")})
        assert r.status == 200 and r.text == "127.0.0.11\n", (r.status, r.text)
        return "http-squid 200"
    if kind == 2:
        with open_connect(gw_port, origin.hostport, "u-country-ms", timeout=10) as c:
            r = c.request("GET", "/", {"Connection": "close"}, host=origin.hostport)
        assert r.text == "127.0.0.14\n", r.text
        return "connect-microsocks 200"
    if kind == 3:
        with open_socks(gw_port, "127.0.0.1", origin.port, "u-country-sq", timeout=10) as c:
            r = c.request("GET", "/", {"Connection": "close"}, host=origin.hostport)
        assert r.text == "127.0.0.11\n", r.text
        return "socks-squid 200"
    if kind == 4:
        with open_socks(gw_port, "127.0.0.1", origin.port, "u-country-cc", timeout=10) as c:
            r = c.request("POST", "/echo", {"Connection": "close"}, body=b"e" * 65536, host=origin.hostport)
        assert r.body == b"e" * 65536
        return "socks-direct-echo 200"
    if kind == 5:  # only dead exits match
        with Conn("127.0.0.1", gw_port, timeout=10) as c:
            r = c.request("GET", url, {"Connection": "close", **auth("u-country-zz")})
        assert r.status in (502, 503), r.status
        return f"http-dead {r.status}"
    if kind == 6:
        with Conn("127.0.0.1", gw_port, timeout=10) as c:
            c.send(build_request("CONNECT", origin.hostport, auth("u-country-zz")))
            r = c.read_response("CONNECT")
        assert r.status in (502, 503), r.status
        return f"connect-dead {r.status}"
    if kind == 7:  # a closed port at the target
        with Conn("127.0.0.1", gw_port, timeout=10) as c:
            r = c.request("GET", f"http://127.0.0.1:{dead_target}/", {"Connection": "close", **auth("u-country-cc")})
        assert r.status in (502, 503, 504), r.status
        return f"http-closed-port {r.status}"
    if kind == 8:
        c, rep = socks5_connect(gw_port, "127.0.0.1", dead_target, user="u-country-cc", timeout=10)
        c.close()
        assert rep != 0
        return f"socks-closed-port {rep}"
    if kind == 9:  # malformed request
        with Conn("127.0.0.1", gw_port, timeout=10) as c:
            c.send(b"GET\x00 / HTTP/1.1\r\n\r\n")
            data = c.read_to_eof()
        assert data == b"" or data.startswith(b"HTTP/1.1 4"), data[:60]
        return "malformed"
    if kind == 10:  # SOCKS5 greeting with no methods, then garbage
        with Conn("127.0.0.1", gw_port, timeout=10) as c:
            c.send(b"\x05\x00\xff\xff\xff")
            c.read_to_eof()
        return "socks-garbage"
    if kind == 11:  # the client goes away half-way through its head
        with Conn("127.0.0.1", gw_port, timeout=10) as c:
            c.send(b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: x")
        return "abort-head"
    if kind == 12:  # the client goes away in the middle of a response
        with open_connect(gw_port, origin.hostport, "u-country-cc", timeout=10) as c:
            c.send(build_request("GET", "/big", {}, host=origin.hostport))
            c.read_exact(100000)
        return "abort-body"
    if kind == 13:  # keep-alive: several requests on one connection
        with Conn("127.0.0.1", gw_port, timeout=10) as c:
            for _ in range(3):
                r = c.request("GET", url, auth("u-country-cc"))
                assert r.status == 200, r.status
        return "keepalive 200"
    if kind == 14:  # sticky session through squid via CONNECT
        with open_connect(gw_port, origin.hostport, f"u-country-sq-session-s{i % 5}", timeout=10) as c:
            r = c.request("GET", "/", {"Connection": "close"}, host=origin.hostport)
        assert r.text == "127.0.0.11\n", r.text
        return "connect-squid-sticky 200"
    with Conn("127.0.0.1", gw_port, timeout=10) as c:  # 15: POST with a body, plain HTTP
        r = c.request("POST", origin.url("/echo"), {"Connection": "close", **auth("u-country-cc")}, b"b" * 20000)
    assert r.status == 200 and r.body == b"b" * 20000, r.status
    return "http-post 200"


def _mixed_round(gw_port, origin, n: int, dead_target: int, workers: int = 6) -> dict:
    outcomes: dict = {}
    lock = threading.Lock()
    order = list(range(n))
    random.Random(n).shuffle(order)

    def worker(k):
        for j in order[k::workers]:
            out = _mixed_op(j, gw_port, origin, dead_target)
            with lock:
                outcomes[out] = outcomes.get(out, 0) + 1

    run_threads([lambda k=k: worker(k) for k in range(workers)], timeout=60)
    return outcomes


def test_no_fd_or_memory_leak(start_gateway, origin, squid, microsocks):
    dead = closed_port()
    gw = start_gateway([
        f"http://127.0.0.1:{squid.port} id=squid country=sq",
        f"socks5://127.0.0.1:{microsocks.port} id=ms country=ms",
        f"http://127.0.0.1:{closed_port()} id=dead-http country=zz",
        f"socks5://127.0.0.1:{closed_port()} id=dead-socks country=zz",
        D21, direct(22, "d22", country="cc"),
    ], *quiet_flags())
    pid = gw.proc.pid
    upstream_ports = {origin.port, squid.port}

    def census() -> tuple[int, int, list]:
        """(open fds not counting idle kept-alive upstream connections, those idle connections, sockets
        in CLOSE_WAIT: the peer closed and the gateway never did)."""
        socks = proc_sockets(pid)
        pooled = sum(1 for st, _l, r in socks if st == "ESTABLISHED" and r[1] in upstream_ports)
        return proc_fds(pid) - pooled, pooled, [s for s in socks if s[0] == "CLOSE_WAIT"]

    fds_start = census()
    _mixed_round(gw.port, origin, 160, dead)  # warm-up: buffers, upstream pool, allocator arenas
    time.sleep(1)
    (fds0, pooled0, _), rss0 = census(), proc_rss(pid)
    outcomes = _mixed_round(gw.port, origin, 300, dead)
    time.sleep(1)
    (fds1, pooled1, close_wait), rss1 = census(), proc_rss(pid)
    print(f"fds (not counting idle upstream connections): start {fds_start[0]}, after warm-up {fds0},"
          f" after 300 {fds1}; idle upstream connections {pooled0} -> {pooled1};"
          f" VmRSS {rss0 >> 10} -> {rss1 >> 10} KiB; {outcomes}")
    assert sum(outcomes.values()) == 300, outcomes
    assert not close_wait, f"sockets the gateway never closed: {close_wait}"
    assert fds1 <= fds0 + 4, f"open fds {fds0} after warm-up, {fds1} after 300 more requests: {outcomes}"
    # The kept-alive upstream connections are bounded by the clients' concurrency (6) per upstream key.
    assert pooled1 <= 24, pooled1
    if rss_is_meaningful():
        assert rss1 - rss0 < 8 << 20, f"VmRSS {rss0 >> 10} KiB -> {rss1 >> 10} KiB after 300 requests"


def test_idle_tunnels_are_cheap(start_gateway, origin):
    # An idle tunnel holds its two sockets and a small relay state: no pipes, no coroutine
    # frames, no handshake buffers. 400 idle CONNECT tunnels, each after one request.
    gw = start_gateway([D21], *quiet_flags())
    pid = gw.proc.pid

    def open_tunnel() -> socket.socket:
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
        s.sendall(f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\nHost: 127.0.0.1:{origin.port}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(1)
            assert chunk, "closed during CONNECT"
            head += chunk
        assert head.startswith(b"HTTP/1.1 200"), head
        return s

    open_tunnel().close()
    time.sleep(0.3)
    fds0, rss0 = proc_fds(pid), proc_rss(pid)
    n = 400
    tunnels = []
    try:
        for _ in range(n):
            s = open_tunnel()
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(65536)
                assert chunk, "tunnel closed before the response"
                head += chunk
            tunnels.append(s)
        time.sleep(0.5)
        fds1, rss1 = proc_fds(pid), proc_rss(pid)
    finally:
        for s in tunnels:
            s.close()
    per_tunnel_fds = (fds1 - fds0) / n
    per_tunnel_kib = (rss1 - rss0) / n / 1024
    print(f"{n} idle tunnels: {per_tunnel_fds:.2f} fds and {per_tunnel_kib:.2f} KiB of VmRSS each")
    assert per_tunnel_fds <= 2.05, per_tunnel_fds
    # Measured about 3 KiB; a handshake buffer or coroutine stack kept per tunnel costs 8 KiB or more.
    if rss_is_meaningful():
        assert per_tunnel_kib < 6, per_tunnel_kib


# --------------------------------------------------------------------------------------- fd exhaustion

def test_fd_exhaustion_pauses_accept_and_recovers(start_gateway, origin, gateway_dir, monkeypatch):
    wrapper = gateway_dir / "exitpool-nofile64"
    wrapper.write_text(f'#!/bin/sh\nexec prlimit --nofile=64:64 -- "{exitpool_bin()}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("EXITPOOL_BIN", str(wrapper))
    gw = start_gateway([D21], *quiet_flags())
    pid = gw.proc.pid
    wait_until(lambda: os.readlink(f"/proc/{pid}/exe").endswith("exitpool"), 5, what="exec of exitpool")
    served_by_d21(gw.port, origin.url(), user=None)

    idle = []
    try:
        for _ in range(100):
            idle.append(socket.create_connection(("127.0.0.1", gw.port), timeout=2))
        wait_until(lambda: proc_fds(pid) >= 60, 3, what="the gateway to run out of fds")
        time.sleep(0.3)
        cpu0 = proc_cpu(pid)
        time.sleep(2)
        cpu1 = proc_cpu(pid)
        print(f"exhausted: {proc_fds(pid)} fds open, {cpu1 - cpu0:.2f} s CPU in 2 s")
        assert gw.alive()
        assert cpu1 - cpu0 < 0.5, f"the gateway spun while out of fds: {cpu1 - cpu0:.2f} s of CPU in 2 s"
    finally:
        for s in idle:
            s.close()

    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < 2.0:
        try:
            served_by_d21(gw.port, origin.url(), user=None)
            break
        except (AssertionError, OSError, EOFError) as e:
            last = e
            time.sleep(0.1)
    else:
        raise AssertionError(f"no request served within 2 s of the fds coming back: {last!r}\n{gw.log()[-3000:]}")
    for _ in range(5):
        served_by_d21(gw.port, origin.url(), user=None)
    assert proc_fds(pid) < 40, proc_fds(pid)
