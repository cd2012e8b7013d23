#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/) with clang into build-fuzz and runs each one:
# first over its kept crash inputs (tests/fuzz/regressions/<target>/), then fuzzing for
# SECONDS (default 20) from a temporary copy of its seed corpus (tests/fuzz/corpus/<target>/),
# so that a run never writes into the repository.
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 60 fuzz_chunked
# Exits non-zero when any target crashes, leaks, times out or runs out of memory, and prints
# the reproducer (kept under build-fuzz/artifacts/<target>/) and how to replay it.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-20}
shift || true
build_dir=${FUZZ_BUILD_DIR:-$repo/build-fuzz}
jobs=${JOBS:-2}

if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  targets=()
  for d in "$repo"/tests/fuzz/corpus/*/; do
    targets+=("$(basename "$d")")
  done
fi

CC=${FUZZ_CC:-clang} CXX=${FUZZ_CXX:-clang++} cmake -S "$repo" -B "$build_dir" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEXITPOOL_FUZZ=ON -DEXITPOOL_TESTS=OFF >/dev/null
cmake --build "$build_dir" -j"$jobs" --target "${targets[@]}"

work=$(mktemp -d "${TMPDIR:-/tmp}/exitpool-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
common=(-max_len=8192 -timeout=5 -rss_limit_mb=2048 -print_final_stats=0)
failed=()

for t in "${targets[@]}"; do
  bin=$build_dir/tests/fuzz/$t
  artifacts=$build_dir/artifacts/$t/
  mkdir -p "$artifacts"
  log=$work/$t.log

  # Kept crash inputs: each runs once and must pass.
  mapfile -t kept < <(find "$repo/tests/fuzz/regressions/$t" -type f ! -name .gitkeep 2>/dev/null | sort)
  if [[ ${#kept[@]} -gt 0 ]]; then
    if ! "$bin" "${common[@]}" -artifact_prefix="$artifacts" "${kept[@]}" >"$log" 2>&1; then
      tail -n 60 "$log"
      echo "fuzz.sh: $t fails on a kept regression input (tests/fuzz/regressions/$t/)" >&2
      failed+=("$t")
      continue
    fi
  fi

  # Fuzzing from a scratch copy of the seeds; new inputs go there, not into the repo.
  corpus=$work/corpus-$t
  mkdir -p "$corpus"
  cp -r "$repo/tests/fuzz/corpus/$t/." "$corpus/"
  before=$(date +%s)
  if "$bin" "${common[@]}" -max_total_time="$seconds" -artifact_prefix="$artifacts" \
      "$corpus" "$repo/tests/fuzz/regressions/$t" >"$log" 2>&1; then
    stats=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    echo "fuzz.sh: $t ok ($(( $(date +%s) - before )) s, ${#kept[@]} kept inputs): ${stats:-no stats}"
  else
    tail -n 60 "$log"
    crash=$(grep -oE '(Test unit|artifact_prefix=.*; Test unit) written to [^ ]+' "$log" | tail -n 1 | awk '{print $NF}')
    echo "fuzz.sh: $t FAILED; reproducer: ${crash:-see the log above}" >&2
    [[ -n "$crash" ]] && echo "fuzz.sh:   replay: $bin $crash   (keep it: cp it to tests/fuzz/regressions/$t/)" >&2
    failed+=("$t")
  fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz.sh: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: all ${#targets[@]} targets passed (${seconds} s each)"
