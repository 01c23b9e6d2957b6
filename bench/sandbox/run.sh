#!/usr/bin/env bash
# Measures how many sendMessage calls per second sluice-sandbox handles on
# one core: the sandbox is pinned to CPU 0, wrk to CPU 1, over keep-alive
# connections, with flood limits off. Each call is validated, recorded
# (GET /sandbox/calls) and answered with a full Message.
#
# Usage: bench/sandbox/run.sh [BUILD_DIR]
#   BUILD_DIR        an optimised (Release) build tree; default build
#   SECONDS_PER_RUN  length of each wrk run in seconds; default 10
#   CONNECTIONS      keep-alive connections of wrk; default 64
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
seconds=${SECONDS_PER_RUN:-10}
connections=${CONNECTIONS:-64}

cmake --build "$build" --target sluice-sandbox >/dev/null
sandbox="$build/sandbox/sluice-sandbox"
if [[ ! -x "$sandbox" ]]; then
  echo "run.sh: $sandbox not found" >&2
  exit 1
fi

workdir=$(mktemp -d)
sandbox_pid=""
cleanup() {
  if [[ -n "$sandbox_pid" ]]; then
    kill "$sandbox_pid" 2>/dev/null || true
    wait "$sandbox_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT

cat >"$workdir/send.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"chat_id":1,"text":"Hello from wrk: /start and https://example.org"}'
wrk.headers["Content-Type"] = "application/json"
LUA

taskset -c 0 "$sandbox" --port 0 --log-level warn \
  --scenario "$root/bench/sandbox/bench_scenario.json" "$@" \
  >"$workdir/stats.json" 2>"$workdir/stderr" &
sandbox_pid=$!
base=""
for _ in $(seq 1 100); do
  base=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$workdir/stderr")
  [[ -n "$base" ]] && break
  sleep 0.1
done
if [[ -z "$base" ]]; then
  echo "run.sh: sluice-sandbox did not start:" >&2
  cat "$workdir/stderr" >&2
  exit 1
fi
url="$base/bot123456789:AAHsandboxTokenForLocalTests000000/sendMessage"

# A check that the call succeeds before measuring it.
curl -sf -X POST -H 'Content-Type: application/json' -d '{"chat_id":1,"text":"warm-up"}' "$url" >/dev/null

# CPU time (user + system, in clock ticks) the sandbox process has used.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$sandbox_pid/stat"; }
calls() { curl -sf "$base/sandbox/stats" | sed -n 's/.*"calls":{"total":\([0-9]*\).*/\1/p'; }
ticks_per_second=$(getconf CLK_TCK)

total=0
calls_before=$(calls)
ticks_before=$(cpu_ticks)
for round in 1 2; do
  rps=$(taskset -c 1 wrk -t1 -c"$connections" -d"${seconds}s" -s "$workdir/send.lua" "$url" |
    awk '/Requests\/sec:/ { printf "%.0f\n", $2 }')
  echo "round $round: ${rps} sendMessage/s"
  total=$((total + rps))
done
ticks_after=$(cpu_ticks)
calls_after=$(calls)
# On a shared machine the sandbox gets only part of CPU 0; calls per second
# of CPU time the sandbox used is its throughput on one whole core.
per_cpu_second=$(awk -v c=$((calls_after - calls_before)) -v t=$((ticks_after - ticks_before)) -v hz="$ticks_per_second" \
  'BEGIN { printf "%.0f", c / (t / hz) }')

curl -sf -X POST "$base/sandbox/shutdown" >/dev/null
wait "$sandbox_pid" || true
sandbox_pid=""
errors=$(grep -c '"4[0-9][0-9]"' "$workdir/stats.json" || true)

echo "date: $(date -u +%Y-%m-%d)"
echo "machine: nproc=$(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "sluice-sandbox on CPU 0, wrk -t1 -c$connections on CPU 1 (mean of 2 x ${seconds} s): $((total / 2)) sendMessage/s"
echo "sendMessage calls per CPU-second of the sandbox process: ${per_cpu_second}"
echo "error replies recorded: ${errors} (the stats list no 4xx code when 0)"
