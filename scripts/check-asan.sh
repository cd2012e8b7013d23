#!/usr/bin/env bash
# Builds exitpool with AddressSanitizer + UndefinedBehaviorSanitizer (g++, Debug) into
# build-asan and runs the whole suite against it: the unit tests (ctest) and the
# integration tests (pytest, EXITPOOL_BIN=build-asan/exitpool). LeakSanitizer is on.
#   scripts/check-asan.sh [PYTEST_ARGS...]
# Sanitizer reports go to files (build-asan/sanitizer-logs/<tool>.<pid>), printed at the end,
# and any report fails this script even when every test passed. A report during a test also
# fails that test (the process dies); but one that only comes when a gateway exits (a leak, an
# error while draining) comes at fixture teardown, which ignores exit codes, and the gateway
# logs in the integration temp dir are overwritten by later tests: hence files of our own.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${ASAN_BUILD_DIR:-$repo/build-asan}
jobs=${JOBS:-2}
python=${PYTHON:-/usr/bin/python3}

# -fno-sanitize=vptr: fmt's buffers are made inside Debian's uninstrumented libspdlog/libfmt, and UBSan's
# dynamic-type check reports them as "not an object of type 'buffer'" (seen at spdlog::warn calls).
cmake -S "$repo" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DEXITPOOL_TESTS=ON \
  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-sanitize=vptr -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
cmake --build "$build_dir" -j"$jobs"

logs=$build_dir/sanitizer-logs
rm -rf "$logs"
mkdir -p "$logs"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$logs/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan"
# Tests that bound memory by VmRSS check fds and growth only where RSS means something: under ASan it is
# shadow memory, redzones and the quarantine of freed blocks.
export EXITPOOL_SANITIZED=1

status=0
ctest --test-dir "$build_dir" --output-on-failure -j"$jobs" || status=1
EXITPOOL_BIN=$build_dir/exitpool "$python" -m pytest -q "$repo/tests/integration" "$@" || status=1

shopt -s nullglob
reports=("$logs"/*)
for r in "${reports[@]}"; do
  echo "=== $r"
  head -n 60 "$r"
done
if [[ ${#reports[@]} -gt 0 ]]; then
  echo "check-asan.sh: ${#reports[@]} sanitizer report(s), listed above (files in $logs)" >&2
  status=1
fi
exit $status
