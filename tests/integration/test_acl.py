"""Access control and resource bounds: allowed ports, denied networks, loops, connection limits."""
import socket
import time

import pytest

from helpers import Conn, basic, build_request, free_port, socks5_connect, via_connect, via_http


def test_port_outside_allow_ports_is_403(start_gateway, lab):
    gw = start_gateway(lab.pool("d1"))
    hop = via_connect(gw.port, "127.0.0.1:22")
    assert hop.status == 403
    assert "port 22 is not allowed" in hop.resp.header("X-Exitpool-Error")
    assert "destination_ip_prohibited" in hop.resp.header("Proxy-Status")
    # The origin's own (high) port stays reachable.
    assert via_connect(gw.port, lab.origin.hostport).status == 200


def test_allow_ports_can_be_narrowed(start_gateway, lab):
    gw = start_gateway(lab.pool("d1"), "--allow-ports", "443")
    assert via_http(gw.port, lab.origin.url()).status == 403
    gw2 = start_gateway(lab.pool("d1"), "--allow-ports", f"443,{lab.origin.port}")
    assert via_http(gw2.port, lab.origin.url()).status == 200


def test_requests_to_the_gateway_itself_are_refused(start_gateway, lab):
    admin = free_port()
    gw = start_gateway(lab.pool("d1"), "--admin", f"127.0.0.1:{admin}")
    for target in (f"127.0.0.1:{gw.port}", f"localhost:{gw.port}", f"127.0.0.1:{admin}", f"0.0.0.0:{gw.port}"):
        hop = via_connect(gw.port, target)
        assert hop.status == 403, target
        assert "loop" in hop.resp.header("X-Exitpool-Error"), target
    hop = via_http(gw.port, f"http://127.0.0.1:{gw.port}/")
    assert hop.status == 403
    assert socks5_connect(gw.port, "127.0.0.1", gw.port)[1] == 0x02  # not allowed by ruleset


def test_denied_networks(start_gateway, lab):
    gw = start_gateway(lab.pool("d1"), "--deny", "127.0.0.0/8")
    hop = via_http(gw.port, lab.origin.url())
    assert hop.status == 403 and "denied network" in hop.resp.header("X-Exitpool-Error")
    assert socks5_connect(gw.port, "127.0.0.1", lab.origin.port)[1] == 0x02
    # A name the gateway resolves itself (direct exit) is checked after resolution.
    assert via_connect(gw.port, f"localhost:{lab.origin.port}").status == 403
    # Cloud metadata is denied by default.
    gw2 = start_gateway(lab.pool("d1"))
    assert via_connect(gw2.port, "169.254.169.254:80").status == 403
    assert via_connect(gw2.port, lab.origin.hostport).status == 200


def test_bad_acl_flags_are_startup_errors(start_gateway, lab, tmp_path):
    import subprocess
    from helpers import exitpool_bin
    pool = tmp_path / "pool.txt"
    pool.write_text("direct://\n")
    for flag, value in (("--deny", "10.0.0.0/33"), ("--deny", "nonsense"), ("--allow-ports", "90-80"),
                        ("--allow-ports", "0")):
        cp = subprocess.run([str(exitpool_bin()), "serve", "--pool", str(pool), "--listen", "127.0.0.1:1",
                             flag, value], capture_output=True, text=True, timeout=10)
        assert cp.returncode == 2, (flag, value, cp.stderr)
        assert flag in cp.stderr, cp.stderr


def _idle_connection(port):
    s = socket.create_connection(("127.0.0.1", port))
    return s


def test_max_connections(start_gateway, lab):
    gw = start_gateway(lab.pool("d1"), "--max-connections", "2")
    held = [_idle_connection(gw.port), _idle_connection(gw.port)]
    time.sleep(0.2)
    try:
        with Conn("127.0.0.1", gw.port) as c:
            c.send(build_request("GET", lab.origin.url()))
            resp = c.read_response()
            assert resp.status == 503
            assert "--max-connections 2" in resp.header("X-Exitpool-Error")
            assert resp.header("Retry-After")
        with Conn("127.0.0.1", gw.port) as c:
            c.send(b"\x05\x01\x00")
            assert c.read_exact(2) == b"\x05\xff"
    finally:
        for s in held:
            s.close()
    time.sleep(0.3)
    assert via_http(gw.port, lab.origin.url()).status == 200


def test_max_connections_per_user(start_gateway, lab):
    gw = start_gateway(lab.pool("d1"), "--max-connections-per-user", "1",
                       users={"alice": "a", "bob": "b"})
    first = Conn("127.0.0.1", gw.port)
    try:
        first.send(build_request("CONNECT", lab.origin.hostport, {"Proxy-Authorization": basic("alice", "a")}))
        assert first.read_response("CONNECT").status == 200
        hop = via_connect(gw.port, lab.origin.hostport, user="alice-country-us", password="a")
        assert hop.status == 429 and "alice" in hop.resp.header("X-Exitpool-Error")
        assert via_http(gw.port, lab.origin.url(), user="bob", password="b").status == 200
    finally:
        first.close()
    time.sleep(0.3)
    assert via_http(gw.port, lab.origin.url(), user="alice", password="a").status == 200
