#!/usr/bin/env bash
# `make demo`: runs the example programs that show the runtime at work, then
# the main job: the newsletter bot against the sandbox with
# sandbox/scenarios/demo.json. The scenario has 10,000 simulated users, the
# recorded updates of tests/data/updates, button presses and an admin's
# /broadcast. The script prints a summary and exits non-zero when a program
# or a check fails.
#
#   scripts/demo.sh [BUILD_DIR]
#
# Environment:
#   SLUICE_DEMO_USERS      simulated users instead of the scenario's 10,000
#   SLUICE_DEMO_EXAMPLES   0 skips the small example programs
#   SLUICE_DEMO_KEEP       1 keeps the temporary folder with the logs
#   SLUICE_DEMO_POLLING    1 runs the bot with long polling instead of a webhook
#   SLUICE_DEMO_CRASH      1 kills the bot (SIGKILL) during the broadcast and
#                          restarts it; checks that nobody is missed
#   SLUICE_DEMO_DB         postgresql:// URL of a server. The bot runs on a
#                          fresh database sluice_demo_<pid> there instead of
#                          SQLite. psql creates it and drops it at the end, so
#                          the URL's user needs CREATEDB.
#   SLUICE_DEMO_REDIS      redis:// URL of the Redis where the bot takes its
#                          broadcast lock, the key newsletter:broadcast:lock.
#                          The key must be missing at the start, and a check
#                          fails when it is left at the end.
set -euo pipefail
build="${1:-build}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
status=0

if [[ "${SLUICE_DEMO_EXAMPLES:-1}" != 0 ]]; then
  for program in "$build"/examples/*; do
    [[ -x "$program" && -f "$program" ]] || continue
    echo "=== demo: $(basename "$program")"
    if ! "$program"; then
      echo "demo: $(basename "$program") failed" >&2
      status=1
    fi
  done
fi

echo "=== demo: newsletter bot against sluice-sandbox"
if ! python3 - "$build" "$root" <<'PYTHON'
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

build, root = os.path.abspath(sys.argv[1]), sys.argv[2]
sys.path.insert(0, os.path.join(root, "scripts"))
from harness import peak_rss_kib, read_text, wait_until as wait_for_processes  # noqa: E402
sandbox_program = os.path.join(build, "sandbox", "sluice-sandbox")
bot_program = os.path.join(build, "examples", "newsletter", "newsletter")
for program in (sandbox_program, bot_program):
    if not os.access(program, os.X_OK):
        sys.exit(f"demo: {program} is missing; build the targets sluice-sandbox and newsletter first")

# Time limits of each phase, in seconds. Every wait below is bounded.
START_TIMEOUT = 15
SIMULATION_TIMEOUT = 150
BROADCAST_TIMEOUT = 120
STOP_TIMEOUT = 20
CLIENT_TIMEOUT = 30  # a single psql or redis-cli call
ADMIN_ID = 100000001
# The Redis key of newsletter's broadcast lock (examples/newsletter/newsletter.cpp).
REDIS_LOCK_KEY = "newsletter:broadcast:lock"

work = tempfile.mkdtemp(prefix="sluice-demo.")
scenario_path = os.path.join(root, "sandbox", "scenarios", "demo.json")
with open(scenario_path) as file:
    scenario = json.load(file)
if os.environ.get("SLUICE_DEMO_USERS"):
    scenario["simulate"]["users"] = int(os.environ["SLUICE_DEMO_USERS"])
# Write a copy with absolute replay paths, so it can live in the work folder.
for event in scenario.get("events", []):
    if "replay" in event:
        event["replay"] = os.path.normpath(os.path.join(os.path.dirname(scenario_path), event["replay"]))
scenario_copy = os.path.join(work, "demo.json")
with open(scenario_copy, "w") as file:
    json.dump(scenario, file)

simulated_users = scenario["simulate"]["users"]
simulated_messages = simulated_users * len(scenario["simulate"]["messages_per_user"])
paid_limit = scenario["flood"]["paid_broadcast"]["count"] * 1000.0 / scenario["flood"]["paid_broadcast"]["period_ms"]
global_limit = scenario["flood"]["global"]["count"] * 1000.0 / scenario["flood"]["global"]["period_ms"]
token = scenario["bot"]["token"]
processes = []
# SLUICE_DEMO_DB names a PostgreSQL server where the run creates its own
# database, and SLUICE_DEMO_REDIS the Redis of the broadcast lock.
server_url = os.environ.get("SLUICE_DEMO_DB", "")
redis_url = os.environ.get("SLUICE_DEMO_REDIS", "")
if server_url and not server_url.startswith(("postgresql://", "postgres://")):
    sys.exit(f"demo: SLUICE_DEMO_DB must be a postgresql:// URL, not {server_url!r}")
if redis_url and not redis_url.startswith(("redis://", "rediss://")):
    sys.exit(f"demo: SLUICE_DEMO_REDIS must be a redis:// URL, not {redis_url!r}")
for client, needed in (("psql", server_url), ("redis-cli", redis_url)):
    if needed and shutil.which(client) is None:
        sys.exit(f"demo: {client} is missing; install it (apt-get install postgresql-client redis-tools)")
created_database = ""
redis_lock_checked = False


def redact(url):
    """Returns `url` with its password replaced by ***."""
    return re.sub(r"//([^/@:]*):[^/@]*@", r"//\1:***@", url)


def with_database(url, name):
    """Returns the PostgreSQL `url` with its database replaced by `name`."""
    parts = urllib.parse.urlsplit(url)
    query = [(key, value) for key, value in urllib.parse.parse_qsl(parts.query) if key != "dbname"]
    return urllib.parse.urlunsplit(parts._replace(path="/" + name, query=urllib.parse.urlencode(query)))


def run_client(command, url):
    """Runs psql or redis-cli and returns its output lines. Raises RuntimeError when it fails."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=CLIENT_TIMEOUT,
                            env=dict(os.environ, PGCONNECT_TIMEOUT="10"))
    if result.returncode != 0:
        command_text = " ".join(redact(part) for part in command)
        raise RuntimeError(f"`{command_text}` failed with status {result.returncode} on {redact(url)}: "
                           f"{(result.stderr or result.stdout).strip()}")
    return result.stdout.splitlines()


def run_psql(url, sql):
    return run_client(["psql", "--no-psqlrc", "--quiet", "--no-align", "--tuples-only",
                       "--set", "ON_ERROR_STOP=1", "--dbname", url, "--command", sql], url)


def run_redis_integer(*arguments):
    """Sends a command whose reply is an integer to SLUICE_DEMO_REDIS and returns the reply."""
    reply = run_client(["redis-cli", "-u", redis_url, "--raw", *arguments], redis_url)
    # redis-cli 7.0 exits with 0 after an error reply, so the reply itself is checked.
    if len(reply) != 1 or not reply[0].isdigit():
        raise RuntimeError(f"invalid reply to `{' '.join(arguments)}` from {redact(redis_url)}: {reply}")
    return int(reply[0])


def redis_lock_exists():
    return run_redis_integer("EXISTS", REDIS_LOCK_KEY) == 1


def query_column(sql):
    """Runs `sql` on the bot's database and returns its first column as strings."""
    if not server_url:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            return [str(row[0]) for row in connection.execute(sql)]
    return run_psql(database_url, sql)


def stop_all():
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_until(what, timeout, check, interval=0.25):
    return wait_for_processes(what, timeout, check, processes, work, interval)


try:
    sandbox_log = os.path.join(work, "sandbox.log")
    sandbox = subprocess.Popen([sandbox_program, "--port", "0", "--scenario", scenario_copy],
                               stdout=open(os.path.join(work, "sandbox-stats.json"), "w"),
                               stderr=open(sandbox_log, "w"))
    processes.append(sandbox)
    base_url = wait_until("the sandbox to listen", START_TIMEOUT,
                          lambda: (re.search(r"listening on (http://\S+)", read_text(sandbox_log)) or [None, None])[1])

    def control(path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(base_url + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.load(reply)["result"]

    # The bot receives updates by webhook on a free local port, or by long
    # polling with SLUICE_DEMO_POLLING=1.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        webhook_port = probe.getsockname()[1]
    if server_url:
        # Named after this process, so parallel runs on one server do not
        # collide. A database left by a killed run with the same process id is replaced.
        created_database = f"sluice_demo_{os.getpid()}"
        run_psql(server_url, f"DROP DATABASE IF EXISTS {created_database} WITH (FORCE)")
        run_psql(server_url, f"CREATE DATABASE {created_database}")
        database_url = with_database(server_url, created_database)
        storage = f"PostgreSQL database {created_database}"
    else:
        database = os.path.join(work, "newsletter.db")
        database_url = "sqlite:///" + database
        storage = "SQLite"
    if redis_url:
        if redis_lock_exists():
            raise RuntimeError(f"the key {REDIS_LOCK_KEY} exists in {redact(redis_url)}, so the broadcast "
                               f"would be rejected; another bot holds it, or delete it with "
                               f"`redis-cli -u URL DEL {REDIS_LOCK_KEY}`")
        redis_lock_checked = True
        storage += ", Redis broadcast lock"
    bot_log = os.path.join(work, "newsletter.log")
    environment = dict(os.environ, BOT_TOKEN=token)
    started = time.monotonic()
    bot_command = [bot_program, "--api-url", base_url, "--db", database_url,
                   "--admins", str(ADMIN_ID), "--paid-broadcast", "--global-rate", str(int(global_limit)),
                   "--progress-interval", "2", "--webhook-port", str(webhook_port),
                   "--webhook-url", f"http://127.0.0.1:{webhook_port}/webhook",
                   "--webhook-secret", "sluice-demo-secret"]
    if os.environ.get("SLUICE_DEMO_POLLING") == "1":
        bot_command = bot_command[:bot_command.index("--webhook-port")]
    if redis_url:
        bot_command += ["--redis", redis_url]
    bot = subprocess.Popen(bot_command, env=environment, stdout=open(bot_log, "w"), stderr=subprocess.STDOUT)
    processes.append(bot)

    # Phase 1: every simulated user has sent its messages (and blocked the
    # bot, for some), the bot has confirmed every update, and nothing new
    # arrived since the previous look.
    last_pushed = [-1]

    def simulation_done():
        updates = control("/sandbox/stats")["updates"]
        settled = updates["pushed"] == last_pushed[0]
        last_pushed[0] = updates["pushed"]
        return settled and updates["pushed"] >= simulated_messages and updates["pending"] == 0 and \
            updates["delivered"] == updates["confirmed"]
    wait_until("the simulated users", SIMULATION_TIMEOUT, simulation_done, interval=0.5)
    simulation_seconds = time.monotonic() - started

    recipient_ids = {int(chat_id) for chat_id in query_column(
        "SELECT chat_id FROM subscribers WHERE subscribed = 1 AND active = 1")}
    recipients = len(recipient_ids)

    # Phase 2: the admin broadcasts. With SLUICE_DEMO_CRASH=1 the bot is
    # killed (SIGKILL) once about a third of the messages went out, and
    # started again; it resumes the broadcast.
    broadcast_text = "Hello from the sluice demo!"
    sends_before = control("/sandbox/stats")["calls"]["by_method"].get("sendMessage", 0)
    control("/sandbox/messages", {"from": ADMIN_ID, "text": "/broadcast " + broadcast_text})
    crash = os.environ.get("SLUICE_DEMO_CRASH") == "1"
    if crash:
        wait_until("a third of the broadcast", BROADCAST_TIMEOUT,
                   lambda: control("/sandbox/stats")["calls"]["by_method"].get("sendMessage", 0)
                   >= sends_before + recipients // 3, interval=0.1)
        bot.kill()
        bot.wait()
        processes.remove(bot)
        bot = subprocess.Popen(bot_command, env=environment, stdout=open(bot_log, "a"), stderr=subprocess.STDOUT)
        processes.append(bot)
    finished = wait_until("the broadcast to finish", BROADCAST_TIMEOUT,
                          lambda: re.search(r"broadcast finished: .*", read_text(bot_log)), interval=0.5)
    fields = dict(re.findall(r"(\w+)=(\S+)", finished.group(0)))
    wait_until("the bot to confirm every update", START_TIMEOUT,
               lambda: control("/sandbox/stats")["updates"]["pending"] == 0)

    stats = control("/sandbox/stats")
    broadcast_calls = [call for call in control("/sandbox/calls?method=sendMessage")
                       if call.get("params", {}).get("text") == broadcast_text]
    peak_kib = peak_rss_kib(bot.pid)
    if redis_url:
        # The bot names its Redis connections "newsletter", which CLIENT LIST shows.
        client_list = run_client(["redis-cli", "-u", redis_url, "--raw", "CLIENT", "LIST"], redis_url)
        redis_connections = sum(" name=newsletter " in line for line in client_list)

    bot.send_signal(signal.SIGTERM)
    bot.wait(timeout=STOP_TIMEOUT)
    try:
        control("/sandbox/shutdown", {})
    except OSError:
        pass
    sandbox.wait(timeout=STOP_TIMEOUT)

    updates = stats["updates"]
    # `pushed` counts queued updates only; filtered ones never reach the queue.
    lost = updates["pushed"] - updates["confirmed"] - updates["dropped"]
    delivered, blocked, failed = (int(fields[name]) for name in ("delivered", "blocked", "failed"))
    rate = float(fields["rate_per_s"])
    # The client's paid budget lets 50 sends go back to back after an idle
    # stretch. Over the short run that resumes after a kill, that burst is
    # a visible share of the rate.
    client_burst = 50
    duration_s = max(int(fields["duration_ms"]) / 1000.0, 0.001)
    allowed_rate = paid_limit * 1.05 + client_burst / duration_s
    checks = [
        ("per-chat order violations", stats["order_violations"]["total"], stats["order_violations"]["total"] == 0),
        ("updates lost", lost, lost == 0),
        ("429 replies received", stats["responses_429"], stats["responses_429"] == 0),
        ("bot exit status", bot.returncode, bot.returncode == 0),
        ("broadcast recipients answered", f"{delivered + blocked + failed} of {recipients}",
         delivered + blocked + failed == recipients),
        ("broadcast failed sends", failed, failed == 0),
        ("broadcast rate (messages/s)",
         f"{rate:.0f} (paid limit {paid_limit:.0f}; at most {allowed_rate:.0f} with 5 % and the start burst)",
         0 < rate <= allowed_rate),
    ]
    if crash:
        # Every recipient got the message; only sends in flight at the kill
        # (at most --broadcast-concurrency, 64) may have gone out twice.
        received = {}
        for call in broadcast_calls:
            received[call["chat_id"]] = received.get(call["chat_id"], 0) + 1
        twice = sum(count - 1 for count in received.values() if count > 1)
        missed = len([chat for chat in recipient_ids if chat not in received])
        checks.append(("broadcast messages sent twice after kill -9", twice, twice <= 64))
        checks.append(("broadcast recipients missed after kill -9", missed, missed == 0))
    if redis_url:
        checks.append(("bot connections to Redis", redis_connections, redis_connections > 0))
        # The bot deletes the key when the broadcast finishes.
        lock_left = redis_lock_exists()
        checks.append(("Redis broadcast lock released", "no" if lock_left else "yes", not lock_left))
    print(f"updates handled:            {updates['confirmed']} "
          f"({simulated_users} simulated users, answered in {simulation_seconds:.1f} s)")
    print(f"replies p50 / p99 latency:  {stats['reply_latency_ms']['p50']} / {stats['reply_latency_ms']['p99']} ms")
    print(f"broadcast:                  delivered {delivered}, blocked {blocked}, failed {failed}, "
          f"in {int(fields['duration_ms']) / 1000:.1f} s")
    print(f"bot peak memory (VmHWM):    {peak_kib / 1024:.1f} MiB")
    print(f"bot storage:                {storage}")
    ok = True
    for name, value, passed in checks:
        print(f"{'ok  ' if passed else 'FAIL'} {name}: {value}")
        ok = ok and passed
    if not ok:
        os.environ["SLUICE_DEMO_KEEP"] = "1"
        print(f"demo: a check failed; logs in {work}", file=sys.stderr)
        sys.exit(1)
except Exception as error:  # report any failure with the log folder, then fail
    print(f"demo: {error}", file=sys.stderr)
    os.environ["SLUICE_DEMO_KEEP"] = "1"
    sys.exit(1)
finally:
    stop_all()
    # Clean up whatever the run left on the servers, also after a failure.
    try:
        if redis_lock_checked:
            run_redis_integer("DEL", REDIS_LOCK_KEY)
        if created_database:
            run_psql(server_url, f"DROP DATABASE IF EXISTS {created_database} WITH (FORCE)")
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        print(f"demo: clean-up failed: {error}", file=sys.stderr)
        sys.exit(1)
    if os.environ.get("SLUICE_DEMO_KEEP") != "1":
        shutil.rmtree(work, ignore_errors=True)
PYTHON
then
  status=1
fi
exit $status
