"""Provider gateways as exits (issue 14): a pool line pointing at a provider's one gateway, whose username
or password carries the targeting and the session in the provider's grammar (proto/provider.hpp), is an
elastic exit: a fresh provider session per connection / request without a client session, a stable one
per client session (moved on when it fails or is banned), mixed with ordinary exits.

No provider is reachable from the lab, so they are played on loopback:
 - FakeProvider: an HTTP and SOCKS5 proxy that accepts exactly the credentials a preset must send (a
   regular expression per field; the session id is the only free part) and answers 407 (HTTP) or a failed
   RFC 1929 login (SOCKS5) otherwise; accepted requests go on to the origin.
 - A second `exitpool serve` with twelve direct exits 127.0.0.31-42 plays a residential provider: it
   already speaks `user-country-xx-session-yy`, so what the outer gateway's line sends decides which inner
   exit (IP) the origin sees.
"""
from __future__ import annotations

import json
import re
import select
import socket
import subprocess
import threading

import pytest

from faults import (Answer, RawServer, RecordingOrigin, admin_exits, admin_get, connect_tunnel, direct,
                    quiet_flags, recv_exact, recv_until, request, wait_until)
from helpers import basic, exitpool_bin, free_port, run, socks5_connect

INNER = list(range(31, 43))  # 31-34 de, 35-38 us, 39-42 untagged
INNER_DE = {31, 32, 33, 34}
INNER_US = {35, 36, 37, 38}


def as_user(user: str, password: str = "x") -> dict:
    return {"Proxy-Authorization": basic(user, password)}


def exit_of(r) -> str:
    """The outer gateway's X-Exitpool-Exit: the last one (the inner gateway, playing the provider, adds its own
    before it)."""
    values = [v for k, v in r.headers if k.lower() == "x-exitpool-exit"]
    return values[-1] if values else ""


# --------------------------------------------------------------------------------- the fake provider


def _relay(a: socket.socket, b: socket.socket) -> None:
    socks = [a, b]
    while True:
        r, _, _ = select.select(socks, [], [], 10)
        if not r:
            return
        for s in r:
            data = s.recv(65536)
            if not data:
                return
            (b if s is a else a).sendall(data)


class FakeProvider:
    """One gateway endpoint of a provider, HTTP or SOCKS5, that accepts only credentials matching
    (user_re, pass_re) in full. `seen` lists every (user, password) offered, `refused` those refused."""

    def __init__(self, kind: str, user_re: str, pass_re: str):
        self.kind, self.user_re, self.pass_re = kind, re.compile(user_re), re.compile(pass_re)
        self.seen: list[tuple[str, str]] = []
        self.refused: list[tuple[str, str]] = []
        self.server = RawServer(self._serve)

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop()

    @property
    def port(self) -> int:
        return int(self.server.hostport.rsplit(":", 1)[1])

    def _accept(self, user: str, password: str) -> bool:
        self.seen.append((user, password))
        ok = bool(self.user_re.fullmatch(user) and self.pass_re.fullmatch(password))
        if not ok:
            self.refused.append((user, password))
        return ok

    def _serve(self, conn: socket.socket, _server) -> None:
        conn.settimeout(10)
        if self.kind == "socks5":
            self._socks5(conn)
        else:
            self._http(conn)

    def _http(self, conn: socket.socket) -> None:
        import base64
        head = recv_until(conn, b"\r\n\r\n")
        text, _, rest = head.partition(b"\r\n\r\n")
        lines = text.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        auth = next((v.strip() for k, _, v in (h.partition(":") for h in lines[1:])
                     if k.strip().lower() == "proxy-authorization"), "")
        user, password = "", ""
        if auth.lower().startswith("basic "):
            user, _, password = base64.b64decode(auth[6:]).decode("latin-1").partition(":")
        if not self._accept(user, password):
            conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n"
                         b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            return
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            up = socket.create_connection((host, int(port)), timeout=10)
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                up.sendall(rest)
        else:  # absolute form: on to the origin in origin form, the rest of the stream relayed
            hostport = target.split("/", 3)[2]
            host, port = hostport.rsplit(":", 1)
            path = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
            keep = [h for h in lines[1:] if not h.lower().startswith(("proxy-", "connection"))]
            up = socket.create_connection((host, int(port)), timeout=10)
            up.sendall(("\r\n".join([f"{method} {path} HTTP/1.1", *keep, "Connection: close"]) +
                        "\r\n\r\n").encode("latin-1") + rest)
        with up:
            _relay(conn, up)

    def _socks5(self, conn: socket.socket) -> None:
        _ver, n = recv_exact(conn, 2)
        methods = recv_exact(conn, n)
        if 2 not in methods:
            conn.sendall(b"\x05\xff")
            return
        conn.sendall(b"\x05\x02")
        _v, ulen = recv_exact(conn, 2)
        user = recv_exact(conn, ulen).decode("latin-1")
        plen = recv_exact(conn, 1)[0]
        password = recv_exact(conn, plen).decode("latin-1")
        if not self._accept(user, password):
            conn.sendall(b"\x01\x01")
            return
        conn.sendall(b"\x01\x00")
        _v, _cmd, _rsv, atyp = recv_exact(conn, 4)
        if atyp == 1:
            host = socket.inet_ntoa(recv_exact(conn, 4))
        elif atyp == 3:
            host = recv_exact(conn, recv_exact(conn, 1)[0]).decode()
        else:
            conn.sendall(b"\x05\x08\x00\x01\x00\x00\x00\x00\x00\x00")
            return
        port = int.from_bytes(recv_exact(conn, 2), "big")
        up = socket.create_connection((host, port), timeout=10)
        conn.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x00")
        with up:
            _relay(conn, up)


# What each preset must send for `alice-country-us-session-s1` (sticky, default 10 minutes) and for
# `alice-country-us` (rotation): (URL credentials, user regex, password regex) — README.md names the pages.
# The last field is the session-lifetime part, sent with a client session only (None: the grammar has none).
S12 = "[0-9a-v]{12}"
PRESETS = {
    "brightdata": ("brd-customer-c1-zone-z1:pw", rf"brd-customer-c1-zone-z1-country-us-session-{S12}", "pw", None),
    "oxylabs": ("acme:pw", rf"customer-acme-cc-US-sessid-{S12}(-sesstime-10)?", "pw", "-sesstime-10"),
    "decodo": ("acme:pw", rf"user-acme-country-us-session-{S12}(-sessionduration-10)?", "pw",
               "-sessionduration-10"),
    "iproyal": ("acme:pw", "acme", r"pw_country-us_session-[0-9a-v]{8}(_lifetime-10m)?", "_lifetime-10m"),
    "soax": ("123:key", rf"package-123-country-us-sessionid-{S12}(-sessionlength-600)?", "key", "-sessionlength-600"),
    "netnut": ("acme:pw", r"acme-res-us-sid-[1-9][0-9]{0,7}", "pw", None),
    "abcproxy": ("acme:pw", rf"acme-zone-abc-region-us-session-{S12}(-sessTime-10)?", "pw", "-sessTime-10"),
}


@pytest.mark.parametrize("scheme", ["http", "socks5"])
@pytest.mark.parametrize("preset", list(PRESETS))
def test_each_preset_sends_the_providers_exact_credentials(start_gateway, preset, scheme):
    creds, user_re, pass_re, lifetime = PRESETS[preset]
    # close: one connection per request, so the fake sees every request's credentials.
    with RecordingOrigin("127.0.0.1", close=True) as origin, FakeProvider(scheme, user_re, pass_re) as fake:
        gw = start_gateway([f"{scheme}://{creds}@127.0.0.1:{fake.port} provider={preset} countries=* id=p"],
                           *quiet_flags())
        sticky = [request(gw.port, "GET", origin.url(f"/s{i}"), headers=as_user("alice-country-us-session-s1"))
                  for i in range(2)]
        rotating = [request(gw.port, "GET", origin.url(f"/r{i}"), headers=as_user("alice-country-us"))
                    for i in range(2)]
        for r in sticky + rotating:
            assert r.status == 200, (r.status, r.headers, r.text, fake.refused)
        assert not fake.refused, fake.refused
        users = [u + ":" + p for u, p in fake.seen]
        assert users[0] == users[1], users  # one provider session for the client's session
        assert len({users[0], users[2], users[3]}) == 3, users  # a fresh one per rotating request
        # The lifetime goes with a session only; an unfilled placeholder leaves no trace of its key.
        if lifetime:
            assert lifetime in users[0] and lifetime in users[1], users
        for u in users[2:]:
            assert not re.search(r"sesstime|sessionduration|sessionlength|lifetime|sessTime", u), u
        assert all("{" not in u for u in users), users
        assert origin.count() == 4


def test_a_provider_refusing_the_credentials_is_the_exits_fault(start_gateway):
    with RecordingOrigin("127.0.0.1") as origin, FakeProvider("http", "nobody", "never") as fake:
        gw = start_gateway([f"http://acme:pw@127.0.0.1:{fake.port} provider=decodo id=p"], *quiet_flags())
        r = request(gw.port, "GET", origin.url("/x"), headers=as_user("alice"))
        assert r.status != 200 and fake.refused, (r.status, r.text)
        assert origin.count() == 0


# ------------------------------------------------------------------------ exitpool as the provider


@pytest.fixture
def two_gateways(start_gateway):
    """(outer, inner): the inner gateway plays the provider (twelve direct exits, 31-34 tagged de, 35-38 us,
    no bans of its own: 429s pass through as a real provider's would); the outer has one provider line for
    it, beside an ordinary exit tagged fr."""
    def tags(n):
        return {"country": "de"} if n in INNER_DE else {"country": "us"} if n in INNER_US else {}
    inner = start_gateway([direct(n, f"i{n}", **tags(n)) for n in INNER], "--ban-status", "599", *quiet_flags())
    admin = free_port()
    outer = start_gateway([f"http://acme:pw@127.0.0.1:{inner.port} "
                           "user_template={user}-country-{country}-session-{session} countries=de,us "
                           "type=residential id=prov",
                           direct(29, "fr29", country="fr")],
                          "--admin", f"127.0.0.1:{admin}", "--ban-retries", "5", *quiet_flags())
    outer.admin_port = admin
    wait_until(lambda: admin_get(admin, "/healthz")[0] == 200, 5, what="the admin endpoint")
    return outer, inner


def test_rotation_without_a_session_gives_fresh_ips(two_gateways):
    outer, _ = two_gateways
    with RecordingOrigin("127.0.0.1") as origin:
        for i in range(12):  # type-residential: only the provider line has it; no country: any inner exit
            r = request(outer.port, "GET", origin.url(f"/{i}"), headers=as_user("alice-type-residential"))
            assert r.status == 200, (r.status, r.text)
            assert exit_of(r).startswith("prov~"), r.headers
        assert len(origin.by_source()) >= 4, origin.by_source()
    with RecordingOrigin("127.0.0.1") as origin:
        for i in range(12):
            r = request(outer.port, "GET", origin.url(f"/us{i}"), headers=as_user("alice-country-us"))
            assert r.status == 200, (r.status, r.text)
            assert exit_of(r).startswith("prov~"), r.headers
        srcs = origin.by_source()
        assert len(srcs) >= 2, srcs
        assert set(srcs) <= {f"127.0.0.{n}" for n in INNER_US}, srcs  # country-us only
    # Each request on one kept-alive client connection gets a fresh provider session too.
    from helpers import Conn
    with RecordingOrigin("127.0.0.1") as origin, Conn("127.0.0.1", outer.port) as c:
        for i in range(12):
            r = c.request("GET", origin.url(f"/k{i}"), as_user("alice-country-de"))
            assert r.status == 200, (r.status, r.text)
        assert len(origin.by_source()) >= 2, origin.by_source()  # 4 de exits inside
        assert set(origin.by_source()) <= {f"127.0.0.{n}" for n in INNER_DE}


def test_a_session_keeps_one_ip_across_http_connect_and_socks5(two_gateways):
    outer, _ = two_gateways
    with RecordingOrigin("127.0.0.1") as origin:
        user = "carol-country-de-session-cart1"
        for i in range(3):
            assert request(outer.port, "GET", origin.url(f"/h{i}"), headers=as_user(user)).status == 200
        c, head = connect_tunnel_as(outer.port, origin.hostport, user)
        with c:
            assert head.status == 200, head
            r = c.request("GET", "/tunnel", host=origin.hostport)
            assert r.status == 200
        s, rep = socks5_connect(outer.port, "127.0.0.1", origin.port, user=user)
        with s:
            assert rep == 0, rep
            s.send(f"GET /socks HTTP/1.1\r\nHost: {origin.hostport}\r\nConnection: close\r\n\r\n".encode())
            assert b" 200 " in s.read_until(b"\r\n\r\n")
        srcs = origin.by_source()
        assert len(srcs) == 1 and origin.count() == 5, srcs
        assert int(next(iter(srcs)).rsplit(".", 1)[1]) in INNER_DE, srcs
        # Another session is another provider session.
        others = {exit_of(request(outer.port, "GET", origin.url("/o"), headers=as_user(f"carol-country-de-session-o{k}")))
                  for k in range(4)}
        assert len(others) == 4, others


def connect_tunnel_as(port: int, hostport: str, user: str):
    from helpers import Conn, build_request
    c = Conn("127.0.0.1", port, timeout=10)
    c.send(build_request("CONNECT", hostport, as_user(user)))
    return c, c.read_response("CONNECT")


def test_a_ban_moves_the_session_to_another_ip_and_bans_only_that_virtual_exit_for_that_host(two_gateways):
    outer, _ = two_gateways
    banned: set[str] = set()

    def decide(hit):
        if hit.src in banned:
            return Answer(429, b"slow down\n")
        return Answer(200, f"{hit.src}\n".encode())

    with RecordingOrigin("127.0.0.1", decide) as shop, RecordingOrigin("127.0.0.3") as other:
        user = "dave-session-b1"
        first = request(outer.port, "GET", shop.url("/1"), headers=as_user(user))
        assert first.status == 200
        ip_a = first.text.strip()
        v0 = exit_of(first)
        banned.add(ip_a)
        moved = request(outer.port, "GET", shop.url("/2"), headers=as_user(user))
        assert moved.status == 200, (moved.status, moved.text)  # the 429 was retried on a fresh IP
        ip_b = moved.text.strip()
        assert ip_b != ip_a
        v1 = exit_of(moved)
        assert v1 != v0 and v1.startswith("prov~")
        for i in range(3):  # the session stays where it moved
            r = request(outer.port, "GET", shop.url(f"/3{i}"), headers=as_user(user))
            assert r.status == 200 and r.text.strip() == ip_b
        assert exit_of(request(outer.port, "GET", other.url("/x"), headers=as_user(user))) == v1
        # The ban is the old virtual exit's, for that host only; the line and the new one are free.
        exits = admin_exits(outer.admin_port)
        line = exits["prov"]
        assert line["bans"] == [], line["bans"]
        virtual = {v["id"]: v for v in line["virtual_exits"]}
        assert [b["host"] for b in virtual[v0]["bans"]] == ["127.0.0.1"], virtual[v0]
        assert virtual[v1]["bans"] == [] and virtual[v1]["line"] == "prov"
        assert line["provider"]["countries"] == ["de", "us"]
        # Rotation through the line still reaches the shop (fresh IPs, the ban is not the line's).
        banned.clear()
        assert request(outer.port, "GET", shop.url("/rot"), headers=as_user("erin")).status == 200


def test_country_goes_only_through_lines_and_exits_that_serve_it(two_gateways):
    outer, _ = two_gateways
    with RecordingOrigin("127.0.0.1") as origin:
        for i in range(6):
            r = request(outer.port, "GET", origin.url(f"/fr{i}"), headers=as_user("fay-country-fr"))
            assert r.status == 200 and exit_of(r) == "fr29", r.headers
        r = request(outer.port, "GET", origin.url("/jp"), headers=as_user("fay-country-jp"))
        assert r.status == 503, r.status  # nothing serves jp
        assert "no exit matches" in (r.header("X-Exitpool-Error") or ""), r.headers
        mixed = {exit_of(request(outer.port, "GET", origin.url(f"/any{i}"), headers=as_user("fay"))).split("~")[0]
                 for i in range(12)}
        assert mixed == {"prov", "fr29"}, mixed


def test_check_shows_the_ip_behind_a_virtual_exit(two_gateways, tmp_path):
    outer, inner = two_gateways
    pool = tmp_path / "pool.txt"
    pool.write_text(f"http://acme:pw@127.0.0.1:{inner.port} user_template={{user}}-session-{{session}} id=prov\n")
    with RecordingOrigin("127.0.0.1") as origin:
        cp = run([str(exitpool_bin()), "check", "--pool", str(pool), "--url", origin.url("/ip"), "--json"],
                 timeout=30)
        assert cp.returncode == 0, cp.stderr
        [row] = json.loads(cp.stdout)
        assert row["id"] == "prov" and row["virtual_exit"].startswith("prov~"), row
        assert row["exit_ip"] in {f"127.0.0.{n}" for n in INNER}, row


# ------------------------------------------------------------------------------------ bad pool lines


@pytest.mark.parametrize("bad_line,message", [
    ("http://u:p@127.0.0.1:8000 provider=acme", "unknown provider 'acme'"),
    ("http://u:p@127.0.0.1:8000 user_template={user}-{colour}-{session}", "unknown placeholder '{colour}'"),
    ("http://u:p@127.0.0.1:8000 user_template={user}-country-{country}", "has no {session}"),
    ("http://u%3Ax:p@127.0.0.1:8000 provider=oxylabs", "cannot carry ':', '@', '%'"),
    ("http://u:p%40x@127.0.0.1:8000 provider=oxylabs", "cannot carry ':', '@', '%'"),
    ("http://u:p%25x@127.0.0.1:8000 provider=oxylabs", "cannot carry ':', '@', '%'"),
])
def test_bad_provider_lines_are_an_error_naming_file_and_line(tmp_path, bad_line, message):
    pool = tmp_path / "pool.txt"
    pool.write_text("direct://127.0.0.21 id=d1\n" + bad_line + "\n")
    try:
        cp = run([str(exitpool_bin()), "serve", "--pool", str(pool), "--listen", f"127.0.0.1:{free_port()}",
                  "--threads", "1"], timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("exitpool serve kept running with a bad provider line")
    err = (cp.stderr + cp.stdout).decode(errors="replace")
    assert cp.returncode != 0
    assert "pool.txt:2:" in err and message in err, err


def test_learn_exit_ip_tells_sessions_on_one_ip_apart(start_gateway):
    """--learn-exit-ip: each new sticky virtual exit is fetched through once with --check-url; /exits shows the
    IP behind it, and sessions the provider put on one IP (nine sessions, eight inner IPs: at least two
    share one) under the line's shared_ips."""
    inner = start_gateway([direct(n, f"i{n}") for n in INNER[:8]], "--ban-status", "599", *quiet_flags())
    with RecordingOrigin("127.0.0.1") as origin, RecordingOrigin("127.0.0.3") as checker:
        admin = free_port()
        outer = start_gateway([f"http://acme:pw@127.0.0.1:{inner.port} user_template={{user}}-session-{{session}} "
                               "id=prov"],
                              "--admin", f"127.0.0.1:{admin}", "--check-url", checker.url("/ip"),
                              "--check-interval", "600", "--learn-exit-ip")
        wait_until(lambda: admin_get(admin, "/healthz")[0] == 200, 5, what="the admin endpoint")
        seen = {}
        for k in range(9):
            r = request(outer.port, "GET", origin.url(f"/s{k}"), headers=as_user(f"gus-session-g{k}"))
            assert r.status == 200
            seen[exit_of(r)] = r.text.strip()

        def learned():
            line = admin_exits(admin)["prov"]
            ips = {v["id"]: v["exit_ip"] for v in line["virtual_exits"]}
            return line if len(ips) == 9 and all(ips.values()) else None

        line = wait_until(learned, 15, what="every virtual exit's IP learned")
        assert {v["id"]: v["exit_ip"] for v in line["virtual_exits"]} == seen
        assert line["shared_ips"], line["shared_ips"]
        for ip, ids in line["shared_ips"].items():
            assert len(ids) >= 2 and all(seen[i] == ip for i in ids), (ip, ids)
        assert checker.count() == 9  # one fetch per session, not per request


def test_learn_exit_ip_needs_a_check_url(tmp_path):
    pool = tmp_path / "pool.txt"
    pool.write_text("direct://127.0.0.21 id=d1\n")
    cp = run([str(exitpool_bin()), "serve", "--pool", str(pool), "--listen", f"127.0.0.1:{free_port()}",
              "--learn-exit-ip"], timeout=10)
    assert cp.returncode != 0 and b"--learn-exit-ip needs --check-url" in cp.stderr + cp.stdout


def test_active_checks_go_through_a_virtual_exit(start_gateway):
    """A provider's gateway refuses the account's bare credentials: the active health checks must use the
    line's templates (a fresh provider session each), or every provider line would be ejected."""
    with RecordingOrigin("127.0.0.1", close=True) as checker, \
            FakeProvider("http", rf"customer-acme-sessid-{S12}", "pw") as fake:
        admin = free_port()
        start_gateway([f"http://acme:pw@127.0.0.1:{fake.port} provider=oxylabs id=ox"], "--admin",
                      f"127.0.0.1:{admin}", "--check-url", checker.url("/ip"), "--check-interval", "0.2")
        wait_until(lambda: admin_get(admin, "/healthz")[0] == 200, 5, what="the admin endpoint")
        wait_until(lambda: admin_exits(admin)["ox"]["successes"] >= 2, 10, what="two passed checks")
        assert not fake.refused, fake.refused
        assert admin_exits(admin)["ox"]["state"] == "healthy"
        users = {u for u, _ in fake.seen}
        assert len(users) >= 2 and all(u.startswith("customer-acme-sessid-") for u in users), users


def test_fetch_rotates_through_a_provider_line(two_gateways, tmp_path):
    """`exitpool fetch` drives the same pool: each URL gets a fresh provider session (a fresh inner IP)."""
    _, inner = two_gateways
    pool = tmp_path / "pool.txt"
    pool.write_text(f"http://acme:pw@127.0.0.1:{inner.port} user_template={{user}}-session-{{session}} id=prov\n")
    with RecordingOrigin("127.0.0.1") as origin:
        urls = tmp_path / "urls.txt"
        urls.write_text("".join(origin.url(f"/f{i}") + "\n" for i in range(12)))
        out = tmp_path / "out.jsonl"
        cp = run([str(exitpool_bin()), "fetch", "--pool", str(pool), "--input", str(urls), "--output", str(out)],
                 timeout=60)
        assert cp.returncode == 0, cp.stderr
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert [r["status"] for r in rows] == [200] * 12, rows
        assert len({r["exit"] for r in rows}) == 12 and all(r["exit"].startswith("prov~") for r in rows)
        assert len(origin.by_source()) >= 4, origin.by_source()
