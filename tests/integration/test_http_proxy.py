"""The HTTP side of the listening port: absolute-form requests, CONNECT, bodies, keep-alive, errors."""
import os
import re

import pytest
import requests

from helpers import (EXIT_IPS, Conn, build_request, chunked, curl, sha256, via_connect, via_http)

ALL_EXITS = sorted(EXIT_IPS)


def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # no *_proxy from the environment
    return s


@pytest.mark.parametrize("exit_id", ALL_EXITS)
def test_every_exit_kind_absolute_form(start_gateway, lab, exit_id):
    """http, https (TLS to the proxy), socks5, socks5h, direct, with and without upstream credentials."""
    gw = start_gateway([lab.line(exit_id)])
    res = curl("-x", gw.proxy(), "-D", "-", lab.origin.url())
    assert res.status == 200, res.stderr + gw.log()
    head, _, body = res.text.partition("\r\n\r\n")
    assert body == EXIT_IPS[exit_id] + "\n"
    assert re.search(rf"(?im)^x-exitpool-exit: {re.escape(exit_id)}\r?$", head), head


@pytest.mark.parametrize("exit_id", ALL_EXITS)
def test_every_exit_kind_connect(start_gateway, lab, exit_id):
    gw = start_gateway([lab.line(exit_id)])
    res = curl("-p", "-x", gw.proxy(), lab.origin.url())
    assert res.status == 200, res.stderr + gw.log()
    assert res.text == EXIT_IPS[exit_id] + "\n"
    hop = via_connect(gw.port, lab.origin.hostport)
    assert (hop.status, hop.exit_id, hop.origin_saw) == (200, exit_id, EXIT_IPS[exit_id])


def test_connect_200_carries_exit_header_curl_verbose(gw_all, lab):
    res = curl("-v", "-p", "-x", gw_all.proxy(), lab.origin.url())
    assert res.status == 200
    m = re.search(r"(?im)^< x-exitpool-exit: (\S+)", res.stderr)
    assert m, res.stderr
    assert EXIT_IPS[m.group(1)] == res.text.strip()


def test_python_requests_http_proxy(gw_all, lab):
    with session() as s:
        r = s.get(lab.origin.url(), proxies={"http": gw_all.proxy()}, timeout=10)
    assert r.status_code == 200
    assert EXIT_IPS[r.headers["X-Exitpool-Exit"]] == r.text.strip()


def test_python_requests_with_credentials_in_proxy_url(gw_all, lab):
    with session() as s:
        r = s.get(lab.origin.url(), proxies={"http": gw_all.proxy(user="alice-country-de")}, timeout=10)
    assert r.status_code == 200
    assert r.headers["X-Exitpool-Exit"] in ("dante", "microsocks")


@pytest.mark.parametrize("exit_id", ["squid", "tinyproxy", "dante", "d1", "squid-tls"])
def test_post_content_length_body(start_gateway, lab, exit_id):
    gw = start_gateway([lab.line(exit_id)])
    body = os.urandom(300_000)
    with Conn("127.0.0.1", gw.port) as c:
        r = c.request("POST", lab.origin.url("/echo"), {"X-Test-Header": "cl"}, body)
    assert r.status == 200, r.text[:300]
    assert r.header("X-Echo-Method") == "POST"
    assert r.header("X-Echo-Test-Header") == "cl"
    assert len(r.body) == len(body) and sha256(r.body) == sha256(body)
    assert r.header("X-Exitpool-Exit") == exit_id


@pytest.mark.parametrize("exit_id", ["squid", "tinyproxy", "dante", "d1", "squid-tls"])
def test_post_chunked_body(start_gateway, lab, exit_id):
    gw = start_gateway([lab.line(exit_id)])
    body = os.urandom(200_003)
    with Conn("127.0.0.1", gw.port) as c:
        r = c.request("POST", lab.origin.url("/echo"), {"Transfer-Encoding": "chunked"}, chunked(body, 4099))
        assert r.status == 200, r.text[:300]
        assert sha256(r.body) == sha256(body)
        # The connection is still usable: the chunked body was framed exactly.
        r2 = c.request("GET", lab.origin.url())
        assert r2.status == 200 and r2.text == EXIT_IPS[exit_id] + "\n"


def test_post_via_requests_and_curl(gw_all, lab):
    body = os.urandom(100_000)
    with session() as s:
        r = s.post(lab.origin.url("/echo"), data=body, proxies={"http": gw_all.proxy()}, timeout=20)
        assert r.status_code == 200 and r.content == body
        # a generator body makes requests send Transfer-Encoding: chunked
        r = s.post(lab.origin.url("/echo"), data=(body[i:i + 10_000] for i in range(0, len(body), 10_000)),
                   proxies={"http": gw_all.proxy()}, timeout=20)
        assert r.status_code == 200 and r.content == body
    res = curl("-x", gw_all.proxy(), "--data-binary", "hello curl", lab.origin.url("/echo"))
    assert res.status == 200 and res.text == "hello curl"


def test_chunked_response_is_relayed(gw_all, lab):
    with Conn("127.0.0.1", gw_all.port) as c:
        for _ in range(3):
            r = c.request("GET", lab.origin.url("/chunked"))
            assert r.status == 200
            lines = r.text.split("\n")
            assert lines[:2] == ["chunk-one", "chunk-two"]
            assert EXIT_IPS[r.header("X-Exitpool-Exit")] == lines[2]


def test_big_response_absolute_form(gw_all, lab):
    res = curl("-x", gw_all.proxy(), lab.origin.url("/big"), max_time=30)
    assert res.status == 200
    assert len(res.body) == lab.origin.big_size and sha256(res.body) == lab.origin.big_sha256


@pytest.mark.parametrize("exit_id", ["squid", "dante", "microsocks", "d1", "squid-tls"])
def test_big_response_through_connect(start_gateway, lab, exit_id):
    gw = start_gateway([lab.line(exit_id)])
    res = curl("-p", "-x", gw.proxy(), lab.origin.url("/big"), max_time=30)
    assert res.status == 200
    assert len(res.body) == lab.origin.big_size and sha256(res.body) == lab.origin.big_sha256


def test_big_upload_through_connect(gw_all, lab):
    body = os.urandom(3 * 1024 * 1024 + 17)
    with Conn("127.0.0.1", gw_all.port, timeout=30) as c:
        c.send(build_request("CONNECT", lab.origin.hostport))
        assert c.read_response("CONNECT").status == 200
        r = c.request("POST", "/echo", {"Connection": "close"}, body, host=lab.origin.hostport)
    assert r.status == 200 and sha256(r.body) == sha256(body)


def test_keep_alive_rotates_per_request(gw_all, lab):
    """Several requests on one client connection; each may leave through a different exit."""
    seen = set()
    with Conn("127.0.0.1", gw_all.port) as c:
        for i in range(12):
            r = c.request("GET", lab.origin.url(f"/ka/{i}"))
            assert r.status == 200
            exit_id = r.header("X-Exitpool-Exit")
            assert EXIT_IPS[exit_id] == r.text.strip(), (exit_id, r.text)
            seen.add(exit_id)
    assert len(seen) > 1, seen


def test_keep_alive_with_requests_session(gw_all, lab):
    seen = set()
    with session() as s:
        for _ in range(12):
            r = s.get(lab.origin.url(), proxies={"http": gw_all.proxy()}, timeout=10)
            assert r.status_code == 200
            assert EXIT_IPS[r.headers["X-Exitpool-Exit"]] == r.text.strip()
            seen.add(r.headers["X-Exitpool-Exit"])
    assert len(seen) > 1


def test_keep_alive_sticky_session_on_one_connection(gw_all, lab):
    from helpers import basic
    seen = set()
    with Conn("127.0.0.1", gw_all.port) as c:
        for _ in range(10):
            r = c.request("GET", lab.origin.url(), {"Proxy-Authorization": basic("alice-session-ka1", "x")})
            assert r.status == 200
            seen.add(r.text.strip())
    assert len(seen) == 1


def test_pipelined_requests(gw_all, lab):
    with Conn("127.0.0.1", gw_all.port) as c:
        c.send(b"".join(build_request("GET", lab.origin.url(f"/p{i}")) for i in range(3)))
        for _ in range(3):
            r = c.read_response()
            assert r.status == 200 and EXIT_IPS[r.header("X-Exitpool-Exit")] == r.text.strip()


def test_head_request(gw_all, lab):
    with Conn("127.0.0.1", gw_all.port) as c:
        r = c.request("HEAD", lab.origin.url())
        assert r.status == 200 and r.body == b""
        r = c.request("GET", lab.origin.url())  # framing survived the bodiless HEAD response
        assert r.status == 200 and EXIT_IPS[r.header("X-Exitpool-Exit")] == r.text.strip()


@pytest.mark.parametrize("garbage", [
    b"GARBAGE\r\n\r\n",
    b"GET http://127.0.0.1:1/ HTTP/1.1\r\nThis is not a header\r\n\r\n",
    b"GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: a\r\nContent-Length: nope\r\n\r\n",
    b"GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"GET http://127.0.0.1:1/ HTTP/9.9\r\nHost: a\r\n\r\n",
])
def test_malformed_request_gets_400_and_gateway_keeps_serving(gw_all, lab, garbage):
    with Conn("127.0.0.1", gw_all.port) as c:
        c.send(garbage)
        r = c.read_response()
        allowed = (400, 505) if b"HTTP/9.9" in garbage else (400,)
        assert r.status in allowed, r
        assert r.header("X-Exitpool-Error"), r.headers
    hop = via_http(gw_all.port, lab.origin.url())
    assert hop.status == 200 and hop.consistent()


def test_origin_form_request_is_rejected(gw_all, lab):
    """A proxy request must be absolute-form (or CONNECT); origin-form is a client error, not a crash."""
    with Conn("127.0.0.1", gw_all.port) as c:
        r = c.request("GET", "/", host=lab.origin.hostport)
        assert 400 <= r.status < 500
    assert via_http(gw_all.port, lab.origin.url()).status == 200


@pytest.mark.parametrize("target", ["127.0.0.1", "127.0.0.1:notaport", ":80", "[::1"])
def test_bad_connect_target_is_400(gw_all, lab, target):
    with Conn("127.0.0.1", gw_all.port) as c:
        c.send(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        r = c.read_response("CONNECT")
        assert r.status == 400, r
    assert via_http(gw_all.port, lab.origin.url()).status == 200


def test_many_clients_after_bad_ones(gw_all, lab):
    for _ in range(3):
        with Conn("127.0.0.1", gw_all.port) as c:
            c.send(b"\x16\x03\x01\x00\x05hello")  # a TLS record: neither HTTP nor SOCKS5
            assert c.closed_by_peer(timeout=4), "an unknown first byte should be refused at once"
    for _ in range(5):
        hop = via_http(gw_all.port, lab.origin.url())
        assert hop.status == 200 and hop.consistent()


class _FixedOrigin:
    """A loopback origin answering each request with fixed bytes chosen by its path: large chunks, a
    body that ends at close. Paths under /close close the connection after the answer."""

    def __init__(self, answers: dict[str, bytes]):
        import socket
        import threading
        self.answers = answers
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.threading = threading
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn) -> None:
        conn.settimeout(10)
        buf = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                path = head.split(b" ")[1].decode()
                path = "/" + path.split("/", 3)[3] if "://" in path else path
                try:
                    conn.sendall(self.answers[path])
                except OSError:
                    return  # the gateway closed its side (a client that left mid-body)
                if path.startswith("/close"):
                    return

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("exit_id", ["d1", "dante", "squid-tls"])
def test_large_chunks_and_close_delimited_bodies_arrive_exactly(start_gateway, lab, exit_id):
    """Between plain sockets the gateway splices chunk data of 32 KiB or more and bodies that end at
    close (net/splice.hpp); through a TLS exit it copies. Either way: the same bytes, chunk framing kept
    exact (the keep-alive connection goes on), trailers filtered."""
    sizes = [100_000, 1, 300_000, 40_000, 5]
    parts = [os.urandom(n) for n in sizes]
    chunked_answer = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      + b"".join(b"%x%s\r\n%s\r\n" % (len(p), b";ext=1" if i == 1 else b"", p)
                                 for i, p in enumerate(parts))
                      + b"0\r\nX-Checksum: abc\r\nContent-Length: 5\r\n\r\n")
    until_close = os.urandom(1024 * 1024 + 7)
    origin = _FixedOrigin({
        "/chunks": chunked_answer,
        "/small": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "/close-big": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + until_close,
    })
    try:
        gw = start_gateway([lab.line(exit_id)])
        with Conn("127.0.0.1", gw.port, timeout=30) as c:
            for _ in range(2):
                c.send(build_request("GET", origin.url("/chunks")))
                r = c.read_head()
                assert r.status == 200, gw.log()
                body = b""
                while True:
                    size = int(c.read_until(b"\r\n").split(b";")[0].strip(), 16)
                    if size == 0:
                        break
                    body += c.read_exact(size)
                    assert c.read_exact(2) == b"\r\n"
                trailers = b""
                while (line := c.read_until(b"\r\n")) != b"\r\n":
                    trailers += line
                assert sha256(body) == sha256(b"".join(parts))
                assert b"Content-Length" not in trailers, trailers
                if exit_id != "squid-tls":  # squid itself drops trailer fields
                    assert b"X-Checksum: abc" in trailers, trailers
                r = c.request("GET", origin.url("/small"))
                assert (r.status, r.body) == (200, b"ok")
            r = c.request("GET", origin.url("/close-big"))
            assert r.status == 200
            assert len(r.body) == len(until_close) and sha256(r.body) == sha256(until_close)
    finally:
        origin.close()


@pytest.mark.parametrize("exit_id", ["d1", "squid"])
def test_a_body_cut_short_leaves_nothing_for_the_next(start_gateway, lab, exit_id):
    """A shard keeps empty pipes for the next spliced body (net::pipe_pool). A client that leaves in the
    middle of an 8 MiB body cuts a splice short while the pipe may hold its bytes: that pipe must be
    closed, not lent to the next body. One shard, so every body borrows from the same pool: five
    clients leave early, then every following body arrives exactly (sha256), on new and kept-alive
    connections alike."""
    import socket
    big = {f"/big{i}": os.urandom(8 * 1024 * 1024 + i) for i in range(3)}
    origin = _FixedOrigin({p: b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b)
                           for p, b in big.items()})
    try:
        gw = start_gateway([lab.line(exit_id)], threads=1)
        for i in range(5):
            s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
            s.sendall(build_request("GET", origin.url(f"/big{i % 3}")))
            got = s.recv(256 * 1024)
            assert got.startswith(b"HTTP/1.1 200"), got[:200]
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()  # RST with most of the body still to come
        with Conn("127.0.0.1", gw.port, timeout=30) as c:
            for i in range(6):
                r = c.request("GET", origin.url(f"/big{i % 3}"))
                assert r.status == 200, gw.log()
                assert len(r.body) == len(big[f"/big{i % 3}"]) and sha256(r.body) == sha256(big[f"/big{i % 3}"])
        for i in range(3):
            with Conn("127.0.0.1", gw.port, timeout=30) as c:
                r = c.request("GET", origin.url(f"/big{i}"), {"Connection": "close"})
            assert r.status == 200 and sha256(r.body) == sha256(big[f"/big{i}"])
        assert gw.alive()
    finally:
        origin.close()
