"""The admin dashboard (issue 17 part 1) in a real browser: Debian's headless Chromium driven through its
DevTools protocol (browser.py). The page loads without console errors, shows the pool's exits, and its
numbers follow the traffic and an exit's death. Screenshots (laptop and phone widths) are kept in the test's
temp dir and copied to tests/artifacts/ (gitignored) for review.
"""
from __future__ import annotations

import json
import shutil
import signal

import pytest

from browser import Browser
from faults import RecordingOrigin, admin_get, direct, quiet_flags, request, start_microsocks, wait_until
from helpers import REPO, basic, free_port

ARTIFACTS = REPO / "tests" / "artifacts"
SECRET = "hunter2-pool-secret"


def dashboard_json(port: int, query: str = "", auth=None) -> dict:
    status, headers, body = admin_get(port, "/dashboard.json" + (f"?{query}" if query else ""), auth)
    assert status == 200, (status, body[:300])
    assert headers["content-type"] == "application/json"
    return json.loads(body)


@pytest.fixture
def dash_gw(start_gateway, gateway_dir):
    started = []

    def start(pool, *args, users=None):
        port = free_port()
        gw = start_gateway(pool, "--admin", f"127.0.0.1:{port}", *args, *quiet_flags(), users=users)
        wait_until(lambda: admin_get(port, "/healthz")[0] == 200, 5, what="the admin endpoint")
        gw.admin_port = port
        started.append(gw)
        return gw
    yield start


def test_dashboard_in_chromium_follows_traffic_and_a_dead_exit(dash_gw, gateway_dir, tmp_path):
    ms = start_microsocks(gateway_dir, "127.0.0.23", name="dashboard-microsocks")
    try:
        with RecordingOrigin("127.0.0.1") as origin:
            pool = [direct(21, "d1", country="us", type="isp"), direct(22, "d2", country="nl"),
                    f"socks5://127.0.0.1:{ms.port} id=ms country=de",
                    # Never dialed (no request asks for country zz): only here to prove the password is not shown.
                    f"http://admin:{SECRET}@127.0.0.1:9 id=locked country=zz"]
            gw = dash_gw(pool, "--eject-after", "1", "--cooldown", "60", "--retries", "0")
            url = f"http://127.0.0.1:{gw.admin_port}/?refresh=0.3"
            with Browser(tmp_path) as b:
                page = b.open(url)
                page.wait_for("document.body.dataset.updated", what="the first poll")
                assert page.text("exits-matching") == "4"
                assert page.eval("document.querySelectorAll('#exits tbody tr').length") == 4
                assert page.text("state-healthy") == "4"
                assert page.text("state-ejected") == "0"
                assert page.text("requests-total") == "0"
                assert page.eval("document.getElementById('fleet-card').hidden"), "in-process state: no fleet card"

                # Traffic: the request counter on the page moves.
                for i in range(6):
                    r = request(gw.port, "GET", origin.url(f"/{i}"), headers={"Proxy-Authorization": basic("t-country-us", "x")})
                    assert r.status == 200, r.text
                page.wait_for("document.getElementById('requests-total').textContent === '6'",
                              what="requests-total to show 6")

                # An exit dies: its row and the state counts follow.
                ms.stop()
                r = request(gw.port, "GET", origin.url("/dead"), headers={"Proxy-Authorization": basic("t-country-de", "x")})
                assert r.status >= 500, r.status
                page.wait_for("document.getElementById('state-ejected').textContent === '1'",
                              what="one exit shown as ejected")
                assert page.text("state-healthy") == "3"
                assert page.eval("document.querySelector('#exits tr[data-id=ms] .state-ejected') !== null")
                assert page.text("errors-total") == "1"

                # The filters narrow the table (the server filters: ?state=ejected).
                page.eval("(() => { const s = document.getElementById('f-state'); s.value = 'ejected';"
                          " s.dispatchEvent(new Event('change')); })()")
                page.wait_for("document.querySelectorAll('#exits tbody tr').length === 1", what="the filter")
                assert page.text("exits-matching") == "1"
                page.eval("(() => { const s = document.getElementById('f-state'); s.value = '';"
                          " s.dispatchEvent(new Event('change')); })()")
                page.wait_for("document.querySelectorAll('#exits tbody tr').length === 4", what="the filter off")

                html = page.eval("document.documentElement.outerHTML")
                assert SECRET not in html
                assert "admin:***@" in html
                shots = [page.screenshot(tmp_path / "dashboard.png"),
                         page.screenshot(tmp_path / "dashboard-phone.png", width=390, height=844, mobile=True)]
                # The phone layout: no horizontal overflow of the page itself (the table scrolls in its box).
                assert page.eval("document.documentElement.scrollWidth <= window.innerWidth + 1")
                assert page.errors == [], page.errors
            ARTIFACTS.mkdir(exist_ok=True)
            for shot in shots:
                assert shot.stat().st_size > 10_000
                shutil.copy(shot, ARTIFACTS / shot.name)
            doc = dashboard_json(gw.admin_port)
            assert SECRET not in json.dumps(doc)
    finally:
        ms.stop()


def test_dashboard_json_history_reloads_and_top_bans(dash_gw):
    def ban_d1(hit):
        from faults import Answer
        if hit.src == "127.0.0.21":
            return Answer(429, b"slow down\n", {"Retry-After": "100"})
        return Answer(200, f"{hit.src}\n".encode())

    with RecordingOrigin("127.0.0.1", ban_d1, close=True) as origin:
        gw = dash_gw([direct(21, "d1"), direct(22, "d2")])
        for i in range(4):
            assert request(gw.port, "GET", origin.url(f"/{i}")).status == 200
        wait_until(lambda: dashboard_json(gw.admin_port)["rates"]["requests_per_s"] > 0, 5,
                   what="the sampler to see the requests")
        doc = dashboard_json(gw.admin_port)
        assert doc["traffic"]["requests"] == 4
        assert doc["traffic"]["bans"] == 1
        assert [h["exits"] for h in doc["top_ban_hosts"]] == [1], doc["top_ban_hosts"]
        assert doc["top_ban_hosts"][0]["host"].startswith("127.0.0.1"), doc["top_ban_hosts"]
        assert [r["what"] for r in doc["reloads"]] == ["startup"]
        wait_until(lambda: sum(s[2] for s in dashboard_json(gw.admin_port)["history"]["steps"]) == 4, 15,
                   what="the hour's steps to hold the 4 requests")
        # A reload (SIGHUP) shows in the history, newest first.
        gw.pool_path.write_text(direct(21, "d1") + "\n" + direct(22, "d2") + "\n" + direct(24, "d4") + "\n")
        gw.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: len(dashboard_json(gw.admin_port)["reloads"]) == 2, 5, what="the reload in the history")
        doc = dashboard_json(gw.admin_port)
        assert doc["reloads"][0]["what"] == "reload" and doc["reloads"][0]["exits"] == 3
        assert doc["pool"]["exits"] == 3


def test_dashboard_needs_the_admin_credentials(dash_gw):
    gw = dash_gw([direct(21, "d1")], users={"admin": "pw"})
    for path in ("/", "/dashboard.js", "/dashboard.css", "/dashboard.json"):
        status, headers, _ = admin_get(gw.admin_port, path)
        assert status == 401 and "basic" in headers["www-authenticate"].lower(), path
        assert admin_get(gw.admin_port, path, ("admin", "pw"))[0] == 200, path
    assert admin_get(gw.admin_port, "/", ("admin", "nope"))[0] == 401
    assert dashboard_json(gw.admin_port, "country=us", ("admin", "pw"))["pool"]["matching"] == 0


def test_dashboard_shows_the_fleet_without_the_state_password(dash_gw, start_redis):
    redis = start_redis(password="redis-secret-pw")
    gw = dash_gw([direct(21, "d1")], "--state", f"redis://:redis-secret-pw@127.0.0.1:{redis.port}/0")
    wait_until(lambda: dashboard_json(gw.admin_port)["fleet"]["backend_up"], 5, what="the backend up")
    doc = dashboard_json(gw.admin_port)
    assert doc["fleet"] == {"shared": True, "backend": f"redis://127.0.0.1:{redis.port}/0", "backend_up": True,
                            "gateways": 1}, doc["fleet"]
    assert "redis-secret-pw" not in json.dumps(doc)
    # Redis goes away: the page says so (the gateway keeps serving on local limits / N).
    redis.kill()
    wait_until(lambda: not dashboard_json(gw.admin_port)["fleet"]["backend_up"], 5, what="the backend down")
    assert dashboard_json(gw.admin_port)["fleet"]["shared"] is True
