"""The client examples in examples/ (issue 17 part 3), each run as a user would run it, against a local
gateway and the nginx origin, so that they never rot.

Every example takes the gateway and credentials from EXITPOOL_GATEWAY / EXITPOOL_USER / EXITPOOL_PASSWORD
(EXITPOOL_HOST and ports for chromium.sh) and the target URL from its first argument, and prints one line
per request: `LABEL exit=<X-Exitpool-Exit or -> ip=<body>`. The origin answers with the address that
connected to it, i.e. the exit the request really left through; the checks:
  - every answer came through an exit of the pool (never from 127.0.0.1 directly), and where the client
    sees X-Exitpool-Exit it names the exit the origin saw;
  - `rotate-N` requests (no session) left through at least two exits;
  - `session-N` requests (one session id) through exactly one, and SOCKS5 with that id through it too;
  - `country-nl` through the only nl exit; two mapped ports → two exits, one port → one exit
    (chromium.sh's HTTP-proxy mode, CHROMIUM_PROXY_SCHEME=http, is not run here: test_port_map.py drives
    Chromium through a mapped port's HTTP proxy).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from faults import direct, quiet_flags, wait_until
from helpers import REPO, free_port, port_accepts

EXAMPLES = REPO / "examples"
USERS = {"alice": "s3cret"}
# threads=1: one round-robin counter, so requests without a session really alternate between exits.
POOL = [direct(21, "us-21", country="us"), direct(22, "us-22", country="us"), direct(23, "nl-23", country="nl")]
EXIT_IP = {"us-21": "127.0.0.21", "us-22": "127.0.0.22", "nl-23": "127.0.0.23"}
LINE = re.compile(r"^(?P<label>\S+) exit=(?P<exit>\S+) ip=(?P<ip>\S*)$")


def need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if not path:
        pytest.fail(f"{tool} is not installed (Debian package {package}): run scripts/install-deps.sh --test",
                    pytrace=False)
    return path


def example_env(tmp_path: Path, gw=None, **extra: str) -> dict:
    """A clean environment: no *_proxy variables of this machine, HOME and caches in the test's temp dir."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), PYTHONDONTWRITEBYTECODE="1", EXITPOOL_SESSION="examples1")
    if gw is not None:
        env.update(EXITPOOL_GATEWAY=gw.hostport, EXITPOOL_USER="alice", EXITPOOL_PASSWORD=USERS["alice"])
    env.update(extra)
    return env


def run_example(argv: list[str], env: dict, cwd: Path | None = None, timeout: float = 120) -> dict[str, tuple]:
    """Runs one example; it must exit 0. Returns {label: (exit, ip)} from its output lines."""
    cp = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    out, err = cp.stdout.decode(errors="replace"), cp.stderr.decode(errors="replace")
    assert cp.returncode == 0, f"{' '.join(map(str, argv))} exited {cp.returncode}\n{out}\n--- stderr ---\n{err[-3000:]}"
    return parse_lines(out.splitlines(), f"{out}\n--- stderr ---\n{err[-3000:]}")


def parse_lines(lines: list[str], context: str) -> dict[str, tuple]:
    got = {}
    for line in lines:
        m = LINE.match(line.strip())
        if m:
            got[m["label"]] = (m["exit"], m["ip"])
    assert got, f"no result lines in the example's output:\n{context}"
    for label, (exit_id, ip) in got.items():
        assert ip in EXIT_IP.values(), f"{label}: the origin saw {ip!r}, not an exit of the pool\n{context}"
        if exit_id != "-":
            assert EXIT_IP.get(exit_id) == ip, f"{label}: X-Exitpool-Exit {exit_id} but the origin saw {ip}"
    return got


def ips(got: dict[str, tuple], prefix: str) -> set[str]:
    found = {ip for label, (_, ip) in got.items() if label.startswith(prefix)}
    assert found, f"no {prefix}* lines in {got}"
    return found


def check_rotation_and_session(got: dict[str, tuple], socks_prefix: str | None = None) -> None:
    assert len(ips(got, "rotate-")) >= 2, f"requests without a session all left through one exit: {got}"
    sticky = ips(got, "session-")
    assert len(sticky) == 1, f"one session id, several exits: {got}"
    if socks_prefix:
        assert ips(got, socks_prefix) == sticky, f"SOCKS5 with the same session id moved: {got}"


@pytest.fixture
def gw(start_gateway):
    return start_gateway(POOL, *quiet_flags(), users=USERS, threads=1)


def test_curl(gw, origin, tmp_path):
    got = run_example([str(EXAMPLES / "curl.sh"), origin.url("/curl")],
                      example_env(tmp_path, gw, EXITPOOL_COUNTRY="nl"))
    check_rotation_and_session(got, "socks5h")
    assert ips(got, "connect") == ips(got, "session-"), got
    assert got["country-nl"] == ("nl-23", "127.0.0.23")
    assert all(got[f"rotate-{i}"][0] != "-" for i in (1, 2, 3)), f"curl did not show X-Exitpool-Exit: {got}"
    # A wrong password: the example fails (407), it does not print a result.
    cp = subprocess.run([str(EXAMPLES / "curl.sh"), origin.url("/curl")], capture_output=True, timeout=60,
                        env=example_env(tmp_path, gw, EXITPOOL_PASSWORD="wrong"), stdin=subprocess.DEVNULL)
    assert cp.returncode != 0 and b"ip=" not in cp.stdout and b"407" in cp.stderr, cp


def test_python_requests(gw, origin, tmp_path):
    got = run_example(["/usr/bin/python3", str(EXAMPLES / "python_requests.py"), origin.url("/requests")],
                      example_env(tmp_path, gw, EXITPOOL_COUNTRY="nl"))
    check_rotation_and_session(got, "socks5h-")
    assert got["country-nl"] == ("nl-23", "127.0.0.23")
    assert all(got[f"session-{i}"][0] != "-" for i in (1, 2, 3)), got


def test_python_aiohttp(gw, origin, tmp_path):
    pytest.importorskip("aiohttp", reason="python3-aiohttp missing: scripts/install-deps.sh --test")
    got = run_example(["/usr/bin/python3", str(EXAMPLES / "python_aiohttp.py"), origin.url("/aiohttp")],
                      example_env(tmp_path, gw, IN_FLIGHT="8"))
    assert len([k for k in got if k.startswith("rotate-")]) == 8, got
    assert len([k for k in got if k.startswith("session-")]) == 8, got
    check_rotation_and_session(got)


def test_scrapy_project(gw, origin, tmp_path):
    pytest.importorskip("scrapy", reason="python3-scrapy missing: scripts/install-deps.sh --test")
    feed = tmp_path / "ips.jsonl"
    project = EXAMPLES / "scrapy"
    cp = subprocess.run(["/usr/bin/python3", "-m", "scrapy", "crawl", "ip", "-a", f"url={origin.url('/scrapy')}",
                         "-a", "session=scrapys1", "-a", "country=nl", "-O", str(feed), "-s", "LOG_LEVEL=INFO",
                         # The project's own settings otherwise; AutoThrottle would space these 8 requests
                         # (robots.txt included) out over 6 s.
                         "-s", "AUTOTHROTTLE_ENABLED=False"],
                        env=example_env(tmp_path, gw), cwd=project, stdin=subprocess.DEVNULL, capture_output=True,
                        timeout=120)
    log = (cp.stdout + cp.stderr).decode(errors="replace")
    assert cp.returncode == 0, log[-4000:]
    items = [json.loads(line) for line in feed.read_text().splitlines() if line.strip()]
    got = parse_lines([f"{i['label']} exit={i['exit']} ip={i['ip']}" for i in items], log[-4000:])
    assert len(got) == 7, got
    check_rotation_and_session(got)
    assert got["country-nl"] == ("nl-23", "127.0.0.23")
    # The project writes nothing into the source tree (no .scrapy/ cache dir, no byte code).
    assert not (project / ".scrapy").exists()


def test_go_net_http(gw, origin, tmp_path):
    go = need("go", "golang-go")
    # GOPROXY=off: nothing may be downloaded (standard library only). CGO_ENABLED stays at its default:
    # Debian ships the standard library prebuilt for it (1 s of CPU to build; CGO_ENABLED=0 rebuilds
    # net and friends, 10 s).
    env = example_env(tmp_path, gw, GOCACHE=str(tmp_path / "gocache"), GOPATH=str(tmp_path / "gopath"),
                      GOPROXY="off", GOFLAGS="", GOTOOLCHAIN="local")
    binary = tmp_path / "example-go"
    cp = subprocess.run([go, "build", "-o", str(binary), "."], cwd=EXAMPLES / "go", env=env,
                        stdin=subprocess.DEVNULL, capture_output=True, timeout=180)
    assert cp.returncode == 0, cp.stderr.decode(errors="replace")
    got = run_example([str(binary), origin.url("/go")], env)
    check_rotation_and_session(got, "socks5")
    assert all(got[f"rotate-{i}"][0] != "-" for i in (1, 2, 3)), got


def test_node_undici(gw, origin, tmp_path):
    node = need("node", "nodejs")
    # Debian's node looks in /usr/share/nodejs by itself; another node (nodesource) needs NODE_PATH.
    env = example_env(tmp_path, gw, NODE_PATH="/usr/share/nodejs")
    if not Path("/usr/share/nodejs/undici/package.json").exists():
        pytest.fail("undici is not installed (Debian package node-undici): run scripts/install-deps.sh --test",
                    pytrace=False)
    got = run_example([node, str(EXAMPLES / "node" / "undici.js"), origin.url("/undici")], env)
    check_rotation_and_session(got)


def test_chromium_mapped_ports(start_gateway, origin, dns_server, tmp_path):
    need("chromium", "chromium")
    a, b = free_port(), free_port()
    # Port a: a session over the us exits; port b: the nl exit. --dns-server: the names of Chromium's own
    # background requests (if any get through) are resolved by the test's DNS server, never the machine's.
    start_gateway(POOL, "--port-map", f"{a}:country=us", "--port-map", f"{b}:country=nl",
                  "--dns-server", dns_server.address, *quiet_flags(), threads=1)
    wait_until(lambda: port_accepts("127.0.0.1", a) and port_accepts("127.0.0.1", b), 5, what="the mapped ports")
    # As browser.py: any name Chromium would resolve itself fails inside Chromium.
    rules = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"
    env = example_env(tmp_path, EXITPOOL_HOST="127.0.0.1")
    got = run_example([str(EXAMPLES / "chromium.sh"), origin.url("/chromium"), str(a), str(a), str(b), "--", rules],
                      env)
    assert set(got) == {f"1-port-{a}", f"2-port-{a}", f"3-port-{b}"}, got
    # One port keeps its exit across two browsers; the other port (country=nl) is another exit.
    assert got[f"1-port-{a}"][1] == got[f"2-port-{a}"][1] in ("127.0.0.21", "127.0.0.22"), got
    assert got[f"3-port-{b}"][1] == "127.0.0.23", got


def test_examples_are_lint_clean():
    shellcheck = need("shellcheck", "shellcheck")
    scripts = sorted(EXAMPLES.glob("*.sh"))
    cp = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, timeout=60)
    assert cp.returncode == 0, cp.stdout.decode(errors="replace")
    gofmt = shutil.which("gofmt") or "/usr/lib/go/bin/gofmt"
    if os.path.exists(gofmt):
        cp = subprocess.run([gofmt, "-l", str(EXAMPLES / "go")], capture_output=True, timeout=60)
        assert cp.returncode == 0 and not cp.stdout.strip(), f"not gofmt-formatted: {cp.stdout.decode()}"
