#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-19 and runs each for a bounded
# time, seeded with the recorded updates. Exits non-zero on the first crash,
# leak or sanitizer report, and leaves the input that caused it in the
# build folder (crash-*, leak-*, timeout-*).
#
#   scripts/fuzz.sh [BUILD_DIR]          default build-fuzz
#   SLUICE_FUZZ_SECONDS=60               run time per target (CI uses 30)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir="${1:-build-fuzz}"
seconds="${SLUICE_FUZZ_SECONDS:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || (( seconds < 1 )); then
  echo "fuzz.sh: SLUICE_FUZZ_SECONDS must be a positive whole number of seconds, got '$seconds'" >&2
  exit 2
fi

# Only the two fuzz targets and the libraries under them are built. -O0
# without debug information halves the build of the generated types
# against -O1 -g1; the fuzzer still runs thousands of inputs per second.
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$build_dir" -G Ninja "${launcher[@]}" \
  -DCMAKE_CXX_COMPILER=clang++-19 -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS_DEBUG="-O0 -g0" \
  -DSLUICE_BUILD_FUZZERS=ON -DSLUICE_BUILD_TESTS=OFF \
  -DSLUICE_BUILD_BENCHMARKS=OFF -DSLUICE_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build_dir" --target fuzz_update_parser fuzz_sandbox_request

# libFuzzer adds the inputs it finds to the first corpus folder: one in the
# build folder, so the seeds in tests/data stay untouched and a later run
# goes on from what this one found.
run() {
  local name="$1" dict="$PWD/$2"
  shift 2
  local program
  program="$(find "$build_dir" -name "$name" -type f -perm -u+x | head -n 1)"
  local scratch="$build_dir/fuzz-corpus-$name"
  mkdir -p "$scratch"
  echo "fuzz: $name for $seconds s"
  # -artifact_prefix keeps crash files in the build folder.
  "$program" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -print_funcs=0 -dict="$dict" \
    -artifact_prefix="$build_dir/" "$scratch" "$@"
}

# Debian's clang-19 comes without its own llvm-symbolizer; an older one
# still names the functions of a crash's stack.
if [[ -z "${ASAN_SYMBOLIZER_PATH:-}" ]] && command -v llvm-symbolizer >/dev/null; then
  export ASAN_SYMBOLIZER_PATH="$(command -v llvm-symbolizer)"
fi

run fuzz_update_parser fuzz/update.dict "$PWD/tests/data/updates"
run fuzz_sandbox_request fuzz/sandbox_request.dict
