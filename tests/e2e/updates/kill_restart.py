"""Kills a polling bot with SIGKILL mid-run and restarts it: no update may be
lost, and only updates the first run had taken and not yet removed from its
journal may be echoed twice.

    python3 kill_restart.py SANDBOX ECHO_BOT [--users N] [--messages M]

It starts sluice-sandbox on 127.0.0.1 with N users, queues N x M texts
(each one unique), and runs echo_bot with --journal on a new SQLite file.
Once a third of the texts have their echo, the bot is killed and started again
on the same journal. The test passes when every text got its echo, and
prints how many got two. Every process it starts is stopped at the end, and
every wait is bounded.
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "scripts"))
from harness import http, sandbox_url, stop_process, wait_until  # noqa: E402

TOKEN = "123456789:AAHsandboxTokenForLocalTests000000"
FIRST_USER_ID = 100000001
# Repeats after the restart come from journal entries still present at the
# kill: updates in progress (at most max_pending_updates, 1,024 by default)
# and handled ones whose removal had not finished. More than twice the first
# number means entries outlive their handling.
MAX_REPEATS = 2048


def start_bot(echo_bot, base, journal, log_path):
    log = open(log_path, "a")
    return subprocess.Popen(
        [echo_bot, "--token", TOKEN, "--api-url", base, "--flood-control", "off",
         "--journal", f"sqlite:///{journal}"],
        stdout=log, stderr=subprocess.STDOUT)


def answered(base, condition, timeout):
    status, _ = http("GET", f"{base}/sandbox/wait?condition={urllib.parse.quote(condition)}"
                            f"&timeout={timeout}", timeout=timeout + 10)
    return status == 200


def echo_counts(base):
    """Returns {text: number of sendMessage calls with that text}."""
    status, reply = http("GET", f"{base}/sandbox/calls?method=sendMessage", timeout=60)
    if status != 200:
        raise RuntimeError(f"GET /sandbox/calls failed: {status} {reply}")
    return collections.Counter(call["params"]["text"] for call in reply["result"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sandbox")
    parser.add_argument("echo_bot")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--messages", type=int, default=15)
    args = parser.parse_args()
    total = args.users * args.messages
    work = tempfile.mkdtemp(prefix="sluice-kill-restart-")
    scenario = os.path.join(work, "scenario.json")
    with open(scenario, "w") as file:
        users = [{"id": FIRST_USER_ID + i, "first_name": f"User{i}"} for i in range(args.users)]
        json.dump({"users": users}, file)
    sandbox_log = os.path.join(work, "sandbox.log")
    bot_log = os.path.join(work, "bot.log")
    journal = os.path.join(work, "journal.db")

    sandbox = subprocess.Popen(
        [args.sandbox, "--port", "0", "--no-flood-limits", "--scenario", scenario, "--token", TOKEN,
         "--log-level", "warn", "--seed", "1"],
        stdout=subprocess.DEVNULL, stderr=open(sandbox_log, "w"))
    bot = None
    try:
        base = wait_until("the sandbox's URL", 30, lambda: sandbox_url(sandbox_log), [sandbox], work)
        messages = [{"from": FIRST_USER_ID + u, "chat": FIRST_USER_ID + u, "text": f"text {m} from {FIRST_USER_ID + u}"}
                    for m in range(args.messages) for u in range(args.users)]
        texts = [message["text"] for message in messages]
        status, reply = http("POST", f"{base}/sandbox/messages", messages, timeout=60)
        if status != 200:
            raise RuntimeError(f"POST /sandbox/messages failed: {status} {reply}")
        # Each call takes 2 ms, so the kill lands while many updates are in progress.
        rule = {"method": "*", "kind": "latency", "rate": 1, "latency_ms": 2}
        http("POST", f"{base}/sandbox/config", {"faults": [rule]})

        bot = start_bot(args.echo_bot, base, journal, bot_log)
        if not answered(base, f"calls.sendMessage>={total // 3}", 120):
            raise RuntimeError(f"the first run did not answer {total // 3} texts within 120 s; logs in {work}")
        bot.kill()
        bot.wait()
        at_kill = sum(echo_counts(base).values())

        bot = start_bot(args.echo_bot, base, journal, bot_log)
        deadline = time.monotonic() + 180
        counts = echo_counts(base)
        while any(counts[text] == 0 for text in texts) and time.monotonic() < deadline:
            answered(base, f"calls.sendMessage>={sum(counts.values()) + 1}", 5)
            counts = echo_counts(base)
            if bot.poll() is not None:
                raise RuntimeError(f"echo_bot exited with status {bot.returncode}; logs in {work}")
        stop_process(bot)
        bot = None
        counts = echo_counts(base)
    finally:
        if bot is not None:
            stop_process(bot)
        stop_process(sandbox)

    missing = [text for text in texts if counts[text] == 0]
    repeated = sum(counts[text] - 1 for text in texts if counts[text] > 1)
    print(f"kill_restart: {total} texts, {at_kill} echoes before the kill, {len(missing)} never "
          f"answered, {repeated} answered twice (in progress at the kill); logs in {work}")
    if missing:
        print(f"FAILED: {len(missing)} texts were lost, e.g. {missing[:3]}")
        return 1
    if repeated > MAX_REPEATS:
        print(f"FAILED: {repeated} repeated echoes, more than the {MAX_REPEATS} a bot can have in progress")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
