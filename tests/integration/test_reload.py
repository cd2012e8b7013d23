"""Hot reload and graceful shutdown (issue 3): SIGHUP and --watch load a new pool (added exits join,
removed ones drain, unchanged ones keep their state), a broken pool file is refused with FILE:LINE and the
old pool keeps serving, and SIGTERM stops accepting but lets open tunnels finish (up to --drain-timeout).
"""
from __future__ import annotations

import os
import re
import signal
import socket
import time

from faults import (Answer, RecordingOrigin, connect_tunnel, direct, exits_seen, log_size, quiet_flags, request,
                    wait_log, wait_until)
from helpers import Conn

A, B, C = direct(21, "a"), direct(22, "b"), direct(23, "c")
SRC = {"a": "127.0.0.21", "b": "127.0.0.22", "c": "127.0.0.23"}


def write_pool(gw, lines: list[str]) -> None:
    # Write a temp file and rename it over the pool: the gateway never reads half a file.
    tmp = gw.pool_path.with_suffix(".tmp")
    tmp.write_text("# rewritten by test_reload.py\n" + "".join(line + "\n" for line in lines))
    os.replace(tmp, gw.pool_path)


def tunnel_via(gw, origin, exit_id: str, tries: int = 12) -> Conn:
    """A CONNECT tunnel to the origin through `exit_id` (the others opened meanwhile are closed)."""
    for _ in range(tries):
        c, head = connect_tunnel(gw.port, origin.hostport)
        if head.status == 200 and head.header("X-Exitpool-Exit") == exit_id:
            return c
        c.close()
    raise AssertionError(f"no tunnel through {exit_id} in {tries} tries")


def in_tunnel(c: Conn, origin, path: str) -> str:
    """A keep-alive GET inside an open tunnel; the tunnel stays open."""
    r = c.request("GET", path, {"Connection": "keep-alive"}, host=origin.hostport)
    assert r.status == 200, r
    return r.text.strip()


def exits_used(gw, origin, n: int) -> set[str]:
    return exits_seen(gw.port, origin, n, SRC)


def test_sighup_swaps_exits_and_keeps_open_tunnel(start_gateway):
    with RecordingOrigin("127.0.0.1") as origin:
        gw = start_gateway([A, B], *quiet_flags())
        assert exits_used(gw, origin, 4) == {"a", "b"}
        tunnel = tunnel_via(gw, origin, "a")
        with tunnel:
            assert in_tunnel(tunnel, origin, "/t1") == SRC["a"]
            mark = log_size(gw)
            write_pool(gw, [B, C])
            gw.proc.send_signal(signal.SIGHUP)
            wait_log(gw, r"pool reloaded", start=mark)
            # New requests use only the new pool (both of its exits), never the removed one.
            assert exits_used(gw, origin, 8) == {"b", "c"}
            for _ in range(4):
                c, head = connect_tunnel(gw.port, origin.hostport)
                c.close()
                assert head.status == 200 and head.header("X-Exitpool-Exit") in ("b", "c"), head
            # The tunnel opened through the removed exit still carries traffic both ways.
            assert in_tunnel(tunnel, origin, "/t2") == SRC["a"]
            assert in_tunnel(tunnel, origin, "/t3") == SRC["a"]


def test_watch_reloads_on_change(start_gateway):
    with RecordingOrigin("127.0.0.1") as origin:
        gw = start_gateway([A], "--watch", *quiet_flags())
        assert exits_used(gw, origin, 2) == {"a"}
        mark = log_size(gw)
        write_pool(gw, [B, C])
        wait_log(gw, r"pool reloaded", timeout=5, start=mark)
        assert exits_used(gw, origin, 6) == {"b", "c"}


def test_reload_keeps_state_of_unchanged_exits(start_gateway):
    def ban_a(hit):
        if hit.src == SRC["a"]:
            return Answer(429, b"banned\n", {"Retry-After": "100"})
        return Answer(200, f"{hit.src}\n".encode())

    with RecordingOrigin("127.0.0.1", ban_a) as origin:
        gw = start_gateway([A, B], *quiet_flags())
        for i in range(4):
            r = request(gw.port, "GET", origin.url(f"/{i}"))
            assert r.status == 200 and r.header("X-Exitpool-Exit") == "b", (r.status, r.text)
        assert origin.count(SRC["a"]) == 1
        mark = log_size(gw)
        write_pool(gw, [A, B, C])  # a and b unchanged, c added
        gw.proc.send_signal(signal.SIGHUP)
        wait_log(gw, r"pool reloaded", start=mark)
        seen = set()
        for i in range(8):
            r = request(gw.port, "GET", origin.url(f"/after{i}"))
            assert r.status == 200, (r.status, r.text)
            seen.add(r.header("X-Exitpool-Exit"))
        assert seen == {"b", "c"}, seen
        # a kept its ban for this host across the reload: it was never dialed again.
        assert origin.count(SRC["a"]) == 1, origin.by_source()


def test_broken_pool_file_is_refused_and_old_pool_serves(start_gateway):
    with RecordingOrigin("127.0.0.1") as origin:
        gw = start_gateway([A, B], "--watch", *quiet_flags())
        assert exits_used(gw, origin, 4) == {"a", "b"}
        path = re.escape(str(gw.pool_path))
        # Line 3 is broken (line 1 is the comment write_pool adds).
        mark = log_size(gw)
        write_pool(gw, [C, "bogus://127.0.0.1:1 id=broken"])
        wait_log(gw, rf"{path}:3\b", timeout=5, start=mark)  # --watch saw it
        assert re.search(r"(?i)error|refus", gw.log()[mark:]), gw.log()[mark:]
        mark = log_size(gw)
        gw.proc.send_signal(signal.SIGHUP)
        wait_log(gw, rf"{path}:3\b", timeout=5, start=mark)  # and so does SIGHUP
        assert "pool reloaded" not in gw.log()
        assert gw.alive()
        assert exits_used(gw, origin, 6) == {"a", "b"}  # the old pool, not c
        # A good file afterwards is loaded.
        mark = log_size(gw)
        write_pool(gw, [C])
        gw.proc.send_signal(signal.SIGHUP)
        wait_log(gw, r"pool reloaded", start=mark)
        assert exits_used(gw, origin, 3) == {"c"}


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def test_sigterm_drains_open_tunnel_then_exits_0(start_gateway):
    with RecordingOrigin("127.0.0.1") as origin:
        gw = start_gateway([A], "--drain-timeout", "10", *quiet_flags())
        gw.exit_expected = True
        tunnel = tunnel_via(gw, origin, "a")
        with tunnel:
            assert in_tunnel(tunnel, origin, "/before") == SRC["a"]
            gw.proc.send_signal(signal.SIGTERM)
            wait_log(gw, r"no longer accepting")
            wait_until(lambda: refused(gw.port), 3, what="the listener to close")
            # The open tunnel keeps working while the gateway drains.
            time.sleep(0.3)
            assert gw.proc.poll() is None, "exited with a tunnel still open"
            assert in_tunnel(tunnel, origin, "/during1") == SRC["a"]
            assert in_tunnel(tunnel, origin, "/during2") == SRC["a"]
        # Closed by the client: the last session is gone, the process exits 0.
        t0 = time.monotonic()
        wait_until(lambda: gw.proc.poll() is not None, 5, what="the gateway to exit after the drain")
        assert gw.proc.returncode == 0, gw.log()
        assert time.monotonic() - t0 < 3


def test_drain_deadline_closes_open_tunnels(start_gateway):
    with RecordingOrigin("127.0.0.1") as origin:
        gw = start_gateway([A], "--drain-timeout", "1", *quiet_flags())
        gw.exit_expected = True
        tunnel = tunnel_via(gw, origin, "a")
        with tunnel:
            assert in_tunnel(tunnel, origin, "/before") == SRC["a"]
            t0 = time.monotonic()
            gw.proc.send_signal(signal.SIGTERM)
            wait_until(lambda: gw.proc.poll() is not None, 6, what="the drain deadline")
            took = time.monotonic() - t0
            assert 0.8 <= took < 3, took
            assert gw.proc.returncode == 0, gw.log()
            assert tunnel.closed_by_peer(timeout=2), "the tunnel survived the gateway"


def test_second_sigterm_stops_now(start_gateway):
    with RecordingOrigin("127.0.0.1") as origin:
        gw = start_gateway([A], "--drain-timeout", "30", *quiet_flags())
        gw.exit_expected = True
        tunnel = tunnel_via(gw, origin, "a")
        with tunnel:
            gw.proc.send_signal(signal.SIGTERM)
            wait_log(gw, r"no longer accepting")
            time.sleep(0.2)
            assert gw.proc.poll() is None
            t0 = time.monotonic()
            gw.proc.send_signal(signal.SIGTERM)
            wait_until(lambda: gw.proc.poll() is not None, 5, what="exit on the second SIGTERM")
            assert time.monotonic() - t0 < 2
