"""Helpers shared by the scripts that run sluice programs as processes:
scripts/demo.sh and the benchmarks in bench/. Standard library only."""

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request


def read_text(path):
    """Returns the file's text, with undecodable bytes replaced."""
    with open(path, errors="replace") as file:
        return file.read()


def wait_until(what, timeout, check, processes=(), logs="", interval=0.25):
    """Calls check() every `interval` seconds until it returns a true value,
    and returns that value. Raises RuntimeError naming `what` after
    `timeout` seconds, or at once when one of `processes` has exited;
    `logs` (a folder) is named in the message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{os.path.basename(process.args[0])} exited with status "
                                   f"{process.returncode} while waiting for {what}; logs in {logs}")
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}; logs in {logs}")


def cpu_seconds(pid):
    """Returns the user + system CPU time of a running process, in seconds."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of proc(5) (utime, stime) are at 11 and 12 after the ")".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid):
    """Returns the peak resident set size (VmHWM) of a running process, in KiB."""
    match = re.search(r"VmHWM:\s+(\d+) kB", read_text(f"/proc/{pid}/status"))
    if match is None:
        raise RuntimeError(f"/proc/{pid}/status has no VmHWM line")
    return int(match.group(1))


def http(method, url, body=None, timeout=30.0):
    """Sends a JSON request and returns (status, parsed JSON reply); an HTTP
    error status is returned, not raised."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def sandbox_url(log_path):
    """Returns the base URL a sluice-sandbox printed to its log, or None."""
    match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", read_text(log_path))
    return match.group(1) if match else None


def stop_process(process, grace=5.0):
    """Sends SIGTERM, then SIGKILL after `grace` seconds, and waits."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
