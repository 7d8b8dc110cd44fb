"""Does strategy="auto" pick as well as the best configuration picked by hand?

    python bench/auto.py [--repeats N] [--quick] [--only NAME[,NAME...]] [--why] [--fixed]

For a dozen workloads of different kinds, each sized to take ~1.2 s serial here (waiting-bound
ones: ~1 s on their best configuration), times every hand-picked configuration (serial; threads
x 4, 16, 64; processes x 2, 4) and auto side by side in one run, and prints auto / best per
workload. Target (issue 4): auto / best <= 1.15 on every workload. Also auto's own overhead:
auto's time minus the time of the configuration it chose, run by hand (strategy and width,
default chunking). Target: <= 5% of the total on work of 2 s or more. The overhead is a fixed
cost (the sample), so it is judged on every workload as a share of max(2 s, auto's time): a
1 s run may spend up to 0.1 s on it.

Configurations take turns within a repeat, in a rotating order, so drift is shared. In the
first repeat, a configuration's run that takes over PRUNE x the fastest run so far is cut (it
cannot be the best); later repeats run auto, its pick and the configurations within CONTENDER x
the best, and cut nothing (cutting only the slow runs of some would favour them). Medians of the
repeats. Every result is checked against serial's (as far as serial got, when it was cut:
waiting-bound workloads are sized for ~1 s on 64 threads, which makes their serial runs a minute
long). The HTTP workloads fetch from `gearshift serve-images` in its own process (a stand-in for
a remote server: its threads do not share this process's GIL), on 127.0.0.1 only.

Then three rows on functions defined here, in `__main__` (_auto_fixed.py; `--fixed`: only them):
auto's fixed cost, tiny x*x against `[fn(x) for x in items]` (target 1.2) and 60 SQLite queries
of ~2 ms against the best setup (1.15); and the source's experiment, 5 x sum(range(30M)), against
5 x multiprocessing.Process and gearshift's processes (auto's speed >= 0.95 of the best's).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # so workers find _auto_work

import _auto_fixed
from _auto_work import Workload, image_server, workloads

import gearshift
from gearshift.machine import available_cores

TARGET = 1.15  # auto / best, on every workload
OVERHEAD_TARGET = 0.05  # auto's own share of its total, on work of >= OVERHEAD_MIN_SECONDS
OVERHEAD_MIN_SECONDS = 2.0  # shorter runs: the share of a run this long
BASELINE_THREADS = threading.active_count()
PRUNE = 1.5  # a configuration's run this much slower than the fastest run so far is cut
CONTENDER = 1.15  # after the first repeat, only configurations this close to the best run again
CONFIGS: dict[str, tuple[str, int]] = {
    "serial": ("serial", 1),
    "threads x4": ("threads", 4),
    "threads x16": ("threads", 16),
    "threads x64": ("threads", 64),
    "processes x2": ("processes", 2),
    "processes x4": ("processes", 4),
}


# The fixed-cost and few-long-items rows (_auto_fixed.py) run these, defined here in __main__ as
# most users define theirs: auto and the process pool must carry them by value (cloudpickle).
def square(x: int) -> int:
    return x * x


def query(job: tuple[str, int]) -> list[tuple[int, int]]:
    """An aggregate over a table in an SQLite file; sqlite3 releases the GIL while it steps."""
    import sqlite3

    path, k = job
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT grp, sum(val) FROM t WHERE (id + ?) % 3 = 0 GROUP BY grp ORDER BY grp", (k,)
        ).fetchall()
    db.close()
    return rows


def sum_range(n: int) -> int:
    """The source's CPU task: one C call that holds the GIL throughout."""
    return sum(range(n))


@dataclass
class Run:
    seconds: float
    results: list[Any]  # all of them, or the prefix produced before the run was cut
    complete: bool
    choice: Any = None  # auto's Choice


def run(
    fn: Callable[[Any], Any], items: list[Any], config: tuple[str, int] | None, limit: float
) -> Run:
    """One map of `fn` (auto if `config` is None), cut once it has taken over `limit` s."""
    start = time.perf_counter()
    if config is None:
        it = gearshift.imap(fn, items)
    else:
        it = gearshift.imap(fn, items, strategy=config[0], max_workers=config[1])
    results: list[Any] = []
    batch, complete = 1, True
    try:
        while True:  # in growing batches: checking the clock per tiny item would cost more
            began = time.perf_counter()
            got = list(islice(it, batch))
            results += got
            if len(got) < batch:
                break
            now = time.perf_counter()
            if now - start > limit:
                complete = False
                break
            if now - began < 0.01:
                batch = min(2 * batch, 1 << 16)
    finally:
        it.close()
    seconds = time.perf_counter() - start
    settle()
    return Run(seconds, results, complete, it.choice)


def settle() -> None:
    """Wait for a run's leftovers (a cut run's threads finishing their chunks, workers being
    stopped): left running, they would slow the next run down."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if threading.active_count() <= BASELINE_THREADS and not _children():
            return
        time.sleep(0.05)


def _children() -> list[int]:
    """This process's descendants but the image server and the pools' fork server (it lives as
    long as this process; the workers it forks are its children, so they count)."""
    import psutil

    pids = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            line = " ".join(child.cmdline())
            if child.status() == psutil.STATUS_ZOMBIE or "serve-images" in line:
                continue
            if "_forkserver.py" not in line:
                pids.append(child.pid)
    return pids


@dataclass
class Row:
    name: str
    items: int
    times: dict[str, list[float]]  # completed runs, per configuration, "auto", "by hand"
    cut: dict[str, float]  # configurations cut: the fraction of the items they had done
    choice: Any  # auto's Choice in the first repeat
    cut_seconds: dict[str, float] = field(default_factory=dict)
    pick: str = "by hand"  # the configuration auto picked, if it is one of CONFIGS
    others: set[str] = field(default_factory=set)  # what auto picked in later repeats, if other

    def median(self, name: str) -> float:
        return statistics.median(self.times[name]) if name in self.times else math.inf

    @property
    def best(self) -> str:
        return min(CONFIGS, key=self.median)

    @property
    def ratio(self) -> float:
        return self.median("auto") / self.median(self.best)

    @property
    def serial(self) -> float:
        """Serial seconds; estimated from its rate when it was cut."""
        if "serial" in self.times:
            return self.median("serial")
        return self.cut_seconds["serial"] / self.cut["serial"]

    @property
    def overhead(self) -> float:
        """Auto's own seconds: what it took beyond its pick, run by hand (nan: its pick was cut)."""
        if self.pick not in self.times:
            return math.nan
        return self.median("auto") - self.median(self.pick)

    @property
    def overhead_share(self) -> float:
        """The overhead's share of the total, on a run of at least OVERHEAD_MIN_SECONDS."""
        return self.overhead / max(OVERHEAD_MIN_SECONDS, self.median("auto"))


def measure(load: Workload, repeats: int) -> Row:
    """Every configuration and auto, side by side; also auto's pick by hand when it is not one
    of the configurations. In the first repeat, a configuration's run slower than PRUNE x the
    fastest so far is cut; later repeats run auto, its pick and the configurations within
    CONTENDER x the best."""
    items = load.make()
    load.fn(items[0])  # imports, caches: no configuration pays them alone
    row = Row(load.name, len(items), {}, {}, None)
    reference: list[Any] = []
    runners: dict[str, tuple[str, int] | None] = {"auto": None, **CONFIGS}
    for repeat in range(repeats):
        names = list(runners)
        if repeat:  # the contenders, in a rotated order: nobody always runs first
            best = row.median(row.best)
            names = [
                n
                for n in names
                if n not in CONFIGS or n == row.pick or row.median(n) <= CONTENDER * best
            ]
            names = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in names:
            times = [t for runs in row.times.values() for t in runs]
            cut = bool(times) and name in CONFIGS and not repeat  # later: no survivors bias
            limit = PRUNE * min(times) if cut else math.inf
            gc.collect()  # every run starts without the previous run's garbage
            done = run(load.fn, items, runners[name], limit)
            common = min(len(done.results), len(reference))
            if done.results[:common] != reference[:common]:
                raise SystemExit(f"{load.name}: {name} returned results that differ from serial's")
            if len(done.results) > len(reference):
                reference = done.results
            if done.complete:
                row.times.setdefault(name, []).append(done.seconds)
            else:
                row.cut[name] = len(done.results) / len(items)
                row.cut_seconds[name] = done.seconds
            if done.choice is None:
                continue
            pick = _key(done.choice.strategy, done.choice.max_workers)
            if row.choice is None:
                row.choice, row.pick = done.choice, pick if pick in CONFIGS else "by hand"
                if row.pick == "by hand":  # run next, and in every later repeat
                    runners["by hand"] = (done.choice.strategy, done.choice.max_workers)
                    names.insert(names.index(name) + 1, "by hand")
            elif pick != _key(row.choice.strategy, row.choice.max_workers):
                row.others.add(pick)
    return row


def _key(strategy: str, width: int) -> str:
    return "serial" if strategy == "serial" else f"{strategy} x{width}"


def report(rows: list[Row]) -> bool:
    """The table, then PASS/FAIL against both targets."""
    print(
        f"\n{'workload':<22}{'serial s':>9}{'best by hand':>21}{'auto s':>8}{'auto/best':>10}"
        f"{'overhead':>9}  auto chose"
    )
    for row in rows:
        best = row.best
        pick = _key(row.choice.strategy, row.choice.max_workers)
        pick += f" (then {', '.join(sorted(row.others))})" if row.others else ""
        serial = f"{'~' if 'serial' in row.cut else ''}{row.serial:.2f}"
        print(
            f"{row.name:<22}{serial:>9}{best:>14}{row.median(best):>7.2f}"
            f"{row.median('auto'):>8.2f}{row.ratio:>9.2f}{'!' if row.ratio > TARGET else ' '}"
            f"{row.overhead * 1e3:>+7.0f}ms  {pick}"
        )
    worst = max(rows, key=lambda r: r.ratio)
    ok = worst.ratio <= TARGET
    print(
        f"\n{'PASS' if ok else 'FAIL'}  auto / best <= {TARGET} on every workload "
        f"(worst: {worst.ratio:.2f} on {worst.name})"
    )
    top = max(rows, key=lambda r: -1.0 if math.isnan(r.overhead) else r.overhead_share)
    fine = top.overhead_share <= OVERHEAD_TARGET
    run = max(OVERHEAD_MIN_SECONDS, top.median("auto"))
    print(
        f"{'PASS' if fine else 'FAIL'}  auto's overhead <= {OVERHEAD_TARGET:.0%} of the total on "
        f"work of {OVERHEAD_MIN_SECONDS:.0f} s or more (worst: {top.overhead * 1e3:+.0f} ms on "
        f"{top.name}, {top.overhead_share:.1%} of {run:.1f} s)"
    )
    ok = ok and fine
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per contender (median)")
    parser.add_argument("--quick", action="store_true", help="2 repeats")
    parser.add_argument("--only", default="", help="comma-separated workload names (substrings)")
    parser.add_argument("--why", action="store_true", help="print auto's reason per workload")
    parser.add_argument(
        "--fixed", action="store_true", help="only the fixed-cost and few-long-items rows"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the image server on the way out
    repeats = 2 if args.quick else max(1, args.repeats)
    print(
        f"{available_cores()} cores, Python {sys.version.split()[0]}; "
        f"{repeats} repeat(s), medians; target auto / best <= {TARGET}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    rows, began = [], time.perf_counter()
    with image_server() as base_url, tempfile.TemporaryDirectory() as tmp:
        for load in [] if args.fixed else workloads(base_url, tmp):
            wanted = [w.strip() for w in args.only.split(",") if w.strip()]
            if wanted and not any(w.lower() in load.name.lower() for w in wanted):
                continue
            row = measure(load, repeats)
            rows.append(row)
            times = [
                f"{name} {'/'.join(f'{t:.2f}' for t in row.times[name])}" for name in row.times
            ]
            times += [f"{name} cut at {share:.0%}" for name, share in row.cut.items()]
            print(f"  {load.name}: {', '.join(times)}", flush=True)
            if args.why:
                print(f"    auto: {row.choice.why}", flush=True)
        fixed = [] if args.only else _auto_fixed.rows(square, query, sum_range, tmp, args.quick)
        fixed = [_auto_fixed.measure(row) for row in fixed]
    took = time.perf_counter() - began
    print(f"{took:.0f} s in all; load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    ok = report(rows) if rows else True
    return 0 if _auto_fixed.report(fixed) and ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
