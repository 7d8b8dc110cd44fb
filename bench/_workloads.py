"""Workload functions for the benchmarks, in a module every peer's workers can import.

Spawn-based pools (joblib's loky, gearshift's fresh interpreters) import functions by module
name, so they must not live in a script's `__main__`.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any


def square(x: int) -> int:
    """The smallest possible task: per-task overhead is everything."""
    return x * x


def spin(n: int) -> int:
    """A pure-Python loop of `n` steps: CPU-bound, holds the GIL, no allocation."""
    total = 0
    for i in range(n):
        total += i & 7
    return total


def sum_to(n: int) -> int:
    """The source's CPU experiment: the sum of 0..n."""
    return sum(range(n + 1))


def add_one(x: int) -> int:
    """A cheap task for the memory benchmark."""
    return x + 1


KEPT: list[bytes] = []  # what `keep_20_mib` leaves behind in a worker, as a leak would


def keep_20_mib(x: int) -> tuple[int, int]:
    """Keep 20 MiB (written, so resident) for the worker's lifetime; (pid, RSS right after)."""
    KEPT.append(b"x" * (20 * 2**20))
    with open("/proc/self/statm", "rb") as statm:
        return os.getpid(), int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def sqrt_sum(a: Any) -> float:
    """The issue's big-array task: numpy releases the GIL while it runs."""
    import numpy as np

    return float(np.sqrt(a).sum())


def array_sum(a: Any) -> float:
    """Reads a whole array and allocates nothing: bench/arrays.py's memory of shipping alone."""
    return float(a.sum())


PY_ELEMENTS = 8_000_000  # bench/arrays.py: 3 passes take ~0.45 s of CPU here


def py_slice_sum(a: Any) -> float:
    """Pure-Python loops over a slice of a big array: hold the GIL all along."""
    total = 0.0
    for _ in range(3):
        for x in memoryview(a[:PY_ELEMENTS]):  # Python floats, one at a time
            total += x
    return total


def nbytes(a: Any) -> int:
    """Almost no work: what a big argument costs to ship is all there is (bench/arrays.py)."""
    return int(a.nbytes)


def calibrate(fn: object, target_seconds: float, start: int = 1_000) -> int:
    """The argument `n` for which `fn(n)` takes about `target_seconds` here (median of 5)."""
    assert callable(fn)
    n = start
    while True:
        took = _median_seconds(fn, n)
        if took >= target_seconds / 4:
            return max(1, round(n * target_seconds / took))
        n *= 4


def _median_seconds(fn: object, n: int) -> float:
    assert callable(fn)
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        fn(n)
        runs.append(time.perf_counter() - start)
    return sorted(runs)[2]


def compile_gearshift() -> None:
    """Write gearshift's bytecode (.pyc), as installing a wheel does.

    gearshift's workers are fresh interpreters that import gearshift; where bytecode writing is
    off (PYTHONDONTWRITEBYTECODE, as in some sandboxes) an editable install would compile every
    module again in every worker, a cost no installed user pays. Peers import from site-packages,
    which pip has compiled.
    """
    import compileall

    import gearshift

    compileall.compile_dir(os.path.dirname(gearshift.__file__), quiet=1)


def machine() -> str:
    """One line on the machine, with a warning when other work is competing for the cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    line = f"{cores} cores, Python {sys.version.split()[0]}, load average {load:.1f} at start"
    if load > 0.5:
        line += " -- WARNING: other work is running; timings will be noisy"
    return line
