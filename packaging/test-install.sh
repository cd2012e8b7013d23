#!/bin/sh
# Installs a .deb into a throwaway copy of this machine's root and checks what the package promises:
#   unshare -mn packaging/test-install.sh build/exitpool_*.deb
# Run inside fresh mount and network namespaces (unshare -mn, as root): the root is an overlay of / with
# its writes on a tmpfs, both gone when the namespaces end, so this machine is never changed. Steps:
# dpkg -i (postinst: user, config group); the unit's ExecStart run as the exitpool user (it must read
# its config and serve through the default pool); dpkg --purge (config and user gone).
set -eu
deb=$(readlink -f "$1")
fail() { echo "test-install: $*" >&2; exit 1; }

d=$(mktemp -d /tmp/exitpool-root.XXXXXX)
mount -t tmpfs tmpfs "$d"
mkdir -p "$d/upper" "$d/work" "$d/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$d/upper,workdir=$d/work" "$d/root"
mount --bind /proc "$d/root/proc"
mount --bind /dev "$d/root/dev"
mount -t tmpfs tmpfs "$d/root/tmp"
r=$d/root
ip link set lo up

cp "$deb" "$r/tmp/exitpool.deb"
chroot "$r" dpkg -i /tmp/exitpool.deb
chroot "$r" getent passwd exitpool >/dev/null || fail "no exitpool user after install"
[ "$(chroot "$r" stat -c %U:%G:%a /etc/exitpool/pool.txt)" = "root:exitpool:640" ] || fail "pool.txt not root:exitpool 0640"
[ "$(chroot "$r" stat -c %U:%G:%a /etc/exitpool/exitpool.toml)" = "root:exitpool:640" ] || fail "exitpool.toml not root:exitpool 0640"
[ -L "$r/etc/systemd/system/multi-user.target.wants/exitpool.service" ] || fail "unit not enabled"

# The service as systemd would start it: same user, same command line.
exec_start=$(sed -n 's/^ExecStart=//p' "$r/lib/systemd/system/exitpool.service")
echo "ok" > "$r/tmp/index.html"
chroot "$r" python3 -m http.server --bind 127.0.0.1 --directory /tmp 8000 >/dev/null 2>&1 &
web=$!
# shellcheck disable=SC2086 # ExecStart is a command line: split it into words
chroot --userspec=exitpool:exitpool "$r" $exec_start > "$r/tmp/exitpool.log" 2>&1 &
gw=$!
ok=
for _ in $(seq 50); do
  if chroot "$r" curl -sf -x http://127.0.0.1:8080 http://127.0.0.1:8000/index.html 2>/dev/null | grep -qx ok &&
     [ "$(chroot "$r" curl -sf http://127.0.0.1:9090/healthz)" = ok ]; then
    ok=1
    break
  fi
  sleep 0.2
done
kill "$gw" "$web" 2>/dev/null || true
wait "$gw" 2>/dev/null || true
[ -n "$ok" ] || { cat "$r/tmp/exitpool.log" >&2; fail "the installed service did not serve"; }

chroot "$r" dpkg --purge exitpool
chroot "$r" getent passwd exitpool >/dev/null && fail "exitpool user left after purge"
chroot "$r" getent group exitpool >/dev/null && fail "exitpool group left after purge"
[ -e "$r/etc/exitpool" ] && fail "/etc/exitpool left after purge"
[ -e "$r/usr/bin/exitpool" ] && fail "/usr/bin/exitpool left after purge"
[ -e "$r/etc/systemd/system/multi-user.target.wants/exitpool.service" ] && fail "unit still enabled after purge"
echo "test-install: installed, served as user exitpool, purged: ok"
