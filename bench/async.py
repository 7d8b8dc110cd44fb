"""Does strategy="asyncio" cost anything over a hand-written asyncio.gather with a semaphore?

    python bench/async.py [--requests N] [--concurrency N] [--repeats N] [--quick]

500 GETs to gearshift's local image server (50 ms latency before each response, 4 KiB images),
all with aiohttp and the same bound on requests in flight, side by side in one run:

- asyncio.gather + Semaphore, one shared ClientSession        (the hand-written baseline)
- await gearshift.amap(fetch, urls, max_workers=N), same session   (on the caller's loop)
- asyncio.gather + Semaphore, a session per request            (baseline for the next row)
- gearshift.map(fetch, urls, strategy="asyncio") from sync code, a session per request
  (its loop runs in a helper thread, so it cannot share a session made on another loop)

Ideal = ceil(requests / concurrency) x latency. Medians of the repeats; bodies are checked.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

import aiohttp

import gearshift

SIZE = 4096
LATENCY = 0.05


async def gather_shared(urls: list[str], limit: int) -> list[int]:
    slots = asyncio.Semaphore(limit)
    async with aiohttp.ClientSession() as session:

        async def fetch(url: str) -> int:
            async with slots, session.get(url) as response:
                return len(await response.read())

        return list(await asyncio.gather(*(fetch(url) for url in urls)))


async def amap_shared(urls: list[str], limit: int) -> list[int]:
    async with aiohttp.ClientSession() as session:

        async def fetch(url: str) -> int:
            async with session.get(url) as response:
                return len(await response.read())

        return await gearshift.amap(fetch, urls, max_workers=limit)


async def fetch_alone(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return len(await response.read())


async def gather_per_request(urls: list[str], limit: int) -> list[int]:
    slots = asyncio.Semaphore(limit)

    async def fetch(url: str) -> int:
        async with slots:
            return await fetch_alone(url)

    return list(await asyncio.gather(*(fetch(url) for url in urls)))


def map_per_request(urls: list[str], limit: int) -> list[int]:
    return gearshift.map(fetch_alone, urls, strategy="asyncio", max_workers=limit)


Runner = Callable[[list[str], int], list[int]]
RUNNERS: dict[str, Runner] = {
    "gather+semaphore, shared session": lambda u, n: asyncio.run(gather_shared(u, n)),
    "gearshift.amap, shared session": lambda u, n: asyncio.run(amap_shared(u, n)),
    "gather+semaphore, session/request": lambda u, n: asyncio.run(gather_per_request(u, n)),
    "gearshift.map asyncio, session/request": map_per_request,
}
PAIRS = [  # (gearshift, its baseline)
    ("gearshift.amap, shared session", "gather+semaphore, shared session"),
    ("gearshift.map asyncio, session/request", "gather+semaphore, session/request"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 repeats")
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    n, limit = args.requests, args.concurrency
    ideal = -(-n // limit) * LATENCY
    times: dict[str, list[float]] = {name: [] for name in RUNNERS}
    with gearshift.ImageServer(count=n, size_bytes=SIZE, latency=LATENCY) as server:
        urls = server.urls
        for run in RUNNERS.values():  # warm-up: imports, the server's threads
            run(urls[:limit], limit)
        for _ in range(repeats):
            for name, run in RUNNERS.items():
                start = time.perf_counter()
                sizes = run(urls, limit)
                times[name].append(time.perf_counter() - start)
                if sizes != [SIZE] * n:
                    raise SystemExit(f"{name}: wrong bodies")
    medians = {name: statistics.median(runs) for name, runs in times.items()}
    print(f"{n} requests, {limit} in flight, {LATENCY * 1000:.0f} ms latency; ideal {ideal:.2f} s")
    print(f"\n  {'contender':<40}{'median s':>10}{'vs ideal':>10}")
    for name, seconds in medians.items():
        print(f"  {name:<40}{seconds:>10.3f}{seconds / ideal:>9.2f}x")
    ok = True
    for ours, base in PAIRS:
        ratio = medians[ours] / medians[base]
        ok &= ratio <= 1.2
        print(f"{'PASS' if ratio <= 1.2 else 'FAIL'}  {ours} / {base}: {ratio:.2f}x (goal <= 1.2x)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
