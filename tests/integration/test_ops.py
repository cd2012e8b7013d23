"""Operating exitpool: --version, --log-format json, logs without credentials, sd_notify, man pages, completion."""
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from helpers import Conn, curl, exitpool_bin, free_port, run

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def log_lines(gw) -> list[str]:
    return [line for line in gw.log().split("\n")[1:] if line]  # line 1 is the command the fixture wrote


def wait_for(pred, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


# ------------------------------------------------------------------------------------------ version

def test_version_names_revision_and_build():
    cp = run([str(exitpool_bin()), "--version"])
    assert cp.returncode == 0, cp.stderr
    lines = cp.stdout.decode().splitlines()
    assert re.fullmatch(r"exitpool \d+\.\d+\.\d+", lines[0]), lines
    keys = [line.split(":", 1)[0] for line in lines[1:]]
    assert keys == ["revision", "build type", "compiler", "flags"], lines
    assert re.match(r"revision: ([0-9a-f]{12}(-dirty)?|unknown)", lines[1]), lines


# --------------------------------------------------------------------------------------- JSON logs

def test_json_log_every_line_parses(start_gateway, lab, tmp_path):
    """Every line the gateway writes is one JSON object with the stable fields, even when a peer puts
    quotes, backslashes and control bytes into what gets logged."""
    gw = start_gateway([lab.line("d1"), "http://127.0.0.1:1 id=dead\"quote"], "--log-format", "json",
                       "--log-level", "debug", "--retries", "0")
    assert curl("-x", gw.proxy(), lab.origin.url()).status in (200, 502)
    assert curl("-x", gw.proxy(), lab.origin.url()).status in (200, 502)
    with Conn("127.0.0.1", gw.port) as c:  # a SOCKS5 greeting with no methods: logged as a bad greeting
        c.send(b"\x05\x00")
        c.closed_by_peer(2)
    with Conn("127.0.0.1", gw.port) as c:  # a CONNECT to a name with a quote, a backslash and control bytes
        c.send(b'CONNECT bad"h\\o\x01st\x7f.invalid:443 HTTP/1.1\r\nHost: x\r\n\r\n')
        c.closed_by_peer(3)
    gw.pool_path.write_text("http://127.0.0.1 id=\"no port\"\n")  # refused reload: an error line naming the file
    os.kill(gw.proc.pid, signal.SIGHUP)
    assert wait_for(lambda: "pool reload refused" in gw.log())
    gw.svc.stop(grace=5)
    gw.exit_expected = True
    lines = log_lines(gw)
    assert len(lines) >= 4, gw.log()
    levels = set()
    for line in lines:
        rec = json.loads(line)  # raises on any line that is not JSON
        assert list(rec) == ["ts", "level", "logger", "pid", "tid", "msg"], line
        assert TS.match(rec["ts"]), line
        assert rec["logger"] == "exitpool" and rec["pid"] == gw.proc.pid, line
        levels.add(rec["level"])
    msgs = [json.loads(line)["msg"] for line in lines]
    assert any(m.startswith("listening on 127.0.0.1:") for m in msgs), msgs  # the startup line is JSON too
    assert any("pool reload refused" in m for m in msgs), msgs
    assert {"info", "error"} <= levels, levels


def test_json_log_startup_error_is_json(tmp_path):
    cp = run([str(exitpool_bin()), "serve", "--log-format", "json", "--pool", str(tmp_path / "nope.txt"),
              "--listen", f"127.0.0.1:{free_port()}"], timeout=10)
    assert cp.returncode == 2
    lines = [line for line in cp.stderr.decode().splitlines() if line]
    assert lines, cp
    for line in lines:
        rec = json.loads(line)
        assert rec["level"] == "error" and "nope.txt" in rec["msg"], line


def test_unknown_log_format_is_refused():
    cp = run([str(exitpool_bin()), "serve", "--log-format", "xml"], timeout=10)
    assert cp.returncode != 0
    assert "--log-format" in (cp.stderr + cp.stdout).decode()


# ------------------------------------------------------------------------------------- check-config

def test_check_config_accepts_a_good_config_without_listening(tmp_path):
    port = free_port()
    (tmp_path / "pool.txt").write_text("direct://127.0.0.21 id=d1\ndirect://127.0.0.22 id=d2\n")
    (tmp_path / "users.txt").write_text("alice:secret\n")
    (tmp_path / "exitpool.toml").write_text(f'[serve]\nlisten = "127.0.0.1:{port}"\npool = "{tmp_path}/pool.txt"\n'
                                           f'users = "{tmp_path}/users.txt"\nban-pattern = ["(?i)captcha"]\n')
    cp = run([str(exitpool_bin()), "serve", "--config", str(tmp_path / "exitpool.toml"), "--check-config"],
             timeout=10)
    assert cp.returncode == 0, cp
    assert cp.stdout.decode() == f"exitpool serve: configuration ok: would listen on 127.0.0.1:{port}; 2 exits " \
                                 f"from {tmp_path}/pool.txt\n"
    with socket.socket() as s:  # it never bound the port
        s.bind(("127.0.0.1", port))


@pytest.mark.parametrize("args,expect", [
    (["--pool", "{d}/bad.txt"], "bad.txt:2:"),
    (["--users", "{d}/empty.txt"], "no users"),
    (["--ban-pattern", "(a)\\1"], "--ban-pattern"),
    (["--listen", "0.0.0.0:8080"], "--allow-open"),
    (["--deny", "10.0.0.0/99"], "10.0.0.0/99"),
])
def test_check_config_refuses_what_startup_refuses(tmp_path, args, expect):
    (tmp_path / "bad.txt").write_text("direct://127.0.0.21 id=d1\nftp://127.0.0.1:21 id=ftp\n")
    (tmp_path / "empty.txt").write_text("# nobody\n")
    argv = [a.replace("{d}", str(tmp_path)) for a in args]
    cp = run([str(exitpool_bin()), "serve", "--check-config", *argv], timeout=10)
    assert cp.returncode == 2, cp
    assert expect in cp.stderr.decode(), cp.stderr.decode()


# ---------------------------------------------------------------------------------- time with units

def test_time_options_take_units_in_flags_and_toml(tmp_path):
    (tmp_path / "exitpool.toml").write_text('queue-timeout = "30s"\ndrain-timeout = "1m"\ndial-timeout = 5\n'
                                           '[serve]\nban-time = "1h"\ndns-negative-ttl = "2m"\n')
    cp = run([str(exitpool_bin()), "serve", "--config", str(tmp_path / "exitpool.toml"), "--check-config",
              "--handshake-timeout", "250ms", "--check-interval", "5m", "--dns-max-ttl", "1h", "--cooldown", "1.5"],
             timeout=10)
    assert cp.returncode == 0, cp
    for sub, args in [("fetch", ["--delay", "250ms", "--timeout", "1m", "--fsync-interval", "2s"]),
                      ("check", ["--timeout", "1500ms", "--dns-timeout", "2s"]),
                      ("crawl", ["--delay", "250ms", "--robots-retry", "1m", "--seeds", "http://a.test/"])]:
        cp = run([str(exitpool_bin()), sub, *args, "--help"], timeout=10)  # values are checked before --help
        assert cp.returncode == 0, (sub, cp)


@pytest.mark.parametrize("value", ["5min", "1e3", "10d", "30 s"])
def test_time_option_refuses_other_units(value):
    cp = run([str(exitpool_bin()), "serve", "--check-config", "--queue-timeout", value], timeout=10)
    assert cp.returncode != 0, cp
    assert "250ms, 30s, 5m, 1h" in (cp.stdout + cp.stderr).decode()


@pytest.mark.parametrize("cmd", ["serve", "fetch", "check", "crawl"])
def test_every_seconds_option_takes_units(cmd):
    """An option whose help speaks of seconds must accept 30s/5m/1h: its --help type is DURATION."""
    out = run([str(exitpool_bin()), cmd, "--help"]).stdout.decode()
    options: list[str] = []  # one entry per option: "--dial-timeout DURATION=10  Seconds for ..."
    for line in out.splitlines():
        if re.match(r"^\s+--[a-z]", line):
            options.append(line.strip())
        elif options and line.startswith("     "):  # a description CLI11 put on the next line
            options[-1] += " " + line.strip()
    timed = [o for o in options if "seconds" in o.lower()]
    assert len(timed) >= 2, out
    wrong = [o.split()[0] for o in timed if re.split(r"[=:]", o.split()[1])[0] != "DURATION"]
    assert not wrong, f"options about seconds without units: {wrong}"


# ------------------------------------------------------------------------------ no credentials logged

@pytest.mark.parametrize("log_format", ["text", "json"])
def test_logs_never_print_credentials(start_gateway, lab, log_format):
    """Users file passwords, pool-line credentials and Proxy-Authorization values stay out of the log,
    at trace level, through successes, bad logins, failed dials and a refused reload."""
    secrets = {
        "user password": "Us3r-pw-51c7",
        "wrong password": "Wr0ng-pw-9a2e",
        "dead exit password": "D3ad-exit-pw-77",
        "reload password": "R3load-pw-4b1",
        "microsocks password": "mspass",
        "tinyproxy password": "tppass",
    }
    pool = [lab.line("d1"), lab.line("ms-auth"), lab.line("tp-auth"),
            f"http://deaduser:{secrets['dead exit password']}@127.0.0.1:1 id=dead"]
    gw = start_gateway(pool, "--log-level", "trace", "--log-format", log_format, "--retries", "3",
                       users={"alice": secrets["user password"]})
    for _ in range(8):  # round-robin: every exit, the dead one included, serves or fails a request
        curl("-x", gw.proxy(user="alice", password=secrets["user password"]), lab.origin.url())
        curl("-p", "-x", gw.proxy(user="alice", password=secrets["user password"]), lab.origin.url())
        curl("--socks5-hostname", gw.hostport, "-U", f"alice:{secrets['user password']}", lab.origin.url())
    curl("-x", gw.proxy(user="alice", password=secrets["wrong password"]), lab.origin.url())
    curl("--socks5-hostname", gw.hostport, "-U", f"alice:{secrets['wrong password']}", lab.origin.url())
    curl("-x", gw.proxy(user=f"alice-colour-{secrets['wrong password']}", password=secrets["wrong password"]),
         lab.origin.url())
    gw.pool_path.write_text(f"http://u:{secrets['reload password']}@127.0.0.1 id=noport\n")
    os.kill(gw.proc.pid, signal.SIGHUP)
    assert wait_for(lambda: "pool reload refused" in gw.log())
    log = gw.log().split("\n", 1)[1]
    assert "dead" in log  # the failed dial was logged, so its line was looked at
    for what, secret in secrets.items():
        assert secret not in log, f"{what} in the log"
    for user, pw in [("alice", secrets["user password"]), ("alice", secrets["wrong password"]),
                     ("msuser", "mspass"), ("tpuser", "tppass")]:
        token = base64.b64encode(f"{user}:{pw}".encode()).decode()
        assert token not in log, f"Basic credentials of {user} in the log"


# ---------------------------------------------------------------------------------------- sd_notify

class NotifySocket:
    """What systemd does for Type=notify: a unix datagram socket named by $NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[str] = []

    def wait(self, pred, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            self.messages.append(msg)
            if pred(msg):
                return msg
        pytest.fail(f"no matching notification; got {self.messages}")


def test_sd_notify_ready_reload_watchdog_stopping(start_gateway, lab, tmp_path, monkeypatch):
    notify = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", notify.path)
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # pings every 0.2 s
    gw = start_gateway([lab.line("d1")])
    notify.wait(lambda m: m == "READY=1")
    assert curl("-x", gw.proxy(), lab.origin.url()).text == "127.0.0.21\n"  # ready means serving
    t0 = time.monotonic()
    notify.wait(lambda m: m == "WATCHDOG=1")
    notify.wait(lambda m: m == "WATCHDOG=1")
    assert time.monotonic() - t0 < 2.0
    os.kill(gw.proc.pid, signal.SIGHUP)
    reloading = notify.wait(lambda m: m.startswith("RELOADING=1"))
    assert re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=\d+", reloading), reloading
    notify.wait(lambda m: m == "READY=1")
    gw.proc.send_signal(signal.SIGTERM)
    notify.wait(lambda m: m == "STOPPING=1")
    assert gw.proc.wait(10) == 0
    gw.exit_expected = True


def test_watchdog_pid_for_another_process_is_ignored(start_gateway, lab, tmp_path, monkeypatch):
    notify = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", notify.path)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.setenv("WATCHDOG_PID", "1")
    start_gateway([lab.line("d1")])
    notify.wait(lambda m: m == "READY=1")
    notify.sock.settimeout(1.0)
    with pytest.raises(socket.timeout):
        notify.sock.recv(4096)


# -------------------------------------------------------------------------------- man and completion

COMMANDS = ["exitpool", "serve", "fetch", "check", "crawl", "bench"]


def help_flags(cmd: str) -> set[str]:
    argv = [str(exitpool_bin())] + ([] if cmd == "exitpool" else [cmd]) + ["--help"]
    cp = run(argv)
    assert cp.returncode == 0, cp.stderr
    # The options column: "  -h,--help   Print ...", "  --pool TEXT   Pool file ..."
    return set(re.findall(r"^\s+(?:-\w,)?(--[a-z0-9][a-z0-9-]*)", cp.stdout.decode(), re.M))


@pytest.mark.parametrize("cmd", COMMANDS)
def test_man_page_has_every_flag_of_help(cmd, tmp_path):
    cp = run([str(exitpool_bin()), "help-man", cmd])
    assert cp.returncode == 0, cp.stderr
    roff = cp.stdout.decode()
    plain = roff.replace("\\-", "-")
    flags = help_flags(cmd)
    assert flags, "no flags found in --help"
    missing = sorted(f for f in flags if f"\\fB{f}\\fR" not in plain)
    assert not missing, f"in --help, not in the man page: {missing}"


@pytest.mark.parametrize("cmd", COMMANDS)
def test_man_page_renders_without_warnings(cmd, tmp_path):
    page = tmp_path / f"{cmd}.1"
    page.write_bytes(run([str(exitpool_bin()), "help-man", cmd]).stdout)
    cp = run(["man", "--warnings", "-E", "UTF-8", "-l", str(page)], env={**os.environ, "MANWIDTH": "80"})
    assert cp.returncode == 0, cp.stderr
    assert cp.stderr.decode() == "", cp.stderr.decode()
    assert "OPTIONS" in re.sub(r".\x08", "", cp.stdout.decode())  # without the overstrike bold


def test_help_man_unknown_command_fails():
    cp = run([str(exitpool_bin()), "help-man", "nope"])
    assert cp.returncode == 2


def test_hidden_commands_stay_out_of_help():
    out = run([str(exitpool_bin()), "--help"]).stdout.decode()
    assert "help-man" not in out and "help-completion" not in out


BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"


@pytest.mark.skipif(not os.path.exists(BASH_COMPLETION), reason="bash-completion is not installed")
@pytest.mark.parametrize("line,expect", [
    ("exitpool se", {"serve"}),
    ("exitpool serve --po", {"--pool", "--policy", "--port-map", "--pool-tags", "--pool-scheme", "--pool-auth-file",
                             "--pool-auth-env", "--pool-key-file", "--pool-key-env", "--pool-key-header",
                             "--pool-refresh", "--pool-timeout", "--pool-allow-empty"}),
    ("exitpool serve --log-format j", {"json"}),
    ("exitpool check --js", {"--json"}),
    ("exitpool cr", {"crawl"}),
    ("exitpool crawl --scope d", {"domain"}),
])
def test_bash_completion(tmp_path, line, expect):
    script = tmp_path / "exitpool.bash"
    script.write_bytes(run([str(exitpool_bin()), "help-completion", "bash"]).stdout)
    assert run(["bash", "-n", str(script)]).returncode == 0
    words = line.split(" ")
    prog = (f"source {BASH_COMPLETION}; source {script}; COMP_WORDS=({' '.join(words)}); "
            f"COMP_CWORD={len(words) - 1}; COMP_LINE='{line}'; COMP_POINT={len(line)}; "
            "_exitpool; printf '%s\\n' \"${COMPREPLY[@]}\"")
    cp = run(["bash", "-c", prog])
    assert set(cp.stdout.decode().split()) == expect, cp


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_completion_parses(tmp_path):
    script = tmp_path / "_exitpool"
    script.write_bytes(run([str(exitpool_bin()), "help-completion", "zsh"]).stdout)
    assert run(["zsh", "-n", str(script)]).returncode == 0
