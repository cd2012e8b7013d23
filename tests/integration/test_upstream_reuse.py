"""Upstream keep-alive for plain-HTTP forwarding: reused, but never across exits."""
import http.server
import threading
import time

import pytest

from faults import RawServer
from helpers import Conn, build_request, free_port, via_http


class _PeerHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as most origins

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = f"{self.client_address[0]}:{self.client_address[1]}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def peer_origin():
    """An HTTP/1.1 keep-alive origin whose body is the caller's address:port."""
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _PeerHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port
    server.shutdown()
    server.server_close()


def _peer(hop):
    addr, port = hop.resp.text.strip().rsplit(":", 1)
    return addr, int(port)


def test_sequential_requests_reuse_the_upstream_connection(start_gateway, lab, peer_origin):
    gw = start_gateway(lab.pool("d1"), threads=1)
    peers = [_peer(via_http(gw.port, f"http://127.0.0.1:{peer_origin}/r{i}")) for i in range(6)]
    assert {a for a, _ in peers} == {lab.ip("d1")}
    # One upstream connection carried (nearly) all of them: without reuse every request has its own port.
    assert len({p for _, p in peers}) <= 2, peers


def test_reuse_never_crosses_exits(start_gateway, lab, peer_origin):
    gw = start_gateway(lab.pool("d1", "d2"), threads=1)
    seen = set()
    for i in range(12):
        hop = via_http(gw.port, f"http://127.0.0.1:{peer_origin}/x{i}")
        addr, port = _peer(hop)
        # The origin saw the address of the exit the gateway says it used.
        assert addr == lab.ip(hop.exit_id), (hop.exit_id, addr)
        seen.add((hop.exit_id, port))
    assert {e for e, _ in seen} == {"d1", "d2"}
    # Rotation still alternates exits, and each exit keeps reusing its own connection.
    assert len(seen) <= 4, seen


def test_sticky_sessions_get_their_own_connections(start_gateway, lab, peer_origin):
    gw = start_gateway(lab.pool("d1"), threads=1)
    a = _peer(via_http(gw.port, f"http://127.0.0.1:{peer_origin}/a", user="u-session-one"))
    b = _peer(via_http(gw.port, f"http://127.0.0.1:{peer_origin}/b", user="u-session-two"))
    a2 = _peer(via_http(gw.port, f"http://127.0.0.1:{peer_origin}/a2", user="u-session-one"))
    assert a[1] != b[1]  # keyed by session: session two did not ride session one's connection
    assert a2[1] == a[1]


def test_requests_with_a_body_use_a_fresh_connection(start_gateway, lab, peer_origin):
    gw = start_gateway(lab.pool("d1"), threads=1)
    ports = set()
    for i in range(4):
        with Conn("127.0.0.1", gw.port) as c:
            c.send(build_request("POST", f"http://127.0.0.1:{peer_origin}/p{i}", {"Content-Length": "3"}, b"abc"))
            resp = c.read_response()
            assert resp.status == 200
            ports.add(resp.text.strip())
    assert len(ports) == 4  # never replayed on a kept-alive connection that might be stale


def _read_head(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        data += chunk
    return data


def test_kept_alive_connection_closed_by_the_origin_is_replayed_on_a_fresh_one(start_gateway, lab):
    # The origin answers keep-alive, then closes right away: the next request finds the idle
    # connection dead (within the second in which it is not checked first) and must be
    # replayed on a fresh connection, never answered with an error.
    def one_then_close(conn, server):
        if _read_head(conn) is not None:
            server.note("request")
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        conn.close()

    with RawServer(one_then_close) as origin:
        gw = start_gateway(lab.pool("d1"), threads=1)
        for i in range(4):
            hop = via_http(gw.port, origin.url(f"/r{i}"))
            assert hop.status == 200 and hop.resp.text.strip() == "ok", (i, hop.resp.status, hop.resp.text)
        assert len(origin.noted("request")) == 4
        assert origin.count() >= 4


def test_bytes_sent_on_an_idle_connection_never_become_the_next_answer(start_gateway, lab):
    # Some servers write "408 Request Timeout" on an idle keep-alive connection before closing it.
    # A connection idle for over a second is checked before reuse: the next request gets the
    # origin's real answer on a fresh connection, not the stale 408.
    def answer_then_408(conn, server):
        if _read_head(conn) is not None:
            server.note("request")
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
            time.sleep(0.3)
            conn.sendall(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            time.sleep(3)
        conn.close()

    with RawServer(answer_then_408) as origin:
        gw = start_gateway(lab.pool("d1"), threads=1)
        first = via_http(gw.port, origin.url("/first"))
        assert first.status == 200
        time.sleep(1.3)
        second = via_http(gw.port, origin.url("/second"))
        assert second.status == 200 and second.resp.text.strip() == "ok", (second.resp.status, second.resp.text)
        assert origin.count() == 2
