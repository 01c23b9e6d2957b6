#!/usr/bin/env bash
# Measures the http module on 127.0.0.1:
#   1. the sluice Server (one thread, pinned to CPU 0) under wrk -t1 -c64
#      with a small JSON POST (the server alone);
#   2. the sluice Client with 64 requests in flight against the same server,
#      compared with wrk as a ratio.
# Two rounds alternate wrk and the client to even out machine noise.
#
# Usage: bench/http/run.sh [BUILD_DIR]
#   BUILD_DIR  an optimised (Release or RelWithDebInfo) build tree; default build
#   SECONDS_PER_RUN  length of each measurement in seconds; default 10
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
seconds=${SECONDS_PER_RUN:-10}
concurrency=64

cmake --build "$build" --target sluice_http_bench >/dev/null
bench=$(find "$build" -name sluice_http_bench -type f -perm -u+x | head -n 1)
if [[ -z "$bench" ]]; then
  echo "run.sh: sluice_http_bench not found in $build" >&2
  exit 1
fi

workdir=$(mktemp -d)
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT

cat >"$workdir/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"chat_id":1,"text":"hi"}'
wrk.headers["Content-Type"] = "application/json"
LUA

# The server outlives all runs; it stops itself after this many seconds.
server_seconds=$((seconds * 4 + 30))
taskset -c 0 "$bench" serve --port-file "$workdir/port" --seconds "$server_seconds" &
server_pid=$!
for _ in $(seq 1 100); do
  [[ -s "$workdir/port" ]] && break
  sleep 0.1
done
port=$(cat "$workdir/port")
url="http://127.0.0.1:$port/botTOKEN/sendMessage"

run_wrk() {
  taskset -c 1 wrk -t1 -c"$concurrency" -d"${seconds}s" -s "$workdir/post.lua" "$url" |
    awk '/Requests\/sec:/ { printf "%.0f\n", $2 }'
}
run_client() {
  taskset -c 1 "$bench" client --port "$port" --seconds "$seconds" --concurrency "$concurrency" |
    sed -n 's/.* rps=\([0-9]*\).*/\1/p'
}

wrk_total=0
client_total=0
for round in 1 2; do
  wrk_rps=$(run_wrk)
  client_rps=$(run_client)
  echo "round $round: wrk ${wrk_rps} req/s, sluice client ${client_rps} req/s"
  wrk_total=$((wrk_total + wrk_rps))
  client_total=$((client_total + client_rps))
done

wrk_mean=$((wrk_total / 2))
client_mean=$((client_total / 2))
ratio=$(awk -v c="$client_mean" -v w="$wrk_mean" 'BEGIN { printf "%.0f", 100 * c / w }')
echo "date: $(date -u +%Y-%m-%d)"
echo "machine: nproc=$(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "server under wrk -t1 -c$concurrency (mean of 2 x ${seconds} s): ${wrk_mean} req/s"
echo "sluice client, $concurrency in flight (mean of 2 x ${seconds} s): ${client_mean} req/s"
echo "client / wrk: ${ratio} %"
