"""Tunnels through a TLS exit (https://: stunnel4 in front of squid) after issue 16's own TLS stream:
idle tunnels that wake up, bulk bytes both ways, and what an idle tunnel costs the gateway."""
import os
import time
from pathlib import Path

from helpers import Conn, build_request, curl, sha256


def _open_tunnel(gw_port: int, lab) -> Conn:
    c = Conn("127.0.0.1", gw_port, timeout=20)
    c.send(build_request("CONNECT", lab.origin.hostport))
    head = c.read_response("CONNECT")
    assert head.status == 200 and head.header("X-Exitpool-Exit") == "squid-tls", head.status
    return c


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_idle_tls_tunnel_then_used(start_gateway, lab):
    """A tunnel that carried nothing for a while (the relay waits with no buffers) still works, twice."""
    gw = start_gateway([lab.line("squid-tls")])
    with _open_tunnel(gw.port, lab) as c:
        for _ in range(2):
            time.sleep(1.5)
            r = c.request("GET", "/", host=lab.origin.hostport)  # keep-alive inside the tunnel
            assert r.status == 200 and r.text == "127.0.0.11\n", gw.log()


def test_tls_tunnel_bulk_download_and_upload_keep_every_byte(start_gateway, lab):
    """The origin's 4 MiB file down, then 5 MiB up and echoed back, through one TLS-exit tunnel."""
    gw = start_gateway([lab.line("squid-tls")])
    res = curl("-p", "-x", gw.proxy(), lab.origin.url("/big"), max_time=30)
    assert res.status == 200, res.stderr + gw.log()
    assert len(res.body) == lab.origin.big_size and sha256(res.body) == lab.origin.big_sha256
    body = os.urandom(5 * 1024 * 1024 + 33)
    with _open_tunnel(gw.port, lab) as c:
        r = c.request("POST", "/echo", {"Connection": "close"}, body, host=lab.origin.hostport)
    assert r.status == 200 and sha256(r.body) == sha256(body), gw.log()


def test_idle_tls_tunnels_cost_little_memory(start_gateway, lab):
    """100 idle tunnels through the TLS exit grow the gateway by far less than Asio's ssl::stream did
    (~87 KiB each: its engine's record buffers and BIO pair); then every one of them still works."""
    gw = start_gateway([lab.line("squid-tls")], threads=1)
    with _open_tunnel(gw.port, lab) as warm:  # OpenSSL's one-time setup, the allocator's first arenas
        assert warm.request("GET", "/", host=lab.origin.hostport).status == 200
    time.sleep(0.3)
    before = _rss_kib(gw.proc.pid)
    n = 100
    tunnels = []
    try:
        for _ in range(n):
            tunnels.append(_open_tunnel(gw.port, lab))
        time.sleep(0.5)
        per_tunnel = (_rss_kib(gw.proc.pid) - before) / n
        assert per_tunnel < 30, f"{per_tunnel:.1f} KiB per idle TLS tunnel"
        for c in tunnels[:: n // 10]:
            r = c.request("GET", "/", host=lab.origin.hostport)
            assert r.status == 200 and r.text == "127.0.0.11\n"
    finally:
        for c in tunnels:
            c.close()


def test_heap_is_trimmed_after_a_burst_of_tls_handshakes(start_gateway, lab):
    """Once a burst of at least 100 TLS handshakes is over, the gateway gives the free heap pages back
    (malloc_trim) within a few seconds rather than at the minute sweep; the idle tunnels still work."""
    gw = start_gateway([lab.line("squid-tls")], "--log-level", "debug", threads=1)
    trimmed = "after a burst of TLS handshakes: malloc_trim"
    tunnels = []
    try:
        for _ in range(60):
            tunnels.append(_open_tunnel(gw.port, lab))
        time.sleep(3)
        assert trimmed not in gw.log(), "60 handshakes are no burst"
        for _ in range(60):
            tunnels.append(_open_tunnel(gw.port, lab))
        deadline = time.monotonic() + 8
        while trimmed not in gw.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert trimmed in gw.log(), gw.log()
        for c in tunnels[::12]:
            r = c.request("GET", "/", host=lab.origin.hostport)
            assert r.status == 200 and r.text == "127.0.0.11\n"
    finally:
        for c in tunnels:
            c.close()
