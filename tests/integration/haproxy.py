"""Debian's HAProxy in TCP mode in front of a fleet of gateways (issue 12: "N gateways behind a TCP load
balancer"), for test_fleet.py.

One frontend on a free 127.0.0.1 port, round-robin over the gateways' listeners, one TCP connection per
client connection (so every new client connection may land on another gateway). No health checks: a test
that kills a gateway decides what it expects. The config is written into the test's own directory, HAProxy
runs in the foreground (-db) in its own process group, and stop() (or leaving the `with`) kills it.
"""
from __future__ import annotations

import itertools
import shutil
from pathlib import Path

from helpers import ServiceError, free_port, start_process

_numbers = itertools.count(1)


def haproxy_config(port: int, backends: list[str]) -> str:
    servers = "".join(f"    server gw{i} {hp}\n" for i, hp in enumerate(backends))
    return ("# written by tests/integration/haproxy.py\n"
            "global\n"
            "    maxconn 2000\n"
            "defaults\n"
            "    mode tcp\n"
            "    timeout connect 2s\n"
            "    timeout client 30s\n"
            "    timeout server 30s\n"
            "frontend fleet\n"
            f"    bind 127.0.0.1:{port}\n"
            "    default_backend gateways\n"
            "backend gateways\n"
            "    balance roundrobin\n"
            f"{servers}")


class HAProxy:
    """haproxy -db -f DIR/haproxy-N.cfg, listening on 127.0.0.1:port, spreading over `backends` (host:port)."""

    def __init__(self, dir_: Path, backends: list[str]):
        self.dir, self.backends = dir_, backends
        self.port = free_port()
        self.svc = None

    def start(self) -> "HAProxy":
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(binary).exists():
            raise ServiceError("haproxy is not installed: run scripts/install-deps.sh --test")
        n = next(_numbers)
        cfg = self.dir / f"haproxy-{n:03d}.cfg"
        cfg.write_text(haproxy_config(self.port, self.backends))
        self.svc = start_process("haproxy", [binary, "-db", "-f", str(cfg)], self.dir / f"haproxy-{n:03d}.log",
                                 self.port)
        self.svc.wait_ready(timeout=10)
        return self

    def stop(self) -> None:
        if self.svc:
            self.svc.stop(grace=2)

    def __enter__(self) -> "HAProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
