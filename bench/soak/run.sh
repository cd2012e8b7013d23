#!/usr/bin/env bash
# bench/soak/run.sh — exitpool under mixed load for a bounded time while its upstreams are killed and
# restarted (issue 5, item 7). Not part of `make check`; everything on 127.0.0.0/8, every process started
# and stopped here (see soak.py for what it does and what makes it fail).
#
#   bench/soak/run.sh                      5 minutes
#   SOAK_SECONDS=60 bench/soak/run.sh      one minute
#
# Env: SOAK_SECONDS (300), SOAK_WORKERS (12 client threads), SOAK_KILL_EVERY (10: seconds between upstream
#      kills), SOAK_DOWN (3: seconds a killed upstream stays down), SOAK_SEED, EXITPOOL_BIN (default
#      build/exitpool), SOAK_KEEP=1 keeps the work dir (configs, logs, samples.tsv, requests.tsv).
# Exit status: 0 passed, 1 failed (unaccounted requests, unbounded RSS growth, wrong bodies, gateway died).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
export EXITPOOL_BIN=${EXITPOOL_BIN:-$REPO/build/exitpool}
[[ -x "$EXITPOOL_BIN" ]] || { echo "exitpool binary not found at $EXITPOOL_BIN: make build (or set EXITPOOL_BIN)" >&2; exit 2; }
for tool in nginx squid tinyproxy danted microsocks; do
  command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] || { echo "$tool missing: scripts/install-deps.sh --test" >&2; exit 2; }
done
exec /usr/bin/python3 "$REPO/bench/soak/soak.py" "$@"
