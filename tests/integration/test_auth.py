"""--users: who may use the gateway, over HTTP and SOCKS5."""
import pytest

from helpers import (Conn, basic, build_request, curl, socks5_auth, socks5_greet, via_connect, via_http,
                     via_socks)

USERS = {"alice": "secret", "bob": "p@ss:word"}


@pytest.fixture
def gw(start_gateway, lab):
    return start_gateway(lab.pool("d1", "d2", "dante", "microsocks"), users=USERS)


def test_no_credentials_is_407_with_challenge(gw, lab):
    hop = via_http(gw.port, lab.origin.url())
    assert hop.status == 407
    assert (hop.resp.header("Proxy-Authenticate") or "").lower().startswith("basic"), hop.resp.headers
    assert hop.resp.header("X-Exitpool-Error")
    hop = via_connect(gw.port, lab.origin.hostport)
    assert hop.status == 407 and hop.resp.header("Proxy-Authenticate")
    assert curl("-x", gw.proxy(), lab.origin.url()).status == 407


@pytest.mark.parametrize("user,password", [("alice", "wrong"), ("mallory", "secret"), ("alice", ""),
                                           ("alice-country-de", "wrong")])
def test_wrong_credentials_are_407(gw, lab, user, password):
    assert via_http(gw.port, lab.origin.url(), user=user, password=password).status == 407
    assert via_connect(gw.port, lab.origin.hostport, user=user, password=password).status == 407
    assert via_socks(gw.port, "127.0.0.1", lab.origin.port, user=user, password=password).status == 407


def test_right_credentials(gw, lab):
    hop = via_http(gw.port, lab.origin.url(), user="alice", password="secret")
    assert hop.status == 200 and hop.consistent()
    hop = via_http(gw.port, lab.origin.url(), user="bob", password="p@ss:word")  # ':' inside the password
    assert hop.status == 200
    assert curl("-x", gw.proxy(), "-U", "alice:secret", lab.origin.url()).status == 200
    assert curl("-p", "-x", gw.proxy(), "-U", "alice:secret", lab.origin.url()).status == 200
    assert curl("-x", gw.proxy("socks5h", "alice", "secret"), lab.origin.url()).status == 200


def test_options_with_credentials(gw, lab):
    hop = via_http(gw.port, lab.origin.url(), user="alice-country-de", password="secret")
    assert hop.status == 200 and hop.exit_id in ("dante", "microsocks")
    hop = via_http(gw.port, lab.origin.url(), user="alice", password="secret_country-de")
    assert hop.status == 200 and hop.exit_id in ("dante", "microsocks")
    exits = {via_http(gw.port, lab.origin.url(), user="alice-session-q", password="secret").exit_id
             for _ in range(6)}
    assert len(exits) == 1


def test_socks5_no_auth_offer_is_refused(gw, lab):
    with Conn("127.0.0.1", gw.port) as c:
        assert socks5_greet(c, b"\x00") == 0xFF
        assert c.closed_by_peer(timeout=5)
    with Conn("127.0.0.1", gw.port) as c:
        assert socks5_greet(c, b"\x00\x02") == 0x02  # offered both: user/pass is chosen
        assert socks5_auth(c, "alice", "secret") == 0


def test_socks5_wrong_password(gw, lab):
    with Conn("127.0.0.1", gw.port) as c:
        assert socks5_greet(c, b"\x02") == 0x02
        assert socks5_auth(c, "alice", "nope") != 0
        assert c.closed_by_peer(timeout=5)
    assert via_socks(gw.port, "127.0.0.1", lab.origin.port, user="alice", password="secret").status == 200


def test_keep_alive_connection_checks_every_request(gw, lab):
    with Conn("127.0.0.1", gw.port) as c:
        r = c.request("GET", lab.origin.url(), {"Proxy-Authorization": basic("alice", "secret")})
        assert r.status == 200
        r = c.request("GET", lab.origin.url())  # no credentials on the second request
        assert r.status == 407


def test_gateway_strips_proxy_authorization(start_gateway, lab):
    """The client's Proxy-Authorization is for the gateway, never forwarded to exits or origins."""
    gw = start_gateway(lab.pool("d1"), users=USERS)
    with Conn("127.0.0.1", gw.port) as c:
        c.send(build_request("POST", lab.origin.url("/echo"),
                             {"Proxy-Authorization": basic("alice", "secret"), "X-Test-Header": "kept"}, b"hi"))
        r = c.read_response()
    assert r.status == 200 and r.header("X-Echo-Test-Header") == "kept" and r.body == b"hi"
    assert not r.header("X-Echo-Proxy-Authorization"), r.headers
