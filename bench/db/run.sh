#!/usr/bin/env bash
# Benchmarks of sluice::db, for the "Database" section of BENCHMARKS.md.
#
#   bench/db/run.sh [BUILD_DIR]   (default build-bench-db, configured Release)
#
# Starts its own PostgreSQL through scripts/with-services.sh and loads
# pgbench's schema at scale 10. Then, in one run, it measures the pool
# micro-benchmark, the same point query through pgbench -S -M prepared,
# sluice_db_load and asyncpg's pool (32 clients, 10 s each), and SQLite
# reads and writes through offload. pgbench also runs with one client
# thread (-j 1), because sluice uses one event loop thread.
# Needs: postgresql-15 (pgbench), python3-asyncpg (Debian's, hence /usr/bin/python3).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$root/build-bench-db}"
seconds=10
clients=32
scale=10

if [[ "${SLUICE_DB_BENCH_INNER:-}" != 1 ]]; then
  if [[ ! -f "$build/build.ninja" ]]; then
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
  fi
  cmake --build "$build" --target sluice_db_bench sluice_db_load
  SLUICE_DB_BENCH_INNER=1 exec "$root/scripts/with-services.sh" "$0" "$build"
fi

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "date: $(date -u +%Y-%m-%d)"

url="$SLUICE_TEST_POSTGRES_URL"
pgbench="$SLUICE_TEST_POSTGRES_BIN/pgbench"
rows=$((scale * 100000))
"$pgbench" -i -q -s "$scale" "$url" >/dev/null 2>&1

echo "== pool micro-benchmark (median of 10)"
"$build/bench/db/sluice_db_bench" --benchmark_repetitions=10 --benchmark_report_aggregates_only=true \
  --benchmark_min_time=0.2 2>/dev/null | grep -E "median|Benchmark"

echo "== PostgreSQL point query, $clients clients, ${seconds} s each"
pgbench_tps=$("$pgbench" -n -S -M prepared -c "$clients" -j 2 -T "$seconds" "$url" 2>/dev/null \
  | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
pgbench_j1_tps=$("$pgbench" -n -S -M prepared -c "$clients" -j 1 -T "$seconds" "$url" 2>/dev/null \
  | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
sluice_qps=$("$build/bench/db/sluice_db_load" postgres "$url" "$seconds" "$clients" "$rows" \
  | sed -n 's/^queries_per_second=\([0-9]*\).*/\1/p')
asyncpg_qps=$(/usr/bin/python3 "$root/bench/db/asyncpg_load.py" "$url" "$seconds" "$clients" "$rows" \
  | sed -n 's/^queries_per_second=\([0-9]*\).*/\1/p')
echo "pgbench -S -M prepared -c $clients -j 2: ${pgbench_tps} tps"
echo "pgbench ... -j 1 (one client thread):    ${pgbench_j1_tps} tps"
echo "sluice_db_load (pool of $clients):       ${sluice_qps} q/s"
echo "asyncpg pool ($clients):                 ${asyncpg_qps} q/s"
python3 -c "print(f'sluice / pgbench = {$sluice_qps / $pgbench_tps:.2f}, sluice / asyncpg = {$sluice_qps / $asyncpg_qps:.2f}')"

echo "== SQLite through offload ($clients clients, 3 blocking threads, ${seconds} s each)"
dir="$(mktemp -d /tmp/sluice-db-bench.XXXXXX)"
"$build/bench/db/sluice_db_load" sqlite "$dir/bench.db" "$seconds" "$clients"
rm -rf "$dir"
