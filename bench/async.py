"""From async code, does gearshift cost anything over what a user would write by hand?

    python bench/async.py [--part io|cpu|all] [--requests N] [--concurrency N] [--repeats N]
                          [--quick]

I/O-bound coroutines: 500 GETs to gearshift's local image server (50 ms latency before each
response, 4 KiB images), all with aiohttp and the same bound on requests in flight:

- asyncio.gather + Semaphore, one shared ClientSession        (the hand-written baseline)
- await gearshift.amap(fetch, urls, max_workers=N), same session   (on the caller's loop)
- asyncio.gather + Semaphore, a session per request            (baseline for the next row)
- gearshift.map(fetch, urls, strategy="asyncio") from sync code, a session per request
  (its loop runs in a helper thread, so it cannot share a session made on another loop)

Ideal = ceil(requests / concurrency) x latency. Medians of the repeats; bodies are checked.

CPU-bound functions: 8 items of ~90 ms of pure Python (`burn`, defined in this script, as users
write theirs), awaited on one event loop on which a ticker coroutine sleeps 5 ms at a time; its
worst gap during a run is how long the loop stalled (median over the repeats of each run's worst):

- serial: a plain loop over the items, on the loop               (the baseline; it stalls it)
- await gearshift.amap(burn, items)                 (strategy="auto": it measures and chooses)
- ... with strategy="processes"              (for information: auto's sample is what differs)
- loop.run_in_executor(ProcessPoolExecutor()), one call per item, gathered (a pool per run)
- anyio.to_process.run_sync, one call per item, gathered    (anyio keeps its workers per loop)
- run_in_executor on a ProcessPoolExecutor kept across runs (for information: no target)

All CPU rows share one loop, so anyio's workers stay warm after the warm-up, as in a service;
gearshift forks each run's workers from its fork server, started by the warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import aiohttp
import anyio.to_process

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for _workloads

import _workloads

import gearshift

SIZE = 4096
LATENCY = 0.05
CPU_ITEMS = 8
CPU_SECONDS = 0.09  # per item
TICK = 0.005
WORKERS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

# The targets of issue 16, measured side by side in one run.
CPU_SPEEDUP_GOAL = 1.8  # auto from async code, over serial, on 2 cores
GAP_GOAL = 0.05  # the ticker's worst gap while auto's amap runs CPU-bound work
IO_GOAL = 1.08  # amap over gather + semaphore: no slower than amap was (docs/benchmarks.md)
SYNC_IO_GOAL = 1.2  # gearshift.map(strategy="asyncio") over its baseline


def burn(n: int) -> int:
    """Pure Python: CPU-bound, holds the GIL."""
    total = 0
    for i in range(n):
        total += i * i
    return total


# ---- I/O-bound coroutines ---------------------------------------------------------------------
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


IO_RUNNERS: dict[str, Callable[[list[str], int], list[int]]] = {
    "gather+semaphore, shared session": lambda u, n: asyncio.run(gather_shared(u, n)),
    "gearshift.amap, shared session": lambda u, n: asyncio.run(amap_shared(u, n)),
    "gather+semaphore, session/request": lambda u, n: asyncio.run(gather_per_request(u, n)),
    "gearshift.map asyncio, session/request": map_per_request,
}


def io_part(n: int, limit: int, repeats: int) -> bool:
    ideal = -(-n // limit) * LATENCY
    times: dict[str, list[float]] = {name: [] for name in IO_RUNNERS}
    with gearshift.ImageServer(count=n, size_bytes=SIZE, latency=LATENCY) as server:
        urls = server.urls
        for run in IO_RUNNERS.values():  # warm-up: imports, the server's threads
            run(urls[:limit], limit)
        for _ in range(repeats):
            for name, run in IO_RUNNERS.items():
                start = time.perf_counter()
                sizes = run(urls, limit)
                times[name].append(time.perf_counter() - start)
                if sizes != [SIZE] * n:
                    raise SystemExit(f"{name}: wrong bodies")
    medians = {name: statistics.median(runs) for name, runs in times.items()}
    print(f"\nI/O-bound: {n} requests, {limit} in flight, {LATENCY * 1000:.0f} ms latency; ")
    print(f"ideal {ideal:.2f} s; load average {os.getloadavg()[0]:.1f} at the end")
    print(f"  {'contender':<40}{'median s':>10}{'vs ideal':>10}")
    for name, seconds in medians.items():
        print(f"  {name:<40}{seconds:>10.3f}{seconds / ideal:>9.2f}x")
    amap = medians["gearshift.amap, shared session"] / medians["gather+semaphore, shared session"]
    sync = (
        medians["gearshift.map asyncio, session/request"]
        / medians["gather+semaphore, session/request"]
    )
    return verdict(amap <= IO_GOAL, f"I/O amap / gather+semaphore: {amap:.2f}x (<= {IO_GOAL}x)") & (
        verdict(sync <= SYNC_IO_GOAL, f"I/O map asyncio / its gather: {sync:.2f}x (<= 1.2x)")
    )


# ---- CPU-bound functions ----------------------------------------------------------------------
class Ticker:
    """A coroutine that sleeps TICK seconds at a time; `worst` is the longest wait it saw."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._last = time.perf_counter()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Ticker:
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)  # let it start before the work does
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self.worst = max(self.worst, time.perf_counter() - self._last)

    async def _tick(self) -> None:
        self._last = time.perf_counter()
        while True:
            await asyncio.sleep(TICK)
            now = time.perf_counter()
            self.worst = max(self.worst, now - self._last)
            self._last = now


async def serial(items: list[int]) -> list[int]:
    return [burn(x) for x in items]


async def amap_auto(items: list[int]) -> list[int]:
    async with gearshift.aimap(burn, items) as results:
        got = [x async for x in results]
    CHOICES.append(results.choice)
    return got


async def amap_processes(items: list[int]) -> list[int]:
    return await gearshift.amap(burn, items, strategy="processes")


async def executor_per_run(items: list[int]) -> list[int]:
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor() as pool:
        return list(await asyncio.gather(*(loop.run_in_executor(pool, burn, x) for x in items)))


async def anyio_to_process(items: list[int]) -> list[int]:
    return list(await asyncio.gather(*(anyio.to_process.run_sync(burn, x) for x in items)))


KEPT: list[ProcessPoolExecutor] = []
CHOICES: list[Any] = []


async def executor_kept(items: list[int]) -> list[int]:
    loop = asyncio.get_running_loop()
    return list(await asyncio.gather(*(loop.run_in_executor(KEPT[0], burn, x) for x in items)))


async def idle(_: list[int]) -> list[int]:
    await asyncio.sleep(0.3)
    return []


CPU_RUNNERS: dict[str, Callable[[list[int]], Awaitable[list[int]]]] = {
    "serial, on the loop": serial,
    "await gearshift.amap (auto)": amap_auto,
    "await gearshift.amap, processes": amap_processes,
    "run_in_executor(ProcessPoolExecutor())": executor_per_run,
    "anyio.to_process.run_sync": anyio_to_process,
    "run_in_executor, pool kept across runs": executor_kept,
    "(the idle loop: 0.3 s of sleep)": idle,
}
PEERS = ["run_in_executor(ProcessPoolExecutor())", "anyio.to_process.run_sync"]


async def cpu_part(repeats: int) -> bool:
    n = _workloads.calibrate(burn, CPU_SECONDS)
    items = [n] * CPU_ITEMS
    expected = [burn(n)] * CPU_ITEMS
    KEPT.append(ProcessPoolExecutor())
    times: dict[str, list[float]] = {name: [] for name in CPU_RUNNERS}
    gaps: dict[str, list[float]] = {name: [] for name in CPU_RUNNERS}
    try:
        for run in CPU_RUNNERS.values():  # warm-up: the fork server, anyio's workers, imports
            await run(items[:2])
        for _ in range(repeats):
            for name, run in CPU_RUNNERS.items():
                async with Ticker() as ticker:
                    start = time.perf_counter()
                    got = await run(items)
                    times[name].append(time.perf_counter() - start)
                gaps[name].append(ticker.worst)
                if got not in (expected, []):
                    raise SystemExit(f"{name}: wrong results")
    finally:
        KEPT.pop().shutdown()
    med = {name: statistics.median(runs) for name, runs in times.items()}
    gap = {name: statistics.median(runs) for name, runs in gaps.items()}
    base = med["serial, on the loop"]
    print(f"\nCPU-bound: {CPU_ITEMS} items of ~{CPU_SECONDS * 1000:.0f} ms of pure Python, ")
    print(f"ideal {base / WORKERS:.2f} s on {WORKERS} cores; ticker every {TICK * 1000:.0f} ms; ")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    print(f"  {'contender':<42}{'median s':>9}{'vs serial':>10}{'worst gap':>11}{'max':>8}")
    for name in CPU_RUNNERS:
        speed = "" if name.startswith("(") else f"{base / med[name]:>9.2f}x"
        worst = f"{gap[name] * 1000:>8.0f} ms{max(gaps[name]) * 1000:>5.0f} ms"
        print(f"  {name:<42}{med[name]:>9.3f}{speed:>10}{worst:>16}")
    print(f"auto's choice: {CHOICES[-1].why}")
    ours = med["await gearshift.amap (auto)"]
    best = min(PEERS, key=med.__getitem__)
    ok = verdict(base / ours >= CPU_SPEEDUP_GOAL, f"CPU amap: {base / ours:.2f}x serial (>= 1.8x)")
    ok &= verdict(ours <= med[best], f"CPU amap / the best peer ({best}): {ours / med[best]:.2f}x")
    worst = gap["await gearshift.amap (auto)"] * 1000
    return ok & verdict(worst <= GAP_GOAL * 1000, f"CPU amap: ticker gap {worst:.0f} ms (<= 50)")


def verdict(ok: bool, line: str) -> bool:
    print(f"{'PASS' if ok else 'FAIL'}  {line}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["io", "cpu", "all"], default="all")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 repeats")
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    print(_workloads.machine())
    ok = True
    if args.part in ("cpu", "all"):
        ok &= asyncio.run(cpu_part(repeats))
    if args.part in ("io", "all"):
        ok &= io_part(args.requests, args.concurrency, repeats)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
