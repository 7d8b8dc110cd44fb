"""Does gearshift on Dask match plain Dask, and when does a cluster beat local processes?

    python bench/cluster.py [--tasks N] [--repeats N] [--quick]

~10 ms pure-Python tasks x 2,000, side by side in one run: gearshift's own process pool, and on
one LocalCluster of 2 single-threaded worker processes (started once, outside the timings):
plain `client.map` + `client.gather`, `ClientExecutor.map`, and gearshift.map with
strategy=Dask(client=...) as it is, with chunks of 20 ms (the local strategies' target)
instead of Dask's `target_chunk_seconds`, and with 2 tasks per cluster thread instead of
`_dask_executor.TASKS_PER_THREAD` (both settings are tuned here). Then the cost of `strategy="dask"`
starting its own LocalCluster for one call. Medians of the repeats; ideal = tasks x task time
/ workers; every result is checked.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # so workers find _workloads

import _workloads

import gearshift
from gearshift.strategies import _dask_executor
from gearshift.strategies._dask import start_local_cluster

WORKERS = 2
Runner = Callable[[list[int]], list[int]]


def tuned(client: object, target: float, per_thread: int) -> Runner:
    """gearshift.map on Dask with another chunk target or late-binding depth than the defaults."""
    strategy = gearshift.Dask(client=client)
    strategy.target_chunk_seconds = target  # type: ignore[misc]

    def run(items: list[int]) -> list[int]:
        saved, _dask_executor.TASKS_PER_THREAD = _dask_executor.TASKS_PER_THREAD, per_thread
        try:
            return gearshift.map(_workloads.spin, items, strategy=strategy)
        finally:
            _dask_executor.TASKS_PER_THREAD = saved

    return run


def measure(runners: dict[str, Runner], items: list[int], repeats: int) -> dict[str, float]:
    """Median seconds per contender; contenders take turns within each repeat."""
    expected = [_workloads.spin(n) for n in items[:1]] * len(items)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            result = run(items)
            times[name].append(time.perf_counter() - start)
            if result != expected:
                raise SystemExit(f"{name}: wrong results")
    return {name: statistics.median(runs) for name, runs in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="400 tasks, 1 repeat")
    args = parser.parse_args()
    tasks, repeats = (400, 1) if args.quick else (args.tasks, args.repeats)
    n = _workloads.calibrate(_workloads.spin, 0.010)
    start = time.perf_counter()
    _workloads.spin(n)
    task_seconds = time.perf_counter() - start
    items = [n] * tasks
    ideal = tasks * task_seconds / WORKERS
    print(
        f"{tasks} tasks of ~{task_seconds * 1000:.1f} ms on {WORKERS} workers; ideal {ideal:.2f} s"
    )

    from distributed import Client

    cluster = start_local_cluster(WORKERS)
    client = Client(cluster)
    default = gearshift.Dask.target_chunk_seconds
    client_executor = client.get_executor(pure=False)
    runners: dict[str, Runner] = {
        "gearshift processes": lambda xs: gearshift.map(
            _workloads.spin, xs, strategy="processes", max_workers=WORKERS
        ),
        "dask client.map": lambda xs: client.gather(client.map(_workloads.spin, xs, pure=False)),
        "dask ClientExecutor.map": lambda xs: list(client_executor.map(_workloads.spin, xs)),
        "gearshift dask": lambda xs: gearshift.map(
            _workloads.spin, xs, strategy=gearshift.Dask(client=client)
        ),
        "  chunks of 20 ms": tuned(client, 0.02, _dask_executor.TASKS_PER_THREAD),
        "  2 tasks per thread": tuned(client, default, 2),
    }
    try:
        for run in runners.values():  # warm-up: imports on the workers, duration estimates
            run(items[: 10 * WORKERS])
        medians = measure(runners, items, repeats)
    finally:
        client.close()
        cluster.close()
    start = time.perf_counter()
    gearshift.map(_workloads.spin, items[:20], strategy=gearshift.Dask(WORKERS))
    cold = time.perf_counter() - start

    plain = medians["dask client.map"]
    print(f"\n  {'contender':<28}{'median s':>10}{'vs ideal':>10}{'vs client.map':>15}")
    for name, seconds in medians.items():
        print(f"  {name:<28}{seconds:>10.2f}{seconds / ideal:>9.2f}x{seconds / plain:>14.2f}x")
    print(
        f"\n  strategy='dask' starting and closing its own LocalCluster for 20 tasks: {cold:.1f} s"
    )
    ratio = medians["gearshift dask"] / plain
    ok = ratio <= 1.05
    print(
        f"{'PASS' if ok else 'FAIL'}  gearshift dask / plain client.map: {ratio:.2f}x "
        "(goal: match or beat it, <= 1.05)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
