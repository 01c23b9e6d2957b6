#!/usr/bin/env bash
# Echo-bot benchmark: sluice against grammY+runner, Telegraf and
# python-telegram-bot 13, each a long-polling echo bot on sluice-sandbox.
#
#   bench/frameworks/run.sh                      # 1,000 users x 20 messages, 3 runs
#   USERS=1000 MESSAGES=5 TIME_LIMIT=60 bench/frameworks/run.sh
#   LATENCIES=20 BOTS=sluice,sluice+journal bench/frameworks/run.sh   # a subset
#
# Method (bench.py does the work):
# - Each run starts a fresh sandbox (taskset CPU 0, --no-flood-limits,
#   --max-recorded-calls 0), creates USERS users and queues USERS x MESSAGES
#   text messages through POST /sandbox/messages before the bot starts, so
#   every update is pending when the bot's first getUpdates arrives. At a
#   latency above 0 the fault rule {"method": "*", "kind": "latency",
#   "rate": 1, "latency_ms": L} delays every Bot API call, getUpdates
#   included.
# - The bot (taskset CPU 1) starts, and the run ends when the sandbox has
#   counted USERS x MESSAGES sendMessage calls, or at TIME_LIMIT seconds
#   (then it is reported as stopped and its rate is the replies it made).
# - updates/s: sendMessage calls divided by the time from the bot's start
#   (process launch, so runtime start-up counts) to that point. CPU: user +
#   sys of the bot process from /proc/<pid>/stat; peak RSS: VmHWM from
#   /proc/<pid>/status, both read just before the bot is stopped.
# - steady updates/s: the same rate without the start. It runs from the
#   moment the sandbox has counted 5 % of the sendMessage calls (the bot has
#   then started, called getMe and polled a few times) to the end. It is
#   "-" when that part lasts under 0.2 s.
# - Runs of all bots alternate (the order rotates each round), and the
#   table shows medians. The machine is shared, so compare ratios.
# - At latency L each getUpdates returns at most 100 updates and takes at
#   least L, so long polling cannot exceed 100 / L updates per second.
#
# Bots: grammy_bot.js, telegraf_bot.js and ptb_bot.py beside this script,
# each with its framework's defaults, and examples/echo_bot.cpp in four rows:
# - sluice: --flood-control off, because the sandbox runs without flood
#   limits and the other frameworks have no client-side limit by default,
#   and --max-in-flight 256. The default of 32 requests at once caps
#   replies at 1,600/s at 20 ms per call, while the other frameworks open
#   as many connections as they have requests.
# - sluice+journal: the same with --journal on a new SQLite file per run.
# - sluice webhook: the same as sluice, receiving updates by webhook
#   (setWebhook with max_connections 100).
# - sluice webhook-reply: the webhook row, sending each echo in the reply.
# The sandbox adds its latency only to the bot's calls, not to its own
# webhook requests, so long polling's bound does not apply to the webhook
# rows.
#
# Needs: node and npm (installs package-lock.json's exact versions into
# node_modules on first use) and Debian's python3-python-telegram-bot when
# BOTS names those frameworks or is empty, taskset, and a RelWithDebInfo
# build of the sluice-sandbox and echo_bot programs
# (BUILD_DIR, default build-demo; SANDBOX and ECHO_BOT override the two
# paths). Traffic goes only to the sandbox on
# 127.0.0.1, and every process the script starts is stopped when its run ends.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build_dir="${BUILD_DIR:-$root/build-demo}"
sandbox="${SANDBOX:-$build_dir/sandbox/sluice-sandbox}"
echo_bot="${ECHO_BOT:-$build_dir/examples/echo_bot}"

for program in "$sandbox" "$echo_bot"; do
  if [[ ! -x "$program" ]]; then
    echo "run.sh: $program not found; build the targets sluice-sandbox and echo_bot in $build_dir (RelWithDebInfo)" >&2
    exit 2
  fi
done
# The other frameworks are needed only when BOTS names them (empty: all).
bots="${BOTS:-}"
wants() { [[ -z "$bots" || ",$bots," == *",$1,"* ]]; }
versions=""
if wants "PTB 13"; then
  if ! /usr/bin/python3 -c 'import telegram' 2>/dev/null; then
    echo "run.sh: python-telegram-bot is missing; install it with: apt-get install python3-python-telegram-bot" >&2
    exit 2
  fi
  versions+=", python-telegram-bot $(/usr/bin/python3 -W ignore -c 'import telegram; print(telegram.__version__)')"
fi
if wants "grammY+runner" || wants "Telegraf"; then
  if [[ ! -d "$here/node_modules/grammy" ]]; then
    (cd "$here" && npm ci --no-audit --no-fund)
  fi
  versions+=", node $(node --version), grammy $(node -p "require('$here/node_modules/grammy/package.json').version")"
  versions+=", @grammyjs/runner $(node -p "require('$here/node_modules/@grammyjs/runner/package.json').version")"
  versions+=", telegraf $(node -p "require('$here/node_modules/telegraf/package.json').version")"
fi

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "versions: sluice checkout $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$versions"

results_json="${RESULTS_JSON:-$here/results/last.json}"
mkdir -p "$(dirname "$results_json")"
exec /usr/bin/python3 "$here/bench.py" \
  --sandbox "$sandbox" --echo-bot "$echo_bot" \
  --users "${USERS:-1000}" --messages "${MESSAGES:-20}" --runs "${RUNS:-3}" \
  --latencies "${LATENCIES:-0,20}" --time-limit "${TIME_LIMIT:-120}" \
  --bots "${BOTS:-}" --json "$results_json"
