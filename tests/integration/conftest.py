"""Session fixtures for the integration tests: a loopback lab of real upstream proxies and an origin.

    nginx origin      127.0.0.1:P and [::1]:P   every path: "$remote_addr\n"; /echo, /chunked, /big
    squid             HTTP proxy,  leaves from 127.0.0.11
    tinyproxy         HTTP proxy,  leaves from 127.0.0.12
    danted            SOCKS5,      leaves from 127.0.0.13
    microsocks        SOCKS5,      leaves from 127.0.0.14
    microsocks+auth   SOCKS5 user/pass (msuser:mspass), leaves from 127.0.0.15
    tinyproxy+auth    HTTP proxy with basic auth (tpuser:tppass), leaves from 127.0.0.16
    stunnel4          TLS in front of squid (so leaves from 127.0.0.11); a test CA signs its certificate
    direct exits      the gateway itself, from 127.0.0.21 and 127.0.0.22
    DNS server        127.0.0.53:P (UDP, python3-dnslib: dns_server.py): fast.test, short.test (TTL 2),
                      slow.test (answers after 3 s), dual.test, servfail.test, NXDOMAIN for the rest

Each service writes its config into one temp dir, binds a free loopback port, is checked with curl before
any test uses it (a broken fixture fails loudly, naming its log), and is stopped (whole process group) at the
end. `start_gateway(pool_lines, *args)` starts the exitpool binary (EXITPOOL_BIN or ./build/exitpool).
Set EXITPOOL_KEEP_TMP=1 to keep the temp dir (configs and logs) after the run.
"""
from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import (EXIT_IPS, Service, ServiceError, curl, exitpool_bin, free_port, run, sha256,
                     start_process)

ORIGIN_BIG_SIZE = 4 * 1024 * 1024 + 12345  # not a multiple of any buffer size

def _need(binary: str) -> str:
    path = shutil.which(binary) or (f"/usr/sbin/{binary}" if os.path.exists(f"/usr/sbin/{binary}") else None)
    if not path:
        raise ServiceError(f"{binary} is not installed: run scripts/install-deps.sh --test")
    return path


def _self_check(svc: Service, args: list[str], expect: str) -> None:
    """The service must work on its own before the gateway is blamed for anything."""
    last = None
    for _ in range(20):  # a few daemons accept before they are fully ready
        res = curl(*args, max_time=5)
        last = res
        if res.rc == 0 and res.status == 200 and res.text == expect:
            return
        time.sleep(0.2)
    svc.stop()
    raise ServiceError(f"{svc.name} self-check failed: curl {' '.join(args)} -> rc={last.rc} "
                       f"status={last.status} body={last.text[:200]!r} stderr={last.stderr.strip()!r}\n"
                       f"--- {svc.log_path} ---\n{svc.log()}")


# ------------------------------------------------------------------------------------------ lab dir

@pytest.fixture(scope="session")
def lab_dir():
    # Not pytest's tmp_path: that is 0700 under /tmp/pytest-of-root, and squid/tinyproxy/danted drop
    # to unprivileged users that must read their configs and write their pid files.
    path = Path(tempfile.mkdtemp(prefix="exitpool-it-"))
    path.chmod(0o755)
    yield path
    if os.environ.get("EXITPOOL_KEEP_TMP"):
        print(f"\nkept integration temp dir: {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


def _subdir(lab_dir: Path, name: str, mode: int = 0o777) -> Path:
    d = lab_dir / name
    d.mkdir(exist_ok=True)
    d.chmod(mode)
    return d


# ------------------------------------------------------------------------------------------- origin

@dataclass
class Origin:
    port: int
    big_sha256: str
    big_size: int
    svc: Service

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}{path}"

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def origin(lab_dir):
    nginx = _need("nginx")
    d = _subdir(lab_dir, "nginx")
    for t in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        _subdir(d, t)
    big = os.urandom(ORIGIN_BIG_SIZE)
    (d / "big.bin").write_bytes(big)
    port = free_port()
    echo_module = "/usr/lib/nginx/modules/ngx_http_echo_module.so"  # libnginx-mod-http-echo, pulled by nginx-light
    if not os.path.exists(echo_module):
        raise ServiceError(f"{echo_module} missing: install nginx-light (it depends on libnginx-mod-http-echo)")
    user = "user root;" if os.geteuid() == 0 else ""
    conf = d / "nginx.conf"
    conf.write_text(f"""
load_module {echo_module};
{user}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    default_type text/plain;
    keepalive_requests 100000;
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{port};
        listen [::1]:{port};
        client_max_body_size 64m;
        client_body_buffer_size 32m;
        client_body_in_single_buffer on;
        add_header X-Origin-Remote-Addr $remote_addr always;
        # Every other path: who connected to us, i.e. which exit the request left through.
        location / {{
            return 200 "$remote_addr\\n";
        }}
        # The request body back verbatim, and how it arrived in the response headers.
        location = /echo {{
            add_header X-Origin-Remote-Addr $remote_addr always;
            add_header X-Echo-Method $request_method always;
            add_header X-Echo-Content-Length "$http_content_length" always;
            add_header X-Echo-Transfer-Encoding "$http_transfer_encoding" always;
            add_header X-Echo-Test-Header "$http_x_test_header" always;
            add_header X-Echo-Proxy-Authorization "$http_proxy_authorization" always;
            echo_read_request_body;
            echo_request_body;
        }}
        # A response without Content-Length: chunked to HTTP/1.1 clients.
        location = /chunked {{
            add_header X-Origin-Remote-Addr $remote_addr always;
            echo "chunk-one";
            echo_flush;
            echo_sleep 0.05;
            echo "chunk-two";
            echo_flush;
            echo_sleep 0.05;
            echo $remote_addr;
        }}
        location = /big {{
            default_type application/octet-stream;
            alias {d}/big.bin;
        }}
    }}
}}
""")
    check = run([nginx, "-t", "-c", str(conf), "-g", "daemon off; master_process on;"], timeout=15)
    if check.returncode != 0:
        raise ServiceError(f"nginx -t failed:\n{check.stderr.decode()}")
    svc = start_process("nginx origin", [nginx, "-c", str(conf), "-g", "daemon off; master_process on;"],
                        d / "stdout.log", port)
    svc.extra["error_log"] = d / "error.log"
    try:
        svc.wait_ready()
        svc.wait_ready(host="::1")
        _self_check(svc, [f"http://127.0.0.1:{port}/"], "127.0.0.1\n")
        _self_check(svc, [f"http://[::1]:{port}/"], "::1\n")
    except Exception:
        svc.stop()
        raise
    yield Origin(port=port, big_sha256=sha256(big), big_size=len(big), svc=svc)
    svc.stop()


# ------------------------------------------------------------------------------------ HTTP upstreams

def _squid_conf(d: Path, port: int, outgoing: str) -> str:
    return f"""
http_port 127.0.0.1:{port}
pid_filename {d}/squid.pid
cache_log {d}/cache.log
access_log none
cache_store_log none
cache deny all
cache_mem 8 MB
coredump_dir {d}
netdb_filename none
icp_port 0
htcp_port 0
pinger_enable off
shutdown_lifetime 0 seconds
visible_hostname exitpool-test-squid
via off
forwarded_for delete
logfile_rotate 0
max_filedescriptors 4096
# Loopback only, any port, CONNECT included (the default squid.conf restricts CONNECT to 443).
acl lab src 127.0.0.0/8
acl lab_dst dst 127.0.0.0/8 ::1
http_access allow lab lab_dst
http_access deny all
tcp_outgoing_address {outgoing}
"""


@pytest.fixture(scope="session")
def squid(lab_dir, origin):
    squid_bin = _need("squid")
    d = _subdir(lab_dir, "squid")
    port = free_port()
    conf = d / "squid.conf"
    conf.write_text(_squid_conf(d, port, "127.0.0.11"))
    conf.chmod(0o644)
    check = run([squid_bin, "-k", "parse", "-f", str(conf)], timeout=30)
    if check.returncode != 0:
        raise ServiceError(f"squid -k parse failed:\n{check.stderr.decode()[-4000:]}")
    svc = start_process("squid", [squid_bin, "-N", "-f", str(conf)], d / "stdout.log", port)
    try:
        svc.wait_ready(timeout=30)
        _self_check(svc, ["-x", f"http://127.0.0.1:{port}", origin.url()], "127.0.0.11\n")
        _self_check(svc, ["-p", "-x", f"http://127.0.0.1:{port}", origin.url()], "127.0.0.11\n")
    except Exception:
        if (d / "cache.log").exists():
            print((d / "cache.log").read_text(errors="replace")[-4000:])
        svc.stop()
        raise
    yield svc
    svc.stop()


def _tinyproxy(lab_dir: Path, origin: Origin, name: str, outgoing: str, auth: tuple[str, str] | None):
    tp_bin = _need("tinyproxy")
    d = _subdir(lab_dir, name)
    port = free_port()
    conf = d / "tinyproxy.conf"
    auth_line = f"BasicAuth {auth[0]} {auth[1]}" if auth else ""
    # No ConnectPort lines: CONNECT to any port is allowed.
    conf.write_text(f"""
User nobody
Group nogroup
Port {port}
Listen 127.0.0.1
Bind {outgoing}
Timeout 60
MaxClients 200
Allow 127.0.0.0/8
DisableViaHeader Yes
LogLevel Warning
PidFile "{d}/tinyproxy.pid"
{auth_line}
""")
    conf.chmod(0o644)
    svc = start_process(name, [tp_bin, "-d", "-c", str(conf)], d / "stdout.log", port)
    creds = ["-U", f"{auth[0]}:{auth[1]}"] if auth else []
    try:
        svc.wait_ready()
        _self_check(svc, ["-x", f"http://127.0.0.1:{port}", *creds, origin.url()], f"{outgoing}\n")
        _self_check(svc, ["-p", "-x", f"http://127.0.0.1:{port}", *creds, origin.url()], f"{outgoing}\n")
        if auth:
            res = curl("-x", f"http://127.0.0.1:{port}", origin.url(), max_time=5)
            if res.status != 407:
                raise ServiceError(f"{name} without credentials answered {res.status}, expected 407")
    except Exception:
        svc.stop()
        raise
    return svc


@pytest.fixture(scope="session")
def tinyproxy(lab_dir, origin):
    svc = _tinyproxy(lab_dir, origin, "tinyproxy", "127.0.0.12", None)
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def tinyproxy_auth(lab_dir, origin):
    svc = _tinyproxy(lab_dir, origin, "tinyproxy-auth", "127.0.0.16", ("tpuser", "tppass"))
    yield svc
    svc.stop()


# ----------------------------------------------------------------------------------- SOCKS upstreams

@pytest.fixture(scope="session")
def dante(lab_dir, origin):
    danted = _need("danted")
    d = _subdir(lab_dir, "dante")
    port = free_port()
    conf = d / "danted.conf"
    conf.write_text(f"""
logoutput: stderr
internal: 127.0.0.1 port = {port}
external: 127.0.0.13
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{
    from: 127.0.0.0/8 to: 0.0.0.0/0
    log: error
}}
socks pass {{
    from: 127.0.0.0/8 to: 127.0.0.0/8
    command: connect
    log: error
}}
socks block {{
    from: 0.0.0.0/0 to: 0.0.0.0/0
    log: error
}}
""")
    conf.chmod(0o644)
    svc = start_process("danted", [danted, "-f", str(conf), "-N", "1", "-p", str(d / "danted.pid")],
                        d / "stdout.log", port)
    try:
        svc.wait_ready()
        _self_check(svc, ["--socks5", f"127.0.0.1:{port}", origin.url()], "127.0.0.13\n")
        _self_check(svc, ["--socks5-hostname", f"127.0.0.1:{port}", origin.url()], "127.0.0.13\n")
    except Exception:
        svc.stop()
        raise
    yield svc
    svc.stop()


def _microsocks(lab_dir: Path, origin: Origin, name: str, outgoing: str, auth: tuple[str, str] | None):
    ms = _need("microsocks")
    d = _subdir(lab_dir, name)
    port = free_port()
    argv = [ms, "-i", "127.0.0.1", "-p", str(port), "-b", outgoing]
    if auth:
        argv += ["-u", auth[0], "-P", auth[1]]
    svc = start_process(name, argv, d / "stdout.log", port)
    cred = f"{auth[0]}:{auth[1]}@" if auth else ""
    try:
        svc.wait_ready()
        _self_check(svc, ["-x", f"socks5://{cred}127.0.0.1:{port}", origin.url()], f"{outgoing}\n")
        _self_check(svc, ["-x", f"socks5h://{cred}127.0.0.1:{port}", origin.url()], f"{outgoing}\n")
        if auth:
            res = curl("-x", f"socks5://127.0.0.1:{port}", origin.url(), max_time=5)
            if res.rc == 0:
                raise ServiceError(f"{name} accepted a client without credentials")
    except Exception:
        svc.stop()
        raise
    return svc


@pytest.fixture(scope="session")
def microsocks(lab_dir, origin):
    svc = _microsocks(lab_dir, origin, "microsocks", "127.0.0.14", None)
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def microsocks_auth(lab_dir, origin):
    svc = _microsocks(lab_dir, origin, "microsocks-auth", "127.0.0.15", ("msuser", "mspass"))
    yield svc
    svc.stop()


# ------------------------------------------------------------------------------- TLS (stunnel4→squid)

@dataclass
class TlsProxy:
    port: int
    ca_file: Path
    svc: Service


def make_test_pki(d: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for IP 127.0.0.1 it signed; returns (ca, cert, key)."""
    openssl = _need("openssl")
    ca_key, ca_crt = d / "ca.key", d / "ca.crt"
    key, csr, crt, ext = d / "server.key", d / "server.csr", d / "server.crt", d / "server.ext"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        [openssl, "req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "2",
         "-subj", "/CN=exitpool integration test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        [openssl, "req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1"],
    ]
    ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n")
    steps.append([openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
                  "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext)])
    for argv in steps:
        cp = run(argv, timeout=30)
        if cp.returncode != 0:
            raise ServiceError(f"{' '.join(argv)} failed:\n{cp.stderr.decode()}")
    for p in (ca_crt, crt):
        p.chmod(0o644)
    return ca_crt, crt, key


@pytest.fixture(scope="session")
def tls_proxy(lab_dir, origin, squid):
    stunnel = shutil.which("stunnel4") or _need("stunnel")
    d = _subdir(lab_dir, "stunnel", 0o755)
    ca, crt, key = make_test_pki(d)
    port = free_port()
    conf = d / "stunnel.conf"
    conf.write_text(f"""
foreground = yes
pid =
debug = 4
[squid-tls]
accept = 127.0.0.1:{port}
connect = 127.0.0.1:{squid.port}
cert = {crt}
key = {key}
""")
    svc = start_process("stunnel4", [stunnel, str(conf)], d / "stdout.log", port)
    try:
        svc.wait_ready()
        # Verified against the test CA: proves the certificate is right for 127.0.0.1.
        _self_check(svc, ["--proxy-cacert", str(ca), "-x", f"https://127.0.0.1:{port}", origin.url()],
                    "127.0.0.11\n")
        _self_check(svc, ["--proxy-cacert", str(ca), "-p", "-x", f"https://127.0.0.1:{port}", origin.url()],
                    "127.0.0.11\n")
    except Exception:
        svc.stop()
        raise
    yield TlsProxy(port=port, ca_file=ca, svc=svc)
    svc.stop()


# ---------------------------------------------------------------------------------------- the pool

@dataclass
class Lab:
    """All upstreams, and pool lines for them. `line(id)` is that exit's pool line."""

    origin: Origin
    lines: dict[str, str]
    ca_file: Path

    def line(self, exit_id: str) -> str:
        return self.lines[exit_id]

    def pool(self, *ids: str) -> list[str]:
        return [self.lines[i] for i in (ids or self.lines)]

    @staticmethod
    def ip(exit_id: str) -> str:
        return EXIT_IPS[exit_id]


@pytest.fixture(scope="session")
def lab(origin, squid, tinyproxy, tinyproxy_auth, dante, microsocks, microsocks_auth, tls_proxy):
    lines = {
        "squid": f"http://127.0.0.1:{squid.port} id=squid country=us type=datacenter",
        "tinyproxy": f"http://127.0.0.1:{tinyproxy.port} id=tinyproxy country=us type=residential",
        "dante": f"socks5://127.0.0.1:{dante.port} id=dante country=de type=datacenter",
        "microsocks": f"socks5h://127.0.0.1:{microsocks.port} id=microsocks country=de type=residential",
        "ms-auth": f"socks5://msuser:mspass@127.0.0.1:{microsocks_auth.port} id=ms-auth country=fr",
        "tp-auth": f"http://tpuser:tppass@127.0.0.1:{tinyproxy_auth.port} id=tp-auth country=fr",
        "squid-tls": f"https://127.0.0.1:{tls_proxy.port} id=squid-tls country=gb tls_verify=false",
        "d1": "direct://127.0.0.21 id=d1 country=us type=isp",
        "d2": "direct://127.0.0.22 id=d2 country=nl type=isp",
    }
    return Lab(origin=origin, lines=lines, ca_file=tls_proxy.ca_file)


# ---------------------------------------------------------------------------------------- gateway

@dataclass
class DnsServer:
    """The DNS server of dns_server.py; `queries(name)` counts the queries it has received for name."""

    port: int
    svc: Service
    host: str = "127.0.0.53"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def queries(self, name: str, qtype: str = "A") -> int:
        return sum(1 for line in self.svc.log(10_000_000).splitlines() if line == f"query {name} {qtype}")


@pytest.fixture(scope="session")
def dns_server(lab_dir):
    """A DNS server on loopback for the tests that resolve names: pass --dns-server dns_server.address."""
    d = _subdir(lab_dir, "dns", 0o755)
    port = free_port("127.0.0.53")
    script = Path(__file__).with_name("dns_server.py")
    svc = start_process("dns_server", ["/usr/bin/python3", str(script), "--listen", "127.0.0.53", "--port",
                                       str(port)], d / "dns.log", port)
    deadline = time.monotonic() + 10
    while "ready" not in svc.log():
        if not svc.alive() or time.monotonic() > deadline:
            svc.stop()
            raise ServiceError(f"dns_server.py did not start\n--- {svc.log_path} ---\n{svc.log()}")
        time.sleep(0.05)
    yield DnsServer(port=port, svc=svc)
    svc.stop()


@dataclass
class Gateway:
    port: int
    proc: object
    svc: Service
    pool_path: Path
    host: str = "127.0.0.1"
    exit_expected: bool = False  # a test that stops the gateway itself sets this

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"

    def proxy(self, scheme: str = "http", user: str | None = None, password: str = "x") -> str:
        cred = f"{user}:{password}@" if user is not None else ""
        return f"{scheme}://{cred}{self.host}:{self.port}"

    def log(self) -> str:
        return self.svc.log()

    def alive(self) -> bool:
        return self.svc.alive()


_file_numbers = itertools.count(1)  # unique across the session: a failing test's log is never overwritten


class GatewayFactory:
    def __init__(self, dir_: Path):
        self.dir = dir_
        self.started: list[Gateway] = []
        self.n = 0

    def write(self, name: str, text: str) -> Path:
        self.n = next(_file_numbers)
        p = self.dir / f"{self.n:03d}-{name}"
        p.write_text(text)
        return p

    def __call__(self, pool_lines, *extra_args: str, users: dict | None = None, threads: int | None = 2,
                 listen: str | None = None, wait: bool = True) -> Gateway:
        pool = self.write("pool.txt", "# written by tests/integration/conftest.py\n" +
                          "".join(line + "\n" for line in pool_lines))
        port = int(listen.rsplit(":", 1)[1]) if listen else free_port()
        argv = [str(exitpool_bin()), "serve", "--pool", str(pool),
                "--listen", listen or f"127.0.0.1:{port}"]
        if threads is not None:
            argv += ["--threads", str(threads)]
        if users is not None:
            users_file = self.write("users.txt", "# user:password\n" +
                                    "".join(f"{u}:{p}\n" for u, p in users.items()))
            argv += ["--users", str(users_file)]
        argv += list(extra_args)
        log = self.dir / f"{self.n:03d}-gateway.log"
        log.write_text("$ " + " ".join(argv) + "\n")
        svc = start_process("exitpool", argv, log, port)
        gw = Gateway(port=port, proc=svc.proc, svc=svc, pool_path=pool)
        self.started.append(gw)
        if wait:
            svc.wait_ready(timeout=15)
        return gw

    def stop_all(self) -> list[tuple["Gateway", int | None]]:
        """Stops every gateway (SIGTERM); returns those that did not exit cleanly with their exit code."""
        unclean = []
        for gw in self.started:
            if gw.svc.alive():
                rc = gw.svc.stop(grace=5)
                # A crash while draining, or a sanitizer report at exit, shows only here.
                if rc != 0 and not gw.exit_expected:
                    unclean.append((gw, rc))
            # Shown by pytest only for failing tests: the gateway's own account of what happened.
            print(f"--- exitpool log ({gw.svc.log_path}) ---\n{gw.svc.log(6000)}")
        self.started.clear()
        return unclean


@pytest.fixture(scope="session")
def gateway_dir(lab_dir):
    return _subdir(lab_dir, "gateway", 0o755)


@pytest.fixture
def start_gateway(gateway_dir):
    """Factory: start_gateway(pool_lines, *extra_args, users={...}, threads=2) -> Gateway, stopped after the test."""
    factory = GatewayFactory(gateway_dir)
    yield factory
    crashed = [gw for gw in factory.started if not gw.alive() and not gw.exit_expected]
    unclean = factory.stop_all()
    if crashed:
        gw = crashed[0]
        pytest.fail(f"exitpool died during this test (exit code {gw.proc.returncode})\n"
                    f"--- {gw.svc.log_path} ---\n{gw.svc.log(6000)}", pytrace=False)
    if unclean:
        gw, rc = unclean[0]
        pytest.fail(f"exitpool did not exit cleanly on SIGTERM (exit code {rc})\n"
                    f"--- {gw.svc.log_path} ---\n{gw.svc.log(6000)}", pytrace=False)


class SharedGateway:
    """A gateway kept for the whole session; started again if a test killed it."""

    def __init__(self, factory: GatewayFactory, pool_lines: list[str], *args: str):
        self.factory, self.pool_lines, self.args = factory, pool_lines, args
        self.gw: Gateway | None = None

    def get(self) -> Gateway:
        if self.gw is None or not self.gw.alive():
            self.gw = self.factory(self.pool_lines, *self.args)
        return self.gw


@pytest.fixture(scope="session")
def _gw_all_shared(lab, gateway_dir):
    factory = GatewayFactory(gateway_dir)
    yield SharedGateway(factory, lab.pool(), "--policy", "round-robin")
    factory.stop_all()


@pytest.fixture
def gw_all(_gw_all_shared):
    """One gateway over every exit of the lab, round-robin, 2 shards, shared by the tests that only read.

    A test during which it died fails at teardown with the gateway's log; the next test gets a fresh one,
    so one crash does not fail every test after it.
    """
    gw = _gw_all_shared.get()
    yield gw
    if not gw.alive():
        pytest.fail(f"exitpool died during this test (exit code {gw.proc.returncode})\n"
                    f"--- {gw.svc.log_path} ---\n{gw.svc.log(6000)}", pytrace=False)


# ------------------------------------------------------------------------------------------ redis

class RedisServer:
    """A real redis-server on a loopback port, no persistence (--save '', --appendonly no), in a temp dir.
    kill() is kill -9; start() again brings it back on the same port, empty (a restart without AOF) or,
    with aof=True, with everything it had."""

    def __init__(self, dir_: Path, port: int, password: str | None = None, aof: bool = False):
        self.dir, self.port, self.password, self.aof = dir_, port, password, aof
        self.svc: Service | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> "RedisServer":
        argv = [_need("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--dir", str(self.dir)]
        # aof: every write fsync'ed to the append-only file, so a kill -9 and start() lose nothing.
        argv += ["--appendonly", "yes", "--appendfsync", "always"] if self.aof else ["--appendonly", "no"]
        if self.password:
            argv += ["--requirepass", self.password]
        self.svc = start_process("redis-server", argv, self.dir / "redis.log", self.port)
        self.svc.wait_ready(timeout=10)
        return self

    def kill(self) -> None:
        if self.svc and self.svc.alive():
            os.kill(self.svc.proc.pid, 9)
            self.svc.proc.wait(timeout=5)

    def stop(self) -> None:
        if self.svc:
            self.svc.stop(grace=2)

    def cli(self, *args: str) -> str:
        argv = ["redis-cli", "-p", str(self.port)] + (["--no-auth-warning", "-a", self.password]
                                                       if self.password else []) + list(args)
        return run(argv, timeout=10).stdout.decode(errors="replace")


@pytest.fixture
def start_redis(lab_dir):
    """Factory: start_redis(password=None) -> RedisServer on a free loopback port, stopped after the test."""
    started: list[RedisServer] = []

    def factory(password: str | None = None, aof: bool = False) -> RedisServer:
        d = lab_dir / f"redis-{next(_file_numbers):03d}"
        d.mkdir()
        r = RedisServer(d, free_port(), password, aof).start()
        started.append(r)
        return r

    yield factory
    for r in started:
        r.stop()
