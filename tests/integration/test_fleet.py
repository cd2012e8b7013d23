"""A fleet of gateways sharing state on Redis (issue 12): `serve --state redis://...`.

Real redis-server (conftest.start_redis) and several exitpool gateways on loopback; the origins are
RecordingOrigin (faults.py), which see the source address, i.e. the exit, of every request. Direct exits
leave from 127.0.0.21-24. Every load loop is bounded in time and in count.
"""
from __future__ import annotations

import re
import threading
import time

from faults import Answer, RecordingOrigin, admin_get, direct, quiet_flags, request, wait_until
from helpers import basic, exitpool_bin, free_port, run

D1, D2 = "127.0.0.21", "127.0.0.22"
POOL2 = [direct(21, "d1"), direct(22, "d2")]
EXITS4 = [direct(n, f"d{n}") for n in (21, 22, 23, 24)]


def metric(port: int, name: str) -> float:
    status, _, body = admin_get(port, "/metrics")
    assert status == 200, status
    m = re.search(rf"^{name} (\S+)$", body.decode(), re.M)
    assert m, f"no {name} in /metrics"
    return float(m.group(1))


def fleet_gateway(start_gateway, redis, pool, *args):
    port = free_port()
    gw = start_gateway(pool, "--state", redis.url, "--admin", f"127.0.0.1:{port}", *args, *quiet_flags())
    gw.admin_port = port
    return gw


def start_fleet(start_gateway, redis, pool, n, *args):
    gws = [fleet_gateway(start_gateway, redis, pool, *args) for _ in range(n)]
    for gw in gws:
        wait_until(lambda gw=gw: metric(gw.admin_port, "exitpool_fleet_gateways") == n, 5,
                   what=f"{n} gateways in the fleet")
        assert metric(gw.admin_port, "exitpool_state_backend_up") == 1
    return gws


def ban_for(banned: set[str]):
    def decide(hit):
        if hit.src in banned:
            return Answer(429, f"banned {hit.src}\n".encode())
        return Answer(200, f"ok {hit.src}\n".encode())
    return decide


def test_ban_seen_by_one_gateway_is_honoured_by_the_others_within_a_second(start_gateway, start_redis):
    redis = start_redis()
    with RecordingOrigin("127.0.0.1", ban_for({D1})) as banning, \
            RecordingOrigin("127.0.0.3", ban_for(set())) as other:
        a, b, c = start_fleet(start_gateway, redis, POOL2, 3)
        # Through A until d1 has been banned (round-robin: within two requests).
        for i in range(4):
            r = request(a.port, "GET", banning.url(f"/a{i}"))
            assert r.status == 200, (r.status, r.text)
            if banning.count(D1):
                break
        assert banning.count(D1) == 1, banning.by_source()
        time.sleep(1.0)
        # B and C never send to the banned host through d1 now: round-robin would, half the time.
        for gw in (b, c):
            for i in range(8):
                r = request(gw.port, "GET", banning.url(f"/bc{i}"))
                assert r.status == 200 and r.text == f"ok {D2}\n", (r.status, r.text)
        assert banning.count(D1) == 1, banning.by_source()
        # Other hosts are unaffected: d1 still serves them through B.
        for i in range(4):
            request(b.port, "GET", other.url(f"/o{i}"))
        assert other.count(D1) >= 1, other.by_source()
        # Stored for gateways that connect later.
        assert "d1\n127.0.0.1" in redis.cli("ZRANGE", "exitpool:bans", "0", "-1") or \
            "d1" in redis.cli("ZRANGE", "exitpool:bans", "0", "-1")


def test_per_exit_rate_holds_across_three_gateways(start_gateway, start_redis):
    """--per-exit-rate 5 through three gateways: each exit address sends at most 5/s + burst (+ the
    batching error, N gateways x 1 token), counted in the origin's own log."""
    redis = start_redis()
    rate, burst, n, duration = 5, 1, 3, 4.0
    with RecordingOrigin("127.0.0.1") as origin:
        gws = start_fleet(start_gateway, redis, POOL2, n, "--per-exit-rate", str(rate), "--per-exit-burst",
                          str(burst), "--queue-timeout", "2")
        stop_at = time.monotonic() + duration
        counts = {"sent": 0}
        lock = threading.Lock()

        def load(gw, k):
            for i in range(200):  # bounded in count as well as in time
                if time.monotonic() >= stop_at:
                    return
                request(gw.port, "GET", origin.url(f"/{k}-{i}"), timeout=5)
                with lock:
                    counts["sent"] += 1

        threads = [threading.Thread(target=load, args=(gw, f"{j}-{t}")) for j, gw in enumerate(gws) for t in range(3)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=duration + 10)
        elapsed = time.monotonic() - t0
        hits = origin.snapshot()
        for src in (D1, D2):
            times = sorted(h.t for h in hits if h.src == src)
            assert times, f"{src} sent nothing"
            # Over the whole run, and in every 1 s window.
            allowed = rate * elapsed + burst + n
            assert len(times) <= allowed, (src, len(times), allowed, elapsed)
            best, j = 0, 0
            for i in range(len(times)):
                while times[i] - times[j] > 1.0:
                    j += 1
                best = max(best, i - j + 1)
            assert best <= rate + burst + n, (src, best)
            print(f"{src}: {len(times)} requests in {elapsed:.2f} s ({len(times) / elapsed:.2f}/s), "
                  f"busiest 1 s window {best}; allowed {allowed:.1f} and {rate + burst + n}")
        # Without the fleet it would be three times the rate; with it, most of what was allowed was used.
        total = sum(1 for h in hits if h.src in (D1, D2))
        assert total >= rate * 2 * duration * 0.5, (total, counts)


def test_sticky_session_through_three_gateways_keeps_one_exit(start_gateway, start_redis):
    redis = start_redis()
    with RecordingOrigin("127.0.0.1") as origin:
        gws = start_fleet(start_gateway, redis, EXITS4, 3)
        for i in range(12):
            gw = gws[i % 3]
            r = request(gw.port, "GET", origin.url(f"/{i}"),
                        headers={"Proxy-Authorization": basic("alice-session-fleet1", "x")})
            assert r.status == 200, (r.status, r.text)
        assert len(origin.by_source()) == 1, origin.by_source()
        # One fleet-wide lifetime: the session's key in Redis has a TTL.
        keys = redis.cli("--scan", "--pattern", "exitpool:s:*").split()
        assert len(keys) == 1, keys
        assert 0 < int(redis.cli("PTTL", keys[0])) <= 10 * 60 * 1000


def test_redis_killed_under_load_fails_no_request_and_recovers(start_gateway, start_redis):
    redis = start_redis()
    with RecordingOrigin("127.0.0.1") as origin:
        a, b = start_fleet(start_gateway, redis, POOL2, 2, "--per-exit-rate", "100")
        stop = threading.Event()
        results: list[int] = []

        def load(gw, k):
            for i in range(2000):
                if stop.is_set():
                    return
                r = request(gw.port, "GET", origin.url(f"/{k}-{i}"), timeout=5)
                results.append(r.status)
                time.sleep(0.01)

        threads = [threading.Thread(target=load, args=(gw, k)) for k, gw in enumerate((a, b))]
        for t in threads:
            t.start()
        try:
            time.sleep(1.0)
            redis.kill()
            wait_until(lambda: metric(a.admin_port, "exitpool_state_backend_up") == 0, 3, what="backend down")
            time.sleep(1.0)
            n_down = len(results)
            redis.start()
            t_restart = time.monotonic()
            for gw in (a, b):
                wait_until(lambda gw=gw: metric(gw.admin_port, "exitpool_state_backend_up") == 1, 5,
                           what="backend up again")
            wait_until(lambda: metric(a.admin_port, "exitpool_fleet_gateways") == 2, 5, what="fleet of 2 again")
            assert time.monotonic() - t_restart <= 5
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=15)
        assert results and all(s == 200 for s in results), [s for s in results if s != 200][:10]
        assert len(results) > n_down  # load went on while Redis was down and after
        assert "unreachable" in a.log() or "lost" in a.log()


def test_fleet_command_lists_live_gateways(start_gateway, start_redis):
    redis = start_redis()
    gws = start_fleet(start_gateway, redis, POOL2, 2)
    out = run([str(exitpool_bin()), "fleet", "--state", redis.url])
    text = out.stdout.decode()
    assert out.returncode == 0, out.stderr
    assert text.startswith("2 gateways alive"), text
    for gw in gws:
        assert f"listen={gw.hostport}" in text, text


def test_bad_state_url_wrong_password_and_unreachable_redis(start_gateway, start_redis):
    bad = run([str(exitpool_bin()), "serve", "--state", "redis://127.0.0.1:99999"])
    assert bad.returncode == 2 and b"--state: port '99999'" in bad.stderr, bad.stderr
    # A wrong password is a configuration error: the gateway refuses to start, naming it.
    redis = start_redis(password="s3cret")
    wrong = run([str(exitpool_bin()), "serve", "--listen", f"127.0.0.1:{free_port()}", "--state",
                 f"redis://:nope@127.0.0.1:{redis.port}"])
    assert wrong.returncode == 2 and b"AUTH refused" in wrong.stderr, wrong.stderr
    assert b"nope" not in wrong.stderr
    # The right one from the flag works.
    with RecordingOrigin("127.0.0.1") as origin:
        gw = fleet_gateway(start_gateway, redis, POOL2, "--state-password", "s3cret")
        wait_until(lambda: metric(gw.admin_port, "exitpool_state_backend_up") == 1, 5, what="backend up")
        assert "s3cret" not in gw.log().split("\n", 1)[1]  # after the command line the test wrote
        # Unreachable Redis at startup: a degraded start (logged), serving from local state.
        port = free_port()
        gw2 = start_gateway(POOL2, "--state", f"redis://127.0.0.1:{port}", "--admin",
                            f"127.0.0.1:{(admin := free_port())}", *quiet_flags())
        assert metric(admin, "exitpool_state_backend_up") == 0
        r = request(gw2.port, "GET", origin.url("/degraded"))
        assert r.status == 200, (r.status, r.text)
        assert "unreachable" in gw2.log()


def test_exit_ejected_by_one_gateway_is_not_dialled_by_another(start_gateway, start_redis):
    from helpers import closed_port
    from faults import admin_exits
    redis = start_redis()
    pool = [direct(21, "d1"), f"http://127.0.0.1:{closed_port()} id=dead"]
    with RecordingOrigin("127.0.0.1") as origin:
        a, b = start_fleet(start_gateway, redis, pool, 2, "--eject-after", "1", "--cooldown", "60")
        for i in range(4):  # round-robin reaches `dead` and retries on d1
            request(a.port, "GET", origin.url(f"/a{i}"))
        assert admin_exits(a.admin_port)["dead"]["state"] == "ejected"
        time.sleep(1.0)
        seen = admin_exits(b.admin_port)["dead"]
        assert seen["state"] == "ejected" and seen["failures"] == 0, seen
        for i in range(6):
            r = request(b.port, "GET", origin.url(f"/b{i}"))
            assert r.status == 200, (r.status, r.text)
        assert admin_exits(b.admin_port)["dead"]["failures"] == 0  # B never dialled it
