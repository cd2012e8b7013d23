"""The lab itself: every upstream and the origin work on their own, without exitpool.

If one of these fails, the gateway tests that use that upstream cannot say anything; fix the fixture first.
"""
from helpers import Conn, curl, sha256


def test_origin_answers_remote_addr(origin):
    assert curl(origin.url()).text == "127.0.0.1\n"
    assert curl("--interface", "127.0.0.7", origin.url()).text == "127.0.0.7\n"
    assert curl(origin.url("/any/path?q=1")).text == "127.0.0.1\n"


def test_origin_listens_on_ipv6(origin):
    assert curl(origin.url(host="::1")).text == "::1\n"


def test_origin_echo_content_length(origin):
    body = b"hello\x00world\n" * 1000
    with Conn("127.0.0.1", origin.port) as c:
        r = c.request("POST", "/echo", {"X-Test-Header": "t1"}, body)
    assert r.status == 200
    assert r.body == body
    assert r.header("X-Echo-Method") == "POST"
    assert r.header("X-Echo-Content-Length") == str(len(body))
    assert r.header("X-Echo-Test-Header") == "t1"


def test_origin_echo_chunked(origin):
    from helpers import chunked
    body = bytes(range(256)) * 300
    with Conn("127.0.0.1", origin.port) as c:
        r = c.request("POST", "/echo", {"Transfer-Encoding": "chunked"}, chunked(body))
    assert r.status == 200
    assert r.body == body
    assert r.header("X-Echo-Transfer-Encoding") == "chunked"


def test_origin_chunked_response(origin):
    with Conn("127.0.0.1", origin.port) as c:
        r = c.request("GET", "/chunked")
        assert r.header("Transfer-Encoding") == "chunked"
        assert r.text == "chunk-one\nchunk-two\n127.0.0.1\n"
        # keep-alive still works after a chunked response
        assert c.request("GET", "/").text == "127.0.0.1\n"


def test_origin_big(origin):
    res = curl(origin.url("/big"))
    assert res.status == 200
    assert len(res.body) == origin.big_size
    assert sha256(res.body) == origin.big_sha256


def test_squid(origin, squid):
    assert curl("-x", f"http://127.0.0.1:{squid.port}", origin.url()).text == "127.0.0.11\n"
    assert curl("-p", "-x", f"http://127.0.0.1:{squid.port}", origin.url()).text == "127.0.0.11\n"


def test_tinyproxy(origin, tinyproxy):
    assert curl("-x", f"http://127.0.0.1:{tinyproxy.port}", origin.url()).text == "127.0.0.12\n"
    assert curl("-p", "-x", f"http://127.0.0.1:{tinyproxy.port}", origin.url()).text == "127.0.0.12\n"


def test_tinyproxy_auth(origin, tinyproxy_auth):
    px = f"http://127.0.0.1:{tinyproxy_auth.port}"
    assert curl("-x", px, "-U", "tpuser:tppass", origin.url()).text == "127.0.0.16\n"
    assert curl("-x", px, origin.url()).status == 407
    # tinyproxy 1.11 answers a wrong password with 401, not 407; either way it refuses.
    assert curl("-x", px, "-U", "tpuser:wrong", origin.url()).status in (401, 407)


def test_dante(origin, dante):
    assert curl("--socks5", f"127.0.0.1:{dante.port}", origin.url()).text == "127.0.0.13\n"
    assert curl("--socks5-hostname", f"127.0.0.1:{dante.port}", origin.url()).text == "127.0.0.13\n"


def test_microsocks(origin, microsocks):
    assert curl("--socks5", f"127.0.0.1:{microsocks.port}", origin.url()).text == "127.0.0.14\n"


def test_microsocks_auth(origin, microsocks_auth):
    port = microsocks_auth.port
    assert curl("-x", f"socks5://msuser:mspass@127.0.0.1:{port}", origin.url()).text == "127.0.0.15\n"
    assert curl("-x", f"socks5://127.0.0.1:{port}", origin.url()).rc != 0
    assert curl("-x", f"socks5://msuser:nope@127.0.0.1:{port}", origin.url()).rc != 0


def test_tls_proxy_verified(origin, tls_proxy):
    px = f"https://127.0.0.1:{tls_proxy.port}"
    assert curl("--proxy-cacert", str(tls_proxy.ca_file), "-x", px, origin.url()).text == "127.0.0.11\n"
    # Without the test CA the certificate does not verify: the gateway must see the same.
    assert curl("-x", px, origin.url()).rc != 0
    assert curl("--proxy-insecure", "-x", px, origin.url()).text == "127.0.0.11\n"


def test_direct_source_addresses_are_usable(origin):
    # direct://127.0.0.21 exits work because Linux routes all of 127.0.0.0/8 to lo.
    for ip in ("127.0.0.21", "127.0.0.22"):
        assert curl("--interface", ip, origin.url()).text == f"{ip}\n"


def test_lab_pool_lines(lab):
    assert set(lab.lines) == {"squid", "tinyproxy", "dante", "microsocks", "ms-auth", "tp-auth",
                              "squid-tls", "d1", "d2"}
    for exit_id, line in lab.lines.items():
        assert f"id={exit_id}" in line
