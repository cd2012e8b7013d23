"""A fleet of gateways sharing state on Redis (issue 12): `serve --state redis://...`.

Real redis-server (conftest.start_redis), several exitpool gateways and, where the issue asks for it, a real
HAProxy in TCP mode in front of them (haproxy.py), all on loopback; the origins are RecordingOrigin
(faults.py), which see the source address, i.e. the exit, of every request. Direct exits leave from
127.0.0.21-24. Every load loop is bounded in time and in count.
"""
from __future__ import annotations

import json
import os
import re
import signal
import threading
import time

import pytest

from faults import (Answer, RecordingOrigin, admin_exits, admin_get, direct, max_in_window, quiet_flags, request,
                    wait_until)
from haproxy import HAProxy
from helpers import basic, exitpool_bin, free_port, port_accepts, run

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
    # The admin endpoint listens just after the proxy port the factory waited for.
    wait_until(lambda: port_accepts("127.0.0.1", port), 5, what="the admin endpoint")
    return gw


def exit_metric(port: int, name: str, exit_id: str) -> float:
    status, _, body = admin_get(port, "/metrics")
    assert status == 200, status
    m = re.search(rf'^{name}{{[^}}]*exit="{re.escape(exit_id)}"[^}}]*}} (\S+)$', body.decode(), re.M)
    assert m, f"no {name} for {exit_id} in /metrics"
    return float(m.group(1))


def requests_served(port: int) -> float:
    """Client requests a gateway has seen (every sample of exitpool_requests_total)."""
    _, _, body = admin_get(port, "/metrics")
    return sum(float(v) for v in re.findall(r"^exitpool_requests_total{[^}]*} (\S+)$", body.decode(), re.M))


def gateway_id(gw) -> str:
    """How the gateway names itself in the fleet (host:pid:listen): the suffix is enough to tell."""
    return f":{gw.proc.pid}:{gw.hostport}"


def load_for(duration: float, clients: int, send) -> float:
    """Calls send(k, i) in a loop on each of `clients` threads (k) until `duration` seconds have passed, at
    most 1000 times per thread; returns the seconds from the start until every thread is done."""
    stop_at = time.monotonic() + duration

    def loop(k):
        for i in range(1000):  # bounded in count as well as in time
            if time.monotonic() >= stop_at:
                return
            send(k, i)

    threads = [threading.Thread(target=loop, args=(k,)) for k in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + 10)
    return time.monotonic() - t0


@pytest.fixture
def start_haproxy(lab_dir):
    """Factory: start_haproxy(gateways) -> HAProxy (TCP, round-robin) in front of them, stopped after the test."""
    started: list[HAProxy] = []

    def factory(gws) -> HAProxy:
        h = HAProxy(lab_dir, [gw.hostport for gw in gws]).start()
        started.append(h)
        return h

    yield factory
    for h in started:
        h.stop()


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
        # /exits tells where each ban came from: A decided it, B and C have it from the fleet (from A).
        own = admin_exits(a.admin_port)["d1"]["bans"]
        assert [(x["host"], x["decided_by"]) for x in own] == [("127.0.0.1", "local")], own
        assert "gateway" not in own[0], own
        for gw in (b, c):
            seen = admin_exits(gw.admin_port)["d1"]["bans"]
            assert [(x["host"], x["decided_by"]) for x in seen] == [("127.0.0.1", "fleet")], seen
            assert seen[0]["gateway"].endswith(gateway_id(a)), (seen, gateway_id(a))
        # The dashboard's rows are /exits' objects: the same mark.
        _, _, body = admin_get(b.admin_port, "/dashboard.json")
        row = next(e for e in json.loads(body)["exits"] if e["id"] == "d1")
        assert [x["decided_by"] for x in row["bans"]] == ["fleet"], row["bans"]
        # Other hosts are unaffected: d1 still serves them through B.
        for i in range(4):
            request(b.port, "GET", other.url(f"/o{i}"))
        assert other.count(D1) >= 1, other.by_source()
        # Stored for gateways that connect later.
        assert "d1\n127.0.0.1" in redis.cli("ZRANGE", "exitpool:bans", "0", "-1") or \
            "d1" in redis.cli("ZRANGE", "exitpool:bans", "0", "-1")


def test_per_exit_rate_holds_across_three_gateways_behind_haproxy(start_gateway, start_redis, start_haproxy):
    """--per-exit-rate 5 through three gateways behind HAProxy (TCP, round-robin), one pool of 4 exits,
    10 s of load from 12 clients: each exit address sends at most 5/s + burst (+ the batching error,
    N gateways x 1 token), counted in the origin's own log. Without the fleet it would be 3 x 5/s."""
    redis = start_redis()
    rate, burst, n, duration = 5, 1, 3, 10.0
    exits = {f"127.0.0.{k}" for k in (21, 22, 23, 24)}
    with RecordingOrigin("127.0.0.1") as origin:
        gws = start_fleet(start_gateway, redis, EXITS4, n, "--per-exit-rate", str(rate), "--per-exit-burst",
                          str(burst), "--queue-timeout", "2")
        lb = start_haproxy(gws)
        statuses: list[int] = []
        elapsed = load_for(duration, 12, lambda k, i: statuses.append(
            request(lb.port, "GET", origin.url(f"/{k}-{i}"), timeout=5).status))
        hits = origin.snapshot()
        assert {h.src for h in hits} <= exits, origin.by_source()
        for src in sorted(exits):
            times = sorted(h.t for h in hits if h.src == src)
            assert times, f"{src} sent nothing"
            # Over the whole run, and in every 1 s window.
            allowed = rate * elapsed + burst + n
            assert len(times) <= allowed, (src, len(times), allowed, elapsed)
            best = max_in_window(times, 1.0)
            assert best <= rate + burst + n, (src, best)
            print(f"{src}: {len(times)} requests in {elapsed:.2f} s ({len(times) / elapsed:.2f}/s), "
                  f"busiest 1 s window {best}; allowed {allowed:.1f} and {rate + burst + n}")
        # HAProxy spread the clients over all three gateways, and most of what was allowed was used.
        for gw in gws:
            assert requests_served(gw.admin_port) >= 10, [requests_served(g.admin_port) for g in gws]
        assert len(hits) >= rate * len(exits) * duration * 0.5, (len(hits), len(statuses))
        assert statuses.count(200) == len(hits), "every request the origin saw reached its client"


def test_sticky_session_through_haproxy_keeps_one_exit_and_one_expiry(start_gateway, start_redis,
                                                                      start_haproxy):
    """One sticky session id, 12 new connections through HAProxy, so through all three gateways: one exit,
    and one fleet-wide expiry (the session's key in Redis, claimed by the first gateway, whose TTL the
    others adopt rather than start their own)."""
    redis = start_redis()
    with RecordingOrigin("127.0.0.1") as origin:
        gws = start_fleet(start_gateway, redis, EXITS4, 3)
        lb = start_haproxy(gws)
        before = [requests_served(gw.admin_port) for gw in gws]
        first = None  # (time, PTTL) right after the first request
        for i in range(12):
            r = request(lb.port, "GET", origin.url(f"/{i}"),
                        headers={"Proxy-Authorization": basic("alice-session-fleet1", "x")})
            assert r.status == 200, (r.status, r.text)
            if first is None:
                time.sleep(0.1)  # the claim goes out on the gateway's next tick
                keys = redis.cli("--scan", "--pattern", "exitpool:s:*").split()
                assert len(keys) == 1, keys
                first = (time.monotonic(), int(redis.cli("PTTL", keys[0])))
            time.sleep(0.05)
        after = [requests_served(gw.admin_port) for gw in gws]
        assert all(a - b >= 3 for a, b in zip(after, before)), (before, after)  # round-robin: 4 each
        assert len(origin.by_source()) == 1, origin.by_source()
        keys = redis.cli("--scan", "--pattern", "exitpool:s:*").split()
        assert len(keys) == 1, keys
        # One lifetime, started by the first request: the TTL ran down by the time that passed (no gateway
        # extended or restarted it), so the session ends at the same moment on all three.
        t_now, ttl_now = time.monotonic(), int(redis.cli("PTTL", keys[0]))
        ran_down_ms = first[1] - ttl_now
        elapsed_ms = (t_now - first[0]) * 1000
        assert ttl_now > 0 and abs(ran_down_ms - elapsed_ms) < 150, (first, ttl_now, elapsed_ms)


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
    redis = start_redis()
    pool = [direct(21, "d1"), f"http://127.0.0.1:{closed_port()} id=dead"]
    with RecordingOrigin("127.0.0.1") as origin:
        a, b = start_fleet(start_gateway, redis, pool, 2, "--eject-after", "1", "--cooldown", "60")
        for i in range(4):  # round-robin reaches `dead` and retries on d1
            request(a.port, "GET", origin.url(f"/a{i}"))
        own = admin_exits(a.admin_port)["dead"]
        assert own["state"] == "ejected" and own["decided_by"] == "local", own
        time.sleep(1.0)
        seen = admin_exits(b.admin_port)["dead"]
        assert seen["state"] == "ejected" and seen["failures"] == 0, seen
        assert seen["decided_by"] == "fleet" and seen["gateway"].endswith(gateway_id(a)), seen
        for i in range(6):
            r = request(b.port, "GET", origin.url(f"/b{i}"))
            assert r.status == 200, (r.status, r.text)
        assert admin_exits(b.admin_port)["dead"]["failures"] == 0  # B never dialled it


def slow_burst(gw, origin, n: int, tag: str, statuses: list[int]) -> list[threading.Thread]:
    """n concurrent requests through `gw` to a slow origin, each on its own thread (joined by the caller)."""
    def one(i):
        try:
            statuses.append(request(gw.port, "GET", origin.url(f"/{tag}{i}"), timeout=10).status)
        except (OSError, EOFError):  # the gateway was killed under it
            statuses.append(-1)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    return threads


def test_gateway_killed_holding_concurrency_gives_it_back_within_the_heartbeat_expiry(start_gateway,
                                                                                       start_redis):
    """--per-exit-concurrency 4 over two gateways: each holds a share of 2. B dies (kill -9) while holding
    its 2: within the heartbeat TTL (3 s) A's share grows back to the whole cap, shown by real concurrent
    slow requests at the origin and by A's exitpool_exit_inflight."""
    redis = start_redis()
    cap, ttl = 4, 3.0
    with RecordingOrigin("127.0.0.1", lambda hit: Answer(200, b"slow\n", delay=2.5)) as origin:
        a, b = start_fleet(start_gateway, redis, [direct(21, "d1")], 2, "--per-exit-concurrency", str(cap),
                           "--queue-timeout", "0.5")
        inflight = lambda: origin.inflight.get(D1, 0)  # noqa: E731
        statuses: list[int] = []
        held = slow_burst(b, origin, 3, "b", []) + slow_burst(a, origin, 3, "a", statuses)
        wait_until(lambda: inflight() == cap, 3, what="the cap in use")
        time.sleep(0.7)  # past --queue-timeout: the third request on each gateway found no capacity
        assert inflight() == cap, origin.max_inflight
        assert exit_metric(a.admin_port, "exitpool_exit_inflight", "d1") == 2
        assert exit_metric(b.admin_port, "exitpool_exit_inflight", "d1") == 2
        b.exit_expected = True
        os.kill(b.proc.pid, signal.SIGKILL)
        t_kill = time.monotonic()
        wait_until(lambda: metric(a.admin_port, "exitpool_fleet_gateways") == 1, ttl + 1.5, what="B dropped")
        regained = time.monotonic() - t_kill
        for t in held:
            t.join(timeout=10)
        assert len(statuses) == 3 and statuses.count(200) == 2, statuses  # A's share was 2
        wait_until(lambda: inflight() == 0, 5, what="the origin idle")
        # A alone now: the whole cap, four at once through one gateway.
        statuses.clear()
        again = slow_burst(a, origin, cap + 1, "a2-", statuses)
        wait_until(lambda: inflight() == cap, 3, what="the whole cap through A")
        assert exit_metric(a.admin_port, "exitpool_exit_inflight", "d1") == cap
        for t in again:
            t.join(timeout=10)
        assert statuses.count(200) == cap, statuses  # and no more than the cap
        assert regained <= ttl + 0.3, regained
        print(f"B killed holding 2 of {cap}: A's share grew back after {regained:.2f} s (heartbeat TTL {ttl} s)")


def test_join_and_sigterm_change_the_fleet_size_at_once(start_gateway, start_redis):
    """A gateway that joins publishes it: the others count it within a tick or two, not at their next
    heartbeat (up to 1 s later). One stopped with SIGTERM leaves the live set when its drain ends (ZREM + a
    leave event), so the others count one gateway fewer within a second, not after the 3 s heartbeat TTL."""
    redis = start_redis()
    a, b = start_fleet(start_gateway, redis, POOL2, 2)
    c = fleet_gateway(start_gateway, redis, POOL2)  # returns once C listens: it has joined by then
    t_join = time.monotonic()
    for gw in (a, b):
        wait_until(lambda gw=gw: metric(gw.admin_port, "exitpool_fleet_gateways") == 3, 3, interval=0.02,
                   what="a fleet of 3")
    joined_after = time.monotonic() - t_join
    assert metric(c.admin_port, "exitpool_fleet_gateways") == 3  # C counted itself before serving
    assert joined_after < 0.2, joined_after  # heartbeats alone: anywhere up to 1 s
    c.exit_expected = True
    t0 = time.monotonic()
    os.kill(c.proc.pid, signal.SIGTERM)
    for gw in (a, b):
        wait_until(lambda gw=gw: metric(gw.admin_port, "exitpool_fleet_gateways") == 2, 3, interval=0.02,
                   what="a fleet of 2")
    left_after = time.monotonic() - t0
    assert c.proc.wait(timeout=5) == 0
    assert "left the fleet" in c.log(), c.log()
    assert redis.cli("ZCARD", "exitpool:fleet").strip() == "2"
    assert left_after < 1.0, left_after
    print(f"C joined: A and B counted 3 after {joined_after:.3f} s; SIGTERM to C: 2 after {left_after:.3f} s")


def test_redis_restart_with_aof_keeps_a_ban_in_force(start_gateway, start_redis):
    """redis-server --appendonly yes, killed (-9) and started again: the gateways survive, backend_up is 1
    again within 5 s, and a ban decided before the restart is still honoured: by a gateway that joins
    after it (read back from Redis) as well as by the others."""
    redis = start_redis(aof=True)
    with RecordingOrigin("127.0.0.1", ban_for({D1})) as banning:
        a, b = start_fleet(start_gateway, redis, POOL2, 2)
        for i in range(4):
            request(a.port, "GET", banning.url(f"/a{i}"))
            if banning.count(D1):
                break
        assert banning.count(D1) == 1, banning.by_source()
        wait_until(lambda: "d1" in redis.cli("ZRANGE", "exitpool:bans", "0", "-1"), 2, what="the ban in Redis")
        redis.kill()
        for gw in (a, b):
            wait_until(lambda gw=gw: metric(gw.admin_port, "exitpool_state_backend_up") == 0, 3, what="backend down")
        redis.start()
        t_restart = time.monotonic()
        for gw in (a, b):
            wait_until(lambda gw=gw: metric(gw.admin_port, "exitpool_state_backend_up") == 1, 5,
                       what="backend up again")
        assert time.monotonic() - t_restart <= 5
        assert "d1" in redis.cli("ZRANGE", "exitpool:bans", "0", "-1")  # kept by the AOF
        c = fleet_gateway(start_gateway, redis, POOL2)
        wait_until(lambda: metric(c.admin_port, "exitpool_state_backend_up") == 1, 5, what="C up")
        for gw in (a, b, c):
            for i in range(4):
                r = request(gw.port, "GET", banning.url(f"/after{i}"))
                assert r.status == 200 and r.text == f"ok {D2}\n", (r.status, r.text)
        assert banning.count(D1) == 1, banning.by_source()
        assert all(gw.alive() for gw in (a, b, c))
        seen = admin_exits(c.admin_port)["d1"]["bans"]
        assert [x["decided_by"] for x in seen] == ["fleet"] and seen[0]["gateway"].endswith(gateway_id(a)), seen


def test_a_gateway_alone_reaches_a_per_exit_rate_above_one_token_per_tick(start_gateway, start_redis):
    """--per-exit-rate 100 with the default burst (1): the token batches (10) are granted ahead, so one gateway
    sends the whole rate through the exit, not one token per 20 ms tick (50/s) as a plain GCRA with burst 1
    would allow; and no more than the rate plus the batching error (rate x T + burst + (1.5 N + 1) x batch)."""
    redis = start_redis()
    rate, duration, batch = 100, 3.0, 10
    with RecordingOrigin("127.0.0.1") as origin:
        (gw,) = start_fleet(start_gateway, redis, [direct(21, "d1")], 1, "--per-exit-rate", str(rate),
                            "--queue-timeout", "2")
        elapsed = load_for(duration, 8, lambda k, i: request(gw.port, "GET", origin.url(f"/{k}-{i}"), timeout=5))
        times = sorted(h.t for h in origin.snapshot() if h.src == D1)
        span = times[-1] - times[0]
        sent = len(times)
        print(f"{sent} requests in {span:.2f} s ({sent / span:.1f}/s) at --per-exit-rate {rate}")
        assert sent >= 0.75 * rate * duration, (sent, elapsed)
        assert sent <= rate * span + 1 + 2.5 * batch, (sent, span)


def test_redis_down_limits_fall_back_to_a_share_of_the_fleet(start_gateway, start_redis):
    """Redis killed (-9): the two gateways keep serving, each from its own bucket at rate / N (N = 2, the last
    known fleet size) and its concurrency share, so the exit still sends at most about the fleet-wide rate:
    about rate x T, counted at the origin while exitpool_state_backend_up is 0."""
    redis = start_redis()
    rate, n, duration = 10, 2, 3.0
    with RecordingOrigin("127.0.0.1") as origin:
        gws = start_fleet(start_gateway, redis, [direct(21, "d1")], n, "--per-exit-rate", str(rate),
                          "--queue-timeout", "2")
        redis.kill()
        for gw in gws:
            wait_until(lambda gw=gw: metric(gw.admin_port, "exitpool_state_backend_up") == 0, 3, what="backend down")
        before = origin.count(D1)
        time.sleep(1.0)  # every bucket refilled: the window starts full
        statuses: list[int] = []
        elapsed = load_for(duration, 6, lambda k, i: statuses.append(
            request(gws[k % n].port, "GET", origin.url(f"/{k}-{i}"), timeout=5).status))
        sent = origin.count(D1) - before
        print(f"Redis down: {sent} requests through d1 in {elapsed:.2f} s at --per-exit-rate {rate} over {n} gateways")
        # The buckets' bursts (1 each) and one token at each edge of the window; without the share: 2 x rate.
        assert sent <= rate * elapsed + 2 * n, (sent, elapsed)
        assert sent >= 0.6 * rate * duration, (sent, elapsed)  # and still serving
        assert all(gw.alive() for gw in gws)
        assert all(metric(gw.admin_port, "exitpool_state_backend_up") == 0 for gw in gws)
        assert statuses.count(200) == sent, "no request failed because Redis is down"
