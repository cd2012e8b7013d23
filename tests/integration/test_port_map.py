"""Sessions without credentials (issue 17 part 2): --port-map sticky ports and --allow-client, checked with
raw clients and with headless Chromium (its SOCKS5 cannot authenticate) through --proxy-server.
"""
from __future__ import annotations

import random
import subprocess

import pytest

from browser import Browser
from faults import RecordingOrigin, direct, quiet_flags, request, wait_until
from helpers import curl, exitpool_bin, free_port, port_accepts, socks5_connect, via_socks

EXIT_SRC = {f"127.0.0.{n}" for n in (21, 22, 23, 24)}


def free_range(n: int) -> int:
    """The first of n consecutive loopback ports that are free now."""
    for _ in range(200):
        base = random.randrange(20000, 60000 - n)
        if not any(port_accepts("127.0.0.1", p, timeout=0.05) for p in range(base, base + n)):
            import socket
            socks = []
            try:
                for p in range(base, base + n):
                    s = socket.socket()
                    s.bind(("127.0.0.1", p))
                    socks.append(s)
                return base
            except OSError:
                continue
            finally:
                for s in socks:
                    s.close()
    raise RuntimeError("no free port range")


def src_via_port(port: int, origin: RecordingOrigin, path: str = "/") -> str:
    hop = via_socks(port, "127.0.0.1", origin.port, path)
    assert hop.status == 200, hop
    return hop.origin_saw


def test_each_mapped_port_is_its_own_sticky_session(start_gateway, tmp_path):
    n = 16
    base = free_range(n)
    with RecordingOrigin("127.0.0.1") as origin:
        gw = start_gateway([direct(k, f"d{k}", country="us") for k in (21, 22, 23, 24)] +
                           [direct(25, "d25", country="nl")],
                           "--port-map", f"{base}-{base + n - 1}:country=us", *quiet_flags())
        ports = range(base, base + n)
        exits = {}
        for p in ports:
            seen = {src_via_port(p, origin, f"/{p}/{i}") for i in range(3)}
            assert len(seen) == 1, f"port {p} moved between exits: {seen}"
            exits[p] = seen.pop()
            assert exits[p] in EXIT_SRC, f"port {p} left through {exits[p]}, not a country=us exit"
        # Plain HTTP on a mapped port: the same session as SOCKS5 on it.
        r = request(base, "GET", origin.url("/http"))
        assert r.status == 200 and r.text.strip() == exits[base]
        # 16 ports over 4 exits by rendezvous hashing: all on one exit has probability 4^-15.
        assert len(set(exits.values())) >= 2, exits
        # The main port still rotates, and takes options from credentials as before.
        seen = {request(gw.port, "GET", origin.url(f"/main{i}")).text.strip() for i in range(10)}
        assert len(seen) >= 2



# Chromium's own background requests (update and Google hosts, NXDOMAIN here) go through the same port:
# their target failures must not move the port's session (gateway/connect.cpp keeps a session on its
# exit when the target, not the exit, failed).
def test_chromium_through_mapped_ports(start_gateway, tmp_path, dns_server):
    n = 16
    base = free_range(n)
    with RecordingOrigin("127.0.0.1") as origin:
        # The names of Chromium's background requests are resolved by the gateway: with the fixture's server
        # (NXDOMAIN at once), never the machine's resolver.
        start_gateway([direct(k, f"d{k}", country="us") for k in (21, 22, 23, 24)],
                      "--port-map", f"{base}-{base + n - 1}:country=us", "--dns-server", dns_server.address,
                      *quiet_flags())
        wait_until(lambda: all(port_accepts("127.0.0.1", p) for p in range(base, base + n)), 5,
                   what="the mapped ports")
        exits = {p: src_via_port(p, origin, f"/{p}") for p in range(base, base + n)}
        # Chromium: its SOCKS5 has no authentication; one port keeps its exit, two ports give two exits.
        a = base
        b = next(p for p in exits if exits[p] != exits[a])
        with Browser(tmp_path, proxy=f"socks5://127.0.0.1:{a}") as br:
            page = br.open(origin.url("/chromium-a"))
            assert page.eval("document.body.innerText.trim()") == exits[a]
            page.navigate(origin.url("/chromium-a2"))
            assert page.eval("document.body.innerText.trim()") == exits[a]
        with Browser(tmp_path, proxy=f"http://127.0.0.1:{b}") as br:
            page = br.open(origin.url("/chromium-b"))
            assert page.eval("document.body.innerText.trim()") == exits[b]


def test_mapped_ports_need_the_same_credentials_as_the_main_port(start_gateway):
    base = free_range(2)
    with RecordingOrigin("127.0.0.1") as origin:
        start_gateway([direct(21, "d1"), direct(22, "d2")], "--port-map", f"{base}-{base + 1}",
                           *quiet_flags(), users={"alice": "secret"})
        wait_until(lambda: port_accepts("127.0.0.1", base) and port_accepts("127.0.0.1", base + 1), 5,
                   what="the mapped ports")
        assert request(base, "GET", origin.url("/")).status == 407
        hop = via_socks(base, "127.0.0.1", origin.port, "/", user="alice-country-nl-session-x", password="secret")
        assert hop.status == 200
        again = via_socks(base, "127.0.0.1", origin.port, "/", user="alice", password="secret")
        assert again.origin_saw == hop.origin_saw, "the port's session, whatever the username says"


def test_allow_client_lets_listed_addresses_in_without_credentials(start_gateway):
    with RecordingOrigin("127.0.0.1") as origin:
        gw = start_gateway([direct(21, "d1")], "--allow-client", "127.0.0.1/32", *quiet_flags(),
                           users={"alice": "secret"})
        proxy = f"http://127.0.0.1:{gw.port}"
        assert curl("-x", proxy, origin.url("/a")).text == "127.0.0.21\n"
        # From 127.0.0.2 (off the list): credentials as usual.
        assert curl("--interface", "127.0.0.2", "-x", proxy, origin.url("/b")).status == 407
        assert curl("--interface", "127.0.0.2", "-x", proxy, "-U", "alice:secret", origin.url("/c")).status == 200
        # SOCKS5 without authentication from a listed address.
        c, rep = socks5_connect(gw.port, "127.0.0.1", origin.port)
        c.close()
        assert rep == 0

    with RecordingOrigin("127.0.0.1") as origin:
        gw = start_gateway([direct(21, "d1")], "--allow-client", "127.0.0.1", *quiet_flags())
        proxy = f"http://127.0.0.1:{gw.port}"
        assert curl("-x", proxy, origin.url("/a")).status == 200
        # No users: off the list there is no way in, SOCKS5 included.
        assert curl("--interface", "127.0.0.2", "-x", proxy, origin.url("/b")).status == 407
        assert curl("--interface", "127.0.0.2", "--socks5", f"127.0.0.1:{gw.port}", origin.url("/c")).rc != 0
        assert origin.count() == 1


def serve(*args: str) -> str:
    cp = subprocess.run([str(exitpool_bin()), "serve", *args], capture_output=True, timeout=10,
                        stdin=subprocess.DEVNULL)
    assert cp.returncode != 0
    return (cp.stdout + cp.stderr).decode(errors="replace")


def test_open_proxy_guard_and_bad_maps(tmp_path):
    pool = tmp_path / "pool.txt"
    pool.write_text(direct(21, "d1") + "\n")
    # 192.0.2.1 (TEST-NET-1) is not on this machine: the guard must refuse before any bind.
    out = serve("--pool", str(pool), "--listen", f"192.0.2.1:{free_port()}", "--port-map", "30001-30002")
    assert "--allow-client" in out and "cannot assign" not in out.lower(), out
    # With an allowlist the guard lets it through (and the bind then fails: proof it got that far).
    out = serve("--pool", str(pool), "--listen", f"192.0.2.1:{free_port()}", "--allow-client", "192.0.2.0/24")
    assert "refusing" not in out, out
    out = serve("--pool", str(pool), "--listen", f"192.0.2.1:{free_port()}", "--allow-client", "0.0.0.0/0")
    assert "--allow-open" in out, out
    port = free_port()
    out = serve("--pool", str(pool), "--listen", f"127.0.0.1:{port}", "--port-map", f"{port}-{port + 1}")
    assert "already the gateway's" in out, out
    out = serve("--pool", str(pool), "--listen", f"127.0.0.1:{port}", "--port-map", "30001:session=x")
    assert "each port is its own session" in out, out
    out = serve("--pool", str(pool), "--listen", f"127.0.0.1:{port}", "--allow-client", "nope")
    assert "--allow-client 'nope'" in out, out
