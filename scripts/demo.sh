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
ADMIN_ID = 100000001

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
    database = os.path.join(work, "newsletter.db")
    bot_log = os.path.join(work, "newsletter.log")
    environment = dict(os.environ, BOT_TOKEN=token)
    started = time.monotonic()
    bot_command = [bot_program, "--api-url", base_url, "--db", "sqlite:///" + database,
                   "--admins", str(ADMIN_ID), "--paid-broadcast", "--global-rate", str(int(global_limit)),
                   "--progress-interval", "2", "--webhook-port", str(webhook_port),
                   "--webhook-url", f"http://127.0.0.1:{webhook_port}/webhook",
                   "--webhook-secret", "sluice-demo-secret"]
    if os.environ.get("SLUICE_DEMO_POLLING") == "1":
        bot_command = bot_command[:bot_command.index("--webhook-port")]
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

    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        recipient_ids = {row[0] for row in connection.execute(
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
    checks = [
        ("per-chat order violations", stats["order_violations"]["total"], stats["order_violations"]["total"] == 0),
        ("updates lost", lost, lost == 0),
        ("429 replies received", stats["responses_429"], stats["responses_429"] == 0),
        ("bot exit status", bot.returncode, bot.returncode == 0),
        ("broadcast recipients answered", f"{delivered + blocked + failed} of {recipients}",
         delivered + blocked + failed == recipients),
        ("broadcast failed sends", failed, failed == 0),
        ("broadcast rate (messages/s)", f"{rate:.0f} (paid limit {paid_limit:.0f})", 0 < rate <= paid_limit * 1.05),
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
    print(f"updates handled:            {updates['confirmed']} "
          f"({simulated_users} simulated users, answered in {simulation_seconds:.1f} s)")
    print(f"replies p50 / p99 latency:  {stats['reply_latency_ms']['p50']} / {stats['reply_latency_ms']['p99']} ms")
    print(f"broadcast:                  delivered {delivered}, blocked {blocked}, failed {failed}, "
          f"in {int(fields['duration_ms']) / 1000:.1f} s")
    print(f"bot peak memory (VmHWM):    {peak_kib / 1024:.1f} MiB")
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
    if os.environ.get("SLUICE_DEMO_KEEP") != "1":
        shutil.rmtree(work, ignore_errors=True)
PYTHON
then
  status=1
fi
exit $status
