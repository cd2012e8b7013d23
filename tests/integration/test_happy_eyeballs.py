"""Happy eyeballs (issue 15 part 2, RFC 8305) for targets the gateway resolves itself through direct exits:
IPv6 first with a head start (--happy-eyeballs-delay, 250 ms by default), IPv4 beside it after that, at once
when IPv6 is refused; an exit bound to a source address only reaches targets of its family and says so.

dual.test (dns_server.py) has A 127.0.0.1 and AAAA ::1. The tests' own origin answers on 127.0.0.1 with the
peer address; on [::1] at the same port there is either nothing (refused), a listener whose accept queue is
full (SYNs dropped: an IPv6 path that does not answer), or a second origin.
"""
from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import via_http, via_socks


class PeerEcho(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = self.client_address[0].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()


@pytest.fixture
def v4_origin():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), PeerEcho)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def hanging_v6(v4_origin):
    """[::1] at the origin's port: a listener with a full accept queue, so that new SYNs are dropped."""
    lst = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    lst.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    lst.bind(("::1", v4_origin))
    lst.listen(0)
    fillers = []
    for _ in range(4):
        f = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        f.setblocking(False)
        f.connect_ex(("::1", v4_origin))
        fillers.append(f)
    time.sleep(0.1)
    # The queue is full: one more connection hangs.
    probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    probe.settimeout(0.3)
    with pytest.raises(socket.timeout):
        probe.connect(("::1", v4_origin))
    probe.close()
    yield
    for f in fillers:
        f.close()
    lst.close()


def gateway(start_gateway, dns_server, *args: str, pool: str = "direct:// id=direct"):
    return start_gateway([pool], "--dns-server", dns_server.address, *args)


def timed_get(gw, url: str):
    t0 = time.monotonic()
    hop = via_http(gw.port, url)
    return hop, time.monotonic() - t0


def test_unanswered_ipv6_falls_back_to_ipv4_within_the_delay(start_gateway, dns_server, v4_origin, hanging_v6):
    gw = gateway(start_gateway, dns_server)
    via_http(gw.port, f"http://dual.test:{v4_origin}/")  # the lookup, out of the timings below
    hop, took = timed_get(gw, f"http://dual.test:{v4_origin}/")
    assert hop.status == 200, gw.log()
    assert hop.origin_saw == "127.0.0.1"
    assert 0.2 <= took < 0.25 + 0.5, f"IPv4 reached after {took:.3f} s (IPv6's head start is 0.25 s)"
    # SOCKS5 too.
    t0 = time.monotonic()
    assert via_socks(gw.port, "dual.test", v4_origin).origin_saw == "127.0.0.1"
    assert time.monotonic() - t0 < 0.25 + 0.5


def test_the_head_start_is_configurable(start_gateway, dns_server, v4_origin, hanging_v6):
    gw = gateway(start_gateway, dns_server, "--happy-eyeballs-delay", "1")
    via_http(gw.port, f"http://dual.test:{v4_origin}/")
    hop, took = timed_get(gw, f"http://dual.test:{v4_origin}/")
    assert hop.status == 200 and hop.origin_saw == "127.0.0.1", gw.log()
    assert 0.95 <= took < 1.0 + 0.6, f"IPv4 reached after {took:.3f} s with a 1 s head start"


def test_refused_ipv6_falls_back_at_once(start_gateway, dns_server, v4_origin):
    gw = gateway(start_gateway, dns_server, "--happy-eyeballs-delay", "2")
    via_http(gw.port, f"http://dual.test:{v4_origin}/")
    hop, took = timed_get(gw, f"http://dual.test:{v4_origin}/")
    assert hop.status == 200 and hop.origin_saw == "127.0.0.1", gw.log()
    assert took < 0.5, f"a refused IPv6 attempt held IPv4 back for {took:.3f} s"


def test_ipv6_is_tried_first(start_gateway, dns_server, v4_origin):
    v6 = V6Server(("::1", v4_origin), PeerEcho)
    threading.Thread(target=v6.serve_forever, daemon=True).start()
    try:
        gw = gateway(start_gateway, dns_server)
        for _ in range(3):
            hop = via_http(gw.port, f"http://dual.test:{v4_origin}/")
            assert hop.status == 200 and hop.origin_saw == "::1", gw.log()
    finally:
        v6.shutdown()
        v6.server_close()


def test_a_source_address_reaches_only_its_family_and_says_so(start_gateway, dns_server, v4_origin, hanging_v6):
    v4 = gateway(start_gateway, dns_server, pool="direct://127.0.0.1 id=v4")
    # No IPv6 head start for an IPv4 exit: straight to the A record.
    hop, took = timed_get(v4, f"http://dual.test:{v4_origin}/")
    assert hop.status == 200 and hop.origin_saw == "127.0.0.1", v4.log()
    assert took < 0.2 + 0.3
    hop = via_http(v4.port, f"http://v6only.test:{v4_origin}/")
    assert hop.status == 502, v4.log()
    err = hop.resp.header("X-Exitpool-Error")
    assert "v6only.test has no IPv4 address" in err and "127.0.0.1" in err, err
    assert via_socks(v4.port, "v6only.test", v4_origin).status == 1000 + 3  # network unreachable

    v6 = gateway(start_gateway, dns_server, pool="direct://[::1] id=v6")
    hop = via_http(v6.port, f"http://fast.test:{v4_origin}/")
    assert hop.status == 502, v6.log()
    err = hop.resp.header("X-Exitpool-Error")
    assert "fast.test has no IPv6 address" in err and "::1" in err, err
