"""Soak test of the exitpool gateway (issue 5, item 7); run it with bench/soak/run.sh.

For SOAK_SECONDS (default 300) it runs one gateway (2 shards) over a pool of real upstreams on loopback —
squid and tinyproxy (HTTP proxies), danted and microsocks (SOCKS5), two direct:// exits — and an nginx
origin, while:
  * SOAK_WORKERS client threads send a mix of requests: absolute-form HTTP GETs (single and kept-alive),
    CONNECT tunnels, SOCKS5 tunnels, rotating (no session) and sticky (`-session-ID`) users, some with a
    country filter, some fetching a 256 KiB body;
  * one upstream (squid, tinyproxy, danted, microsocks in turn, in a random order) is SIGKILLed every SOAK_KILL_EVERY s
    and restarted on the same port SOAK_DOWN s later;
  * the gateway's RSS (VmRSS) and open fd count are sampled every 5 s.
Every request gets an id in a ledger before it starts and an outcome when it ends: "ok" (a 200 whose body is
the address of an exit of the pool, matching X-Exitpool-Exit when the gateway names one), "http NNN",
"socks rep N", or the client's error (exception type and a short reason). Each socket has a timeout, so each
request ends; after the run the workers get a bounded time to finish.

Fails (exit 1) when: a request is unaccounted for (still pending after the grace period); a 200 carried a wrong
body; the gateway died; nothing was served; or RSS grew without bound (average of the last third of the samples
> average of the first third × 1.5 + 10 MiB).
"""
from __future__ import annotations

import itertools
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from helpers import (Conn, basic, build_request, free_port, port_accepts, socks5_connect,  # noqa: E402
                     start_process, stop_process)
from faults import proc_fds, proc_rss  # noqa: E402

SECONDS = float(os.environ.get("SOAK_SECONDS", "300"))
WORKERS = int(os.environ.get("SOAK_WORKERS", "12"))
KILL_EVERY = float(os.environ.get("SOAK_KILL_EVERY", "10"))
DOWN = float(os.environ.get("SOAK_DOWN", "3"))
SEED = int(os.environ.get("SOAK_SEED", str(int(time.time()))))
KEEP = bool(os.environ.get("SOAK_KEEP"))
BIN = os.environ.get("EXITPOOL_BIN") or str(REPO / "build" / "exitpool")
SAMPLE_EVERY = 5.0
REQUEST_TIMEOUT = 20.0  # per socket operation
GRACE = 45.0  # after the deadline, how long the workers get to finish their last request

EXIT_IP = {"squid": "127.0.0.11", "tinyproxy": "127.0.0.12", "dante": "127.0.0.13", "microsocks": "127.0.0.14",
           "d21": "127.0.0.21", "d22": "127.0.0.22"}
COUNTRY = {"squid": "us", "tinyproxy": "us", "dante": "de", "microsocks": "de", "d21": "nl", "d22": "nl"}
BLOB_SIZE = 256 * 1024


def which(name: str) -> str:
    p = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if not p:
        sys.exit(f"{name} is not installed: scripts/install-deps.sh --test")
    return p


def subdir(root: Path, name: str) -> Path:
    d = root / name
    d.mkdir(exist_ok=True)
    d.chmod(0o777)
    return d


# ------------------------------------------------------------------------------------------ the lab

class Daemon:
    """A service on a fixed port that can be killed and started again on the same port."""

    def __init__(self, name: str, root: Path, argv_fn, port: int):
        self.name, self.dir, self.argv_fn, self.port = name, subdir(root, name), argv_fn, port
        self.svc = None
        self.starts = 0

    def start(self, timeout: float = 30.0) -> None:
        self.starts += 1
        self.svc = start_process(self.name, self.argv_fn(self.dir, self.port),
                                 self.dir / f"run{self.starts}.log", self.port)
        self.svc.wait_ready(timeout=timeout)

    def kill(self) -> None:
        try:
            os.killpg(self.svc.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        stop_process(self.svc.proc, grace=0.1)

    def up(self) -> bool:
        return self.svc is not None and self.svc.alive() and port_accepts("127.0.0.1", self.port)


def nginx_argv(d: Path, port: int) -> list[str]:
    for t in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        subdir(d, t)
    (d / "blob.bin").write_bytes(os.urandom(BLOB_SIZE))
    user = "user root;" if os.geteuid() == 0 else ""
    (d / "nginx.conf").write_text(f"""
{user}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    default_type text/plain;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "$remote_addr\\n"; }}
        location = /blob {{ default_type application/octet-stream; alias {d}/blob.bin; }}
    }}
}}
""")
    return [which("nginx"), "-c", str(d / "nginx.conf"), "-g", "daemon off; master_process on;"]


def squid_argv(d: Path, port: int) -> list[str]:
    from conftest import _squid_conf  # the test lab's squid.conf: loopback only, CONNECT to any port
    conf = d / "squid.conf"
    conf.write_text(_squid_conf(d, port, EXIT_IP["squid"]))
    conf.chmod(0o644)
    return [which("squid"), "-N", "-f", str(conf)]


def tinyproxy_argv(d: Path, port: int) -> list[str]:
    conf = d / "tinyproxy.conf"
    conf.write_text(f"""
User nobody
Group nogroup
Port {port}
Listen 127.0.0.1
Bind {EXIT_IP['tinyproxy']}
Timeout 60
MaxClients 400
Allow 127.0.0.0/8
DisableViaHeader Yes
LogLevel Warning
PidFile "{d}/tinyproxy.pid"
""")
    conf.chmod(0o644)
    return [which("tinyproxy"), "-d", "-c", str(conf)]


def dante_argv(d: Path, port: int) -> list[str]:
    conf = d / "danted.conf"
    conf.write_text(f"""
logoutput: stderr
internal: 127.0.0.1 port = {port}
external: {EXIT_IP['dante']}
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0
    log: error }}
socks pass {{ from: 127.0.0.0/8 to: 127.0.0.0/8
    command: connect
    log: error }}
socks block {{ from: 0.0.0.0/0 to: 0.0.0.0/0
    log: error }}
""")
    conf.chmod(0o644)
    return [which("danted"), "-f", str(conf), "-N", "2", "-p", str(d / "danted.pid")]


def microsocks_argv(d: Path, port: int) -> list[str]:
    return [which("microsocks"), "-i", "127.0.0.1", "-p", str(port), "-b", EXIT_IP["microsocks"]]


# ------------------------------------------------------------------------------------------ the load

class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.rows: dict[int, list] = {}  # id -> [kind, start, end, outcome]
        self.next = 0
        self.sessions: dict[str, list[str]] = {}

    def open(self, kind: str) -> int:
        with self.lock:
            rid = self.next
            self.next += 1
            self.rows[rid] = [kind, time.monotonic(), None, None]
            return rid

    def close(self, rid: int, outcome: str, session: str | None = None, exit_ip: str | None = None) -> None:
        with self.lock:
            row = self.rows[rid]
            row[2], row[3] = time.monotonic(), outcome
            if session and exit_ip:
                self.sessions.setdefault(session, []).append(exit_ip)

    def snapshot(self) -> list[list]:
        with self.lock:
            return [list(r) for r in self.rows.values()]


def check_body(r, allowed: set[str]) -> str:
    """Outcome of one response: ok, or why not."""
    if r.status != 200:
        return f"http {r.status}"
    saw = r.text.strip()
    if saw not in allowed:
        return "WRONG-BODY"
    named = r.header("X-Exitpool-Exit")
    if named and EXIT_IP.get(named) != saw:
        return "WRONG-EXIT-HEADER"
    return "ok"


def error_reason(e: BaseException) -> str:
    msg = "timed out" if isinstance(e, socket.timeout) else str(e).split(";")[0][:60]
    return f"client {type(e).__name__}" + (f": {msg}" if msg else "")


class Load:
    def __init__(self, gw_port: int, origin_port: int, deadline: float, ledger: Ledger, seed: int):
        self.gw, self.op, self.deadline, self.ledger = gw_port, origin_port, deadline, ledger
        self.seed = seed
        self.all_ips = set(EXIT_IP.values())

    def user(self, rng: random.Random) -> tuple[str | None, str | None, set[str]]:
        """(username or None, session id or None, the exit addresses it may leave from)."""
        r = rng.random()
        if r < 0.35:
            return None, None, self.all_ips
        if r < 0.65:
            sid = f"s{rng.randrange(8)}"
            return f"soak-session-{sid}", sid, self.all_ips
        cc = rng.choice(["us", "de", "nl"])
        ips = {EXIT_IP[e] for e, c in COUNTRY.items() if c == cc}
        if r < 0.8:
            sid = f"{cc}{rng.randrange(4)}"
            return f"soak-country-{cc}-session-{sid}", sid, ips
        return f"soak-country-{cc}", None, ips

    def one(self, rng: random.Random) -> None:
        kind = rng.choices(["http", "http-keepalive", "http-blob", "connect", "socks"], [30, 10, 5, 30, 25])[0]
        user, sid, ips = self.user(rng)
        creds = {"Proxy-Authorization": basic(user, "x")} if user else {}
        origin = f"127.0.0.1:{self.op}"
        rid = self.ledger.open(kind)
        outcome, exit_ip = "unset", None
        try:
            if kind.startswith("http"):
                with Conn("127.0.0.1", self.gw, timeout=REQUEST_TIMEOUT) as c:
                    if kind == "http-blob":
                        r = c.request("GET", f"http://{origin}/blob", {"Connection": "close", **creds})
                        outcome = f"http {r.status}" if r.status != 200 else (
                            "ok" if len(r.body) == BLOB_SIZE else "WRONG-BODY")
                    else:
                        n = 3 if kind == "http-keepalive" else 1
                        for i in range(n):
                            last = i == n - 1
                            r = c.request("GET", f"http://{origin}/",
                                          {**({"Connection": "close"} if last else {}), **creds})
                            outcome = check_body(r, ips)
                            if outcome != "ok":
                                break
                            exit_ip = r.text.strip()
            elif kind == "connect":
                with Conn("127.0.0.1", self.gw, timeout=REQUEST_TIMEOUT) as c:
                    c.send(build_request("CONNECT", origin, creds))
                    head = c.read_response("CONNECT")
                    if head.status != 200:
                        outcome = f"http {head.status}"
                    else:
                        r = c.request("GET", "/", {"Connection": "close"}, host=origin)
                        outcome = check_body(r, ips)
                        exit_ip = r.text.strip()
            else:
                c, rep = socks5_connect(self.gw, "127.0.0.1", self.op, user=user, timeout=REQUEST_TIMEOUT)
                with c:
                    if rep != 0:
                        outcome = f"socks rep {rep}"
                    else:
                        r = c.request("GET", "/", {"Connection": "close"}, host=origin)
                        outcome = check_body(r, ips)
                        exit_ip = r.text.strip()
        except BaseException as e:  # noqa: BLE001 - every failure is an outcome to record
            outcome = error_reason(e)
        finally:
            self.ledger.close(rid, outcome, sid and f"{user}", exit_ip if outcome == "ok" else None)

    def worker(self, k: int) -> None:
        rng = random.Random(self.seed * 1000 + k)
        while time.monotonic() < self.deadline:
            self.one(rng)


# ------------------------------------------------------------------------------------------ the run

def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="exitpool-soak-"))
    root.chmod(0o755)
    rng = random.Random(SEED)
    daemons = {
        "origin": Daemon("nginx", root, nginx_argv, free_port()),
        "squid": Daemon("squid", root, squid_argv, free_port()),
        "tinyproxy": Daemon("tinyproxy", root, tinyproxy_argv, free_port()),
        "dante": Daemon("dante", root, dante_argv, free_port()),
        "microsocks": Daemon("microsocks", root, microsocks_argv, free_port()),
    }
    gw_svc = None
    try:
        for d in daemons.values():
            d.start()
        pool = root / "pool.txt"
        pool.write_text("".join([
            f"http://127.0.0.1:{daemons['squid'].port} id=squid country=us\n",
            f"http://127.0.0.1:{daemons['tinyproxy'].port} id=tinyproxy country=us\n",
            f"socks5://127.0.0.1:{daemons['dante'].port} id=dante country=de\n",
            f"socks5h://127.0.0.1:{daemons['microsocks'].port} id=microsocks country=de\n",
            "direct://127.0.0.21 id=d21 country=nl\n",
            "direct://127.0.0.22 id=d22 country=nl\n",
        ]))
        gw_port = free_port()
        argv = [BIN, "serve", "--pool", str(pool), "--listen", f"127.0.0.1:{gw_port}", "--threads", "2",
                "--check-interval", "5", "--check-timeout", "2", "--cooldown", "2", "--max-cooldown", "10",
                "--dial-timeout", "5", "--log-level", "warn"]
        gw_svc = start_process("exitpool", argv, root / "gateway.log", gw_port)
        gw_svc.wait_ready(timeout=15)
        pid = gw_svc.proc.pid
        print(f"soak: {SECONDS:.0f} s, {WORKERS} client threads, an upstream killed every {KILL_EVERY:.0f} s "
              f"for {DOWN:.0f} s, seed {SEED}, gateway pid {pid}, work dir {root}", flush=True)
        with open("/proc/loadavg") as f:
            print(f"load average at start: {f.read().split()[:3]}", flush=True)

        ledger = Ledger()
        t_start = time.monotonic()
        deadline = t_start + SECONDS
        stop = threading.Event()
        samples: list[tuple[float, int, int, int]] = []
        events: list[tuple[float, str]] = []

        def sampler():
            while True:
                try:
                    samples.append((time.monotonic() - t_start, proc_rss(pid), proc_fds(pid), ledger.next))
                except (OSError, RuntimeError):
                    events.append((time.monotonic() - t_start, "gateway gone"))
                    return
                if stop.wait(SAMPLE_EVERY):
                    return

        def killer():
            victims = ["squid", "tinyproxy", "dante", "microsocks"]
            rng.shuffle(victims)  # each in turn, in a random order
            for k in itertools.count():
                if stop.wait(KILL_EVERY):
                    return
                name = victims[k % len(victims)]
                d = daemons[name]
                d.kill()
                events.append((time.monotonic() - t_start, f"killed {name}"))
                if stop.wait(DOWN):
                    d.start()
                    return
                try:
                    d.start()
                    events.append((time.monotonic() - t_start, f"restarted {name}"))
                except Exception as e:  # noqa: BLE001 - reported, and the next kill cycle tries again
                    events.append((time.monotonic() - t_start, f"restart of {name} failed: {e}"[:200]))

        load = Load(gw_port, daemons["origin"].port, deadline, ledger, SEED)
        threads = [threading.Thread(target=sampler, daemon=True), threading.Thread(target=killer, daemon=True)]
        workers = [threading.Thread(target=load.worker, args=(k,), daemon=True) for k in range(WORKERS)]
        for t in threads + workers:
            t.start()
        last_print = t_start
        while time.monotonic() < deadline:
            time.sleep(1)
            if time.monotonic() - last_print >= 15:
                last_print = time.monotonic()
                s = samples[-1] if samples else None
                print(f"  t={last_print - t_start:5.0f}s requests={ledger.next}"
                      + (f" rss={s[1] >> 10} KiB fds={s[2]}" if s else ""), flush=True)
            if not gw_svc.alive():
                break
        end_grace = time.monotonic() + GRACE
        for t in workers:
            t.join(timeout=max(0.0, end_grace - time.monotonic()))
        time.sleep(1)
        try:
            samples.append((time.monotonic() - t_start, proc_rss(pid), proc_fds(pid), ledger.next))
        except (OSError, RuntimeError):
            pass
        stop.set()
        for t in threads:
            t.join(timeout=40)
        gw_alive = gw_svc.alive()

        # ---------------------------------------------------------------------------------- report
        rows = ledger.snapshot()
        outcomes = Counter(r[3] for r in rows if r[3] is not None)
        pending = [r for r in rows if r[3] is None]
        ok = outcomes.get("ok", 0)
        by_kind = Counter((r[0], r[3] == "ok") for r in rows if r[3] is not None)
        elapsed = time.monotonic() - t_start
        print(f"\nrequests: {len(rows)} started, {len(rows) - len(pending)} accounted for, {len(pending)} unaccounted;"
              f" {ok} ok ({ok / max(1, len(rows)) * 100:.1f} %), {ok / max(1e-9, SECONDS):.0f} ok/s")
        for kind in ["http", "http-keepalive", "http-blob", "connect", "socks"]:
            print(f"  {kind:15s} ok {by_kind[(kind, True)]:6d}  not ok {by_kind[(kind, False)]:5d}")
        print("outcomes other than ok:")
        for reason, n in outcomes.most_common():
            if reason != "ok":
                print(f"  {n:6d}  {reason}")
        switches = sum(sum(1 for a, b in zip(v, v[1:]) if a != b) for v in ledger.sessions.values())
        sticky_n = sum(len(v) for v in ledger.sessions.values())
        print(f"sticky sessions: {len(ledger.sessions)} ids, {sticky_n} ok requests, {switches} exit changes"
              " (expected only around kills of the session's exit)")
        print("upstream events:")
        for t, what in events:
            print(f"  t={t:6.1f}s {what}")
        print("gateway RSS / fds over time:")
        print("      t   rss KiB  fds  requests")
        for t, rss, fds, n in samples:
            print(f"  {t:5.0f}  {rss >> 10:8d}  {fds:3d}  {n:8d}")
        with open("/proc/loadavg") as f:
            print(f"load average at end: {f.read().split()[:3]} ({os.cpu_count()} CPUs)")
        (root / "samples.tsv").write_text("t\trss\tfds\trequests\n" + "".join(
            f"{t:.1f}\t{rss}\t{fds}\t{n}\n" for t, rss, fds, n in samples))
        (root / "requests.tsv").write_text("kind\tstart\tend\toutcome\n" + "".join(
            f"{k}\t{s - t_start:.3f}\t{'' if e is None else f'{e - t_start:.3f}'}\t{o}\n" for k, s, e, o in rows))

        failures = []
        if pending:
            failures.append(f"{len(pending)} requests unaccounted for (no response, no client error after "
                            f"{GRACE:.0f} s grace): kinds {Counter(r[0] for r in pending)}")
        wrong = {k: v for k, v in outcomes.items() if k.startswith("WRONG")}
        if wrong:
            failures.append(f"wrong responses: {wrong}")
        if not gw_alive:
            failures.append(f"the gateway died (exit code {gw_svc.proc.returncode}); log {root / 'gateway.log'}")
        if ok == 0:
            failures.append("no request was served")
        if len(samples) >= 6:
            third = len(samples) // 3
            first = sum(s[1] for s in samples[:third]) / third
            last = sum(s[1] for s in samples[-third:]) / third
            bound = first * 1.5 + 10 * 1024 * 1024
            print(f"RSS: first-third average {first / 1048576:.1f} MiB, last-third average {last / 1048576:.1f} MiB"
                  f" (bound {bound / 1048576:.1f} MiB)")
            if last > bound:
                failures.append(f"RSS grew without bound: {first / 1048576:.1f} -> {last / 1048576:.1f} MiB")
        else:
            print(f"RSS: only {len(samples)} samples, growth not judged")
        print(f"elapsed {elapsed:.0f} s")
        if failures:
            print("\nSOAK FAILED:\n  " + "\n  ".join(failures))
            tail = (root / "gateway.log").read_text(errors="replace")[-3000:]
            print(f"--- gateway log tail ---\n{tail}")
            return 1
        print("\nSOAK PASSED")
        return 0
    finally:
        if gw_svc is not None:
            stop_process(gw_svc.proc, grace=5)
        for d in daemons.values():
            if d.svc is not None:
                stop_process(d.svc.proc, grace=2)
        if KEEP:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
