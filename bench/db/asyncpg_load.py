#!/usr/bin/env python3
"""asyncpg's pool on the query sluice_db_load runs, for a side-by-side rate.

usage: asyncpg_load.py URL SECONDS CLIENTS ROWS
Prints queries_per_second=N.
"""
import asyncio
import random
import sys
import time

import asyncpg

QUERY = "SELECT abalance FROM pgbench_accounts WHERE aid = $1"


async def client(pool, stop, rows, seed, counter):
    rng = random.Random(seed)
    while time.monotonic() < stop:
        async with pool.acquire() as conn:
            await conn.fetchval(QUERY, rng.randint(1, rows))
        counter[0] += 1


async def main():
    url, seconds, clients, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    pool = await asyncpg.create_pool(url, min_size=clients, max_size=clients)
    async with pool.acquire() as conn:
        await conn.fetchval(QUERY, 1)
    counter = [0]
    start = time.monotonic()
    stop = start + seconds
    await asyncio.gather(*(client(pool, stop, rows, 1000 + i, counter) for i in range(clients)))
    elapsed = time.monotonic() - start
    await pool.close()
    print(f"queries_per_second={int(counter[0] / elapsed)}")


asyncio.run(main())
