"""`exitpool serve` as a user meets it: flags, config file, startup errors, shutdown."""
import signal
import subprocess
import time

import pytest

from helpers import Conn, curl, exitpool_bin, free_port, port_accepts, run


def serve(*args: str, timeout: float = 10.0) -> subprocess.CompletedProcess:
    """Runs `exitpool serve` expecting it to exit by itself (a startup error)."""
    try:
        return run([str(exitpool_bin()), "serve", *args], timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"exitpool serve {' '.join(args)} kept running; expected a startup error")


@pytest.mark.parametrize("bad_line", [
    "ftp://127.0.0.1:21 id=ftp",             # unknown scheme
    "http://127.0.0.1 id=noport",             # no port
    "http://127.0.0.1:99999 id=badport",      # port out of range
    "socks5://127.0.0.1:1080 country",        # key without value
    "direct://not-an-ip id=d",                # direct:// wants a local address
    "https://127.0.0.1:443 tls_verify=maybe",  # bad boolean
])
def test_bad_pool_line_names_file_and_line(tmp_path, bad_line):
    pool = tmp_path / "pool.txt"
    pool.write_text("# a comment\n"
                    "direct://127.0.0.21 id=d1\n"
                    "\n"
                    f"{bad_line}\n"
                    "direct://127.0.0.22 id=d2\n")
    cp = serve("--pool", str(pool), "--listen", f"127.0.0.1:{free_port()}", "--threads", "1")
    err = cp.stderr.decode(errors="replace") + cp.stdout.decode(errors="replace")
    assert cp.returncode != 0
    assert "pool.txt:4:" in err, err


def test_missing_pool_file_is_an_error(tmp_path):
    cp = serve("--pool", str(tmp_path / "nope.txt"), "--listen", f"127.0.0.1:{free_port()}")
    assert cp.returncode != 0
    assert "nope.txt" in (cp.stderr + cp.stdout).decode(errors="replace")


def test_unknown_policy_is_an_error(tmp_path):
    pool = tmp_path / "pool.txt"
    pool.write_text("direct://127.0.0.21 id=d1\n")
    cp = serve("--pool", str(pool), "--listen", f"127.0.0.1:{free_port()}", "--policy", "sideways")
    assert cp.returncode != 0


def test_open_listener_without_users_refuses_to_start(tmp_path):
    pool = tmp_path / "pool.txt"
    pool.write_text("direct://127.0.0.21 id=d1\n")
    cp = serve("--pool", str(pool), "--listen", f"0.0.0.0:{free_port()}", "--threads", "1")
    assert cp.returncode != 0
    assert "--allow-open" in (cp.stderr + cp.stdout).decode(errors="replace")


def test_open_listener_with_allow_open_starts(start_gateway, lab):
    port = free_port()
    gw = start_gateway([lab.line("d1")], "--allow-open", listen=f"0.0.0.0:{port}")
    assert curl("-x", f"http://127.0.0.1:{port}", lab.origin.url()).text == "127.0.0.21\n"


def test_open_listener_with_users_starts(start_gateway, lab):
    port = free_port()
    gw = start_gateway([lab.line("d1")], users={"alice": "secret"}, listen=f"0.0.0.0:{port}")
    assert curl("-x", f"http://127.0.0.1:{port}", "-U", "alice:secret", lab.origin.url()).text == "127.0.0.21\n"


def test_startup_line_says_where_it_listens(start_gateway, lab):
    gw = start_gateway([lab.line("d1")])
    deadline = time.monotonic() + 5
    while f"127.0.0.1:{gw.port}" not in gw.log().split("\n", 1)[-1] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"127.0.0.1:{gw.port}" in gw.log().split("\n", 1)[-1]  # line 1 is the command the fixture wrote


def test_all_flags_are_accepted(start_gateway, lab):
    gw = start_gateway(lab.pool("d1", "d2"), "--policy", "least-inflight", "--retries", "3",
                       "--dial-timeout", "5", "--handshake-timeout", "5", "--idle-timeout", "30",
                       "--ca-file", str(lab.ca_file), "--log-level", "debug")
    res = curl("-x", f"http://127.0.0.1:{gw.port}", lab.origin.url())
    assert res.status == 200 and res.text in ("127.0.0.21\n", "127.0.0.22\n")


def test_config_file(tmp_path, lab):
    """Everything settable on the command line can be set in TOML, under the long option's name."""
    pool = tmp_path / "pool.txt"
    pool.write_text(lab.line("d2") + "\n")
    users = tmp_path / "users.txt"
    users.write_text("# comment\n\nbob:hunter2\n")
    port = free_port()
    cfg = tmp_path / "exitpool.toml"
    cfg.write_text(f'pool = "{pool}"\nlisten = "127.0.0.1:{port}"\nthreads = 2\n'
                   f'policy = "random"\nusers = "{users}"\nretries = 1\n')
    proc = subprocess.Popen([str(exitpool_bin()), "serve", "--config", str(cfg)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not port_accepts("127.0.0.1", port) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
            time.sleep(0.05)
        assert curl("-x", f"http://127.0.0.1:{port}", "-U", "bob:hunter2", lab.origin.url()).text == "127.0.0.22\n"
        assert curl("-x", f"http://127.0.0.1:{port}", lab.origin.url()).status == 407
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=5)


def test_embedded_default_pool(tmp_path, origin):
    """Without --pool the embedded default pool (direct://, the default route) serves."""
    port = free_port()
    proc = subprocess.Popen([str(exitpool_bin()), "serve", "--listen", f"127.0.0.1:{port}", "--threads", "1"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not port_accepts("127.0.0.1", port) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
            time.sleep(0.05)
        res = curl("-x", f"http://127.0.0.1:{port}", "-D", "-", origin.url())
        assert res.status == 200
        assert res.text.endswith("\r\n\r\n127.0.0.1\n")
        assert "x-exitpool-exit:" in res.text.lower()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=5)


def test_sigterm_stops_cleanly(start_gateway, lab):
    gw = start_gateway([lab.line("d1")])
    assert curl("-x", f"http://127.0.0.1:{gw.port}", lab.origin.url()).status == 200
    gw.exit_expected = True
    gw.proc.send_signal(signal.SIGTERM)
    try:
        rc = gw.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("exitpool did not exit within 10 s of SIGTERM with no open connections")
    assert rc == 0, gw.log()
    assert not port_accepts("127.0.0.1", gw.port)


def test_handshake_timeout_closes_silent_clients(start_gateway, lab):
    gw = start_gateway([lab.line("d1")], "--handshake-timeout", "1")
    with Conn("127.0.0.1", gw.port) as silent, Conn("127.0.0.1", gw.port) as half:
        half.send(b"GET http://127.0.0.1/ HTTP/1.1\r\n")  # a head that never ends
        t0 = time.monotonic()
        assert silent.closed_by_peer(timeout=6)
        assert half.closed_by_peer(timeout=6)
        assert time.monotonic() - t0 < 6
    assert curl("-x", f"http://127.0.0.1:{gw.port}", lab.origin.url()).status == 200


def test_idle_timeout_closes_idle_tunnels(start_gateway, lab):
    gw = start_gateway([lab.line("d1")], "--idle-timeout", "1")
    with Conn("127.0.0.1", gw.port) as c:
        c.send(f"CONNECT {lab.origin.hostport} HTTP/1.1\r\nHost: {lab.origin.hostport}\r\n\r\n".encode())
        assert c.read_response("CONNECT").status == 200
        assert c.request("GET", "/", host=lab.origin.hostport).text == "127.0.0.21\n"
        assert c.closed_by_peer(timeout=8)
