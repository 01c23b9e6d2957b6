#!/usr/bin/env bash
# Runs the runtime benchmarks (Semaphore, TaskSet, bounded group) in C++ and
# their Python asyncio counterparts side by side, and prints a table of CPU
# time per operation with the ratio asyncio / sluice.
#
# Usage: bench/runtime/compare.sh [build-dir]
#   build-dir  Release build tree to use or create (default: build-bench-runtime
#              in the repository root). Set CMAKE_FLAGS for extra configure flags.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$root/build-bench-runtime}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
# shellcheck disable=SC2086  # CMAKE_FLAGS is a list of flags
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DSLUICE_BUILD_TESTS=OFF -DSLUICE_BUILD_EXAMPLES=OFF "${launcher[@]}" ${CMAKE_FLAGS:-} >/dev/null
cmake --build "$build" --target sluice_runtime_bench

echo "running the C++ benchmarks..." >&2
"$build/bench/runtime/sluice_runtime_bench" \
  --benchmark_filter='^BM_(Semaphore|TaskSet|BoundedGroup)' \
  --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_format=json >"$work/sluice.json"

echo "running the asyncio counterparts..." >&2
python3 "$root/bench/runtime/asyncio_compare.py" --repetitions 3 >"$work/asyncio.jsonl"

python3 - "$work/sluice.json" "$work/asyncio.jsonl" <<'PY'
import json
import sys

sluice = {}
for run in json.load(open(sys.argv[1]))["benchmarks"]:
    if run.get("aggregate_name") == "median":
        unit = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[run["time_unit"]]
        sluice[run["run_name"]] = run["cpu_time"] * unit
asyncio_times = {}
for line in open(sys.argv[2]):
    row = json.loads(line)
    asyncio_times[row["name"]] = row["ns_per_op"]

print("| operation | sluice ns/op | asyncio ns/op | asyncio / sluice |")
print("| --- | ---: | ---: | ---: |")
for name, python_ns in asyncio_times.items():
    cpp_ns = sluice.get(name)
    if cpp_ns is None:
        print(f"| {name} | missing | {python_ns:.0f} | - |")
        continue
    print(f"| {name} | {cpp_ns:.1f} | {python_ns:.0f} | {python_ns / cpp_ns:.1f}x |")
PY
