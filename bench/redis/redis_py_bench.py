#!/usr/bin/env python3
"""Measure redis-py's asyncio client on the workload of sluice_redis_bench.

`--tasks` tasks run SET (then, separately, GET) in a loop on one event loop,
sharing one connection pool, until `--ops` commands of each kind are done.
Prints one line per command: "SET <ops/s>" and "GET <ops/s>".

Needs Debian's python3-redis (`apt-get install -y python3-redis`), run with
/usr/bin/python3.
"""

import argparse
import asyncio
import time

import redis.asyncio as aioredis


async def worker(client: aioredis.Redis, command: str, count: int) -> None:
    for _ in range(count):
        if command == "SET":
            await client.set("sluice-bench:key", "xxx")
        else:
            await client.get("sluice-bench:key")


async def measure(url: str, command: str, tasks: int, ops: int) -> float:
    client = aioredis.from_url(url, max_connections=tasks)
    await client.ping()
    per_task = ops // tasks
    start = time.perf_counter()
    await asyncio.gather(*(worker(client, command, per_task) for _ in range(tasks)))
    elapsed = time.perf_counter() - start
    await client.close()
    return per_task * tasks / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="redis://host:port")
    parser.add_argument("--tasks", type=int, default=64, help="concurrent tasks (default 64)")
    parser.add_argument("--ops", type=int, default=200000, help="commands per kind (default 200000)")
    args = parser.parse_args()
    for command in ("SET", "GET"):
        rate = asyncio.run(measure(args.url, command, args.tasks, args.ops))
        print(f"{command} {rate:.0f}")


if __name__ == "__main__":
    main()
