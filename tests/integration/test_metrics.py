"""The admin endpoint (issue 3): /metrics in the Prometheus text format (checked with the reference
parser, prometheus_client: Debian's python3-prometheus-client), counters that match what the origin saw,
/exits JSON, /healthz, authentication, and the loopback-only rule.
"""
from __future__ import annotations

import subprocess
import time

import pytest

from faults import (Answer, RecordingOrigin, admin_exits, admin_get, connect_tunnel, direct, quiet_flags,
                    request, wait_until)
from helpers import build_request, closed_port, exitpool_bin, free_port, socks5_connect

parser = pytest.importorskip("prometheus_client.parser",
                             reason="python3-prometheus-client missing: scripts/install-deps.sh --test")

D1, D2 = "127.0.0.21", "127.0.0.22"


class Scrape:
    """One /metrics scrape, parsed: samples by (name, labels)."""

    def __init__(self, port: int, auth=None):
        status, headers, body = admin_get(port, "/metrics", auth)
        assert status == 200, (status, body[:300])
        assert headers.get("content-type", "").startswith("text/plain"), headers
        self.text = body.decode()
        self.families = {f.name: f for f in parser.text_string_to_metric_families(self.text)}
        self.samples: dict[tuple[str, frozenset], float] = {}
        for fam in self.families.values():
            assert fam.name.startswith("exitpool_"), fam.name
            for s in fam.samples:
                self.samples[(s.name, frozenset(s.labels.items()))] = s.value

    def get(self, name: str, **labels) -> float:
        key = (name, frozenset(labels.items()))
        assert key in self.samples, f"no sample {name}{labels} in:\n{self.text}"
        return self.samples[key]

    def sum(self, name: str, **labels) -> float:
        return sum(v for (n, ls), v in self.samples.items()
                   if n == name and all(dict(ls).get(k) == w for k, w in labels.items()))


def scrape_when(port: int, name: str, want: float, timeout: float = 3.0, **labels) -> "Scrape":
    """A request is counted when its record ends, just after its last byte reached the client, on the shard's
    thread, and /metrics is served by the admin thread: poll (bounded) until `name` shows `want`, then return
    that scrape, so the test reads settled counters."""
    deadline = time.monotonic() + timeout
    while True:
        m = Scrape(port)
        key = (name, frozenset(labels.items()))
        if m.samples.get(key) == want or time.monotonic() > deadline:
            return m
        time.sleep(0.02)


def not_found_on_nf(hit):
    if hit.path.startswith("/nf"):
        return Answer(404, b"not here\n")
    return Answer(200, f"{hit.src}\n".encode())


@pytest.fixture
def admin_gw(start_gateway):
    def start(pool, *args, users=None):
        port = free_port()
        gw = start_gateway(pool, "--admin", f"127.0.0.1:{port}", *args, *quiet_flags(), users=users)
        wait_until(lambda: admin_get(port, "/healthz")[0] == 200, 5, what="the admin endpoint")
        gw.admin_port = port
        return gw
    return start


def test_metrics_parse_and_match_the_origin(admin_gw):
    # Connection: close from the origin: no upstream connection is reused, so one dial per request.
    with RecordingOrigin("127.0.0.1", not_found_on_nf, close=True) as origin:
        gw = admin_gw([direct(21, "d1"), direct(22, "d2")])
        # 5 x 200 and 2 x 404 in plain HTTP.
        for i in range(5):
            assert request(gw.port, "GET", origin.url(f"/ok{i}")).status == 200
        for i in range(2):
            assert request(gw.port, "GET", origin.url(f"/nf{i}")).status == 404
        m = scrape_when(gw.admin_port, "exitpool_requests_total", 7, protocol="http", outcome="ok")
        assert m.get("exitpool_requests_total", protocol="http", outcome="ok") == 7
        assert m.get("exitpool_http_responses_total", code="2xx") == 5
        assert m.get("exitpool_http_responses_total", code="4xx") == 2
        assert m.get("exitpool_http_responses_total", code="5xx") == 0

        # 3 CONNECT tunnels and 2 SOCKS5 tunnels, each carrying one request; bytes counted exactly.
        sent = received = 0
        for i in range(5):
            if i < 3:
                c, head = connect_tunnel(gw.port, origin.hostport)
                assert head.status == 200
            else:
                c, rep = socks5_connect(gw.port, "127.0.0.1", origin.port)
                assert rep == 0
            with c:
                req = build_request("GET", f"/t{i}", {"Connection": "close"}, host=origin.hostport)
                c.send(req)
                sent += len(req)
                received += len(c.read_to_eof())
        assert origin.count() == 12

        def tunnels_closed():
            return Scrape(gw.admin_port).get("exitpool_active_tunnels") == 0
        wait_until(tunnels_closed, 3, what="exitpool_active_tunnels to drop to 0")
        m = Scrape(gw.admin_port)
        assert m.get("exitpool_requests_total", protocol="connect", outcome="ok") == 3
        assert m.get("exitpool_requests_total", protocol="socks5", outcome="ok") == 2
        not_ok = sum(v for (n, ls), v in m.samples.items()
                     if n == "exitpool_requests_total" and dict(ls)["outcome"] != "ok")
        assert not_ok == 0, m.text
        assert m.get("exitpool_client_connections_total", protocol="http") == 7
        assert m.get("exitpool_client_connections_total", protocol="connect") == 3
        assert m.get("exitpool_client_connections_total", protocol="socks5") == 2
        # A CONNECT's "200 Connection established" may or may not count as an HTTP response.
        assert m.get("exitpool_http_responses_total", code="2xx") in (5, 8)
        assert m.get("exitpool_http_responses_total", code="4xx") == 2

        # Dials: one per request, each exit's count is what the origin saw from it.
        assert m.get("exitpool_exit_dial_successes_total", exit="d1") == origin.count(D1)
        assert m.get("exitpool_exit_dial_successes_total", exit="d2") == origin.count(D2)
        assert m.sum("exitpool_exit_dial_failures_total") == 0
        assert m.get("exitpool_dial_attempts_total") == 12
        assert m.sum("exitpool_dial_failures_total") == 0
        assert m.get("exitpool_dial_duration_seconds_count") == 12
        buckets = sorted(((float(dict(ls)["le"]), v) for (n, ls), v in m.samples.items()
                          if n == "exitpool_dial_duration_seconds_bucket"))
        assert buckets[-1] == (float("inf"), 12), buckets
        assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets
        assert 0 <= m.get("exitpool_dial_duration_seconds_sum") < 12
        assert m.families["exitpool_dial_duration_seconds"].type == "histogram"

        # Bytes: at least the tunnels' payload, both ways.
        assert m.get("exitpool_relayed_bytes_total", direction="client_to_upstream") >= sent
        assert m.get("exitpool_relayed_bytes_total", direction="upstream_to_client") >= received
        assert m.get("exitpool_exits", state="healthy") == 2
        assert m.get("exitpool_exits", state="ejected") == 0
        assert m.get("exitpool_bans_total") == 0
        for fam in ("exitpool_requests", "exitpool_http_responses", "exitpool_relayed_bytes",
                    "exitpool_bans", "exitpool_exit_dial_successes", "exitpool_exit_dial_failures"):
            assert m.families[fam].type == "counter", fam


def test_metrics_count_bans_and_failed_dials(admin_gw):
    def ban_d1(hit):
        if hit.src == D1:
            return Answer(429, b"slow down\n", {"Retry-After": "100"})
        return Answer(200, f"{hit.src}\n".encode())

    with RecordingOrigin("127.0.0.1", ban_d1, close=True) as origin:
        gw = admin_gw([f"http://127.0.0.1:{closed_port()} id=dead", direct(21, "d1"), direct(22, "d2")],
                      "--eject-after", "2", "--retries", "2", "--cooldown", "60")
        for i in range(8):
            r = request(gw.port, "GET", origin.url(f"/{i}"))
            assert r.status == 200 and r.header("X-Exitpool-Exit") == "d2", (r.status, r.text)
        assert origin.count(D1) == 1 and origin.count(D2) == 8, origin.by_source()
        m = Scrape(gw.admin_port)
        assert m.get("exitpool_bans_total") == 1
        assert m.get("exitpool_active_bans") == 1
        assert m.get("exitpool_exit_dial_failures_total", exit="dead") == 2
        assert m.get("exitpool_exit_dial_successes_total", exit="d1") == 1
        assert m.get("exitpool_exit_dial_successes_total", exit="d2") == 8
        assert m.get("exitpool_dial_failures_total", error="connection_refused") == 2
        assert m.get("exitpool_exits", state="ejected") == 1
        assert m.get("exitpool_exits", state="healthy") == 2
        assert m.get("exitpool_exit_up", exit="dead") == 0
        assert m.get("exitpool_requests_total", protocol="http", outcome="ok") == 8
        # What the clients got: 8 x 200; the 429 from d1 never reached a client.
        assert m.get("exitpool_http_responses_total", code="2xx") == 8
        assert m.get("exitpool_http_responses_total", code="4xx") == 0


def test_metrics_with_reused_upstream_connections(admin_gw):
    """A keep-alive origin: the gateway may reuse upstream connections, so there may be fewer dials than
    requests, but the request counters still match the origin and the dial counters agree with each other."""
    with RecordingOrigin("127.0.0.1", not_found_on_nf) as origin:
        gw = admin_gw([direct(21, "d1"), direct(22, "d2")])
        for i in range(10):
            assert request(gw.port, "GET", origin.url(f"/ok{i}")).status == 200
        for i in range(3):
            assert request(gw.port, "GET", origin.url(f"/nf{i}")).status == 404
        m = scrape_when(gw.admin_port, "exitpool_requests_total", 13, protocol="http", outcome="ok")
        assert origin.count() == 13
        assert m.get("exitpool_requests_total", protocol="http", outcome="ok") == 13
        assert m.get("exitpool_http_responses_total", code="2xx") == 10
        assert m.get("exitpool_http_responses_total", code="4xx") == 3
        for exit_id, src in (("d1", D1), ("d2", D2)):
            dials = m.get("exitpool_exit_dial_successes_total", exit=exit_id)
            assert 1 <= dials <= origin.count(src), (exit_id, dials, origin.by_source())
        successes = m.sum("exitpool_exit_dial_successes_total")
        assert m.get("exitpool_dial_attempts_total") == successes + m.sum("exitpool_exit_dial_failures_total")
        assert m.get("exitpool_dial_duration_seconds_count") == m.get("exitpool_dial_attempts_total")


def test_exits_json_lists_every_exit(admin_gw):
    pool = [direct(21, "d1", country="us"), direct(22, "d2", country="nl", tier=1),
            f"socks5://127.0.0.1:{closed_port()} id=s1 country=de type=datacenter"]
    with RecordingOrigin("127.0.0.1", close=True) as origin:
        gw = admin_gw(pool)
        for i in range(3):
            request(gw.port, "GET", origin.url(f"/{i}"))
        status, headers, _ = admin_get(gw.admin_port, "/exits")
        assert status == 200 and headers.get("content-type", "").startswith("application/json"), headers
        exits = admin_exits(gw.admin_port)
        assert set(exits) == {"d1", "d2", "s1"}, exits
        for e in exits.values():
            for key in ("id", "state", "inflight", "successes", "failures", "bans", "tier", "tags"):
                assert key in e, (key, e)
            assert e["state"] in ("healthy", "ejected", "probing"), e
            assert isinstance(e["bans"], list), e
        assert exits["d1"]["tier"] == 0 and exits["d2"]["tier"] == 1
        assert exits["d1"]["tags"]["country"] == "us" and exits["s1"]["tags"]["type"] == "datacenter"
        assert exits["d1"]["successes"] == origin.count(D1) == 3  # tier 0 only
        assert exits["d2"]["successes"] == 0


def test_healthz_and_unknown_paths(admin_gw):
    gw = admin_gw([direct(21, "d1")])
    status, _, body = admin_get(gw.admin_port, "/healthz")
    assert status == 200, body
    assert admin_get(gw.admin_port, "/nope")[0] == 404


def test_admin_requires_users_credentials_when_given(admin_gw):
    gw = admin_gw([direct(21, "d1")], users={"alice": "s3cret"})
    for path in ("/metrics", "/exits"):
        assert admin_get(gw.admin_port, path)[0] == 401
        assert admin_get(gw.admin_port, path, ("alice", "wrong"))[0] == 401
        assert admin_get(gw.admin_port, path, ("alice", "s3cret"))[0] == 200
    Scrape(gw.admin_port, ("alice", "s3cret"))


def test_admin_on_non_loopback_without_users_refuses_to_start(gateway_dir):
    # 192.0.2.1 (TEST-NET-1) is not on this machine: the refusal must come before any bind, and say why.
    pool = gateway_dir / "admin-refusal-pool.txt"
    pool.write_text(direct(21, "d1") + "\n")
    argv = [str(exitpool_bin()), "serve", "--pool", str(pool), "--listen", f"127.0.0.1:{free_port()}",
            "--admin", f"192.0.2.1:{free_port()}", *quiet_flags()]
    t0 = time.monotonic()
    cp = subprocess.run(argv, capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    out = (cp.stdout + cp.stderr).decode(errors="replace")
    assert cp.returncode != 0, out
    assert time.monotonic() - t0 < 5
    assert "--users" in out, out
    assert "cannot assign" not in out.lower(), f"it tried to bind instead of refusing: {out}"
