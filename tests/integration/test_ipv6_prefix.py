"""IPv6 prefix exits (issue 15 part 3): `direct://[PREFIX]/LEN` sends each connection from its own address
inside the prefix (IPV6_FREEBIND: nothing configured address by address), a sticky session from one.

The gateway and its origin run in a network namespace of the test's own (`unshare -n` as root,
`unshare -rn` otherwise), where the prefix is routed to lo as the docs say (`ip -6 route add local PREFIX
dev lo`): nothing changes on the host. Without the privilege to make one the test says why it is skipped;
as root (CI) it never skips.
"""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import exitpool_bin

PREFIX = "2001:db8:42::/64"
SCRIPT = Path(__file__).with_name("netns_prefix.py")


def in_namespace(tmp_path: Path, *args: str) -> dict:
    unshare = shutil.which("unshare")
    ip = shutil.which("ip") or (Path("/usr/sbin/ip") if Path("/usr/sbin/ip").exists() else None)
    root = os.geteuid() == 0
    if unshare is None or ip is None:
        reason = "needs unshare (util-linux) and ip (iproute2) to make a network namespace"
        if root:
            pytest.fail(reason)
        pytest.skip(reason)
    probe = subprocess.run([unshare, "-n" if root else "-rn", "true"], capture_output=True, timeout=10)
    if probe.returncode != 0:
        reason = f"cannot create a network namespace: {probe.stderr.decode().strip()}"
        if root:
            pytest.fail(reason + " (running as root: CI must run this test)")
        pytest.skip(reason + " (needs root or unprivileged user namespaces)")
    env = {**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"}
    r = subprocess.run([unshare, "-n" if root else "-rn", "/usr/bin/python3", str(SCRIPT), "--bin",
                        str(exitpool_bin()), "--prefix", PREFIX, "--work", str(tmp_path), *args],
                       capture_output=True, timeout=120, env=env)
    log = tmp_path / "gateway.log"
    assert r.returncode == 0, (f"namespace script failed: {r.stderr.decode()}\n--- gateway log ---\n"
                               f"{log.read_text() if log.exists() else ''}")
    return json.loads(r.stdout.decode().strip().splitlines()[-1])


def in_prefix(text: str, net) -> bool:
    try:
        return ipaddress.ip_address(text) in net
    except ValueError:  # "status 502: ...": what the tunnel got instead
        return False


def test_each_connection_leaves_from_its_own_address_and_a_session_keeps_one(tmp_path):
    out = in_namespace(tmp_path, "--tunnels", "100", "--sticky", "20")
    net = ipaddress.ip_network(PREFIX)
    plain = out["plain"]
    bad = [s for s in plain if not in_prefix(s, net)]
    assert not bad, f"tunnels that did not leave from inside {PREFIX}: {bad[:5]}"
    assert len(set(plain)) >= 90, f"only {len(set(plain))} distinct source addresses in 100 tunnels"
    for key in ("sticky_a", "sticky_b"):
        srcs = set(out[key])
        assert len(srcs) == 1, f"{key}: the session changed address: {srcs}"
        assert in_prefix(srcs.pop(), net)
    assert set(out["sticky_a"]) != set(out["sticky_b"]), "two sessions landed on one address"
    assert out["gateway_exit"] == 0, "the gateway did not exit cleanly on SIGTERM"
    # `exitpool fetch` through the same pool line: a random address in the prefix per transfer too.
    got = out["fetch"]
    assert all(in_prefix(s, net) for s in got), f"fetches that did not leave from inside {PREFIX}: {got[:5]}"
    assert len(set(got)) >= len(got) - 2, f"fetch reused addresses: {len(set(got))} distinct of {len(got)}"
