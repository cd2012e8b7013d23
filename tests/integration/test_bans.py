"""Exits the gateway must avoid (issue 3): exits banned by a target host, dead or broken upstreams
(passive health checks and ejection), and tiers (higher tiers only when no lower tier can serve).

The origins here are RecordingOrigin (faults.py): they see which source address, i.e. which exit, every
request really left through, so a test counts what reached the target rather than trusting the gateway.
Direct exits leave from 127.0.0.21-24 (every 127/8 address is local on Linux).
"""
from __future__ import annotations

import time

import pytest

from faults import (Answer, RecordingOrigin, TcpFault, admin_exits, connect_tunnel, direct, quiet_flags,
                    request, start_microsocks)
from helpers import basic, closed_port, free_port, socks5_connect

D1, D2 = "127.0.0.21", "127.0.0.22"
POOL_D1_D2 = [direct(21, "d1"), direct(22, "d2")]


def ban_for(banned: set[str], status: int = 429, retry_after: str | None = None):
    """decide(): `status` for requests from the banned source addresses, 200 for the others."""
    def decide(hit):
        if hit.src in banned:
            headers = {"Retry-After": retry_after} if retry_after else {}
            return Answer(status, f"banned {hit.src}\n".encode(), headers)
        return Answer(200, f"ok {hit.src}\n".encode())
    return decide


def get(gw, origin, path="/", **kw):
    return request(gw.port, "GET", origin.url(path), **kw)


def served_by(resp, exit_id: str, src: str) -> bool:
    return resp.status == 200 and resp.header("X-Exitpool-Exit") == exit_id and resp.text == f"ok {src}\n"


# ------------------------------------------------------------------------------------------- bans


def test_ban_is_retried_on_another_exit_and_kept_for_that_host_only(start_gateway):
    with RecordingOrigin("127.0.0.1", ban_for({D1})) as banning, \
            RecordingOrigin("127.0.0.3", ban_for(set())) as other:
        gw = start_gateway(POOL_D1_D2, *quiet_flags())
        for i in range(10):
            r = get(gw, banning, f"/a{i}")
            # Never the 429: the ban answer from d1 was retried on d2 before the client saw anything.
            assert served_by(r, "d2", D2), (i, r.status, r.headers, r.text)
        # d1 was tried exactly once for this host: the first ban, then it was skipped.
        assert banning.count(D1) == 1, banning.by_source()
        assert banning.count(D2) == 10, banning.by_source()
        # CONNECT to the banned host avoids d1 too.
        for _ in range(4):
            c, head = connect_tunnel(gw.port, banning.hostport)
            with c:
                assert head.status == 200 and head.header("X-Exitpool-Exit") == "d2", head
        # Bans are per target host: 127.0.0.3 still gets traffic from d1.
        seen = set()
        for i in range(8):
            r = get(gw, other, f"/b{i}")
            assert r.status == 200, (r.status, r.text)
            seen.add(r.header("X-Exitpool-Exit"))
        assert seen == {"d1", "d2"}, seen
        assert other.count(D1) >= 1 and other.count(D2) >= 1, other.by_source()


def test_retry_after_sets_the_ban_length(start_gateway):
    with RecordingOrigin("127.0.0.1", ban_for({D1}, retry_after="2")) as origin:
        # --ban-time 300: the origin's Retry-After: 2 must win.
        gw = start_gateway(POOL_D1_D2, "--ban-time", "300", *quiet_flags())
        for i in range(6):
            r = get(gw, origin, f"/first{i}")
            assert served_by(r, "d2", D2), (r.status, r.text)
            if origin.count(D1):
                break
        hits_d1 = [h.t for h in origin.snapshot() if h.src == D1]
        assert len(hits_d1) == 1, origin.by_source()
        banned_at = hits_d1[0]
        # Still banned a second later.
        for i in range(4):
            r = get(gw, origin, f"/during{i}")
            assert served_by(r, "d2", D2), (r.status, r.text)
        time.sleep(max(0.0, banned_at + 1.2 - time.monotonic()))
        for i in range(2):
            assert served_by(get(gw, origin, f"/late{i}"), "d2", D2)
        assert origin.count(D1) == 1, "d1 used again before its Retry-After: 2 ran out"
        # After ~2 s the ban is over: d1 is tried again (and banned again, and retried on d2).
        time.sleep(max(0.0, banned_at + 2.4 - time.monotonic()))
        for i in range(6):
            r = get(gw, origin, f"/after{i}")
            assert served_by(r, "d2", D2), (r.status, r.text)
            if origin.count(D1) >= 2:
                break
        assert origin.count(D1) == 2, f"d1 not used again after its ban ended: {origin.by_source()}"


def test_ban_pattern_in_body_or_head_bans_and_status_list_is_replaced(start_gateway):
    def body_captcha(hit):
        if hit.src == D1:
            return Answer(200, b"<html>please solve this captcha</html>\n")
        return Answer(200, f"ok {hit.src}\n".encode())

    def head_captcha(hit):
        if hit.src == D1:
            return Answer(200, b"fine\n", {"X-Challenge": "captcha-required"})
        return Answer(200, f"ok {hit.src}\n".encode())

    with RecordingOrigin("127.0.0.1", body_captcha) as by_body, \
            RecordingOrigin("127.0.0.3", head_captcha) as by_head, \
            RecordingOrigin("127.0.0.4", ban_for({D1, D2}, 429)) as always_429:
        gw = start_gateway(POOL_D1_D2, "--ban-status", "599", "--ban-pattern", "captcha", *quiet_flags())
        for origin in (by_body, by_head):
            for i in range(6):
                r = get(gw, origin, f"/p{i}")
                assert served_by(r, "d2", D2), (origin.host, r.status, r.headers, r.text)
            assert origin.count(D1) == 1, (origin.host, origin.by_source())
        # --ban-status 599 replaces the default list: a 429 is no ban now, so it is passed through
        # (no retry: the origin sees each request once) and both exits keep serving that host.
        for i in range(6):
            r = get(gw, always_429, f"/q{i}")
            assert r.status == 429 and r.text.startswith("banned "), (r.status, r.text)
        assert always_429.count() == 6, always_429.by_source()
        assert always_429.count(D1) >= 1 and always_429.count(D2) >= 1, always_429.by_source()


def test_non_idempotent_request_gets_the_ban_answer(start_gateway):
    with RecordingOrigin("127.0.0.1", ban_for({D1})) as origin:
        gw = start_gateway(POOL_D1_D2, *quiet_flags())
        statuses = []
        for i in range(12):
            r = request(gw.port, "POST", origin.url(f"/post{i}"), body=b"payload %d" % i)
            statuses.append((r.status, r.header("X-Exitpool-Exit")))
            if r.status == 429:
                # Passed through as the origin sent it: a POST is never replayed on another exit.
                assert r.header("X-Exitpool-Exit") == "d1" and r.text == f"banned {D1}\n", (r.headers, r.text)
                break
            assert served_by(r, "d2", D2), (r.status, r.text)
        assert statuses[-1][0] == 429, f"d1 never used in 12 POSTs: {statuses}"
        # ... but it did ban d1 for this host.
        for i in range(4):
            r = request(gw.port, "POST", origin.url(f"/after{i}"), body=b"x")
            assert served_by(r, "d2", D2), (r.status, r.text)
        assert origin.count(D1, "POST") == 1, origin.by_source()
        assert origin.count(method="POST") == len(statuses) + 4, "a POST reached the origin twice"
        assert all(h.body.startswith(b"payload") or h.body == b"x" for h in origin.snapshot())


def test_ban_retries_zero_passes_the_ban_through(start_gateway):
    with RecordingOrigin("127.0.0.1", ban_for({D1})) as origin:
        gw = start_gateway(POOL_D1_D2, "--ban-retries", "0", *quiet_flags())
        seen = []
        for i in range(8):
            r = get(gw, origin, f"/z{i}")
            seen.append(r.status)
            if r.status == 429:
                assert r.header("X-Exitpool-Exit") == "d1", r.headers
                break
            assert served_by(r, "d2", D2)
        assert seen[-1] == 429, seen
        assert origin.count() == len(seen), "a request was retried with --ban-retries 0"
        for i in range(3):
            assert served_by(get(gw, origin, f"/y{i}"), "d2", D2)
        assert origin.count(D1) == 1


def test_every_exit_banned(start_gateway):
    with RecordingOrigin("127.0.0.1", ban_for({D1, D2}, 429, retry_after="3")) as origin:
        gw = start_gateway(POOL_D1_D2, "--queue-timeout", "0.5", *quiet_flags())
        r = get(gw, origin, "/one")
        # Both exits tried once (d1, then d2): with no exit left, the client gets the target's own answer.
        assert origin.count(D1) == 1 and origin.count(D2) == 1, origin.by_source()
        assert r.status == 429 and r.text.startswith("banned "), (r.status, r.headers, r.text)
        # While both are banned for this host nothing reaches it: a 503 after the queue timeout.
        t0 = time.monotonic()
        r = get(gw, origin, "/two")
        took = time.monotonic() - t0
        assert r.status == 503, (r.status, r.text)
        assert r.header("Retry-After") and r.header("Retry-After").isdigit(), r.headers
        assert 1 <= int(r.header("Retry-After")) <= 4, r.headers
        assert r.header("X-Exitpool-Error"), r.headers
        assert 0.3 <= took < 3, took
        assert origin.count() == 2, origin.by_source()


def test_only_exit_banned_passes_the_ban_through(start_gateway):
    """A pool of one: no other exit to retry on, so the client gets the target's answer, not a 502."""
    with RecordingOrigin("127.0.0.1", ban_for({D1}, 429)) as origin:
        gw = start_gateway([direct(21, "d1")], "--queue-timeout", "0.5", *quiet_flags())
        r = get(gw, origin, "/only")
        assert origin.count() == 1, origin.by_source()
        assert r.status == 429 and r.text == f"banned {D1}\n", (r.status, r.headers, r.text)
        assert r.header("X-Exitpool-Exit") == "d1", r.headers


def test_ban_status_comma_list(start_gateway):
    with RecordingOrigin("127.0.0.1", ban_for({D1}, 418)) as teapot, \
            RecordingOrigin("127.0.0.3", ban_for({D1, D2}, 429)) as always_429:
        gw = start_gateway(POOL_D1_D2, "--ban-status", "418,599", *quiet_flags())
        for i in range(5):
            assert served_by(get(gw, teapot, f"/{i}"), "d2", D2)
        assert teapot.count(D1) == 1, teapot.by_source()
        for i in range(4):
            assert get(gw, always_429, f"/{i}").status == 429
        assert always_429.count() == 4 and always_429.count(D1) >= 1, always_429.by_source()


# ------------------------------------------------------------------------- health and ejection

EJECT = ["--eject-after", "2", "--retries", "2", "--cooldown", "60", "--max-cooldown", "60", "--dial-timeout", "1",
         "--response-timeout", "1"]


def mixed_requests(gw, origin, n: int, timeout: float = 5.0,
                   kinds: str = "mixed") -> list[tuple[str, int, str | None, str]]:
    """n requests, plain HTTP and CONNECT (a GET inside) alternating, or `kinds` "http" or "connect"
    only: [(kind, status, exit id, body)]."""
    out = []
    for i in range(n):
        if kinds == "http" or (kinds == "mixed" and i % 2 == 0):
            r = get(gw, origin, f"/m{i}", timeout=timeout)
            out.append(("http", r.status, r.header("X-Exitpool-Exit"), r.text))
        else:
            c, head = connect_tunnel(gw.port, origin.hostport, timeout=timeout)
            with c:
                body = ""
                if head.status == 200:
                    body = c.request("GET", f"/m{i}", {"Connection": "close"}, host=origin.hostport).text
            out.append(("connect", head.status, head.header("X-Exitpool-Exit"), body))
    return out


def assert_all_served(results, allowed: dict[str, str]):
    for kind, status, exit_id, body in results:
        assert status == 200 and exit_id in allowed and body == f"ok {allowed[exit_id]}\n", \
            (kind, status, exit_id, body, results)


@pytest.mark.parametrize("scheme", ["socks5", "http"])
@pytest.mark.parametrize("mode", ["blackhole", "garbage"])
def test_broken_upstream_is_ejected_and_no_request_fails(start_gateway, mode, scheme):
    with TcpFault(mode) as bad, RecordingOrigin("127.0.0.1", ban_for(set())) as origin:
        gw = start_gateway([f"{scheme}://127.0.0.1:{bad.port} id=bad", *POOL_D1_D2], *EJECT, *quiet_flags())
        # Plain HTTP first (absolute-form through an http:// exit is no CONNECT handshake: the broken
        # upstream shows only in its answer), then CONNECT, then both.
        for kinds in ("http", "connect", "mixed"):
            assert_all_served(mixed_requests(gw, origin, 6, kinds=kinds), {"d1": D1, "d2": D2})
        # Dialed until --eject-after 2 failures, then left alone (cool-down 60 s).
        assert bad.count() == 2, f"{bad.count()} connections reached the {mode} upstream"
        assert_all_served(mixed_requests(gw, origin, 6), {"d1": D1, "d2": D2})
        assert bad.count() == 2


def test_killed_upstream_is_ejected_and_no_request_fails(start_gateway, gateway_dir):
    ms = start_microsocks(gateway_dir, "127.0.0.17")
    try:
        with RecordingOrigin("127.0.0.1", ban_for(set())) as origin:
            # Failed dials are logged per request at debug level.
            gw = start_gateway([f"socks5://127.0.0.1:{ms.port} id=ms", *POOL_D1_D2], *EJECT, *quiet_flags(),
                               "--log-level", "debug")
            allowed = {"d1": D1, "d2": D2, "ms": "127.0.0.17"}
            assert_all_served(mixed_requests(gw, origin, 6), allowed)
            assert origin.count("127.0.0.17") >= 1, origin.by_source()
            ms.stop()
            before = origin.count("127.0.0.17")
            assert_all_served(mixed_requests(gw, origin, 12), allowed)
            assert origin.count("127.0.0.17") == before
            failed = gw.log().count("via exit ms failed")
            assert failed == 2, f"{failed} dials through the dead exit (expected --eject-after 2)"
            assert_all_served(mixed_requests(gw, origin, 6), allowed)
            assert gw.log().count("via exit ms failed") == 2, "the ejected exit was dialed again"
    finally:
        ms.stop()


def test_ejected_exit_shows_in_admin_exits(start_gateway):
    admin = free_port()
    # close=True: no upstream connection reuse, so one dial per request.
    with RecordingOrigin("127.0.0.1", ban_for(set()), close=True) as origin:
        gw = start_gateway([f"http://127.0.0.1:{closed_port()} id=dead", *POOL_D1_D2], *EJECT,
                           "--admin", f"127.0.0.1:{admin}", *quiet_flags())
        assert_all_served(mixed_requests(gw, origin, 8), {"d1": D1, "d2": D2})
        exits = admin_exits(admin)
        assert set(exits) == {"dead", "d1", "d2"}, exits
        assert exits["dead"]["state"] == "ejected", exits["dead"]
        assert exits["dead"]["failures"] >= 2, exits["dead"]
        assert exits["d1"]["state"] == "healthy" and exits["d2"]["state"] == "healthy", exits
        assert exits["d1"]["successes"] + exits["d2"]["successes"] == 8, exits


def test_ban_shows_in_admin_exits(start_gateway):
    admin = free_port()
    with RecordingOrigin("127.0.0.1", ban_for({D1}, retry_after="100")) as origin:
        gw = start_gateway(POOL_D1_D2, "--admin", f"127.0.0.1:{admin}", *quiet_flags())
        for i in range(6):
            assert served_by(get(gw, origin, f"/{i}"), "d2", D2)
        exits = admin_exits(admin)
        assert [b["host"] for b in exits["d1"]["bans"]] == ["127.0.0.1"], exits["d1"]
        assert 90 <= exits["d1"]["bans"][0]["remaining_s"] <= 100, exits["d1"]
        assert exits["d2"]["bans"] == [], exits["d2"]


# ---------------------------------------------------------------------------------------- tiers


def test_lower_tier_is_preferred(start_gateway):
    with RecordingOrigin("127.0.0.1", ban_for(set())) as origin:
        gw = start_gateway([direct(21, "d1", tier=0), direct(22, "d2", tier=0),
                            direct(23, "r3", tier=1), direct(24, "r4", tier=1)], *quiet_flags())
        results = mixed_requests(gw, origin, 12)
        assert_all_served(results, {"d1": D1, "d2": D2})
        assert set(origin.by_source()) == {D1, D2}, origin.by_source()
        # SOCKS5 as well.
        for _ in range(4):
            c, rep = socks5_connect(gw.port, "127.0.0.1", origin.port)
            with c:
                assert rep == 0
                r = c.request("GET", "/s", {"Connection": "close"}, host=origin.hostport)
                assert r.text in (f"ok {D1}\n", f"ok {D2}\n"), r.text


def test_higher_tier_serves_when_lower_tier_is_dead(start_gateway):
    with RecordingOrigin("127.0.0.1", ban_for(set())) as origin:
        gw = start_gateway([f"http://127.0.0.1:{closed_port()} id=dead1 tier=0",
                            f"socks5://127.0.0.1:{closed_port()} id=dead2 tier=0",
                            direct(23, "r3", tier=1), direct(24, "r4", tier=1)], *EJECT, *quiet_flags())
        results = mixed_requests(gw, origin, 10)
        assert_all_served(results, {"r3": "127.0.0.23", "r4": "127.0.0.24"})


def test_higher_tier_serves_a_host_that_banned_the_lower_tier(start_gateway):
    with RecordingOrigin("127.0.0.1", ban_for({D1})) as banning, \
            RecordingOrigin("127.0.0.3", ban_for(set())) as other:
        gw = start_gateway([direct(21, "d1", tier=0), direct(23, "r3", tier=1)], *quiet_flags())
        for i in range(5):
            r = get(gw, banning, f"/{i}")
            assert served_by(r, "r3", "127.0.0.23"), (r.status, r.text)
        assert banning.count(D1) == 1, banning.by_source()
        # Another host is still served by tier 0 only.
        for i in range(5):
            assert served_by(get(gw, other, f"/{i}"), "d1", D1)
        assert set(other.by_source()) == {D1}


def test_sticky_session_on_a_dead_exit_moves(start_gateway, gateway_dir):
    ms = start_microsocks(gateway_dir, "127.0.0.18", name="sticky-microsocks")
    try:
        with RecordingOrigin("127.0.0.1", ban_for(set())) as origin:
            gw = start_gateway([f"socks5://127.0.0.1:{ms.port} id=ms", *POOL_D1_D2], *EJECT, *quiet_flags())

            def as_session(sid, path):
                return get(gw, origin, path, headers={"Proxy-Authorization": basic(f"alice-session-{sid}", "x")})

            pinned = None
            for k in range(30):  # a session id the gateway pinned to ms
                r = as_session(f"s{k}", "/pin")
                assert r.status == 200
                if r.header("X-Exitpool-Exit") == "ms":
                    pinned = f"s{k}"
                    break
            assert pinned, "no session landed on ms in 30 tries"
            for i in range(3):
                assert as_session(pinned, f"/still{i}").header("X-Exitpool-Exit") == "ms"
            ms.stop()
            moved = set()
            for i in range(6):
                r = as_session(pinned, f"/moved{i}")
                assert r.status == 200 and r.header("X-Exitpool-Exit") in ("d1", "d2"), (r.status, r.text)
                moved.add(r.header("X-Exitpool-Exit"))
            assert len(moved) == 1, f"the session moved, but not to one exit: {moved}"
    finally:
        ms.stop()
