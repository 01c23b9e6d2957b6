#!/usr/bin/env bash
# Measures BotApi::send_message round trips on 127.0.0.1 against wrk, the
# ceiling of this machine for the same server and endpoint:
#   - one server process (sluice::http::Server, one thread, CPU 0) responds
#     to every request with a canned sendMessage reply;
#   - wrk -t1 -c64 POSTs a sendMessage JSON body to /bot<token>/sendMessage;
#   - the BotApi client (one thread, CPU 1) keeps 64 calls in flight, with
#     flood control off and then on (budgets far above the rate reached).
# Two rounds alternate wrk and the client to even out machine noise.
#
# Usage: bench/telegram_client/run.sh [BUILD_DIR]
#   BUILD_DIR        an optimised (Release) build tree; default build-release
#   SECONDS_PER_RUN  length of each measurement in seconds; default 10
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-release}
seconds=${SECONDS_PER_RUN:-10}
concurrency=64
token="123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQr"

cmake --build "$build" --target sluice_telegram_client_bench >/dev/null
bench=$(find "$build" -name sluice_telegram_client_bench -type f -perm -u+x | head -n 1)
if [[ -z "$bench" ]]; then
  echo "run.sh: sluice_telegram_client_bench not found in $build" >&2
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
wrk.body = '{"chat_id":100000001,"text":"hi"}'
wrk.headers["Content-Type"] = "application/json"
LUA

# The server outlives all runs; it stops itself after this many seconds.
server_seconds=$((seconds * 6 + 30))
taskset -c 0 "$bench" serve --port-file "$workdir/port" --seconds "$server_seconds" &
server_pid=$!
for _ in $(seq 1 100); do
  [[ -s "$workdir/port" ]] && break
  sleep 0.1
done
port=$(cat "$workdir/port")
url="http://127.0.0.1:$port/bot$token/sendMessage"

run_wrk() {
  taskset -c 1 wrk -t1 -c"$concurrency" -d"${seconds}s" -s "$workdir/post.lua" "$url" |
    awk '/Requests\/sec:/ { printf "%.0f\n", $2 }'
}
run_client() {
  taskset -c 1 "$bench" client --port "$port" --seconds "$seconds" \
    --concurrency "$concurrency" --flood "$1" |
    sed -n 's/.* rps=\([0-9]*\).*/\1/p'
}

wrk_total=0
client_total=0
flood_total=0
for round in 1 2; do
  wrk_rps=$(run_wrk)
  client_rps=$(run_client off)
  flood_rps=$(run_client on)
  echo "round $round: wrk ${wrk_rps} req/s, BotApi ${client_rps} calls/s," \
    "BotApi with flood control ${flood_rps} calls/s"
  wrk_total=$((wrk_total + wrk_rps))
  client_total=$((client_total + client_rps))
  flood_total=$((flood_total + flood_rps))
done

wrk_mean=$((wrk_total / 2))
client_mean=$((client_total / 2))
flood_mean=$((flood_total / 2))
ratio() { awk -v c="$1" -v w="$2" 'BEGIN { printf "%.0f", 100 * c / w }'; }
echo "date: $(date -u +%Y-%m-%d)"
echo "machine: nproc=$(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "server under wrk -t1 -c$concurrency (mean of 2 x ${seconds} s): ${wrk_mean} req/s"
echo "BotApi, $concurrency in flight, flood control off: ${client_mean} calls/s" \
  "($(ratio "$client_mean" "$wrk_mean") % of wrk)"
echo "BotApi, $concurrency in flight, flood control on: ${flood_mean} calls/s" \
  "($(ratio "$flood_mean" "$wrk_mean") % of wrk)"
