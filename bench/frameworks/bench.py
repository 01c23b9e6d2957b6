"""Driver of the echo-bot benchmark; run.sh calls it and documents the method.

Standard library only. Every process it starts is stopped at the end of its
run, and every run stops at the time limit.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
from harness import cpu_seconds, http, peak_rss_kib, sandbox_url, stop_process  # noqa: E402
TOKEN = "123456789:AAHsandboxTokenForLocalTests000000"
FIRST_USER_ID = 100000001
PUSH_BATCH = 1000  # messages per POST /sandbox/messages
UPDATES_PER_POLL = 100  # getUpdates limit of the Bot API
WARM_UP_SHARE = 0.05  # replies left out of the steady rate
MIN_STEADY_SECONDS = 0.2  # shortest steady part that gives a steady rate
SANDBOX_CPU = "0"
BOT_CPU = "1"


def bot_commands(echo_bot):
    """Return {name: argv} of the bots; each reads BOT_TOKEN and its API root variable.
    JOURNAL in an argument becomes a new SQLite file for each run, and PORT
    a free local port for the bot's webhook server. The rows without a
    journal keep the offset in memory, as the other frameworks do, and
    because every run starts a new sandbox."""
    return {
        "sluice": [echo_bot, "--flood-control", "off", "--max-in-flight", "256", "--offsets", "memory"],
        "sluice+journal": [echo_bot, "--flood-control", "off", "--max-in-flight", "256",
                           "--journal", "sqlite:///JOURNAL"],
        "sluice webhook": [echo_bot, "--flood-control", "off", "--max-in-flight", "256", "--offsets", "memory",
                           "--webhook-port", "PORT", "--webhook-secret", "bench",
                           "--webhook-url", "http://127.0.0.1:PORT/webhook"],
        "sluice webhook-reply": [echo_bot, "--flood-control", "off", "--max-in-flight", "256",
                                 "--offsets", "memory", "--webhook-port", "PORT", "--webhook-secret", "bench",
                                 "--webhook-url", "http://127.0.0.1:PORT/webhook", "--webhook-reply", "on"],
        "grammY+runner": ["node", os.path.join(HERE, "grammy_bot.js")],
        "Telegraf": ["node", os.path.join(HERE, "telegraf_bot.js")],
        "PTB 13": ["/usr/bin/python3", os.path.join(HERE, "ptb_bot.py")],
    }


def write_scenario(directory, users):
    path = os.path.join(directory, "scenario.json")
    scenario = {"users": [{"id": FIRST_USER_ID + i, "first_name": f"User{i}"} for i in range(users)]}
    with open(path, "w") as file:
        json.dump(scenario, file)
    return path


def start_sandbox(binary, scenario, log_path):
    log = open(log_path, "w")
    process = subprocess.Popen(
        ["taskset", "-c", SANDBOX_CPU, binary, "--port", "0", "--no-flood-limits",
         "--scenario", scenario, "--token", TOKEN, "--max-recorded-calls", "0",
         "--log-level", "warn", "--seed", "1"],
        stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        base = sandbox_url(log_path)
        if base:
            return process, base
        if process.poll() is not None:
            break
        time.sleep(0.05)
    stop_process(process)
    raise RuntimeError(f"sluice-sandbox did not print its URL within 10 s; see {log_path}")


def push_messages(base, users, messages_per_user):
    """Queue users * messages_per_user texts, every user's n-th before anyone's (n+1)-th."""
    batch = []
    for round_index in range(messages_per_user):
        for user in range(users):
            user_id = FIRST_USER_ID + user
            batch.append({"from": user_id, "chat": user_id, "text": f"message {round_index} from {user_id}"})
            if len(batch) == PUSH_BATCH:
                status, reply = http("POST", f"{base}/sandbox/messages", batch)
                if status != 200:
                    raise RuntimeError(f"POST /sandbox/messages failed: {status} {reply}")
                batch = []
    if batch:
        status, reply = http("POST", f"{base}/sandbox/messages", batch)
        if status != 200:
            raise RuntimeError(f"POST /sandbox/messages failed: {status} {reply}")


def set_latency(base, latency_ms):
    if latency_ms <= 0:
        return
    rule = {"method": "*", "kind": "latency", "rate": 1, "latency_ms": latency_ms}
    status, reply = http("POST", f"{base}/sandbox/config", {"faults": [rule]})
    if status != 200:
        raise RuntimeError(f"POST /sandbox/config failed: {status} {reply}")


def wait_until(base, condition, bot, started, time_limit):
    """Wait until the sandbox meets `condition` (URL-quoted). Return False
    when the bot exits or the time limit passes first."""
    while time.monotonic() - started < time_limit and bot.poll() is None:
        status, _ = http("GET", f"{base}/sandbox/wait?condition={condition}&timeout=1", timeout=10)
        if status == 200:
            return True
    return False


def run_once(args, name, argv, latency_ms, scenario, log_dir, index):
    total = args.users * args.messages
    tag = f"{name.replace(' ', '_').replace('+', '_')}-{latency_ms}ms-{index}"
    sandbox, base = start_sandbox(args.sandbox, scenario, os.path.join(log_dir, f"sandbox-{tag}.log"))
    bot = None
    try:
        push_messages(base, args.users, args.messages)
        set_latency(base, latency_ms)
        _, stats = http("GET", f"{base}/sandbox/stats")
        pending = stats["result"]["updates"]["pending"]
        if pending != total:
            raise RuntimeError(f"sandbox has {pending} pending updates, expected {total}")

        env = dict(os.environ, BOT_TOKEN=TOKEN, SLUICE_API_URL=base, API_ROOT=base)
        bot_log = open(os.path.join(log_dir, f"bot-{tag}.log"), "w")
        condition = urllib.parse.quote(f"calls.sendMessage>={total}")
        started = time.monotonic()
        journal = os.path.join(log_dir, f"journal-{tag}.db")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = str(probe.getsockname()[1])
        argv = [arg.replace("JOURNAL", journal).replace("PORT", port) for arg in argv]
        bot = subprocess.Popen(["taskset", "-c", BOT_CPU] + argv, env=env,
                               stdout=bot_log, stderr=subprocess.STDOUT)
        # The steady rate leaves out the start: the first WARM_UP_SHARE of the
        # replies, which include the bot's start-up calls and first polls.
        warm_condition = urllib.parse.quote(f"calls.sendMessage>={int(total * WARM_UP_SHARE)}")
        warm = wait_until(base, warm_condition, bot, started, args.time_limit)
        warm_elapsed, warm_replies = float("nan"), 0
        if warm:
            _, warm_stats = http("GET", f"{base}/sandbox/stats")
            warm_elapsed = time.monotonic() - started
            warm_replies = warm_stats["result"]["calls"]["by_method"].get("sendMessage", 0)
        met = warm and wait_until(base, condition, bot, started, args.time_limit)
        elapsed = time.monotonic() - started
        exited = bot.poll() is not None
        cpu = cpu_seconds(bot.pid) if not exited else float("nan")
        rss = peak_rss_kib(bot.pid) / 1024 if not exited else float("nan")
        _, stats = http("GET", f"{base}/sandbox/stats")
        calls = stats["result"]["calls"]
        replies = calls["by_method"].get("sendMessage", 0)
        polls = calls["by_method"].get("getUpdates", 0)
        errors = sum(calls.get("errors", {}).values())
        outcome = "ok" if met else ("bot exited" if exited else f"stopped at {args.time_limit:.0f} s")
        # A steady part shorter than MIN_STEADY_SECONDS (or none, when the run
        # ended before the warm-up mark was read) gives no steady rate.
        steady_window = elapsed - warm_elapsed
        steady = ((replies - warm_replies) / steady_window
                  if met and replies > warm_replies and steady_window >= MIN_STEADY_SECONDS else float("nan"))
        return {"bot": name, "latency_ms": latency_ms, "run": index, "outcome": outcome,
                "seconds": elapsed, "replies": replies, "updates_per_s": replies / elapsed,
                "steady_updates_per_s": steady,
                "cpu_s": cpu, "peak_rss_mib": rss, "get_updates_calls": polls, "errors": errors}
    finally:
        if bot is not None:
            stop_process(bot)
        stop_process(sandbox)


def figure(value):
    """Format a rate, or '-' when it was not measured (NaN)."""
    return f"{value:.0f}" if value == value else "-"


def median(values):
    values = [v for v in values if v == v]  # drop NaN
    return statistics.median(values) if values else float("nan")


def print_table(results, latencies, names, total):
    for latency_ms in latencies:
        bound = UPDATES_PER_POLL / (latency_ms / 1000) if latency_ms > 0 else None
        header = f"\n## latency {latency_ms} ms per call, {total} updates"
        if bound:
            header += f", long-polling bound {bound:.0f} updates/s ({UPDATES_PER_POLL} per round trip)"
        print(header)
        columns = "| bot | runs ok | updates/s | steady updates/s | CPU s | CPU ms per 1,000 updates | peak RSS MiB |"
        rule = "| --- | --- | --- | --- | --- | --- | --- |"
        if bound:
            columns += " share of bound | steady share of bound |"
            rule += " --- | --- |"
        print(columns)
        print(rule)
        for name in names:
            runs = [r for r in results if r["bot"] == name and r["latency_ms"] == latency_ms]
            if not runs:
                continue
            ok = sum(r["outcome"] == "ok" for r in runs)
            rate = median([r["updates_per_s"] for r in runs])
            steady = median([r.get("steady_updates_per_s", float("nan")) for r in runs])
            cpu = median([r["cpu_s"] for r in runs])
            per_thousand = median([r["cpu_s"] / r["replies"] * 1e6 if r["replies"] else float("nan")
                                   for r in runs])
            rss = median([r["peak_rss_mib"] for r in runs])
            row = (f"| {name} | {ok}/{len(runs)} | {rate:.0f} | {figure(steady)} | {cpu:.2f} | {per_thousand:.0f} "
                   f"| {rss:.1f} |")
            if bound:
                steady_share = f"{steady / bound * 100:.1f} %" if steady == steady else "-"
                row += f" {rate / bound * 100:.1f} % | {steady_share} |"
            print(row)


def main():
    parser = argparse.ArgumentParser(description="Echo-bot benchmark of sluice and other frameworks")
    parser.add_argument("--sandbox", required=True, help="path of the sluice-sandbox program")
    parser.add_argument("--echo-bot", required=True, help="path of sluice's echo_bot program")
    parser.add_argument("--users", type=int, default=1000, help="private chats (users)")
    parser.add_argument("--messages", type=int, default=20, help="messages per user")
    parser.add_argument("--runs", type=int, default=3, help="runs per bot and latency")
    parser.add_argument("--latencies", default="0,20", help="sandbox latency per call in ms, comma-separated")
    parser.add_argument("--time-limit", type=float, default=120, help="seconds after which a run is stopped")
    parser.add_argument("--bots", default="", help="comma-separated subset of the bot names")
    parser.add_argument("--json", default="", help="file to write every run's figures to")
    args = parser.parse_args()

    commands = bot_commands(args.echo_bot)
    names = [n for n in commands if not args.bots or n in args.bots.split(",")]
    latencies = [int(x) for x in args.latencies.split(",")]
    total = args.users * args.messages
    log_dir = tempfile.mkdtemp(prefix="sluice-bench-frameworks-")
    scenario = write_scenario(log_dir, args.users)
    print(f"logs in {log_dir}; load average at start: {open('/proc/loadavg').read().strip()}", flush=True)

    results = []
    for latency_ms in latencies:
        for index in range(args.runs):
            # Rotate the order each round so that no bot always runs first or last.
            order = names[index % len(names):] + names[:index % len(names)]
            for name in order:
                result = run_once(args, name, commands[name], latency_ms, scenario, log_dir, index + 1)
                results.append(result)
                print(f"run {index + 1} {name} {latency_ms} ms: {result['outcome']}, "
                      f"{result['replies']} replies in {result['seconds']:.2f} s = "
                      f"{result['updates_per_s']:.0f}/s (steady {figure(result['steady_updates_per_s'])}/s), "
                      f"CPU {result['cpu_s']:.2f} s, "
                      f"peak RSS {result['peak_rss_mib']:.1f} MiB, "
                      f"{result['get_updates_calls']} getUpdates, {result['errors']} errors", flush=True)
                if args.json:
                    with open(args.json, "w") as file:
                        json.dump(results, file, indent=1)

    print(f"\nload average at end: {open('/proc/loadavg').read().strip()}")
    print_table(results, latencies, names, total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
