"""Does gearshift.imap run a generator of 10 million items in bounded memory? Peers don't.

    python bench/memory.py [--items N] [--slow-consumer K] [--limit-mb MB] [--timeout S]

Each contender consumes `(i for i in range(N))` with `for y in <imap>(add_one, items)` in its
own fresh interpreter, so each peak RSS is that contender's alone: gearshift.imap,
multiprocessing.Pool.imap and ProcessPoolExecutor.map (both with chunksize=1000, what a careful
user would pass; their default chunksize=1 needs minutes for 10M items). The parent watches each
child's RSS (psutil) and stops it past --limit-mb or --timeout, then reports what it reached.
"Lead" is how far the input was consumed ahead of the results the loop had taken. Two runs:
a loop that only sums the results, and a loop slower than the pool (K pure-Python steps per
result, ~1 µs: a realistic sink), where an eager pool keeps reading input while results pile up.
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


def main() -> int:
    global WORK
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000_000)
    parser.add_argument("--slow-consumer", type=int, default=30, help="steps per result (K)")
    parser.add_argument("--limit-mb", type=float, default=4_000, help="stop a child past this")
    parser.add_argument("--timeout", type=float, default=300, help="stop a child after this")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        WORK = args.slow_consumer
        child(args.child, args.items)
        return 0
    _workloads.compile_gearshift()
    print(
        f"{_workloads.machine()}; {args.items:,} items, {WORKERS} workers; "
        f"peers use chunksize={PEER_CHUNKSIZE:,}"
    )
    scenario("(1) the loop only sums the results", args, 0)
    scenario(
        f"(2) the loop is slower than the pool: spin({args.slow_consumer}) per result",
        args,
        args.slow_consumer,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
