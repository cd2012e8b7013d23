"""`exitpool fetch` (issue 4): the batch fetcher against the loopback lab.

The origins tell which source address every request came from (nginx answers `$remote_addr`,
RecordingOrigin records it), so each test checks what really reached the target, not what the
fetcher says about itself. Direct exits leave from 127.0.0.21-24 (every 127/8 address is local).
"""
from __future__ import annotations

import base64
import gzip
import json
import os
import signal
import subprocess
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from faults import Answer, RecordingOrigin, quiet_flags, request
from helpers import EXIT_IPS, exitpool_bin

DIRECT = {f"d{i}": f"127.0.0.{20 + i}" for i in range(1, 5)}  # d1..d4 -> 127.0.0.21..24


def direct_pool(n: int) -> list[str]:
    return [f"direct://{DIRECT[f'd{i}']} id=d{i}" for i in range(1, n + 1)]


class Fetch:
    """One run of `exitpool fetch` in its own directory."""

    def __init__(self, d: Path, pool_lines: list[str], urls: list[str], *, gz: bool = False):
        self.dir = d
        d.mkdir(parents=True, exist_ok=True)
        self.pool = d / "pool.txt"
        self.pool.write_text("".join(line + "\n" for line in pool_lines))
        text = "".join(u + "\n" for u in urls)
        self.input = d / ("urls.txt.gz" if gz else "urls.txt")
        if gz:
            self.input.write_bytes(gzip.compress(text.encode()))
        else:
            self.input.write_text(text)
        self.output = d / "results.jsonl"
        self.stderr = ""

    def argv(self, *args: str) -> list[str]:
        return [str(exitpool_bin()), "fetch", "--pool", str(self.pool), "--input", str(self.input),
                "--output", str(self.output), "--threads", "2", *args]

    def run(self, *args: str, timeout: float = 40) -> int:
        cp = subprocess.run(self.argv(*args), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                            env=_no_proxy_env())
        self.stderr = cp.stderr.decode(errors="replace")
        return cp.returncode

    def results(self) -> list[dict]:
        return [json.loads(line) for line in self.output.read_text().splitlines()]


def _no_proxy_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


def warc_records(path: Path, data: bytes | None = None) -> list[tuple[dict, bytes]]:
    """Parses a WARC made of gzip members, strictly: WARC/1.1, exact Content-Length, CRLFCRLF after each block."""
    data = path.read_bytes() if data is None else data
    out = []
    while data:
        d = zlib.decompressobj(31)
        text = d.decompress(data) + d.flush()
        assert d.eof, "truncated gzip member"
        data = d.unused_data
        head, _, rest = text.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0] == "WARC/1.1", lines[0]
        h = dict(line.split(": ", 1) for line in lines[1:])
        n = int(h["Content-Length"])
        assert len(rest) == n + 4 and rest[n:] == b"\r\n\r\n", (h, len(rest), n)
        out.append((h, rest[:n]))
    return out


def by_url(results: list[dict]) -> dict[str, dict]:
    out = {}
    for r in results:
        assert r["url"] not in out, f"duplicate result for {r['url']}"
        out[r["url"]] = r
    return out


# ------------------------------------------------------------------------------- every exit kind


def test_fetch_through_every_exit_kind_and_the_origin_sees_the_exit(lab, tmp_path):
    """45 URLs round-robin over all 9 lab exits (http, https, socks5, socks5h, with and without credentials,
    direct): every result is a 200 whose body (the origin's $remote_addr) is the address of the exit the
    JSONL names."""
    urls = [lab.origin.url(f"/kind/{i}") for i in range(45)]
    f = Fetch(tmp_path, lab.pool(), urls)
    assert f.run("--concurrency", "16", "--per-host", "8") == 0, f.stderr
    res = by_url(f.results())
    assert set(res) == set(urls)
    used = set()
    for url, r in res.items():
        assert r["status"] == 200 and r["error"] is None, r
        assert r["body"].strip() == EXIT_IPS[r["exit"]], r
        assert r["headers"].get("content-type", "").startswith("text/plain"), r
        assert r["final_url"] == url and r["attempts"] == 1
        assert set(r["timings"]) == {"dns", "connect", "tls", "ttfb", "total"}
        if r["exit"] in ("d1", "d2"):
            assert r["exit_ip"] == EXIT_IPS[r["exit"]], r  # CURLINFO_LOCAL_IP for direct exits
        else:
            assert r["exit_ip"] == "127.0.0.1", r  # the proxy's address for proxy exits
        used.add(r["exit"])
    assert used == set(lab.lines), f"exits never used: {set(lab.lines) - used}"
    assert "by exit:" in f.stderr and "p99" in f.stderr


def test_connection_reuse_never_pins_rotation(origin, tmp_path):
    """200 requests over 4 direct exits to one kept-alive nginx, gzip input: the origin sees all 4 source
    addresses, and every response came from the address of the exit its line names."""
    urls = [origin.url(f"/reuse/{i}") for i in range(200)]
    f = Fetch(tmp_path, direct_pool(4), urls, gz=True)
    assert f.run("--concurrency", "8", "--per-host", "8") == 0, f.stderr
    res = by_url(f.results())
    assert set(res) == set(urls)
    seen = {}
    for r in res.values():
        assert r["status"] == 200, r
        saw = r["body"].strip()
        assert saw == DIRECT[r["exit"]] == r["exit_ip"], r
        seen[saw] = seen.get(saw, 0) + 1
    assert set(seen) == set(DIRECT.values()), seen
    assert min(seen.values()) >= 40, seen  # round-robin: about 50 each


# ------------------------------------------------------------------------------------ politeness


def test_per_host_limit_is_observed_at_the_origin(tmp_path):
    """--per-host 3 with 4 exits and --concurrency 64: the origin never has more than 3 requests in flight
    from this fetch, whatever the exits; a second host is served in parallel, with its own limit."""
    peak = {"n": 0, "cur": 0}
    lock = threading.Lock()

    def slow(hit):
        # Counted here, not by RecordingOrigin.inflight: that one is decremented after the response has
        # gone out, when the fetcher may already have started the next request on another connection.
        with lock:
            peak["cur"] += 1
            peak["n"] = max(peak["n"], peak["cur"])
        time.sleep(0.1)
        with lock:
            peak["cur"] -= 1
        return Answer(200, f"{hit.src}\n".encode())

    with RecordingOrigin("127.0.0.1", slow) as a, RecordingOrigin("127.0.0.3", lambda h: Answer(200, b"b\n")) as b:
        urls = [a.url(f"/p/{i}") for i in range(24)] + [b.url(f"/q/{i}") for i in range(24)]
        f = Fetch(tmp_path, direct_pool(4), urls)
        t0 = time.monotonic()
        assert f.run("--concurrency", "64", "--per-host", "3") == 0, f.stderr
        elapsed = time.monotonic() - t0
        res = by_url(f.results())
        assert all(r["status"] == 200 for r in res.values())
        assert 2 <= peak["n"] <= 3, peak
        assert len({h.src for h in a.snapshot()}) == 4  # the limit is per host, not per exit
        assert elapsed >= 24 / 3 * 0.1 * 0.9  # 24 URLs, 3 at a time, 0.1 s each
        assert b.count() == 24


def test_delay_spaces_requests_to_a_host_whatever_the_exits(tmp_path):
    """--delay 0.05 with 4 exits: consecutive requests to one host start at least ~50 ms apart at the origin."""
    with RecordingOrigin("127.0.0.1") as o:
        urls = [o.url(f"/d/{i}") for i in range(12)]
        f = Fetch(tmp_path, direct_pool(4), urls)
        assert f.run("--delay", "0.05", "--concurrency", "32", "--per-host", "8") == 0, f.stderr
        times = sorted(h.t for h in o.snapshot())
        gaps = [b - a for a, b in zip(times, times[1:])]
        # Starts are 50 ms apart; arrivals jitter a little (a new connection, a thread to start).
        assert len(times) == 12 and times[-1] - times[0] >= 11 * 0.05 * 0.95, gaps
        assert sorted(gaps)[1] >= 0.035, gaps
        assert len({h.src for h in o.snapshot()}) == 4


def test_auto_throttle_backs_off_a_host_that_answers_503_under_load(tmp_path):
    """An origin that answers 503 whenever more than 2 requests are in flight: with --per-host 8 alone most
    answers are 503; with --auto-throttle the window settles around the limit (TCP-like saw-tooth) and far
    fewer are."""
    state = {"cur": 0}
    lock = threading.Lock()

    def decide(hit):
        with lock:
            state["cur"] += 1
            over = state["cur"] > 2
        time.sleep(0.02)
        with lock:
            state["cur"] -= 1
        return Answer(503 if over else 200, b"busy\n" if over else b"ok\n")

    counts = {}
    with RecordingOrigin("127.0.0.1", decide) as o:
        for mode in ("fixed", "auto"):
            urls = [o.url(f"/{mode}/{i}") for i in range(80)]
            f = Fetch(tmp_path / mode, direct_pool(2), urls)
            extra = ["--auto-throttle"] if mode == "auto" else []
            # 503 is no ban here: each answer is final, so the counts show what the origin went through.
            assert f.run("--per-host", "8", "--ban-status", "599", "--retries", "0", *extra) == 0, f.stderr
            counts[mode] = sum(1 for r in f.results() if r["status"] == 503)
    assert counts["fixed"] >= 30, counts
    assert counts["auto"] <= min(25, counts["fixed"] // 2), counts  # AIMD saw-tooth: a 503 now and then


# ------------------------------------------------------------------------------------ bans, retry


def test_ban_is_retried_on_another_exit_and_the_exit_stays_banned_for_that_host(tmp_path):
    """The origin answers 429 (Retry-After: 120) to 127.0.0.21 (d1): the URL that met the ban is retried
    on d2, d1 is banned for that host and never used for it again; every URL ends as a 200 from d2."""
    def decide(hit):
        if hit.src == DIRECT["d1"]:
            return Answer(429, b"slow down\n", {"Retry-After": "120"})
        return Answer(200, f"ok {hit.src}\n".encode())

    with RecordingOrigin("127.0.0.1", decide) as o:
        urls = [o.url(f"/ban/{i}") for i in range(20)]
        f = Fetch(tmp_path, direct_pool(2), urls)
        assert f.run("--concurrency", "4", "--per-host", "4", "--backoff", "0.05") == 0, f.stderr
        res = by_url(f.results())
        assert set(res) == set(urls)
        for r in res.values():
            assert r["status"] == 200 and r["exit"] == "d2" and r["body"] == "ok 127.0.0.22\n", r
        retried = [r for r in res.values() if r["attempts"] > 1]
        assert 1 <= len(retried) <= 4, retried  # those in flight on d1 before the first 429 came back
        assert o.count(DIRECT["d1"]) == len(retried), o.by_source()
        assert o.count(DIRECT["d2"]) == 20


def test_retry_after_is_honoured_when_no_other_exit_can_serve(tmp_path):
    """One exit; the origin answers the first request 429 with Retry-After: 1. The retry waits for the ban
    to end (about 1 s, not the 10 ms backoff) and then succeeds on the same exit."""
    seen = []

    def decide(hit):
        seen.append(time.monotonic())
        if len(seen) == 1:
            return Answer(429, b"later\n", {"Retry-After": "1"})
        return Answer(200, b"ok\n")

    with RecordingOrigin("127.0.0.1", decide) as o:
        f = Fetch(tmp_path, direct_pool(1), [o.url("/ra")])
        assert f.run("--backoff", "0.01") == 0, f.stderr
        (r,) = f.results()
        assert r["status"] == 200 and r["attempts"] == 2, r
        assert len(seen) == 2 and 0.9 <= seen[1] - seen[0] <= 3, seen


# One ban policy for `serve` and `fetch` (issue 10): a pattern on the status line's reason phrase, on a
# header fetch does not write to its results, or on the body; the status (200) is in no ban list.
SAME_BAN = {
    "reason": ("^200 Solve The Captcha\\n", Answer(200, b"fine\n", reason="Solve The Captcha")),
    "header": ("\\nX-Challenge: captcha", Answer(200, b"fine\n", {"X-Challenge": "captcha-required"})),
    "body": ("please solve", Answer(200, b"<p>please solve the captcha</p>\n")),
}


@pytest.mark.parametrize("where", sorted(SAME_BAN))
def test_serve_and_fetch_ban_an_exit_on_the_same_response(start_gateway, tmp_path, where):
    """The origin gives d1 (127.0.0.21) the same answer whether the request came through `serve` or `fetch`,
    both run with the same --ban-status / --ban-pattern: both ban d1 for that host after one such answer and
    serve every request from d2; the client / the result never sees the ban answer."""
    pattern, banned_answer = SAME_BAN[where]

    def decide(hit):
        return banned_answer if hit.src == DIRECT["d1"] else Answer(200, f"ok {hit.src}\n".encode())

    flags = ["--ban-status", "599", "--ban-pattern", pattern]
    with RecordingOrigin("127.0.0.1", decide) as via_serve, RecordingOrigin("127.0.0.3", decide) as via_fetch:
        gw = start_gateway(direct_pool(2), *flags, *quiet_flags())
        for i in range(6):
            r = request(gw.port, "GET", via_serve.url(f"/s{i}"))
            assert r.status == 200 and r.header("X-Exitpool-Exit") == "d2" and r.text == "ok 127.0.0.22\n", \
                (where, i, r.status, r.headers, r.text)
        assert via_serve.count(DIRECT["d1"]) == 1, via_serve.by_source()

        urls = [via_fetch.url(f"/f{i}") for i in range(6)]
        f = Fetch(tmp_path / "fetch", direct_pool(2), urls)
        assert f.run(*flags, "--concurrency", "1", "--per-host", "1", "--backoff", "0.01") == 0, f.stderr
        res = by_url(f.results())
        assert set(res) == set(urls)
        for r in res.values():
            assert r["status"] == 200 and r["exit"] == "d2" and r["body"] == "ok 127.0.0.22\n", (where, r)
        assert via_fetch.count(DIRECT["d1"]) == 1, via_fetch.by_source()
        assert sum(r["attempts"] for r in res.values()) == 7, res


def test_final_failure_is_recorded_with_its_reason(tmp_path):
    """Every exit banned on every attempt: one result per URL, the last status, attempts == retries + 1,
    each attempt on a different exit, and an error naming them."""
    with RecordingOrigin("127.0.0.1", lambda h: Answer(503, b"down\n")) as o:
        urls = [o.url(f"/fail/{i}") for i in range(3)]
        f = Fetch(tmp_path, direct_pool(2), urls)
        assert f.run("--retries", "1", "--backoff", "0.01", "--ban-time", "0.2", "--per-host", "1") == 0, f.stderr
        res = by_url(f.results())
        for r in res.values():
            assert r["status"] == 503 and r["attempts"] == 2, r
            assert "2 attempts failed" in r["error"] and "d1: status 503" in r["error"] \
                and "d2: status 503" in r["error"], r
        assert o.count() == 6


def test_unreachable_exit_is_retried_and_bad_urls_get_error_results(origin, tmp_path):
    """A dead proxy exit fails over to a working one; an invalid URL gets its own error line."""
    urls = [origin.url(f"/dead/{i}") for i in range(6)] + ["ftp://nope/", "not a url"]
    f = Fetch(tmp_path, ["http://127.0.0.1:1 id=dead", direct_pool(1)[0]], urls)
    assert f.run("--backoff", "0.01", "--concurrency", "4") == 0, f.stderr
    res = by_url(f.results())
    assert set(res) == set(urls)
    for u in urls[:6]:
        assert res[u]["status"] == 200 and res[u]["exit"] == "d1", res[u]
    for u in urls[6:]:
        assert res[u]["status"] == 0 and "invalid url" in res[u]["error"], res[u]


# ------------------------------------------------------------------------------------------- TLS


def test_https_targets_are_verified_through_every_kind_of_exit(lab, tmp_path):
    """An HTTPS origin with a certificate from the lab's test CA: with --ca-file it is fetched through an HTTP
    proxy (CONNECT), a TLS proxy, SOCKS5 and a direct exit (tls timing set); without it, every URL gets a
    certificate error at once (not retried: no exit can fix the target's certificate)."""
    import ssl
    from conftest import make_test_pki

    d = tmp_path / "pki"
    d.mkdir()
    ca, crt, key = make_test_pki(d)

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            body = f"{self.client_address[0]}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = _HeaderOrigin(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        port = srv.server_address[1]
        urls = [f"https://127.0.0.1:{port}/tls/{i}" for i in range(8)]
        pool = lab.pool("squid", "squid-tls", "dante", "d1")
        f = Fetch(tmp_path / "ok", pool, urls)
        assert f.run("--ca-file", str(ca), "--concurrency", "4") == 0, f.stderr
        res = f.results()
        assert len(res) == 8 and {r["exit"] for r in res} == {"squid", "squid-tls", "dante", "d1"}
        for r in res:
            assert r["status"] == 200 and r["body"].strip() == EXIT_IPS[r["exit"]], r
        # Each exit's first request did a TLS handshake (later ones may reuse that exit's connection).
        assert {r["exit"] for r in res if r["timings"]["tls"] > 0} == {"squid", "squid-tls", "dante", "d1"}

        f = Fetch(tmp_path / "bad", lab.pool("d1", "d2"), urls[:2])
        assert f.run() == 0, f.stderr
        for r in f.results():
            assert r["status"] == 0 and r["attempts"] == 1 and "certificate" in r["error"].lower(), r
    finally:
        srv.shutdown()
        srv.server_close()


# ------------------------------------------------------------------------------------ credentials


class _HeaderOrigin(ThreadingHTTPServer):
    daemon_threads = True


def _header_origin():
    seen = []

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            seen.append({k.lower(): v for k, v in self.headers.items()})
            body = f"{self.client_address[0]}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = _HeaderOrigin(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return srv, seen


def test_proxy_authorization_never_reaches_the_origin_and_retries_send_their_own_credentials(lab, tmp_path):
    """Through authenticated HTTP and SOCKS5 exits, and after a first attempt through an exit with wrong
    credentials (the SOCKS5 upstream refuses them), no request at the origin carries Proxy-Authorization,
    and the retry on another exit succeeds with that exit's credentials.

    (The wrong-credentials exit is SOCKS5 because tinyproxy 1.11 refuses bad proxy credentials on plain
    http:// with a 401 + WWW-Authenticate, which cannot be told from the target's own 401.)"""
    srv, seen = _header_origin()
    try:
        port = srv.server_address[1]
        ms = lab.line("ms-auth").split()[0]  # socks5://msuser:mspass@127.0.0.1:PORT
        bad = ms.replace("msuser:mspass", "msuser:wrong") + " id=bad tier=0"
        pool = [bad, lab.line("tp-auth") + " tier=1", lab.line("ms-auth") + " tier=1"]
        urls = [f"http://127.0.0.1:{port}/cred/{i}" for i in range(8)]
        f = Fetch(tmp_path, pool, urls)
        assert f.run("--backoff", "0.01", "--concurrency", "4", "--retries", "3") == 0, f.stderr
        res = by_url(f.results())
        for r in res.values():
            assert r["status"] == 200 and r["exit"] in ("tp-auth", "ms-auth"), r
            assert r["body"].strip() == EXIT_IPS[r["exit"]], r
        assert any(r["attempts"] > 1 for r in res.values()), "the bad exit was never tried"
        assert len(seen) == 8
        for headers in seen:
            assert "proxy-authorization" not in headers, headers
            assert "authorization" not in headers, headers
    finally:
        srv.shutdown()
        srv.server_close()


# ---------------------------------------------------------------------------------------- resume


def test_kill_9_and_resume_gives_every_url_exactly_once(tmp_path):
    """2000 URLs against a slow-ish origin; kill -9 mid-run (and a torn line appended, as a crash mid-write
    would leave); the same command again completes the output: every URL exactly once, and URLs done
    before the kill are not fetched again."""
    with RecordingOrigin("127.0.0.1", lambda h: Answer(200, f"{h.path}\n".encode(), delay=0.01)) as o:
        urls = [o.url(f"/r/{i}") for i in range(2000)]
        f = Fetch(tmp_path, direct_pool(2), urls)
        warc = tmp_path / "out.warc.gz"
        args = ("--concurrency", "32", "--per-host", "32", "--fsync-interval", "0.2", "--warc", str(warc))
        proc = subprocess.Popen(f.argv(*args), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=_no_proxy_env(), start_new_session=True)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if f.output.exists() and f.output.read_bytes().count(b"\n") >= 300:
                    break
                time.sleep(0.02)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        before = f.output.read_bytes()
        n_before = before.count(b"\n")
        assert 300 <= n_before < 2000, f"kill came too late or too early: {n_before} lines"
        with open(f.output, "ab") as out:
            out.write(b'{"url":"' + urls[-1].encode() + b'","status":2')  # torn, no newline
        hits_before = o.count()

        assert f.run(*args) == 0, f.stderr
        assert "resuming" in f.stderr, f.stderr
        lines = f.output.read_text().splitlines()
        results = [json.loads(line) for line in lines]
        got = [r["url"] for r in results]
        assert len(got) == len(set(got)) == 2000, (len(got), len(set(got)))
        assert set(got) == set(urls)
        assert all(r["status"] == 200 and r["body"] == r["url"].split(o.hostport, 1)[1] + "\n" for r in results)
        # Work done before the kill was not redone: the second run fetched about what was missing
        # (those in flight at the kill are fetched twice, hence the slack).
        refetched = o.count() - hits_before
        assert refetched <= 2000 - n_before + 64, (refetched, n_before)
        # The WARC kept in step: exactly one response record per URL, each where its line says.
        recs = warc_records(warc)
        responses = [h["WARC-Target-URI"] for h, _ in recs if h["WARC-Type"] == "response"]
        assert len(responses) == 2000 and set(responses) == set(urls), len(responses)
        # A third run has nothing to do.
        assert f.run(*args) == 0, f.stderr
        assert len(f.output.read_text().splitlines()) == 2000
        assert "fetch: 0 results" in f.stderr and "2000 skipped" in f.stderr, f.stderr


def test_sigterm_finishes_what_is_in_flight_and_the_next_run_completes(tmp_path):
    """SIGTERM: exit code 3, every line written is whole, nothing in flight is lost; the same command again
    (from stdin, gzip) completes the output, every URL exactly once."""
    with RecordingOrigin("127.0.0.1", lambda h: Answer(200, b"x\n", delay=0.03)) as o:
        urls = [o.url(f"/t/{i}") for i in range(240)]
        f = Fetch(tmp_path, direct_pool(2), urls)
        args = ("--concurrency", "8", "--per-host", "8")
        proc = subprocess.Popen(f.argv(*args), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=_no_proxy_env(), start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if f.output.exists() and f.output.read_bytes().count(b"\n") >= 40:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 3, err.decode()
        assert b"interrupted" in err
        text = f.output.read_text()
        assert text.endswith("\n")
        first = [json.loads(line) for line in text.splitlines()]
        assert 40 <= len(first) < 240
        # What the origin answered before the stop all made it to the output (nothing in flight dropped).
        assert o.count() == len(first), (o.count(), len(first))

        gz_input = tmp_path / "urls.gz"
        gz_input.write_bytes(gzip.compress("".join(u + "\n" for u in urls).encode()))
        argv = f.argv(*args)
        argv[argv.index("--input") + 1] = "-"
        cp = subprocess.run(argv, stdin=open(gz_input, "rb"), capture_output=True, timeout=40, env=_no_proxy_env())
        assert cp.returncode == 0, cp.stderr.decode()
        got = [r["url"] for r in f.results()]
        assert len(got) == 240 and set(got) == set(urls)
        assert o.count() == 240


def test_bodies_dir_session_per_host_and_config_file(origin, tmp_path):
    """--bodies writes one file per body; --session-per-host keeps every request to a host on one exit; the
    options can come from a TOML --config file. The [::1] URLs only ever use the IPv6 direct exit and the
    127.0.0.1 ones only IPv4 exits (a source address of the other family is never tried)."""
    urls = [origin.url(f"/s/{i}") for i in range(10)] + [origin.url(f"/s/{i}", host="::1") for i in range(10)]
    f = Fetch(tmp_path, direct_pool(4) + ["direct://::1 id=v6"], urls)
    cfg = tmp_path / "fetch.toml"
    cfg.write_text(f'bodies = "{tmp_path / "bodies"}"\nsession-per-host = true\nconcurrency = 8\n')
    assert f.run("--config", str(cfg)) == 0, f.stderr
    res = by_url(f.results())
    assert set(res) == set(urls)
    v4 = {r["exit"] for u, r in res.items() if "[::1]" not in u}
    v6 = {r["exit"] for u, r in res.items() if "[::1]" in u}
    assert len(v4) == 1 and v4 != {"v6"}, v4  # sticky by host
    assert v6 == {"v6"}, v6
    for r in res.values():
        assert r["status"] == 200 and r["attempts"] == 1 and "body" not in r, r
        body = Path(r["body_file"]).read_text()
        assert body.strip() == (DIRECT.get(r["exit"]) or "::1"), (r, body)


def test_session_per_host_waits_for_its_rate_limited_exit(origin, tmp_path):
    """Issue 19 in fetch: --session-per-host with --per-exit-rate keeps every request to the host on one
    exit, waiting for its tokens, instead of spreading over the exits that have some."""
    urls = [origin.url(f"/r/{i}") for i in range(12)]
    f = Fetch(tmp_path, direct_pool(4), urls)
    t0 = time.monotonic()
    assert f.run("--session-per-host", "--per-exit-rate", "10", "--concurrency", "4") == 0, f.stderr
    took = time.monotonic() - t0
    res = by_url(f.results())
    assert set(res) == set(urls)
    assert {r["status"] for r in res.values()} == {200}, res
    exits = {r["exit"] for r in res.values()}
    assert len(exits) == 1, exits
    assert took >= 1.0, took  # 12 requests at 10/s from one exit: at least 1.1 s


def test_warc_has_a_request_and_a_response_per_url_and_no_proxy_credentials(lab, tmp_path):
    """--warc: a warcinfo record, then per URL a response and a request record (one gzip member each) at the
    offset its line names; the response block is the HTTP response with the body the line has; the request
    record never holds Proxy-Authorization, though one exit is an HTTP proxy with credentials."""
    urls = [lab.origin.url(f"/w/{i}") for i in range(6)] + [lab.origin.url("/chunked")]
    f = Fetch(tmp_path, lab.pool("tp-auth", "d1"), urls)
    warc = tmp_path / "out.warc.gz"
    assert f.run("--warc", str(warc), "--inline-body-max", "4") == 0, f.stderr
    res = by_url(f.results())
    recs = warc_records(warc)
    assert recs[0][0]["WARC-Type"] == "warcinfo"
    assert len(recs) == 1 + 2 * len(urls)
    raw = warc.read_bytes()
    for url, r in res.items():
        assert r["status"] == 200, r
        (resp_h, resp), (req_h, req) = warc_records(None, raw[r["warc_offset"]:r["warc_offset"] + r["warc_length"]])
        assert resp_h["WARC-Type"] == "response" and resp_h["WARC-Target-URI"] == url
        assert req_h["WARC-Type"] == "request" and req_h["WARC-Concurrent-To"] == resp_h["WARC-Record-ID"]
        head, _, body = resp.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0]
        # The WARC has the whole body; the line only its first 4 bytes (--inline-body-max).
        assert body.decode().startswith(r["body"]) and len(body) == r["body_size"] > 4, (head, body, r)
        assert b"transfer-encoding" not in head.lower() and b"content-length: " in head.lower()
        assert req.startswith(b"GET ") and b"proxy-authorization" not in req.lower(), req
    secret = base64.b64encode(b"tpuser:tppass")
    assert all(secret not in block and b"tppass" not in block for _, block in recs)  # nor anywhere else
    assert any(r["exit"] == "tp-auth" for r in res.values())
