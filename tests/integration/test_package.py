"""The Debian package (`make deb`): built by CPack from the build dir of the binary under test, then checked
without changing this machine: control fields and files (dpkg-deb), lintian, the unit (systemd-analyze verify
and security), the maintainer scripts against stubs of every command they call, and, as root, a real
`dpkg -i`, run and `dpkg --purge` in a throwaway overlay of / (packaging/test-install.sh).

Not done: starting it through systemd itself (no systemd PID 1 on CI); docs/PACKAGING.md says how by hand.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import exitpool_bin, run

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")

UNIT = "lib/systemd/system/exitpool.service"


@pytest.fixture(scope="module")
def deb() -> Path:
    build = exitpool_bin().parent
    cache = build / "CMakeCache.txt"
    if not cache.exists():
        pytest.skip(f"{build} is not a CMake build dir")
    if "-fsanitize" in cache.read_text():
        pytest.skip("a sanitizer build (make check-asan) is not packaged")
    cp = run(["cmake", "--build", str(build), "--target", "deb"], timeout=600)
    assert cp.returncode == 0, cp.stdout.decode()[-3000:] + cp.stderr.decode()[-3000:]
    debs = sorted(build.glob("exitpool_*.deb"), key=lambda p: p.stat().st_mtime)
    assert debs, "CPack wrote no .deb"
    return debs[-1]


@pytest.fixture(scope="module")
def tree(deb, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("deb-root")
    assert run(["dpkg-deb", "-x", str(deb), str(root)]).returncode == 0
    control = root / "DEBIAN"
    assert run(["dpkg-deb", "-e", str(deb), str(control)]).returncode == 0
    return root


def test_control_fields(deb):
    info = run(["dpkg-deb", "--info", str(deb)]).stdout.decode()
    fields = dict(re.findall(r"^ ([A-Z][\w-]*): (.*)$", info, re.M))
    assert fields["Package"] == "exitpool"
    assert fields["Section"] == "net"
    depends = fields["Depends"]
    for dep in ("adduser", "libc6", "libssl3", "libcurl4", "libre2-9", "libc-ares2"):  # shlibdeps found them
        assert re.search(rf"\b{re.escape(dep)}\b", depends), depends
    for script in ("conffiles", "postinst", "prerm", "postrm", "md5sums"):
        assert re.search(rf"^\s+\d+ bytes,\s+\d+ lines\s+\*?\s*{script}\b", info, re.M), info


def test_contents(deb, tree):
    listing = run(["dpkg-deb", "--contents", str(deb)]).stdout.decode()
    paths = {line.split()[-1].lstrip(".") for line in listing.splitlines()}
    for p in ["/usr/bin/exitpool", "/" + UNIT, "/etc/exitpool/exitpool.toml", "/etc/exitpool/pool.txt",
              "/usr/share/man/man1/exitpool.1.gz", "/usr/share/man/man1/exitpool-serve.1.gz",
              "/usr/share/man/man1/exitpool-fetch.1.gz", "/usr/share/man/man1/exitpool-check.1.gz",
              "/usr/share/man/man1/exitpool-crawl.1.gz", "/usr/share/man/man1/exitpool-bench.1.gz",
              "/usr/share/bash-completion/completions/exitpool", "/usr/share/zsh/vendor-completions/_exitpool",
              "/usr/share/doc/exitpool/copyright", "/usr/share/doc/exitpool/changelog.gz",
              "/usr/share/doc/exitpool/README.md"]:
        assert p in paths, f"{p} not in the package:\n{listing}"
    for line in listing.splitlines():
        assert line.split()[1] == "root/root", line
    assert (tree / "DEBIAN/conffiles").read_text().split() == ["/etc/exitpool/exitpool.toml",
                                                               "/etc/exitpool/pool.txt"]


def test_packaged_binary_runs_and_is_stripped(tree):
    binary = tree / "usr/bin/exitpool"
    cp = run([str(binary), "--version"])
    assert cp.returncode == 0 and cp.stdout.startswith(b"exitpool "), cp
    assert b"not stripped" not in run(["file", str(binary)]).stdout


def test_default_config_is_valid(tree, tmp_path):
    """The packaged exitpool.toml parses and names only real options: `serve --help` through it
    exits 0 (an unknown key or a bad value would exit 2)."""
    conf = (tree / "etc/exitpool/exitpool.toml").read_text()
    conf = conf.replace("/etc/exitpool/pool.txt", str(tree / "etc/exitpool/pool.txt"))
    (tmp_path / "exitpool.toml").write_text(conf)
    cp = run([str(exitpool_bin()), "serve", "--config", str(tmp_path / "exitpool.toml"), "--help"])
    assert cp.returncode == 0, cp.stderr
    assert 'listen = "127.0.0.1:' in conf and 'admin = "127.0.0.1:' in conf


def test_lintian_clean(deb):
    if shutil.which("lintian") is None:
        pytest.skip("lintian is not installed")
    cp = run(["lintian", "--fail-on", "error,warning", "--display-level", ">=warning", str(deb)], timeout=300)
    assert cp.returncode == 0, cp.stdout.decode() + cp.stderr.decode()
    assert not re.search(r"^[EW]: ", cp.stdout.decode(), re.M), cp.stdout.decode()


def test_unit_verifies(tree, tmp_path):
    """systemd-analyze verify, with every directive checked. The unit is copied with ExecStart pointing at the
    binary under test: verify insists that the command exists, and --root would want a whole system tree."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (tree / UNIT).read_text()
    assert "ExecStart=/usr/bin/exitpool " in unit
    copy = tmp_path / "exitpool.service"
    copy.write_text(unit.replace("ExecStart=/usr/bin/exitpool ", f"ExecStart={exitpool_bin()} "))
    cp = run(["systemd-analyze", "verify", "--man=no", str(copy)], timeout=60)
    out = (cp.stdout + cp.stderr).decode()
    assert cp.returncode == 0, out
    assert out.strip() == "", out  # a directive it cannot parse is only a warning: none allowed


def test_unit_hardening(tree):
    unit = (tree / UNIT).read_text()
    for line in ["Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "User=exitpool", "NoNewPrivileges=yes",
                 "CapabilityBoundingSet=\n", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                 "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "LimitNOFILE=1048576", "WatchdogSec="]:
        assert line in unit, line


STUBBED = ["adduser", "deluser", "delgroup", "getent", "deb-systemd-helper", "deb-systemd-invoke", "systemctl",
           "dpkg-statoverride", "chgrp", "chmod", "rm"]


def run_script(tree: Path, tmp_path: Path, script: str, *args: str, user_exists: bool) -> list[str]:
    """Runs a maintainer script with every command it may call replaced by a stub that logs its arguments."""
    stubs = tmp_path / "stubs"
    stubs.mkdir(exist_ok=True)
    log = tmp_path / "calls.log"
    log.write_text("")
    for name in STUBBED:
        rc = "0"
        if name == "getent":
            rc = "0" if user_exists else "2"
        stub = stubs / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\nexit {rc}\n')
        stub.chmod(0o755)
    env = {"PATH": f"{stubs}:/usr/bin:/bin", "DPKG_MAINTSCRIPT_NAME": script}
    cp = subprocess.run(["/bin/sh", "-e", str(tree / "DEBIAN" / script), *args], env=env, capture_output=True,
                        timeout=30)
    assert cp.returncode == 0, cp
    return log.read_text().splitlines()


def test_maintainer_scripts_are_posix_sh(tree):
    for script in ("postinst", "prerm", "postrm"):
        path = tree / "DEBIAN" / script
        assert path.read_text().startswith("#!/bin/sh\n")
        assert os.access(path, os.X_OK)
        assert run(["sh", "-n", str(path)]).returncode == 0
        if shutil.which("shellcheck"):
            cp = run(["shellcheck", "-s", "sh", str(path)])
            assert cp.returncode == 0, cp.stdout.decode()


def test_postinst_creates_user_and_enables_unit(tree, tmp_path):
    calls = run_script(tree, tmp_path, "postinst", "configure", "", user_exists=False)
    assert any(c.startswith("adduser --system --group") and c.endswith(" exitpool") for c in calls), calls
    assert "deb-systemd-helper unmask exitpool.service" in calls, calls
    assert any(c.startswith("deb-systemd-helper") and "enable exitpool.service" in c
               or "was-enabled exitpool.service" in c for c in calls), calls
    again = run_script(tree, tmp_path, "postinst", "configure", "0.0.9", user_exists=True)
    assert not any(c.startswith("adduser") for c in again), again  # an upgrade keeps the user


def test_postrm_purge_removes_config_and_user(tree, tmp_path):
    calls = run_script(tree, tmp_path, "postrm", "purge", user_exists=True)
    assert "rm -rf /etc/exitpool" in calls, calls
    assert "deluser --system --quiet exitpool" in calls, calls
    assert "deb-systemd-helper purge exitpool.service" in calls, calls
    removed = run_script(tree, tmp_path, "postrm", "remove", user_exists=True)
    assert not any(c.startswith(("rm ", "deluser")) for c in removed), removed  # remove keeps config and user
    assert "deb-systemd-helper mask exitpool.service" in removed, removed


def test_unit_security_exposure(tree):
    """`systemd-analyze security` on the packaged unit, offline (no running systemd needed): the exposure
    docs/PACKAGING.md quotes, with a little room. 0 is fully locked down, 10 is a unit without hardening."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    cp = run(["systemd-analyze", "security", "--offline=yes", f"--root={tree}", "--no-pager", "exitpool.service"],
             timeout=60)
    out = cp.stdout.decode()
    m = re.search(r"Overall exposure level for exitpool.service: (\d+\.\d)", out)
    assert m, out + cp.stderr.decode()
    assert float(m.group(1)) <= 1.5, out


OVERLAY_PROBE = ("d=$(mktemp -d) && mount -t tmpfs tmpfs $d && mkdir $d/u $d/w $d/m && "
                 "mount -t overlay overlay -o lowerdir=/,upperdir=$d/u,workdir=$d/w $d/m")


def test_install_serve_purge_in_throwaway_root(deb):
    """dpkg -i into an overlay of / whose writes land on a tmpfs, inside fresh mount and network namespaces,
    so this machine never changes: the user and the config's group exist, the unit is enabled, the unit's
    ExecStart run as user exitpool serves through the default pool and answers /healthz, and a purge
    removes the config, the user and the group."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1)")
    if run(["unshare", "-m", "sh", "-c", OVERLAY_PROBE]).returncode != 0:
        pytest.skip("no overlay mounts in a new mount namespace here")
    script = Path(__file__).resolve().parents[2] / "packaging" / "test-install.sh"
    cp = run(["unshare", "-mn", str(script), str(deb)], timeout=180)
    out = cp.stdout.decode() + cp.stderr.decode()
    assert cp.returncode == 0, out
    assert "installed, served as user exitpool, purged: ok" in out, out
