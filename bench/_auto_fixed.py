"""bench/auto.py's fixed-cost and few-long-items rows: auto against the best hand-written setup.

Each row times a few hand-written setups and auto side by side, interleaved (the order rotates
every repeat, so drift is shared), and checks auto's median against the best setup's median:
    tiny x*x       200,000 ints: auto <= 1.2 x the list comprehension [fn(x) for x in items]
    60 SQLite      ~2 ms queries (a ~0.12 s job): auto <= 1.15 x the best of serial, threads
                   x2 / x4, processes x2
    5 long sums    sum(range(30,000,000)) x 5, the source's experiment: auto >= 0.95 x the
                   speed of the best of 5 x multiprocessing.Process (the source's way, default
                   start method), gearshift processes x5 (one each) and x2
The functions are the caller's (bench/auto.py's `__main__`, as in most users' scripts). Every
result is checked against the first setup's. Auto's first call of a function is reported apart:
for few long items it cannot know yet what later calls remember (auto/_memory.py).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gearshift

Setup = Callable[[], list[Any]]
SQLITE_ROWS = 20_000  # a query over them takes ~2 ms on the 2-core machine this was written on


@dataclass
class Row:
    name: str
    setups: dict[str, Setup]  # hand-written; the first one's results are the reference
    auto: Setup
    target: float  # auto's median / the best setup's median, at most
    repeats: int
    versus: str | None = None  # the setup auto is held to; None: the best of them
    times: dict[str, list[float]] = field(default_factory=dict)
    first_call: float = 0.0  # auto's first call of this function
    whys: list[str] = field(default_factory=list)  # auto's reasons, call by call

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])

    @property
    def best(self) -> str:
        return min(self.setups, key=self.median)

    @property
    def target_setup(self) -> str:
        return self.versus or self.best

    @property
    def ratio(self) -> float:
        return self.median("auto") / self.median(self.target_setup)


def _sum_into(fn: Callable[[int], int], n: int, conn: Any) -> None:
    conn.send(fn(n))
    conn.close()


def with_processes(fn: Callable[[int], int], items: list[int]) -> list[int]:
    """The source's way: one multiprocessing.Process per item, all started, then all joined."""
    jobs = []
    for n in items:
        reader, writer = multiprocessing.Pipe(duplex=False)
        process = multiprocessing.Process(target=_sum_into, args=(fn, n, writer))
        process.start()
        writer.close()
        jobs.append((process, reader))
    results = [reader.recv() for _, reader in jobs]
    for process, _ in jobs:
        process.join()
    return results


def auto(fn: Any, items: list[Any], whys: list[str]) -> Setup:
    def run() -> list[Any]:
        it = gearshift.imap(fn, items)
        results = list(it)
        whys.append(it.choice.why if it.choice else "")
        return results

    return run


def rows(square: Any, query: Any, sum_range: Any, tmp: str, quick: bool) -> list[Row]:
    """The three rows, built on the caller's functions (see the module docstring)."""
    tiny = list(range(200_000))
    db = os.path.join(tmp, "fixed.sqlite")
    make_db(db, SQLITE_ROWS)
    jobs = [(db, k) for k in range(60)]
    sums = [30_000_000] * 5

    def by(strategy: str, fn: Any, items: list[Any], workers: int, chunk: Any = None) -> Setup:
        return lambda: gearshift.map(
            fn, items, strategy=strategy, max_workers=workers, chunksize=chunk
        )

    whys: list[list[str]] = [[], [], []]
    return [
        Row("tiny x*x 200,000", {
            "[fn(x) for x in items]": lambda: [square(x) for x in tiny],
            "list(map(fn, items))": lambda: list(map(square, tiny)),
            "serial": by("serial", square, tiny, 1),
        }, auto(square, tiny, whys[0]), 1.2, 7 if quick else 21,
            versus="[fn(x) for x in items]", whys=whys[0]),
        Row("60 SQLite ~2 ms", {
            "serial": by("serial", query, jobs, 1),
            "threads x2": by("threads", query, jobs, 2),
            "threads x4": by("threads", query, jobs, 4),
            "processes x2": by("processes", query, jobs, 2),
        }, auto(query, jobs, whys[1]), 1.15, 7 if quick else 15, whys=whys[1]),
        Row("5 x sum(range(30M))", {
            "5 x multiprocessing.Process": lambda: with_processes(sum_range, sums),
            "processes x5 (one each)": by("processes", sum_range, sums, 5, 1),
            "processes x2": by("processes", sum_range, sums, 2),
        }, auto(sum_range, sums, whys[2]), 1 / 0.95, 3 if quick else 5, whys=whys[2]),
    ]  # fmt: skip


def make_db(path: str, rows: int) -> None:
    import sqlite3

    if os.path.exists(path):
        return
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, grp INTEGER, val INTEGER)")
        db.executemany(
            "INSERT INTO t VALUES (?, ?, ?)", ((i, i % 17, i * 7 % 1000) for i in range(rows))
        )
    db.close()


def measure(row: Row) -> Row:
    """Auto's first call alone, then every setup and auto, interleaved, `row.repeats` times."""
    reference = next(iter(row.setups.values()))()  # also warms imports and caches
    start = time.perf_counter()
    it = row.auto()
    row.first_call = time.perf_counter() - start
    if it != reference:
        raise SystemExit(f"{row.name}: auto returned results that differ")
    names = [*row.setups, "auto"]
    for repeat in range(row.repeats):
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
            gc.collect()
            run = row.auto if name == "auto" else row.setups[name]
            start = time.perf_counter()
            got = run()
            row.times.setdefault(name, []).append(time.perf_counter() - start)
            if got != reference:
                raise SystemExit(f"{row.name}: {name} returned results that differ")
    return row


def report(done: list[Row]) -> bool:
    """Each row's medians, then PASS/FAIL per target, with the load average."""
    ok = True
    for row in done:
        print(f"\n{row.name} (medians of {row.repeats}, interleaved):")
        for name in [*row.setups, "auto"]:
            mark = " <- best" if name == row.best else ""
            mark += " <- the target's" if name == row.target_setup else ""
            print(f"  {name:<30}{row.median(name) * 1e3:9.1f} ms{mark}")
        print(f"  {'auto, its first call':<30}{row.first_call * 1e3:9.1f} ms")
        print(f"  auto's first call chose: {row.whys[0]}")
        if row.whys[-1] != row.whys[0]:
            print(f"  auto's later calls chose: {row.whys[-1]}")
    load = os.getloadavg()[0]
    print()
    for row in done:
        passed = row.ratio <= row.target
        ok = ok and passed
        versus = row.target_setup
        bound = f"auto <= {row.target:.2f} x {versus}"
        if row.target < 1.1:  # a speed target: auto's speed >= 0.95 of the best's
            bound = f"auto's speed >= {1 / row.target:.2f} x {versus}'s"
        print(
            f"{'PASS' if passed else 'FAIL'}  {row.name}: {bound}: auto / it = {row.ratio:.2f} "
            f"(medians), load average {load:.1f}"
        )
    return ok
