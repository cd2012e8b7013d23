"""Pools that live elsewhere (issue 20): `--pool URL` (repeatable, beside files) with `--pool-refresh`.

A list origin in this process (127.0.0.1 only) serves a list that the test changes between fetches, as text
or JSON, with an ETag. Exits join and leave through the reload path (open tunnels stay, a sticky session on
an unchanged exit keeps it); a 500, a timeout, garbage and an empty list keep the last good pool; a matching
If-None-Match gets a 304 and costs no reload; the API key never shows in the log, /exits or /metrics; a bad
or unreachable source at startup is an error naming it (the gateway does not start without it).
"""
from __future__ import annotations

import json
import os
import re
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from faults import (RecordingOrigin, admin_exits, admin_get, connect_tunnel, direct, exits_seen, log_size,
                    quiet_flags, wait_log, wait_until)
from helpers import basic, closed_port, exitpool_bin, free_port
from helpers import run as run_bytes

A, B, C = direct(41, "a"), direct(42, "b"), direct(43, "c")
SRC = {"a": "127.0.0.41", "b": "127.0.0.42", "c": "127.0.0.43"}
KEY = "k3y-Secret-4711"


class ListOrigin:
    """The provider's list API. `body`/`content_type` is the current list, `etag` its version; `mode` makes it
    fail: "500", "slow" (answers after `delay` s), "garbage", "empty". With `key`, a request must carry it
    (query key=... or header X-Api-Key) or gets a 403. Every request is kept: (path, headers, status)."""

    def __init__(self, key: str | None = None, tls: tuple | None = None):
        self.body = b""
        self.content_type = "text/plain"
        self.etag: str | None = None
        self.mode = "ok"
        self.delay = 3.0
        self.key = key
        self.requests: list[tuple[str, dict, int]] = []
        self.lock = threading.Lock()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10

            def log_message(self, *args):
                pass

            def do_GET(self):
                status, body, headers = origin.answer(self.path, {k.lower(): v for k, v in self.headers.items()})
                if status == "slow":
                    time.sleep(origin.delay)
                    status = 200
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass  # the gateway gave up (timeout)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.scheme = "http"
        if tls is not None:  # (certificate, key): HTTPS
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def set_list(self, lines: list[str], etag: str | None) -> None:
        with self.lock:
            self.body = "".join(line + "\n" for line in lines).encode()
            self.content_type = "text/plain"
            self.etag = etag
            self.mode = "ok"

    def set_json(self, doc, etag: str | None) -> None:
        with self.lock:
            self.body = json.dumps(doc).encode()
            self.content_type = "application/json"
            self.etag = etag
            self.mode = "ok"

    def answer(self, path: str, headers: dict):
        with self.lock:
            status, body, out = 200, self.body, {"Content-Type": self.content_type}
            if self.key is not None and f"key={self.key}" not in path and headers.get("x-api-key") != self.key:
                status, body = 403, b"missing or wrong key\n"
            elif self.mode == "500":
                status, body = 500, b"internal error\n"
            elif self.mode == "slow":
                status = "slow"
            elif self.mode == "garbage":
                body = b"<html><body>Rate limit exceeded</body></html>\n"
            elif self.mode == "empty":
                body = b""
            elif self.etag is not None:
                out["ETag"] = self.etag
                if headers.get("if-none-match") == self.etag:
                    status, body = 304, b""
            self.requests.append((path, headers, status if status != "slow" else 200))
            return status, body, out

    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def url(self, path: str = "/list") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def run(argv: list[str], timeout: float = 15, **kw):
    """helpers.run with text output."""
    cp = run_bytes(argv, timeout=timeout, **kw)
    cp.stdout, cp.stderr = cp.stdout.decode(errors="replace"), cp.stderr.decode(errors="replace")
    return cp


def start(start_gateway, lists: ListOrigin, *source_args: str, env_key: bool = False):
    """A gateway whose only exits come from `lists` (the fixture's pool file is empty and allowed to be)."""
    admin = free_port()
    if env_key:
        os.environ["EXITPOOL_TEST_KEY"] = KEY  # inherited by the gateway process
    gw = start_gateway([], "--pool-allow-empty", *source_args, "--admin", f"127.0.0.1:{admin}", *quiet_flags())
    wait_until(lambda: admin_get(admin, "/healthz")[0] == 200, 5, what="the admin endpoint")
    gw.admin_port = admin
    return gw


def exits_doc(gw) -> dict:
    status, _, body = admin_get(gw.admin_port, "/exits")
    assert status == 200
    return json.loads(body)


def url_source(gw) -> dict:
    return next(s for s in exits_doc(gw)["sources"] if s["kind"] == "url")


def metric(gw, series: str) -> float:
    _, _, body = admin_get(gw.admin_port, "/metrics")
    m = re.search(rf"^{re.escape(series)} (\S+)$", body.decode(), re.M)
    assert m, f"no {series} in /metrics"
    return float(m.group(1))


def reloads(gw) -> float:
    return metric(gw, 'exitpool_pool_reloads_total{result="ok"}')


def exits_used(gw, origin, n: int, user: str | None = None) -> set[str]:
    return exits_seen(gw.port, origin, n, SRC, {"Proxy-Authorization": basic(user, "x")} if user else None)


def test_refresh_joins_and_drains_exits_keeps_tunnels_sessions_and_304s(start_gateway):
    with ListOrigin() as lists, RecordingOrigin("127.0.0.1") as origin:
        lists.set_list([A, B], etag='"v1"')
        gw = start(start_gateway, lists, "--pool", lists.url(), "--pool-refresh", "1s")
        assert exits_used(gw, origin, 4) == {"a", "b"}
        # A sticky session on b (which stays), and a tunnel through a (which is about to leave).
        session = next(f"u-session-s{i}" for i in range(40) if exits_used(gw, origin, 1, f"u-session-s{i}") == {"b"})
        for _ in range(12):
            tunnel, head = connect_tunnel(gw.port, origin.hostport)
            if head.header("X-Exitpool-Exit") == "a":
                break
            tunnel.close()
        assert head.header("X-Exitpool-Exit") == "a"

        # Unchanged list: every refresh sends If-None-Match and gets a 304; no reload.
        before = reloads(gw)
        fetched = lists.count()
        wait_until(lambda: lists.count() >= fetched + 2, 5, what="two refreshes")
        assert all(h.get("if-none-match") == '"v1"' for _, h, _ in lists.requests[1:]), lists.requests
        assert all(status == 304 for _, _, status in lists.requests[1:])
        assert reloads(gw) == before
        assert url_source(gw)["fetches"]["unchanged"] >= 2

        # The list changes: c joins, a leaves; the open tunnel keeps working, b keeps its statistics.
        b_successes = admin_exits(gw.admin_port)["b"]["successes"]
        assert b_successes >= 1
        mark = log_size(gw)
        lists.set_list([B, C], etag='"v2"')
        wait_log(gw, r"pool reloaded", start=mark)
        assert reloads(gw) == before + 1
        assert exits_used(gw, origin, 8) == {"b", "c"}
        tunnel.send(b"GET /t HTTP/1.1\r\nHost: " + origin.hostport.encode() + b"\r\nConnection: keep-alive\r\n\r\n")
        r = tunnel.read_response()
        assert r.status == 200 and r.text == f"{SRC['a']}\n", r
        tunnel.close()
        # The sticky session keeps its exit, which is still in the list.
        assert exits_used(gw, origin, 6, user=session) == {"b"}
        exits = admin_exits(gw.admin_port)
        assert set(exits) == {"b", "c"}
        assert exits["b"]["successes"] > b_successes  # the same exit object, carried over by the reload
        src = url_source(gw)
        assert src["ok"] and src["exits"] == 2 and src["error"] is None


def test_a_500_a_timeout_garbage_and_an_empty_list_keep_the_last_good_pool(start_gateway):
    with ListOrigin() as lists, RecordingOrigin("127.0.0.1") as origin:
        lists.set_list([A, B], etag=None)
        gw = start(start_gateway, lists, "--pool", lists.url(), "--pool-refresh", "1s", "--pool-timeout", "1s")
        before = reloads(gw)
        for mode, error in [("500", r"HTTP 500"), ("slow", r"no complete answer within 1000 ms"),
                            ("garbage", r":1: "), ("empty", r"empty list")]:
            mark = log_size(gw)
            lists.mode = mode
            wait_log(gw, r"pool source fetch failed .*" + error, timeout=10, start=mark)
            src = url_source(gw)
            assert not src["ok"] and re.search(error, src["error"]), src
            assert src["exits"] == 2
            assert set(admin_exits(gw.admin_port)) == {"a", "b"}
            assert exits_used(gw, origin, 4) == {"a", "b"}
        assert reloads(gw) == before
        assert metric(gw, f'exitpool_pool_source_up{{source="{lists.url()}"}}') == 0
        assert metric(gw, f'exitpool_pool_source_fetches_total{{source="{lists.url()}",result="failed"}}') >= 4
        # Recovery: a new list is taken at the next try.
        mark = log_size(gw)
        lists.set_list([C], etag=None)
        wait_log(gw, r"pool reloaded", timeout=10, start=mark)
        assert exits_used(gw, origin, 3) == {"c"}
        assert metric(gw, f'exitpool_pool_source_up{{source="{lists.url()}"}}') == 1


def test_json_sources_with_defaults_and_keys_that_never_show(start_gateway):
    with ListOrigin(key=KEY) as lists:
        lists.set_json({"code": 0, "data": [
            A,  # a string item is a pool line
            {"ip": "10.255.0.1", "port": 8000, "username": "acct", "password": "pw:1", "country": "DE",
             "type": "isp", "expires_at": "never"},
            {"host": "10.255.0.2", "port": "1080", "protocol": "socks5"},
        ]}, etag='"j1"')
        key_file = start_gateway.write("key.txt", KEY + "\n")
        gw = start(start_gateway, lists,
                   "--pool", lists.url("/list?key={key}&fmt=json"), "--pool-key-env", "EXITPOOL_TEST_KEY",
                   "--pool-tags", "country=us tier=1",
                   "--pool", lists.url("/other"), "--pool-key-file", str(key_file), "--pool-key-header",
                   "X-Api-Key", "--pool-scheme", "socks5h", env_key=True)
        exits = admin_exits(gw.admin_port)
        # Both sources list the same exits: the first source's are kept, the duplicates logged.
        assert set(exits) == {"a", "acct@10.255.0.1:8000", "10.255.0.2:1080"}, exits
        assert exits["acct@10.255.0.1:8000"]["tags"]["country"] == "de"  # the item's own value wins
        assert exits["acct@10.255.0.1:8000"]["tags"]["type"] == "isp"
        assert exits["10.255.0.2:1080"]["tags"]["country"] == "us"  # the source's default
        assert exits["10.255.0.2:1080"]["tags"]["tier"] == "1"
        assert exits["10.255.0.2:1080"]["scheme"] == "socks5"
        assert exits["acct@10.255.0.1:8000"]["url"] == "http://acct:***@10.255.0.1:8000"
        assert "exit left out, its id is taken" in gw.log()
        # The key reached the origin both ways, and nowhere else.
        assert any(f"key={KEY}" in p for p, _, _ in lists.requests)
        assert any(h.get("x-api-key") == KEY for _, h, _ in lists.requests)
        names = [s["source"] for s in exits_doc(gw)["sources"]]
        assert lists.url("/list?key={key}&fmt=json") in names, names
        # A fetch that fails with an answer quoting the key still never shows it.
        lists.key = "another"
        os.kill(gw.proc.pid, 1)  # SIGHUP: URL sources are fetched at once
        wait_log(gw, r"pool source fetch failed .*HTTP 403")
        for text in (gw.log(), admin_get(gw.admin_port, "/exits")[2].decode(),
                     admin_get(gw.admin_port, "/metrics")[2].decode(),
                     admin_get(gw.admin_port, "/dashboard.json")[2].decode()):
            assert KEY not in text


def test_a_bad_or_unreachable_source_at_startup_is_an_error_naming_it(tmp_path):
    pool = tmp_path / "pool.txt"
    pool.write_text(A + "\n")
    env = {**os.environ, "EXITPOOL_TEST_KEY": KEY}
    dead = f"http://127.0.0.1:{closed_port()}/list?key={{key}}"
    cases = [
        (["--pool", str(pool), "--pool", dead, "--pool-key-env", "EXITPOOL_TEST_KEY"],
         rf"pool source {re.escape(dead)}: .*(refused|connect)"),
        (["--pool", "ftp://127.0.0.1/list"], r"only files and http:// or https:// URLs are sources"),
        (["--pool", "http://127.0.0.1:1/list?key={key}"], r"the URL has \{key\} but no key is given"),
        (["--pool-refresh", "5s", "--pool", str(pool)], r"--pool-refresh must follow the --pool it describes"),
        (["--pool", str(pool), "--pool-refresh", "5s"], r"--pool-refresh is for URL sources"),
    ]
    for args, error in cases:
        cp = run([str(exitpool_bin()), "serve", *args, "--listen", f"127.0.0.1:{free_port()}"], timeout=15, env=env)
        out = cp.stdout + cp.stderr
        assert cp.returncode == 2, (args, out)
        assert re.search(error, out), (args, out)
        assert KEY not in out
    with ListOrigin() as lists:
        lists.mode = "500"
        cp = run([str(exitpool_bin()), "serve", "--pool", str(pool), "--pool", lists.url(), "--check-config"],
                 timeout=15)
        assert cp.returncode == 2 and f"pool source {lists.url()}: HTTP 500" in cp.stderr, cp.stderr
        lists.set_list([B], etag=None)
        cp = run([str(exitpool_bin()), "serve", "--pool", str(pool), "--pool", lists.url(), "--check-config"],
                 timeout=15)
        assert cp.returncode == 0 and "2 exits from" in cp.stdout, cp.stdout + cp.stderr


def test_check_and_toml_take_url_sources(tmp_path):
    with ListOrigin() as lists, RecordingOrigin("127.0.0.1") as origin:
        lists.set_list(["127.0.0.41:1:u:p", A, B], etag=None)  # a vendor line; check sees it fail
        cp = run([str(exitpool_bin()), "check", "--pool", lists.url(), "--url", origin.url("/ip"), "--json",
                  "--timeout", "3"], timeout=30)
        results = {r["id"]: r for r in json.loads(cp.stdout)}
        assert cp.returncode == 1, cp.stdout + cp.stderr
        assert results["a"]["ok"] and results["a"]["exit_ip"] == SRC["a"]
        assert results["b"]["ok"] and results["b"]["exit_ip"] == SRC["b"]
        assert not results["u@127.0.0.41:1"]["ok"]

        cfg = tmp_path / "exitpool.toml"
        cfg.write_text(f'[[pool]]\nsource = "{lists.url()}"\ntags = "country=us"\nrefresh = "30s"\n'
                       f'allow-empty = true\n')
        cp = run([str(exitpool_bin()), "serve", "--config", str(cfg), "--check-config"], timeout=15)
        assert cp.returncode == 0 and "3 exits from " + lists.url() in cp.stdout, cp.stdout + cp.stderr
        # A --pool on the command line replaces the file's sources.
        pool = tmp_path / "pool.txt"
        pool.write_text(C + "\n")
        cp = run([str(exitpool_bin()), "serve", "--config", str(cfg), "--pool", str(pool), "--check-config"],
                 timeout=15)
        assert cp.returncode == 0 and f"1 exit from {pool}" in cp.stdout, cp.stdout + cp.stderr
        cfg.write_text(f'[[pool]]\nsource = "{lists.url()}"\ncolour = "red"\n')
        cp = run([str(exitpool_bin()), "serve", "--config", str(cfg), "--check-config"], timeout=15)
        assert cp.returncode == 2 and "unknown key 'colour' in [[pool]]" in cp.stderr, cp.stderr


def test_https_source_is_verified_against_the_ca_file(tmp_path):
    from conftest import make_test_pki
    ca, cert, key = make_test_pki(tmp_path)
    with ListOrigin(tls=(str(cert), str(key))) as lists:
        lists.set_list([A, B], etag=None)
        cp = run([str(exitpool_bin()), "serve", "--pool", lists.url(), "--ca-file", str(ca), "--check-config"])
        assert cp.returncode == 0 and f"2 exits from {lists.url()}" in cp.stdout, cp.stdout + cp.stderr
        cp = run([str(exitpool_bin()), "serve", "--pool", lists.url(), "--check-config"])
        assert cp.returncode == 2 and f"pool source {lists.url()}: " in cp.stderr, cp.stderr
        assert re.search(r"certificate|SSL", cp.stderr), cp.stderr
