"""Does gearshift.imap run a generator of 10 million items in bounded memory? Peers don't.
And does max_memory_per_child bound workers whose memory grows, at what cost per item?

    python bench/memory.py [--items N] [--slow-consumer K] [--limit-mb MB] [--timeout S]
                           [--only growth|input]

Each contender consumes `(i for i in range(N))` with `for y in <imap>(add_one, items)` in its
own fresh interpreter, so each peak RSS is that contender's alone: gearshift.imap,
multiprocessing.Pool.imap and ProcessPoolExecutor.map (both with chunksize=1000, what a careful
user would pass; their default chunksize=1 needs minutes for 10M items). The parent watches each
child's RSS (psutil) and stops it past --limit-mb or --timeout, then reports what it reached.
"Lead" is how far the input was consumed ahead of the results the loop had taken. Two runs:
a loop that only sums the results, and a loop slower than the pool (K pure-Python steps per
result, ~1 µs: a realistic sink), where an eager pool keeps reading input while results pile up.

(3) Workers that keep 20 MiB per item, as a leak would: each worker's peak RSS without a limit
and with max_memory_per_child, and what the check costs a worker per item: its RSS read alone,
and its per-item loop (`_capped.run_capped`) over the plain one (`worker.run_items`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # so workers find _workloads

import multiprocessing

import _workloads
import psutil

import gearshift
from gearshift.strategies.processes._capped import rss_reader, run_capped
from gearshift.strategies.processes.worker import run_items

WORKERS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
PEER_CHUNKSIZE = 1_000


# ---- the child: one contender in a fresh interpreter --------------------------------------------
class Counted:
    """A generator of 0..n-1 that records how far it has been consumed."""

    def __init__(self, n: int) -> None:
        self.n, self.taken = n, 0

    def __iter__(self) -> Iterator[int]:
        for i in range(self.n):
            self.taken = i + 1
            yield i


WORK = 0  # pure-Python steps the consuming loop spends on each result (--slow-consumer)


def consume(results: Iterator[Any], source: Counted) -> tuple[int, int]:
    """Take every result as a plain loop would; returns (checksum, largest lead)."""
    total = lead = 0
    for done, y in enumerate(results, 1):
        total += y
        if WORK:
            _workloads.spin(WORK)
        if not done & 1023:
            lead = max(lead, source.taken - done)
    return total, lead


def run_gearshift(source: Counted) -> tuple[int, int]:
    it = gearshift.imap(_workloads.add_one, iter(source), strategy="processes", max_workers=WORKERS)
    result = consume(it, source)
    # Workers are the fork server's children: its exit reports their peak RSS (RUSAGE_CHILDREN)
    from gearshift.strategies.processes import _launch

    _launch._stop_server()
    return result


def run_mp_pool(source: Counted) -> tuple[int, int]:
    with multiprocessing.Pool(WORKERS) as pool:
        return consume(pool.imap(_workloads.add_one, iter(source), PEER_CHUNKSIZE), source)


def run_ppe(source: Counted) -> tuple[int, int]:
    with ProcessPoolExecutor(WORKERS) as pool:
        results = pool.map(_workloads.add_one, iter(source), chunksize=PEER_CHUNKSIZE)
        return consume(results, source)


def run_baseline(source: Counted) -> tuple[int, int]:
    return sum(range(1, source.n + 1)), 0  # the same imports, no pool: the interpreter's floor


CONTENDERS: dict[str, Callable[[Counted], tuple[int, int]]] = {
    "baseline (no pool)": run_baseline,
    "gearshift.imap": run_gearshift,
    "mp.Pool.imap": run_mp_pool,
    "PPE.map": run_ppe,
}


def child(name: str, n: int) -> None:
    start = time.perf_counter()
    total, lead = CONTENDERS[name](Counted(n))
    seconds = time.perf_counter() - start
    if total != n * (n + 1) // 2:
        raise SystemExit(f"{name}: wrong checksum")
    kib = 1024 if sys.platform != "darwin" else 1  # ru_maxrss is KiB on Linux, bytes on macOS
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kib / 2**20
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * kib / 2**20
    print(json.dumps({"seconds": seconds, "rss_mb": own, "worker_rss_mb": workers, "lead": lead}))


# ---- the parent: runs each child, watches its memory --------------------------------------------
def watch(name: str, n: int, work: int, limit_mb: float, timeout: float) -> dict[str, Any]:
    """Run one contender; stop it past the limits. Reports peak RSS as its child measured it."""
    command = [sys.executable, os.path.abspath(__file__), "--child", name, "--items", str(n)]
    command += ["--slow-consumer", str(work)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    watched, start, peak, stopped = psutil.Process(proc.pid), time.perf_counter(), 0.0, ""
    while proc.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss / 2**20)
        except psutil.NoSuchProcess:
            break
        elapsed = time.perf_counter() - start
        if peak > limit_mb or elapsed > timeout:
            stopped = f"stopped at {peak:,.0f} MB after {elapsed:.0f} s"
            for process in [*watched.children(recursive=True), watched]:
                process.kill()
            break
        time.sleep(0.05)
    out, _ = proc.communicate()
    if stopped:
        return {"stopped": stopped, "rss_mb": peak}
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed with exit code {proc.returncode}")
    return dict(json.loads(out.splitlines()[-1]))


def scenario(title: str, args: argparse.Namespace, work: int) -> None:
    print(f"\n{title}")
    print(
        f"  {'contender':<20}{'seconds':>9}{'peak RSS MB':>13}{'vs gearshift':>14}"
        f"{'worker MB':>11}{'lead (items)':>15}"
    )
    rows = {name: watch(name, args.items, work, args.limit_mb, args.timeout) for name in CONTENDERS}
    ours, floor = rows["gearshift.imap"]["rss_mb"], rows["baseline (no pool)"]["rss_mb"]
    for name, row in rows.items():
        rss = row["rss_mb"]
        if "stopped" in row:
            print(f"  {name:<20}  {row['stopped']} (>= {rss / ours:.0f}x gearshift)")
            continue
        print(
            f"  {name:<20}{row['seconds']:>9.1f}{rss:>13.0f}{rss / ours:>13.1f}x"
            f"{row['worker_rss_mb']:>11.0f}{row['lead']:>15,}"
        )
    print(f"  above the no-pool floor ({floor:.0f} MB): gearshift {ours - floor:,.0f} MB", end="")
    for name in ("mp.Pool.imap", "PPE.map"):
        print(f", {name} {rows[name]['rss_mb'] - floor:,.0f} MB", end="")
    print()


# ---- (3) workers whose memory grows: max_memory_per_child ------------------------------------
GROW_ITEMS, GROW_LIMIT, GROW_WORKERS = 60, "200MB", 2
CHECK_ITEMS = 200_000  # items per timing of the check; the median of 5 timings is reported


def growth() -> None:
    print(f"\n(3) workers that keep 20 MiB per item: {GROW_ITEMS} items on {GROW_WORKERS} workers")
    print(
        f"  {'max_memory_per_child':<22}{'seconds':>9}{'peak RSS per worker MB':>24}"
        f"{'workers':>9}{'recycled':>10}"
    )
    for limit in (None, GROW_LIMIT):
        start = time.perf_counter()
        it = gearshift.imap(
            _workloads.keep_20_mib,
            range(GROW_ITEMS),
            strategy=gearshift.Processes(GROW_WORKERS),
            max_memory_per_child=limit,
        )
        peaks: dict[int, int] = {}
        for pid, rss in it:
            peaks[pid] = max(peaks.get(pid, 0), rss)
        seconds, stats = time.perf_counter() - start, it.statistics()
        spread = f"{min(peaks.values()) / 1e6:,.0f}-{max(peaks.values()) / 1e6:,.0f}"
        print(
            f"  {limit or 'none':<22}{seconds:>9.2f}{spread:>24}"
            f"{stats.workers_started:>9}{stats.workers_recycled:>10}"
        )
    read, loop = check_cost()
    print(
        f"  the check per item: one RSS read {read:,.0f} ns; the capped loop over the plain one "
        f"+{loop:,.0f} ns (median of 5 x {CHECK_ITEMS:,} items)"
    )


def check_cost() -> tuple[float, float]:
    """Nanoseconds per item: the worker's RSS read, and run_capped over run_items (a tiny fn)."""
    rss, items = rss_reader(), range(CHECK_ITEMS)

    def median_ns(run: Callable[[], object]) -> float:
        timings = []
        for _ in range(5):
            start = time.perf_counter()
            run()
            timings.append((time.perf_counter() - start) / CHECK_ITEMS * 1e9)
        return sorted(timings)[2]

    def reads() -> None:
        for _ in items:
            rss()

    plain = median_ns(lambda: run_items(_workloads.add_one, items))
    capped = median_ns(lambda: run_capped(_workloads.add_one, items, rss, 2**62))
    return median_ns(reads), capped - plain


def main() -> int:
    global WORK
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000_000)
    parser.add_argument("--slow-consumer", type=int, default=30, help="steps per result (K)")
    parser.add_argument("--limit-mb", type=float, default=4_000, help="stop a child past this")
    parser.add_argument("--timeout", type=float, default=300, help="stop a child after this")
    parser.add_argument("--only", choices=["input", "growth"], help="run one part")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        WORK = args.slow_consumer
        child(args.child, args.items)
        return 0
    _workloads.compile_gearshift()
    print(_workloads.machine())
    if args.only != "growth":
        print(f"{args.items:,} items, {WORKERS} workers; peers use chunksize={PEER_CHUNKSIZE:,}")
        scenario("(1) the loop only sums the results", args, 0)
        scenario(
            f"(2) the loop is slower than the pool: spin({args.slow_consumer}) per result",
            args,
            args.slow_consumer,
        )
    if args.only != "input":
        growth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
