#!/usr/bin/env bash
# Installs the Debian 12 packages exitpool needs, and only those that are missing.
#   scripts/install-deps.sh          build dependencies
#   scripts/install-deps.sh --test   build dependencies and what the tests, fuzzers and `make lint` run
#   scripts/install-deps.sh --bench  also the peers the benchmarks compare with
# Runs `apt-get update` once, and only when something has to be installed.
# Uses sudo only when not already root.
set -euo pipefail

build_deps=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev libboost-url1.81-dev libboost-json1.81-dev
  libssl-dev libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  libhiredis-dev libcurl4-openssl-dev zlib1g-dev libgtest-dev libbenchmark-dev libre2-dev libc-ares-dev libgumbo-dev
  dpkg-dev file
)
test_deps=(
  squid tinyproxy dante-server microsocks nginx-light stunnel4 redis-server haproxy
  curl python3 python3-pytest python3-requests python3-socks python3-prometheus-client python3-dnslib openssl
  chromium python3-websocket
  clang libclang-rt-14-dev llvm-14
  clang-format clang-tidy
  lintian man-db systemd bash-completion zsh shellcheck
  # examples/ (tests/integration/test_examples.py runs each one)
  python3-scrapy python3-aiohttp golang-go nodejs node-undici
)
# Only for the benchmarks: bench/fetch/run.sh (Scrapy, from test_deps, as a peer) and
# bench/gateway/run.sh (wrk, privoxy as a peer; perf for bench/gateway/profile.sh; strace for
# bench/gateway/syscalls.sh; liburing-dev for the -DEXITPOOL_IO_URING=ON experiment).
bench_deps=(
  time wrk privoxy linux-perf strace liburing-dev
)

want=("${build_deps[@]}")
for arg in "$@"; do
  case "$arg" in
    --test) want+=("${test_deps[@]}") ;;
    --bench) want+=("${test_deps[@]}" "${bench_deps[@]}") ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "install-deps.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

missing=()
for pkg in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps.sh: all ${#want[@]} packages already installed"
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  sudo=(sudo)
fi

echo "install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update
# Some of these (nginx, squid, redis, tinyproxy, danted) may start a daemon on its default port from their
# postinst. The tests never use those: every fixture starts its own instance on a free loopback port.
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
