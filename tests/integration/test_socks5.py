"""The SOCKS5 side of the listening port (RFC 1928/1929): clients, address types, errors."""
import os
import socket

import pytest
import requests

from helpers import (EXIT_IPS, Conn, curl, sha256, socks5_auth, socks5_greet, socks5_read_reply,
                     socks5_request, via_socks)


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("exit_id", sorted(EXIT_IPS))
def test_every_exit_kind_socks5h(start_gateway, lab, exit_id):
    gw = start_gateway([lab.line(exit_id)])
    res = curl("--socks5-hostname", gw.hostport, lab.origin.url())
    assert res.status == 200, res.stderr + gw.log()
    assert res.text == EXIT_IPS[exit_id] + "\n"


@pytest.mark.parametrize("flag", ["--socks5", "--socks5-hostname"])
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_curl_socks5(start_gateway, lab, flag, host):
    # Direct exits bound to IPv4 sources: for `localhost` the gateway must connect to its IPv4 address
    # (where /etc/hosts also lists ::1). -4: with local resolution curl itself might send ::1.
    gw = start_gateway(lab.pool("d1", "d2"))
    res = curl("-4", flag, gw.hostport, lab.origin.url(host=host))
    assert res.status == 200, res.stderr + gw.log()
    assert res.text.strip() in {"127.0.0.21", "127.0.0.22"}


def test_socks5_proxy_url_with_session_user(gw_all, lab):
    res = curl("-x", gw_all.proxy("socks5h", user="carol-session-sx"), lab.origin.url())
    assert res.status == 200


def test_python_requests_socks5h(gw_all, lab):
    proxies = {"http": gw_all.proxy("socks5h")}
    seen = set()
    for _ in range(6):
        # A new session each time: a kept-alive SOCKS tunnel is one connection, hence one exit.
        with requests.Session() as s:
            s.trust_env = False
            r = s.get(lab.origin.url(), proxies=proxies, timeout=10)
        assert r.status_code == 200
        seen.add(r.text.strip())
    assert seen <= set(EXIT_IPS.values()) and len(seen) > 1
    with requests.Session() as s:
        s.trust_env = False
        body = os.urandom(50_000)
        r = s.post(lab.origin.url("/echo"), data=body, proxies=proxies, timeout=10)
        assert r.status_code == 200 and r.content == body
        r = s.get(lab.origin.url(host="localhost"), proxies={"http": gw_all.proxy("socks5h", "dave-type-isp")},
                  timeout=10)
        assert r.status_code == 200 and r.text.strip() in {"127.0.0.21", "127.0.0.22"}


def test_python_requests_socks5_with_auth(gw_all, lab):
    with requests.Session() as s:
        s.trust_env = False
        r = s.get(lab.origin.url(), proxies={"http": gw_all.proxy("socks5", user="erin-country-de")}, timeout=10)
    assert r.status_code == 200 and r.text.strip() in {"127.0.0.13", "127.0.0.14"}


@pytest.mark.parametrize("exit_id", ["dante", "microsocks", "d1", "squid", "squid-tls"])
def test_big_response_through_socks5(start_gateway, lab, exit_id):
    gw = start_gateway([lab.line(exit_id)])
    res = curl("--socks5-hostname", gw.hostport, lab.origin.url("/big"), max_time=30)
    assert res.status == 200
    assert len(res.body) == lab.origin.big_size and sha256(res.body) == lab.origin.big_sha256


def test_big_upload_through_socks5(gw_all, lab):
    body = os.urandom(3 * 1024 * 1024 + 5)
    with Conn("127.0.0.1", gw_all.port, timeout=30) as c:
        assert socks5_greet(c) == 0
        rep, _, _ = socks5_request(c, "127.0.0.1", lab.origin.port)
        assert rep == 0
        r = c.request("POST", "/echo", {"Connection": "close"}, body, host=lab.origin.hostport)
    assert r.status == 200 and sha256(r.body) == sha256(body)


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no ::1 on this machine")
def test_ipv6_target(start_gateway, lab):
    gw = start_gateway(["direct:// id=default"])
    res = curl("--socks5", gw.hostport, lab.origin.url(host="::1"))  # curl sends ATYP 4 (IPv6)
    assert res.status == 200, res.stderr + gw.log()
    assert res.text == "::1\n"
    hop = via_socks(gw.port, "::1", lab.origin.port)
    assert hop.status == 200 and hop.origin_saw == "::1"
    # and through HTTP, with a bracketed literal
    res = curl("-x", gw.proxy(), lab.origin.url(host="::1"))
    assert res.status == 200 and res.text == "::1\n"


def test_domain_name_target_resolved_by_gateway(start_gateway, lab):
    gw = start_gateway(lab.pool("d1"))
    hop = via_socks(gw.port, "localhost", lab.origin.port)
    assert hop.status == 200 and hop.origin_saw == "127.0.0.21"


def test_bind_command_not_supported(gw_all, lab):
    with Conn("127.0.0.1", gw_all.port) as c:
        assert socks5_greet(c) == 0
        rep, _, _ = socks5_request(c, "127.0.0.1", lab.origin.port, cmd=2)
        assert rep == 7
    assert via_socks(gw_all.port, "127.0.0.1", lab.origin.port).status == 200


def test_udp_associate_not_supported(gw_all, lab):
    with Conn("127.0.0.1", gw_all.port) as c:
        assert socks5_greet(c) == 0
        rep, _, _ = socks5_request(c, "0.0.0.0", 0, cmd=3)
        assert rep == 7


def test_unknown_address_type(gw_all, lab):
    with Conn("127.0.0.1", gw_all.port) as c:
        assert socks5_greet(c) == 0
        c.send(b"\x05\x01\x00\x09" + b"\x7f\x00\x00\x01" + lab.origin.port.to_bytes(2, "big"))
        try:
            rep, _, _ = socks5_read_reply(c)
            assert rep == 8
        except EOFError:
            pytest.fail("the gateway closed without the 'address type not supported' reply")


@pytest.mark.parametrize("greeting", [
    b"\x04\x01\x00\x50\x7f\x00\x00\x01user\x00",  # a SOCKS4 request
    b"\x05\x00",                                   # SOCKS5 offering no methods at all
    b"\x05\x01\x00\x07\xde\xad\xbe\xef\x00\x00",   # good greeting, then garbage as the request
    b"\x05\x01\x00\x05\x01\x00\x03\x00\x00\x50",     # good greeting, then an empty domain name
])
def test_malformed_socks_gets_error_and_gateway_keeps_serving(gw_all, lab, greeting):
    with Conn("127.0.0.1", gw_all.port, timeout=5) as c:
        c.send(greeting)
        data = b""
        try:
            while len(data) < 64:
                chunk = c.sock.recv(64)
                if not chunk:
                    break
                data += chunk
        except (ConnectionError, socket.timeout):
            pass
        # Closed with nothing, or an error: a method refusal (05 FF), or a non-success reply.
        if greeting[0] == 4:
            assert data in (b"",) or data[:2] in (b"\x00\x5b", b"\x00\x5c"), data
        elif greeting == b"\x05\x00":
            assert data in (b"", b"\x05\xff"), data
        else:
            assert data[:2] == b"\x05\x00", data  # the greeting itself was fine
            reply = data[2:]
            assert reply == b"" or (len(reply) >= 2 and reply[1] != 0), data  # closed, or a failure reply
    for _ in range(3):
        hop = via_socks(gw_all.port, "127.0.0.1", lab.origin.port)
        assert hop.status == 200


def test_connection_refused_target(start_gateway, lab):
    from helpers import closed_port
    gw = start_gateway(lab.pool("d1"))
    hop = via_socks(gw.port, "127.0.0.1", closed_port())
    assert hop.status != 200
    assert hop.status - 1000 in (1, 4, 5), hop  # general failure, host unreachable or refused
    assert via_socks(gw.port, "127.0.0.1", lab.origin.port).status == 200
