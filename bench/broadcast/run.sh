#!/usr/bin/env bash
# Broadcast benchmark: the newsletter bot (examples/newsletter) sends one
# message to 100,000 subscribers through sluice-sandbox, whose paid-broadcast
# limit is 1,000 messages/s, while users ask /status twice a second.
#
#   bench/broadcast/run.sh [BUILD_DIR]          # default build-demo
#   SUBSCRIBERS=20000 bench/broadcast/run.sh
#
# Method:
# - The sandbox runs with the flood limits of sandbox/scenarios/demo.json
#   (paid broadcast 1,000/s, global 1,000/s) and creates SUBSCRIBERS users
#   who send nothing; 1 % of them blocked the bot.
# - The bot starts with long polling on a new SQLite file. Once its tables
#   exist, the script inserts SUBSCRIBERS active subscribers. Then the admin
#   sends /broadcast.
# - Every 0.5 s one of five other users sends /status. The sandbox measures
#   each reply's latency from the user's message to the bot's reply.
# - Checks: every active subscriber reached (delivered, or 403 for one who
#   blocked the bot), achieved rate at least 95 % of the
#   limit, no 429 reply, bot peak RSS (VmHWM) under 100 MiB, and every
#   /status reply within 1 s.
#
# Traffic goes only to the sandbox this script starts on 127.0.0.1; every
# wait is bounded, and both processes are stopped at the end.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$root/build-demo}"
exec python3 - "$build" "$root" <<'PYTHON'
import json
import os
import re
import shutil
import sqlite3
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

build, root = os.path.abspath(sys.argv[1]), sys.argv[2]
sys.path.insert(0, os.path.join(root, "scripts"))
from harness import cpu_seconds, peak_rss_kib, read_text, wait_until  # noqa: E402
sandbox_program = os.path.join(build, "sandbox", "sluice-sandbox")
bot_program = os.path.join(build, "examples", "newsletter", "newsletter")
for program in (sandbox_program, bot_program):
    if not os.access(program, os.X_OK):
        sys.exit(f"broadcast bench: {program} is missing; build the targets sluice-sandbox and newsletter "
                 f"(RelWithDebInfo) in {build}")

SUBSCRIBERS = int(os.environ.get("SUBSCRIBERS", "100000"))
FIRST_SUBSCRIBER = 7000000001
ADMIN_ID = 100000001
PROBE_USERS = [100000011 + i for i in range(5)]
BLOCKED_FRACTION = 0.01
START_TIMEOUT = 15
STOP_TIMEOUT = 20
LIMIT_PER_S = 1000
# The broadcast should take SUBSCRIBERS / LIMIT_PER_S seconds; give it twice
# that plus a minute.
BROADCAST_TIMEOUT = 2 * SUBSCRIBERS / LIMIT_PER_S + 60

with open(os.path.join(root, "sandbox", "scenarios", "demo.json")) as file:
    demo = json.load(file)
scenario = {
    "bot": demo["bot"],
    "users": [{"id": ADMIN_ID, "first_name": "Ada"}] +
             [{"id": user, "first_name": f"Probe {i + 1}"} for i, user in enumerate(PROBE_USERS)],
    "simulate": {"users": SUBSCRIBERS, "messages_per_user": [], "blocked_fraction": BLOCKED_FRACTION,
                 "first_user_id": FIRST_SUBSCRIBER, "seed": 1, "rate_per_second": 1},
    "flood": demo["flood"],
}
work = tempfile.mkdtemp(prefix="sluice-broadcast.")
scenario_path = os.path.join(work, "scenario.json")
with open(scenario_path, "w") as file:
    json.dump(scenario, file)
processes = []


keep = False
try:
    sandbox_log = os.path.join(work, "sandbox.log")
    sandbox = subprocess.Popen([sandbox_program, "--port", "0", "--scenario", scenario_path,
                                "--max-recorded-calls", "0"],
                               stdout=subprocess.DEVNULL, stderr=open(sandbox_log, "w"))
    processes.append(sandbox)
    base_url = wait_until("the sandbox to listen", START_TIMEOUT,
                          lambda: (re.search(r"listening on (http://\S+)", read_text(sandbox_log)) or [None, None])[1],
                          processes, work)

    def control(path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(base_url + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.load(reply)["result"]

    database = os.path.join(work, "newsletter.db")
    bot_log = os.path.join(work, "newsletter.log")
    bot = subprocess.Popen([bot_program, "--api-url", base_url, "--db", "sqlite:///" + database,
                            "--admins", str(ADMIN_ID), "--paid-broadcast", "--global-rate", str(LIMIT_PER_S),
                            "--progress-interval", "5"],
                           env=dict(os.environ, BOT_TOKEN=demo["bot"]["token"]),
                           stdout=open(bot_log, "w"), stderr=subprocess.STDOUT)
    processes.append(bot)

    def tables_ready():
        if not os.path.exists(database):
            return False
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
            return connection.execute(
                "SELECT count(*) FROM sqlite_master WHERE name = 'subscribers'").fetchone()[0] == 1
    wait_until("the bot's tables", START_TIMEOUT, tables_ready, processes, work)
    joined_at = int(time.time())
    with sqlite3.connect(database, timeout=30) as connection:
        connection.executemany(
            "INSERT INTO subscribers (chat_id, first_name, subscribed, active, joined_at) VALUES (?, ?, 1, 1, ?)",
            ((FIRST_SUBSCRIBER + i, f"User {i + 1}", joined_at) for i in range(SUBSCRIBERS)))

    # The users who blocked the bot sent my_chat_member updates; once the
    # bot has handled them, the active subscribers are the broadcast's
    # recipients.
    wait_until("the bot to handle every update", START_TIMEOUT,
               lambda: control("/sandbox/stats")["updates"]["pending"] == 0, processes, work)
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        recipients = connection.execute(
            "SELECT count(*) FROM subscribers WHERE subscribed = 1 AND active = 1").fetchone()[0]

    started = time.monotonic()
    control("/sandbox/messages", {"from": ADMIN_ID, "text": "/broadcast Hello from the broadcast benchmark!"})
    probes = 0
    finished = None
    deadline = started + BROADCAST_TIMEOUT
    while finished is None and time.monotonic() < deadline:
        control("/sandbox/messages", {"from": PROBE_USERS[probes % len(PROBE_USERS)], "text": "/status"})
        probes += 1
        time.sleep(0.5)
        finished = re.search(r"broadcast finished: .*", read_text(bot_log))
        if bot.poll() is not None:
            raise RuntimeError(f"the bot exited with status {bot.returncode}; logs in {work}")
    if finished is None:
        raise RuntimeError(f"the broadcast did not finish within {BROADCAST_TIMEOUT:.0f} s; logs in {work}")
    fields = dict(re.findall(r"(\w+)=(\S+)", finished.group(0)))
    wait_until("the replies to every /status", START_TIMEOUT,
               lambda: control("/sandbox/stats")["reply_latency_ms"]["count"] >= probes + 1, processes, work)
    stats = control("/sandbox/stats")
    peak_kib = peak_rss_kib(bot.pid)
    bot_cpu_seconds = cpu_seconds(bot.pid)

    bot.send_signal(signal.SIGTERM)
    bot.wait(timeout=STOP_TIMEOUT)
    try:
        control("/sandbox/shutdown", {})
    except OSError:
        pass
    sandbox.wait(timeout=STOP_TIMEOUT)

    delivered, blocked, failed = (int(fields[name]) for name in ("delivered", "blocked", "failed"))
    rate = float(fields["rate_per_s"])
    latency = stats["reply_latency_ms"]
    checks = [
        ("recipients answered", f"{delivered + blocked + failed} of {recipients}",
         delivered + blocked + failed == recipients),
        ("failed sends", failed, failed == 0),
        ("achieved rate (messages/s)", f"{rate:.0f} ({100 * rate / LIMIT_PER_S:.1f} % of {LIMIT_PER_S})",
         rate >= 0.95 * LIMIT_PER_S),
        ("429 replies received", stats["responses_429"], stats["responses_429"] == 0),
        ("bot peak RSS (VmHWM, MiB)", f"{peak_kib / 1024:.1f}", peak_kib < 100 * 1024),
        ("slowest /status reply (ms)", f"{latency['max']:.0f} of {latency['count']} replies, "
         f"p50 {latency['p50']:.0f}, p99 {latency['p99']:.0f}", latency["max"] < 1000),
    ]
    print(f"machine: {os.cpu_count()} cores; subscribers {SUBSCRIBERS}; active at the start {recipients}; "
          f"403 during the broadcast {blocked}; "
          f"broadcast {int(fields['duration_ms']) / 1000:.1f} s; bot CPU {bot_cpu_seconds:.1f} s")
    ok = True
    for name, value, passed in checks:
        print(f"{'ok  ' if passed else 'FAIL'} {name}: {value}")
        ok = ok and passed
    if not ok:
        keep = True
        print(f"broadcast bench: a check failed; logs in {work}", file=sys.stderr)
        sys.exit(1)
except Exception as error:  # report any failure with the log folder, then fail
    keep = True
    print(f"broadcast bench: {error}", file=sys.stderr)
    sys.exit(1)
finally:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
PYTHON
