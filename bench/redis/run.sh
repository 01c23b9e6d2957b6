#!/usr/bin/env bash
# Compares sluice::redis::Client with redis-benchmark and redis-py on one
# private redis-server, in one run, and prints a Markdown table for
# BENCHMARKS.md.
#
#   bench/redis/run.sh BUILD_DIR
#
# BUILD_DIR must contain bench/redis/sluice_redis_bench built in Release
# mode. redis-py comes from Debian's python3-redis.
set -euo pipefail

build_dir="${1:?usage: bench/redis/run.sh BUILD_DIR}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bench="$build_dir/bench/redis/sluice_redis_bench"
[[ -x "$bench" ]] || { echo "missing $bench; build the target sluice_redis_bench" >&2; exit 1; }
/usr/bin/python3 -c 'import redis.asyncio' 2>/dev/null ||
  { echo "redis-py is missing; run: apt-get install -y python3-redis" >&2; exit 1; }

dir="$(mktemp -d /tmp/sluice-redis-bench.XXXXXX)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
# The same server options as scripts/services.sh.
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
  --daemonize yes --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
url="redis://127.0.0.1:$port"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); date: $(date -u +%Y-%m-%d)"
echo "redis-server: $(redis-server --version | cut -d' ' -f3)"

# redis-benchmark -q ends each test with "SET: 123456.79 requests per
# second, p50=..." after progress lines separated by carriage returns.
rb="$(redis-benchmark -p "$port" -P 16 -c 64 -t get,set -n 1000000 -q | tr '\r' '\n' | grep 'requests per second')"
rb_set="$(grep -m1 '^SET:' <<<"$rb" | awk '{print $2}')"
rb_get="$(grep -m1 '^GET:' <<<"$rb" | awk '{print $2}')"

json="$dir/sluice.json"
SLUICE_BENCH_REDIS_URL="$url" "$bench" --benchmark_format=json --benchmark_out="$json" \
  --benchmark_out_format=json >/dev/null
py="$(/usr/bin/python3 "$here/redis_py_bench.py" --url "$url" --tasks 64 --ops 200000)"
py_set="$(awk '$1=="SET"{print $2}' <<<"$py")"
py_get="$(awk '$1=="GET"{print $2}' <<<"$py")"

/usr/bin/python3 - "$json" "$rb_set" "$rb_get" "$py_set" "$py_get" <<'PY'
import json, sys
path, rb_set, rb_get, py_set, py_get = sys.argv[1], *map(float, sys.argv[2:])
rows = {}
for b in json.load(open(path))["benchmarks"]:
    name = b["name"]  # BM_Commands/get:0/coroutines:64/connections:1/...
    fields = dict(part.split(":") for part in name.split("/")[1:] if ":" in part)
    rows[(int(fields["get"]), int(fields["coroutines"]), int(fields["connections"]))] = b["items_per_second"]
print()
print("| client | coroutines | connections | SET ops/s | GET ops/s | SET vs redis-benchmark | GET vs redis-benchmark | SET vs redis-py | GET vs redis-py |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
print(f"| redis-benchmark -P 16 -c 64 | - | 64 | {rb_set:,.0f} | {rb_get:,.0f} | 100 % | 100 % | | |")
print(f"| redis-py asyncio (4.3.4) | 64 tasks | pool | {py_set:,.0f} | {py_get:,.0f} | {py_set/rb_set:.0%} | {py_get/rb_get:.0%} | 1.0x | 1.0x |")
for (coroutines, connections) in sorted({(c, n) for (_, c, n) in rows}, reverse=True):
    s, g = rows.get((0, coroutines, connections)), rows.get((1, coroutines, connections))
    if s is None or g is None:
        continue
    print(f"| sluice::redis | {coroutines} | {connections} | {s:,.0f} | {g:,.0f} | {s/rb_set:.0%} | {g/rb_get:.0%} | {s/py_set:.1f}x | {g/py_get:.1f}x |")
PY
