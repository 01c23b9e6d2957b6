#!/usr/bin/env bash
# Controls a private redis-server for the tests that restart or pause one,
# so that they never disturb the shared server other tests use. It runs
# with the options scripts/services.sh uses.
#
#   redis-server.sh start DIR PORT     start on 127.0.0.1:PORT, data in DIR
#   redis-server.sh restart DIR PORT   SHUTDOWN NOSAVE, then start again
#   redis-server.sh stop DIR PORT      stop the server
set -euo pipefail

wait_for_ping() {
  local port="$1"
  for _ in $(seq 1 200); do
    if redis-cli -p "$port" ping >/dev/null 2>&1; then return 0; fi
    sleep 0.01
  done
  echo "redis-server on port $port did not answer PING within 2 s" >&2
  return 1
}

wait_for_exit() {
  local pid="$1"
  for _ in $(seq 1 500); do
    if ! kill -0 "$pid" 2>/dev/null; then return 0; fi
    sleep 0.01
  done
  echo "redis-server pid $pid did not exit within 5 s" >&2
  return 1
}

start() {
  local dir="$1" port="$2"
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
    --daemonize yes --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  wait_for_ping "$port"
}

stop() {
  local dir="$1" port="$2"
  local pid=""
  [[ -f "$dir/redis.pid" ]] && pid="$(cat "$dir/redis.pid")"
  if [[ -n "$pid" ]]; then
    # A paused server cannot shut down.
    kill -CONT "$pid" 2>/dev/null || true
  fi
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  if [[ -n "$pid" ]]; then
    wait_for_exit "$pid" || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/redis.pid"
}

case "${1:-}" in
  start) start "${2:?DIR}" "${3:?PORT}" ;;
  restart) stop "${2:?DIR}" "${3:?PORT}"; start "$2" "$3" ;;
  stop) stop "${2:?DIR}" "${3:?PORT}" ;;
  *) echo "usage: redis-server.sh start|restart|stop DIR PORT" >&2; exit 2 ;;
esac
