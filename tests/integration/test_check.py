"""`exitpool check`: every exit of a pool checked once through the real upstreams of the lab.

The check URL is the nginx origin, which answers every path with "$remote_addr\n": the address an exit
leaves from, so each live exit must report the IP its daemon is configured to leave through.
"""
from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time

import pytest

from helpers import EXIT_IPS, closed_port, exitpool_bin, run

LIVE = ["squid", "tinyproxy", "dante", "microsocks", "ms-auth", "tp-auth", "squid-tls", "d1", "d2"]
SECRETS = ["tppass", "mspass"]


def check(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    try:
        return run([str(exitpool_bin()), "check", *args], timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"exitpool check {' '.join(args)} did not finish within {timeout}s")


def write_pool(tmp_path, lines: list[str]):
    p = tmp_path / "pool.txt"
    p.write_text("# exitpool check test pool\n" + "".join(line + "\n" for line in lines))
    return p


def out(cp: subprocess.CompletedProcess) -> str:
    return cp.stdout.decode(errors="replace")


def err(cp: subprocess.CompletedProcess) -> str:
    return cp.stderr.decode(errors="replace")


@pytest.fixture
def silent_upstream():
    """A TCP server that accepts connections and never sends a byte (until the test ends)."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def loop():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
                held.append(c)
            except OSError:
                continue

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(timeout=2)
    for c in held:
        c.close()
    srv.close()


def test_live_and_dead_exits_json(tmp_path, lab):
    dead = f"http://127.0.0.1:{closed_port()} id=dead country=zz"
    pool = write_pool(tmp_path, lab.pool(*LIVE) + [dead])
    cp = check("--pool", str(pool), "--url", lab.origin.url("/ip"), "--json", "--timeout", "10")
    assert cp.returncode == 1, out(cp) + err(cp)
    results = json.loads(out(cp))
    assert [r["id"] for r in results] == LIVE + ["dead"], "pool file order"
    by_id = {r["id"]: r for r in results}
    for exit_id in LIVE:
        r = by_id[exit_id]
        assert r["ok"] is True, r
        assert r["result"] == "ok"
        assert r["error"] is None
        assert r["status"] == 200
        assert r["exit_ip"] == EXIT_IPS[exit_id], r
        assert r["latency_ms"] > 0 and r["dial_ms"] is not None and r["dial_ms"] <= r["latency_ms"]
    d = by_id["dead"]
    assert d["ok"] is False and d["result"] == "error"
    assert d["error_type"] == "connection_refused", d
    assert d["error"]
    assert d["exit_ip"] is None and d["status"] is None
    assert d["tags"]["country"] == "zz"
    assert by_id["squid"]["tags"] == {"country": "us", "city": None, "type": "datacenter", "weight": 1.0}
    # Redacted URLs, never the passwords.
    assert by_id["tp-auth"]["url"].startswith("http://tpuser:")
    for secret in SECRETS:
        assert secret not in out(cp) + err(cp)


def test_live_and_dead_exits_table(tmp_path, lab):
    dead = f"socks5://127.0.0.1:{closed_port()} id=dead"
    pool = write_pool(tmp_path, lab.pool("squid", "dante", "d1") + [dead])
    cp = check("--pool", str(pool), "--url", lab.origin.url())
    assert cp.returncode == 1, out(cp) + err(cp)
    lines = out(cp).splitlines()
    assert re.match(r"^EXIT\s+RESULT\s+LATENCY\s+STATUS\s+EXIT IP\s+TAGS\s+ERROR$", lines[0]), lines[0]
    rows = {line.split()[0]: line for line in lines[1:] if line and not line[0].isdigit()}
    for exit_id in ("squid", "dante", "d1"):
        assert re.match(rf"^{exit_id}\s+ok\s+[\d.]+ ms\s+200\s+{re.escape(EXIT_IPS[exit_id])}\s", rows[exit_id]), rows[exit_id]
    assert re.match(r"^dead\s+error\s+[\d.]+ ms\s+-\s+-\s+-\s+\S", rows["dead"]), rows["dead"]
    # Columns are aligned: every row's RESULT starts at the header's RESULT column.
    col = lines[0].index("RESULT")
    for exit_id in ("squid", "dante", "d1", "dead"):
        assert rows[exit_id][col - 2:col] == "  " and rows[exit_id][col] != " "
    assert "3 of 4 exits ok" in out(cp)


def test_all_ok_exits_zero(tmp_path, lab):
    pool = write_pool(tmp_path, lab.pool("tinyproxy", "microsocks", "d2"))
    cp = check("--pool", str(pool), "--url", lab.origin.url(), "--concurrency", "1")
    assert cp.returncode == 0, out(cp) + err(cp)
    assert "3 of 3 exits ok" in out(cp)


def test_verified_tls_exit_needs_the_ca(tmp_path, lab):
    port = re.search(r":(\d+) ", lab.line("squid-tls")).group(1)
    pool = write_pool(tmp_path, [f"https://127.0.0.1:{port} id=tls-verified"])
    ok = check("--pool", str(pool), "--url", lab.origin.url(), "--json", "--ca-file", str(lab.ca_file))
    assert ok.returncode == 0, out(ok) + err(ok)
    assert json.loads(out(ok))[0]["exit_ip"] == "127.0.0.11"
    bad = check("--pool", str(pool), "--url", lab.origin.url(), "--json")
    assert bad.returncode == 1
    assert json.loads(out(bad))[0]["error_type"] == "tls_certificate_error"


def test_wrong_proxy_credentials_fail(tmp_path, lab):
    line = lab.line("tp-auth").replace("tpuser:tppass@", "tpuser:badpass@").replace("id=tp-auth", "id=tp-wrong")
    pool = write_pool(tmp_path, [line])
    cp = check("--pool", str(pool), "--url", lab.origin.url(), "--json")
    assert cp.returncode == 1
    r = json.loads(out(cp))[0]
    # tinyproxy refuses bad proxy credentials with 401 rather than 407.
    assert r["ok"] is False and r["status"] in (401, 407), r
    assert "badpass" not in out(cp)


def test_silent_exit_times_out(tmp_path, lab, silent_upstream):
    pool = write_pool(tmp_path, [f"http://127.0.0.1:{silent_upstream} id=silent", lab.line("d1")])
    t0 = time.monotonic()
    cp = check("--pool", str(pool), "--url", lab.origin.url(), "--json", "--timeout", "1")
    elapsed = time.monotonic() - t0
    assert cp.returncode == 1, out(cp) + err(cp)
    assert elapsed < 5, f"took {elapsed:.1f}s with --timeout 1"
    by_id = {r["id"]: r for r in json.loads(out(cp))}
    assert by_id["silent"]["ok"] is False
    assert by_id["silent"]["error_type"] == "http_response_timeout", by_id["silent"]
    assert by_id["d1"]["ok"] is True


def test_url_is_required(tmp_path, lab):
    pool = write_pool(tmp_path, lab.pool("d1"))
    cp = check("--pool", str(pool))
    assert cp.returncode == 2
    assert "--url is required" in err(cp)
    assert "IP address" in err(cp)


@pytest.mark.parametrize("url", ["https://127.0.0.1/", "ftp://127.0.0.1/", "not a url", "http://u:p@127.0.0.1/"])
def test_bad_url_is_a_usage_error(tmp_path, url):
    pool = write_pool(tmp_path, ["direct://127.0.0.21 id=d1"])
    cp = check("--pool", str(pool), "--url", url)
    assert cp.returncode == 2, out(cp) + err(cp)
    assert "--url" in err(cp)


def test_bad_pool_line_names_file_and_line(tmp_path):
    pool = tmp_path / "pool.txt"
    pool.write_text("direct://127.0.0.21 id=d1\nftp://127.0.0.1:21 id=ftp\n")
    cp = check("--pool", str(pool), "--url", "http://127.0.0.1:1/")
    assert cp.returncode == 2
    assert "pool.txt:2:" in err(cp), err(cp)


def test_missing_pool_file(tmp_path):
    cp = check("--pool", str(tmp_path / "nope.txt"), "--url", "http://127.0.0.1:1/")
    assert cp.returncode == 2
    assert "nope.txt" in err(cp)
