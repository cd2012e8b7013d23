"""Per-exit limits (issue 3): --per-exit-rate, --per-exit-host-rate, --per-exit-concurrency, and the
bounded queue (--queue-timeout) that ends in a 503 with Retry-After, or a SOCKS5 failure reply.

Rates are measured where they matter: at the origin (a RecordingOrigin), by source address.
"""
from __future__ import annotations

import threading
import time

from faults import Answer, RecordingOrigin, connect_tunnel, direct, max_in_window, quiet_flags, request
from helpers import socks5_connect

EXITS4 = [direct(n, f"d{n}") for n in (21, 22, 23, 24)]
SRC4 = {f"127.0.0.{n}" for n in (21, 22, 23, 24)}


def assert_capacity_503(r, took: float, queue_timeout: float):
    assert r.status == 503, (r.status, r.headers, r.text)
    ra = r.header("Retry-After")
    assert ra is not None and ra.isdigit() and int(ra) >= 1, r.headers
    assert r.header("X-Exitpool-Error"), r.headers
    # It waited for capacity (the queue timeout), then gave up: neither at once nor forever.
    assert queue_timeout * 0.8 <= took < queue_timeout + 2.0, took


def test_per_exit_rate_holds_at_the_origin(start_gateway):
    rate, burst, duration = 5, 1, 3.0
    with RecordingOrigin("127.0.0.1") as origin:
        gw = start_gateway(EXITS4, "--per-exit-rate", str(rate), "--queue-timeout", "0.3", *quiet_flags())
        results: list[tuple] = []
        lock = threading.Lock()
        start = time.monotonic()
        end = start + duration

        def client(k: int):
            for i in range(300):  # bounded even if every request returned at once
                if time.monotonic() >= end:
                    return
                try:
                    r = request(gw.port, "GET", origin.url(f"/c{k}-{i}"), timeout=5)
                    item = (r.status, r.header("Retry-After"), r.header("X-Exitpool-Error"), r.text)
                except Exception as e:  # noqa: BLE001 - a failure is a result to count, not a crash
                    item = ("error", None, None, repr(e))
                with lock:
                    results.append(item)

        threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=duration + 15)
        assert not any(t.is_alive() for t in threads), "a client thread hung"

        # Every request was answered: a 200 or a 503 with Retry-After, none dropped or failed.
        ok = [x for x in results if x[0] == 200]
        refused = [x for x in results if x[0] == 503]
        other = [x for x in results if x[0] not in (200, 503)]
        assert not other, other[:5]
        assert all(x[1] and x[1].isdigit() and x[2] for x in refused), refused[:5]
        assert len(ok) == origin.count(), (len(ok), origin.count())
        assert all(x[3] in {f"{s}\n" for s in SRC4} for x in ok)
        # The clients did push past the limit, and every exit served.
        assert refused, "no request was refused: the clients never exceeded the rate"
        per_src = {}
        for h in origin.snapshot():
            per_src.setdefault(h.src, []).append(h.t)
        assert set(per_src) == SRC4, origin.by_source()
        limit = int(rate * duration) + burst
        for src, times in per_src.items():
            most = max_in_window(times, duration)
            assert most <= limit, f"{src}: {most} requests within {duration} s (limit {limit})"
            # Sanity: the limiter lets the rate through (it does not starve an exit).
            assert len(times) >= rate * duration * 0.6, (src, len(times))


def test_queue_timeout_gives_503_and_socks_failure(start_gateway):
    with RecordingOrigin("127.0.0.1") as origin:
        # 0.2/s: after one request each, neither exit has a token for 5 s.
        gw = start_gateway(EXITS4[:2], "--per-exit-rate", "0.2", "--queue-timeout", "0.5", *quiet_flags())
        first = {request(gw.port, "GET", origin.url("/1")).header("X-Exitpool-Exit"),
                 request(gw.port, "GET", origin.url("/2")).header("X-Exitpool-Exit")}
        # A pick skips the exit without a token: both exits served one request each.
        assert first == {"d21", "d22"}, first
        t0 = time.monotonic()
        r = request(gw.port, "GET", origin.url("/3"))
        assert_capacity_503(r, time.monotonic() - t0, 0.5)
        assert int(r.header("Retry-After")) <= 6, r.headers

        t0 = time.monotonic()
        c, head = connect_tunnel(gw.port, origin.hostport)
        c.close()
        assert_capacity_503(head, time.monotonic() - t0, 0.5)

        t0 = time.monotonic()
        c, rep = socks5_connect(gw.port, "127.0.0.1", origin.port)
        c.close()
        took = time.monotonic() - t0
        assert rep == 1, f"SOCKS5 reply {rep}, expected 1 (general failure)"
        assert 0.4 <= took < 2.5, took
        assert origin.count() == 2, origin.by_source()


def test_queue_waits_for_a_token(start_gateway):
    with RecordingOrigin("127.0.0.1") as origin:
        gw = start_gateway(EXITS4[:1], "--per-exit-rate", "2", "--queue-timeout", "5", *quiet_flags())
        statuses = []

        def one(i):
            statuses.append(request(gw.port, "GET", origin.url(f"/{i}"), timeout=10).status)

        t0 = time.monotonic()
        threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=15)
        took = time.monotonic() - t0
        assert statuses == [200] * 4, statuses  # they waited in the queue instead of failing
        times = sorted(h.t for h in origin.snapshot())
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert all(g >= 0.4 for g in gaps), gaps  # 2/s: one every 0.5 s
        assert 1.3 <= took < 5, took


def test_per_exit_host_rate(start_gateway):
    with RecordingOrigin("127.0.0.1") as one, RecordingOrigin("127.0.0.3") as three:
        gw = start_gateway(EXITS4[:1], "--per-exit-host-rate", "1", "--queue-timeout", "0.2", *quiet_flags())
        assert request(gw.port, "GET", one.url("/a")).status == 200
        t0 = time.monotonic()
        r = request(gw.port, "GET", one.url("/b"))
        assert_capacity_503(r, time.monotonic() - t0, 0.2)
        # Another target host has its own bucket on the same exit.
        assert request(gw.port, "GET", three.url("/a")).status == 200
        time.sleep(1.1)
        assert request(gw.port, "GET", one.url("/c")).status == 200
        assert one.count() == 2 and three.count() == 1


def test_per_exit_concurrency_at_the_origin(start_gateway):
    slow = lambda hit: Answer(200, f"{hit.src}\n".encode(), delay=0.3)  # noqa: E731
    with RecordingOrigin("127.0.0.1", slow) as origin:
        gw = start_gateway(EXITS4[:2], "--per-exit-concurrency", "1", "--queue-timeout", "5", *quiet_flags())
        statuses = []

        def one(i):
            try:
                statuses.append(request(gw.port, "GET", origin.url(f"/{i}"), timeout=10).status)
            except Exception as e:  # noqa: BLE001
                statuses.append(repr(e))

        t0 = time.monotonic()
        threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=15)
        took = time.monotonic() - t0
        assert statuses == [200] * 8, statuses
        assert origin.max_inflight == {"127.0.0.21": 1, "127.0.0.22": 1}, origin.max_inflight
        # 8 requests of 0.3 s, one at a time on each of 2 exits: at least 4 rounds.
        assert took >= 1.1, took


def test_per_exit_concurrency_counts_open_tunnels(start_gateway):
    with RecordingOrigin("127.0.0.1") as origin:
        gw = start_gateway(EXITS4[:2], "--per-exit-concurrency", "1", "--queue-timeout", "0.5", *quiet_flags())
        tunnels = []
        try:
            for _ in range(2):
                c, head = connect_tunnel(gw.port, origin.hostport)
                tunnels.append(c)
                assert head.status == 200, head
            # Both exits hold an open tunnel: no capacity for a third.
            t0 = time.monotonic()
            c, head = connect_tunnel(gw.port, origin.hostport)
            c.close()
            assert_capacity_503(head, time.monotonic() - t0, 0.5)
            t0 = time.monotonic()
            r = request(gw.port, "GET", origin.url("/x"))
            assert_capacity_503(r, time.monotonic() - t0, 0.5)
            # Closing one frees its exit.
            tunnels.pop().close()
            time.sleep(0.1)
            c, head = connect_tunnel(gw.port, origin.hostport)
            tunnels.append(c)
            assert head.status == 200, head
            r = c.request("GET", "/in", {"Connection": "close"}, host=origin.hostport)
            assert r.status == 200
        finally:
            for c in tunnels:
                c.close()
