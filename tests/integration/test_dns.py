"""Names the gateway resolves itself (direct and socks5:// exits): the shard resolver (c-ares on the shard's
event loop), its cache and coalescing, and what a client reads when a name does not resolve.

Loopback only: every gateway here gets --dns-server pointing at the fixture's server (dns_server.py), so no
query ever reaches this machine's own resolver; the server's log counts what reached it.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import exitpool_bin, free_port, run, socks5_connect, via_http, via_socks


def gateway(start_gateway, dns_server, *args: str, threads: int = 2):
    """A gateway with one direct exit, resolving with the fixture's server, with an admin endpoint."""
    return start_gateway(["direct:// id=direct"], "--dns-server", dns_server.address, "--admin",
                         f"127.0.0.1:{free_port()}", *args, threads=threads)


def metrics_text(gw) -> str:
    argv = gw.svc.proc.args
    admin = argv[argv.index("--admin") + 1]
    return run(["curl", "-s", "--noproxy", "*", f"http://{admin}/metrics"]).stdout.decode()


def socks_reply(gw, host: str, port: int) -> int:
    c, rep = socks5_connect(gw.port, host, port, timeout=15)
    c.close()
    return rep


def parallel(n: int, fn, *args) -> list:
    """Runs fn(*args) n times on n threads at once; returns the results."""
    results: list = [None] * n

    def one(i: int) -> None:
        try:
            results[i] = fn(*args)
        except Exception as e:  # noqa: BLE001 - reported by the caller's assertion
            results[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_name_resolved_by_the_given_server(start_gateway, dns_server, origin):
    gw = gateway(start_gateway, dns_server)
    before = dns_server.queries("fast.test")
    hop = via_http(gw.port, f"http://fast.test:{origin.port}/")
    assert hop.status == 200, gw.log()
    assert hop.origin_saw == "127.0.0.1"
    assert dns_server.queries("fast.test") == before + 1
    # SOCKS5 with a domain name (the gateway resolves it), and CONNECT.
    assert socks_reply(gw, "dual.test", origin.port) == 0


def test_etc_hosts_first_without_a_query(start_gateway, dns_server, origin):
    gw = gateway(start_gateway, dns_server)
    assert via_http(gw.port, f"http://localhost:{origin.port}/").status == 200, gw.log()
    assert dns_server.queries("localhost") == 0
    assert dns_server.queries("localhost", "AAAA") == 0


def test_fast_name_not_delayed_by_pending_lookups_of_a_slow_one(start_gateway, dns_server, origin):
    gw = gateway(start_gateway, dns_server, "--dns-timeout", "10", "--dial-timeout", "15")
    before = dns_server.queries("slow.test")
    slow_results: list = []
    slow = threading.Thread(target=lambda: slow_results.extend(parallel(100, socks_reply, gw, "slow.test",
                                                                        origin.port)))
    started = time.monotonic()
    slow.start()
    wait_for(lambda: dns_server.queries("slow.test") > before, 5, "the slow.test query at the server")
    time.sleep(0.2)  # the 100 lookups are in flight now
    t0 = time.monotonic()
    fast = via_http(gw.port, f"http://fast.test:{origin.port}/")
    fast_s = time.monotonic() - t0
    assert fast.status == 200, gw.log()
    assert fast_s < 0.5, f"fast.test took {fast_s:.3f} s behind 100 pending lookups of slow.test"
    slow.join(30)
    assert slow_results == [0] * 100, slow_results
    assert time.monotonic() - started >= 2.5  # they really waited for the slow answer
    # 100 concurrent lookups, one query per shard (2 shards) at most.
    assert dns_server.queries("slow.test") - before <= 2


def test_one_query_per_ttl_for_a_thousand_tunnels(start_gateway, dns_server, origin):
    # One shard: one cache. Record TTL 300, clamped to 4 s by --dns-max-ttl.
    gw = gateway(start_gateway, dns_server, "--dns-min-ttl", "0", "--dns-max-ttl", "4", threads=1)
    before = dns_server.queries("fast.test")
    t0 = time.monotonic()
    replies = []
    for batch in range(20):
        replies += parallel(50, socks_reply, gw, "fast.test", origin.port)
    elapsed = time.monotonic() - t0
    assert replies == [0] * 1000, [r for r in replies if r != 0][:5]
    assert elapsed < 4, f"1,000 tunnels took {elapsed:.1f} s: longer than the TTL, the count says nothing"
    assert dns_server.queries("fast.test") - before == 1
    assert dns_server.queries("fast.test", "AAAA") <= dns_server.queries("fast.test")
    time.sleep(4.2 - elapsed)
    assert socks_reply(gw, "fast.test", origin.port) == 0
    assert dns_server.queries("fast.test") - before == 2  # expired: asked again


def test_record_ttl_respected(start_gateway, dns_server, origin):
    # Tunnels, not plain HTTP: a kept-alive upstream connection would be reused without a dial.
    gw = gateway(start_gateway, dns_server, "--dns-min-ttl", "0", threads=1)
    before = dns_server.queries("short.test")  # TTL 2
    assert socks_reply(gw, "short.test", origin.port) == 0, gw.log()
    assert socks_reply(gw, "short.test", origin.port) == 0
    assert dns_server.queries("short.test") - before == 1
    time.sleep(2.2)
    assert socks_reply(gw, "short.test", origin.port) == 0
    assert dns_server.queries("short.test") - before == 2


def test_nxdomain_is_502_and_socks_host_unreachable_cached_briefly(start_gateway, dns_server, origin):
    gw = gateway(start_gateway, dns_server, "--dns-negative-ttl", "2", threads=1)
    before = dns_server.queries("nx.test")
    hop = via_http(gw.port, f"http://nx.test:{origin.port}/")
    assert hop.status == 502, gw.log()
    err = hop.resp.header("X-Exitpool-Error")
    assert "nx.test" in err and "NXDOMAIN" in err, err
    assert "error=dns_error" in hop.resp.header("Proxy-Status")
    # SOCKS5: 0x04 host unreachable.
    assert via_socks(gw.port, "nx.test", origin.port).status == 1000 + 4
    assert dns_server.queries("nx.test") - before == 1  # the second came from the cache
    time.sleep(2.2)
    assert via_socks(gw.port, "nx.test", origin.port).status == 1000 + 4
    assert dns_server.queries("nx.test") - before == 2


def test_servfail_is_a_dns_error_and_a_slow_name_a_dns_timeout(start_gateway, dns_server, origin):
    gw = gateway(start_gateway, dns_server, "--dns-timeout", "1")
    hop = via_http(gw.port, f"http://servfail.test:{origin.port}/")
    assert hop.status == 502, gw.log()
    assert "servfail.test" in hop.resp.header("X-Exitpool-Error")
    t0 = time.monotonic()
    hop = via_http(gw.port, f"http://slow.test:{origin.port}/")
    assert hop.status == 504, gw.log()
    assert time.monotonic() - t0 < 2.5
    assert "error=dns_timeout" in hop.resp.header("Proxy-Status")
    assert "slow.test" in hop.resp.header("X-Exitpool-Error")


def test_metrics_count_lookups_hits_and_failures(start_gateway, dns_server, origin):
    gw = gateway(start_gateway, dns_server, threads=1)
    for _ in range(3):
        assert socks_reply(gw, "fast.test", origin.port) == 0
    via_http(gw.port, f"http://nx.test:{origin.port}/")
    via_http(gw.port, f"http://127.0.0.1:{origin.port}/")  # a literal: no lookup
    metrics = metrics_text(gw)
    assert 'exitpool_dns_lookups_total{source="query"} 2' in metrics, metrics
    assert 'exitpool_dns_lookups_total{source="cache"} 2' in metrics
    assert "exitpool_dns_cache_hits_total 2" in metrics
    assert 'exitpool_dns_failures_total{kind="not_found"} 1' in metrics
    assert "exitpool_dns_lookup_duration_seconds_count 4" in metrics


def test_bad_dns_server_refused_at_startup(tmp_path):
    pool = tmp_path / "pool.txt"
    pool.write_text("direct://\n")
    cp = run([str(exitpool_bin()), "serve", "--pool", str(pool), "--dns-server", "dns.example:53"])
    assert cp.returncode != 0
    assert "--dns-server" in cp.stderr.decode() and "dns.example" in cp.stderr.decode()


def test_check_resolves_the_check_url_with_the_given_server(tmp_path, dns_server, origin):
    pool = tmp_path / "pool.txt"
    pool.write_text("direct:// id=d\n")
    before = dns_server.queries("fast.test")
    cp = run([str(exitpool_bin()), "check", "--pool", str(pool), "--url", f"http://fast.test:{origin.port}/",
              "--dns-server", dns_server.address, "--json"])
    assert cp.returncode == 0, cp.stdout.decode() + cp.stderr.decode()
    assert dns_server.queries("fast.test") == before + 1


# ------------------------------------------------------------------------------------------ fetch

class _CountingServer(ThreadingHTTPServer):
    """Counts the TCP connections it accepts: fewer than requests means libcurl reused them."""

    daemon_threads = True
    connections = 0

    def get_request(self):
        req = super().get_request()
        self.connections += 1
        return req


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's name
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_fetch_resolves_with_the_given_server_caches_and_keeps_connection_reuse(tmp_path, dns_server):
    srv = _CountingServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        port = srv.server_address[1]
        urls = [f"http://fast.test:{port}/{i}" for i in range(100)] + [f"http://nx.test:{port}/"]
        (tmp_path / "urls.txt").write_text("".join(u + "\n" for u in urls))
        (tmp_path / "pool.txt").write_text("direct://127.0.0.21 id=d1\n")
        before = dns_server.queries("fast.test")
        cp = run([str(exitpool_bin()), "fetch", "--pool", str(tmp_path / "pool.txt"), "--input",
                  str(tmp_path / "urls.txt"), "--output", str(tmp_path / "out.jsonl"), "--threads", "1",
                  "--concurrency", "4", "--per-host", "4", "--retries", "0", "--quiet",
                  "--dns-server", dns_server.address], timeout=60)
        results = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
        by = {r["url"]: r for r in results}
        assert len(by) == 101, cp.stderr.decode()
        assert all(by[u]["status"] == 200 for u in urls[:100]), [by[u] for u in urls[:3]]
        assert "nx.test" in by[urls[100]]["error"] and "NXDOMAIN" in by[urls[100]]["error"]
        assert dns_server.queries("fast.test") - before == 1
        assert srv.connections <= 8, f"{srv.connections} connections for 100 requests: no reuse"
    finally:
        srv.shutdown()
        srv.server_close()
