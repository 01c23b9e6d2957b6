#!/usr/bin/env python3
"""Python asyncio counterparts of the runtime benchmarks in this folder.

Each case does the same work as the C++ benchmark of the same name and
prints one JSON object per line: {"name": ..., "ns_per_op": ...}. Times are
CPU time of the process (like Google Benchmark's cpu_time), which a busy
shared machine disturbs less than wall time. The median of several
repetitions is reported, as compare.sh does for Google Benchmark.

  BM_SemaphoreUncontended       `async with sem` on a free asyncio.Semaphore
  BM_SemaphoreContended/100     100 tasks share Semaphore(1); each release
                                hands the permit to the next waiter
  BM_TaskSetSpawnToCompletion   create_task kept in a set with
                                add_done_callback(set.discard)
  BM_BoundedGroupPerItem        TaskGroup, with a Semaphore(100) acquired
                                before each create_task
"""

import argparse
import asyncio
import json
import statistics
import time

BATCH = 10_000
LIMIT = 100


async def semaphore_uncontended(operations):
    sem = asyncio.Semaphore(1)
    start = time.process_time_ns()
    for _ in range(operations):
        async with sem:
            pass
    return time.process_time_ns() - start


async def semaphore_contended(operations, waiters=100):
    sem = asyncio.Semaphore(1)
    remaining = operations

    async def contend():
        nonlocal remaining
        while remaining > 0:
            async with sem:
                remaining -= 1

    start = time.process_time_ns()
    await asyncio.gather(*(contend() for _ in range(waiters)))
    return time.process_time_ns() - start


async def task_set_spawn(operations):
    background = set()
    finished = 0

    async def count_one():
        nonlocal finished
        finished += 1

    start = time.process_time_ns()
    for _ in range(operations // BATCH):
        for _ in range(BATCH):
            task = asyncio.create_task(count_one())
            background.add(task)
            task.add_done_callback(background.discard)
        while background:
            await asyncio.sleep(0)
    elapsed = time.process_time_ns() - start
    assert finished == operations
    return elapsed


async def bounded_group(operations):
    finished = 0

    async def count_item(item):
        nonlocal finished
        finished += 1 if item >= 0 else 0

    start = time.process_time_ns()
    for _ in range(operations // BATCH):
        sem = asyncio.Semaphore(LIMIT)
        async with asyncio.TaskGroup() as group:
            for item in range(BATCH):
                await sem.acquire()
                task = group.create_task(count_item(item))
                task.add_done_callback(lambda _: sem.release())
    elapsed = time.process_time_ns() - start
    assert finished == operations
    return elapsed


CASES = {
    "BM_SemaphoreUncontended": (semaphore_uncontended, 200_000),
    "BM_SemaphoreContended/100": (semaphore_contended, 100_000),
    "BM_TaskSetSpawnToCompletion": (task_set_spawn, 100_000),
    "BM_BoundedGroupPerItem": (bounded_group, 100_000),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=3, help="runs per case; the median is reported")
    args = parser.parse_args()
    for name, (case, operations) in CASES.items():
        median = statistics.median(asyncio.run(case(operations)) for _ in range(args.repetitions))
        print(json.dumps({"name": name, "ns_per_op": median / operations}), flush=True)


if __name__ == "__main__":
    main()
