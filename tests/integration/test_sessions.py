"""Sticky sessions keep their exit (issue 19): a session whose exit is healthy but busy (rate limit,
concurrency cap) waits for it within --queue-timeout instead of changing address, and then gets a 503
with Retry-After (SOCKS5 0x01) naming the limit; it moves only when its exit is unusable (dial failure,
ejection, ban, reload), once, and stays where it went. `sessbusy-move` / `--session-busy move` ask for
the old behaviour. /metrics counts waits and moves by cause.

Origins are RecordingOrigin (faults.py): they see the source address each request left from, i.e. the
exit, so "one address" is checked where the target would see it. Direct exits leave from 127.0.0.21-24.
"""
from __future__ import annotations

import re
import threading
import time

from faults import (Answer, RecordingOrigin, admin_get, direct, max_in_window, quiet_flags, request, start_microsocks,
                    wait_until)
from helpers import basic, free_port, socks5_connect

EXITS4 = [direct(n, f"d{n}") for n in (21, 22, 23, 24)]
SRC4 = {f"127.0.0.{n}" for n in (21, 22, 23, 24)}


def as_user(user: str) -> dict:
    return {"Proxy-Authorization": basic(user, "x")}


def metric(port: int, name: str, **labels) -> float:
    status, _, body = admin_get(port, "/metrics")
    assert status == 200, status
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(rf"^{name}{{{want}}} (\S+)$", body.decode(), re.M)
    assert m, f"no {name}{{{want}}} in /metrics"
    return float(m.group(1))


def start_with_admin(start_gateway, pool, *args):
    port = free_port()
    gw = start_gateway(pool, "--admin", f"127.0.0.1:{port}", *args, *quiet_flags())
    wait_until(lambda: admin_get(port, "/healthz")[0] == 200, 5, what="the admin endpoint")
    gw.admin_port = port
    return gw


def test_rate_limited_session_waits_for_its_exit(start_gateway):
    """The issue's case: 4 exits at 5/s with a burst of 5, 30 requests in a row in one session: one
    address, and the origin sees at most rate x window + burst from it."""
    with RecordingOrigin("127.0.0.1") as origin:
        gw = start_with_admin(start_gateway, EXITS4, "--per-exit-rate", "5", "--per-exit-burst", "5")
        t0 = time.monotonic()
        for i in range(30):
            r = request(gw.port, "GET", origin.url(f"/{i}"), headers=as_user("alice-session-s1"))
            assert r.status == 200, (i, r.status, r.headers, r.text)
        took = time.monotonic() - t0
        srcs = origin.by_source()
        assert len(srcs) == 1, f"the session changed address: {srcs}"
        times = [h.t for h in origin.snapshot()]
        for window in (1.0, 2.0, 3.0):
            assert max_in_window(times, window) <= 5 * window + 5, (window, max_in_window(times, window))
        assert took >= 4.0, f"30 requests at 5/s after a burst of 5 took only {took:.2f} s"
        waits = metric(gw.admin_port, "exitpool_session_waits_total", cause="rate_limit")
        assert 20 <= waits <= 25, waits  # one per request that found the exit out of tokens
        assert metric(gw.admin_port, "exitpool_session_moves_total", cause="busy") == 0


def test_concurrency_cap_queues_a_sessions_parallel_requests(start_gateway):
    def slow(hit):
        return Answer(200, f"{hit.src}\n".encode(), delay=0.6)

    with RecordingOrigin("127.0.0.1", slow) as origin:
        gw = start_with_admin(start_gateway, EXITS4, "--per-exit-concurrency", "1")
        statuses: list[int] = []

        def one(i):
            r = request(gw.port, "GET", origin.url(f"/p{i}"), headers=as_user("bob-session-cart"), timeout=10)
            statuses.append(r.status)

        threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=15)
        assert statuses == [200, 200, 200], statuses
        assert len(origin.by_source()) == 1, origin.by_source()
        assert max(origin.max_inflight.values()) == 1, origin.max_inflight  # they queued, one at a time
        assert metric(gw.admin_port, "exitpool_session_waits_total", cause="concurrency") >= 1


def test_wait_ends_in_503_naming_the_limit_and_socks_failure(start_gateway):
    with RecordingOrigin("127.0.0.1") as origin:
        # 0.2/s: after one request the session's exit has no token for 5 s; other exits have plenty.
        gw = start_gateway(EXITS4, "--per-exit-rate", "0.2", "--queue-timeout", "0.5", *quiet_flags())
        first = request(gw.port, "GET", origin.url("/1"), headers=as_user("carol-session-k"))
        assert first.status == 200
        t0 = time.monotonic()
        r = request(gw.port, "GET", origin.url("/2"), headers=as_user("carol-session-k"))
        took = time.monotonic() - t0
        assert r.status == 503, (r.status, r.text)
        assert 0.4 <= took < 2.5, took
        ra = r.header("Retry-After")
        assert ra and ra.isdigit() and 1 <= int(ra) <= 6, r.headers
        why = r.header("X-Exitpool-Error") or ""
        assert "session" in why and "rate_limit" in why and first.header("X-Exitpool-Exit") in why, why
        c, rep = socks5_connect(gw.port, "127.0.0.1", origin.port, user="carol-session-k")
        c.close()
        assert rep == 1, rep
        assert origin.count() == 1, origin.by_source()
        # Without a session the same gateway still rotates onto the exits that have tokens.
        assert request(gw.port, "GET", origin.url("/3")).status == 200


def test_move_when_busy_is_an_explicit_choice(start_gateway):
    with RecordingOrigin("127.0.0.1") as origin:
        gw = start_with_admin(start_gateway, EXITS4, "--per-exit-rate", "0.2")
        for i in range(4):  # per request, in the username
            r = request(gw.port, "GET", origin.url(f"/u{i}"), headers=as_user("dave-session-m-sessbusy-move"))
            assert r.status == 200, (r.status, r.text)
        assert set(origin.by_source()) == SRC4, origin.by_source()
        assert metric(gw.admin_port, "exitpool_session_moves_total", cause="busy") == 3
    with RecordingOrigin("127.0.0.1") as origin:  # globally
        gw = start_gateway(EXITS4, "--per-exit-rate", "0.2", "--session-busy", "move", *quiet_flags())
        for i in range(4):
            assert request(gw.port, "GET", origin.url(f"/g{i}"), headers=as_user("erin-session-m")).status == 200
        assert set(origin.by_source()) == SRC4, origin.by_source()
    with RecordingOrigin("127.0.0.1") as origin:  # sessbusy-wait overrides the global choice
        gw = start_gateway(EXITS4, "--per-exit-rate", "0.2", "--session-busy", "move", "--queue-timeout", "0.5",
                           *quiet_flags())
        assert request(gw.port, "GET", origin.url("/w1"), headers=as_user("frank-session-w-sessbusy-wait")).status == 200
        t0 = time.monotonic()
        r = request(gw.port, "GET", origin.url("/w2"), headers=as_user("frank-session-w-sessbusy-wait"))
        assert r.status == 503 and time.monotonic() - t0 >= 0.4, (r.status, r.text)
        assert origin.count() == 1, origin.by_source()


def test_a_failed_exit_moves_the_session_once_and_it_stays(start_gateway, gateway_dir):
    """The session's exit dies: the session moves once (dial failure), and stays on the exit it moved to
    after the old one is back and healthy."""
    ms = start_microsocks(gateway_dir, "127.0.0.18", name="session-microsocks")
    try:
        with RecordingOrigin("127.0.0.1") as origin:
            gw = start_with_admin(start_gateway, [f"socks5://127.0.0.1:{ms.port} id=ms", *EXITS4[:2]],
                                  "--eject-after", "1", "--cooldown", "1", "--max-cooldown", "1",
                                  "--dial-timeout", "1")
            pinned = None
            for k in range(40):
                r = request(gw.port, "GET", origin.url("/pin"), headers=as_user(f"gina-session-s{k}"))
                assert r.status == 200
                if r.header("X-Exitpool-Exit") == "ms":
                    pinned = f"gina-session-s{k}"
                    break
            assert pinned, "no session landed on ms in 40 tries"
            port = ms.port
            ms.stop()
            r = request(gw.port, "GET", origin.url("/moved"), headers=as_user(pinned))
            assert r.status == 200, (r.status, r.text)
            moved_to = r.header("X-Exitpool-Exit")
            assert moved_to in ("d21", "d22"), moved_to
            # The old exit comes back on the same port and recovers (cool-down 1 s, then a probe).
            ms = start_microsocks_on(gateway_dir, port)
            time.sleep(1.5)
            for i in range(6):  # anonymous requests let the pool probe and re-admit it
                request(gw.port, "GET", origin.url(f"/probe{i}"))
            assert any(h.src == "127.0.0.18" for h in origin.snapshot()), "ms never served again"
            for i in range(5):
                r = request(gw.port, "GET", origin.url(f"/after{i}"), headers=as_user(pinned))
                assert r.status == 200 and r.header("X-Exitpool-Exit") == moved_to, (i, r.header("X-Exitpool-Exit"))
            moves = sum(metric(gw.admin_port, "exitpool_session_moves_total", cause=c)
                        for c in ("ejected", "banned", "removed", "dial_failed", "busy"))
            assert moves == 1, moves
    finally:
        ms.stop()


def start_microsocks_on(log_dir, port: int):
    """microsocks again on a given port (the exit's address in the pool), leaving from 127.0.0.18."""
    import shutil

    from helpers import start_process
    svc = start_process("session-microsocks-2", [shutil.which("microsocks"), "-i", "127.0.0.1", "-p", str(port),
                                                 "-b", "127.0.0.18"], log_dir / f"session-microsocks-2-{port}.log",
                        port)
    svc.wait_ready(timeout=10)
    return svc


def test_a_failing_target_does_not_move_the_session(start_gateway):
    """A target that refuses (or whose name does not resolve) behind a working exit says nothing about
    the exit: the session's request fails at once, and the session keeps its exit."""
    from helpers import closed_port
    with RecordingOrigin("127.0.0.1") as origin:
        gw = start_with_admin(start_gateway, EXITS4)
        first = request(gw.port, "GET", origin.url("/a"), headers=as_user("hana-session-t"))
        assert first.status == 200
        dead = closed_port()
        for i in range(3):
            r = request(gw.port, "GET", f"http://127.0.0.1:{dead}/x{i}", headers=as_user("hana-session-t"))
            assert r.status == 502, (r.status, r.text)
        again = request(gw.port, "GET", origin.url("/b"), headers=as_user("hana-session-t"))
        assert again.header("X-Exitpool-Exit") == first.header("X-Exitpool-Exit")
        assert metric(gw.admin_port, "exitpool_session_moves_total", cause="dial_failed") == 0
