#!/usr/bin/env bash
# Starts or stops the PostgreSQL 15 and Redis 7 servers that the tests use.
#
#   scripts/services.sh start DIR   start both under DIR, print the env file
#   scripts/services.sh stop DIR    stop both and remove DIR
#
# Both listen on 127.0.0.1 only, on ports chosen free at start, and keep
# their data under DIR. DIR/env holds the variables the tests read:
#   SLUICE_TEST_POSTGRES_URL   postgresql://sluice@127.0.0.1:PORT/sluice_test
#   SLUICE_TEST_REDIS_URL      redis://127.0.0.1:PORT
# plus SLUICE_TEST_POSTGRES_DATA, SLUICE_TEST_POSTGRES_BIN and
# SLUICE_TEST_REDIS_PORT for the tests that restart or pause a server.
set -euo pipefail

pg_bin=/usr/lib/postgresql/15/bin

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# PostgreSQL refuses to run as root; as root the server runs as 'postgres'.
as_pg_user() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  local dir="$1"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  local pg_port redis_port
  pg_port="$(free_port)"
  redis_port="$(free_port)"

  mkdir -p "$dir/pg"
  if [[ "$(id -u)" == 0 ]]; then
    chown postgres:postgres "$dir/pg"
    chmod 755 "$dir"
  fi
  as_pg_user "$pg_bin/initdb" -D "$dir/pg/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/pg/initdb.log" 2>&1
  cat >>"$dir/pg/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$dir/pg'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  as_pg_user "$pg_bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 60 start >/dev/null
  as_pg_user "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -q \
    -c "CREATE ROLE sluice LOGIN SUPERUSER" -c "CREATE DATABASE sluice_test OWNER sluice" >/dev/null

  redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
    --daemonize yes --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  for _ in $(seq 1 100); do
    if redis-cli -p "$redis_port" ping >/dev/null 2>&1; then break; fi
    sleep 0.05
  done
  redis-cli -p "$redis_port" ping >/dev/null

  cat >"$dir/env" <<ENV
export SLUICE_TEST_POSTGRES_URL=postgresql://sluice@127.0.0.1:$pg_port/sluice_test
export SLUICE_TEST_POSTGRES_DATA=$dir/pg/data
export SLUICE_TEST_POSTGRES_BIN=$pg_bin
export SLUICE_TEST_REDIS_URL=redis://127.0.0.1:$redis_port
export SLUICE_TEST_REDIS_PORT=$redis_port
ENV
  echo "$dir/env"
}

stop() {
  local dir="$1"
  [[ -d "$dir" ]] || return 0
  if [[ -f "$dir/pg/data/postmaster.pid" ]]; then
    as_pg_user "$pg_bin/pg_ctl" -D "$dir/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  if [[ -f "$dir/redis.pid" ]]; then
    kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) start "${2:?usage: services.sh start DIR}" ;;
  stop) stop "${2:?usage: services.sh stop DIR}" ;;
  *) echo "usage: services.sh start|stop DIR" >&2; exit 2 ;;
esac
