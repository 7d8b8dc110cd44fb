"""Processes: parallelism for CPU-bound Python code, on gearshift's own pipe-per-worker pool."""

from __future__ import annotations

import os
from concurrent.futures import Executor
from typing import Any

from gearshift.errors import UsageError
from gearshift.machine import available_cores
from gearshift.strategies.base import Initializer, RecyclesWorkers, check_memory, check_workers
from gearshift.strategies.processes._launch import START_METHODS, WORKER_ENV, default_start_method
from gearshift.strategies.processes._pickling import ZERO_COPY_BYTES
from gearshift.strategies.processes._pool import ProcessPool

# What OpenBLAS, MKL, Accelerate, OpenMP and numexpr read to size their thread pools.
BLAS_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


class Processes(RecyclesWorkers):
    """Worker processes, one per available core by default; work travels pickled.

    `start_method="forkserver"` (the default on Linux): the first pool in a process starts one
    small fork-server process, which then forks each worker in a millisecond or two.
    `"spawn"` (the default elsewhere): each worker is a fresh interpreter. Both are safe when
    your process has threads (plain fork is not), and neither re-imports your `__main__`, so
    scripts need no `if __name__ == "__main__"` guard.

    `max_tasks_per_child` retires a worker after that many items, `max_memory_per_child` after
    an item that leaves its resident memory (RSS) over that many bytes ("2GB", "1.5GiB": kB, MB,
    GB count in powers of 1,000, KiB, MiB, GiB of 1,024); a fresh worker, your initializer run
    again, takes its place, and what the old one had not run goes to the others.

    `zero_copy_bytes`: on Linux, buffers this big or bigger (numpy arrays, bytes) travel to the
    workers and back without a copy through the socket, in memfds; workers see such inputs
    read-only. None sends everything through the socket.
    """

    name = "processes"
    needs_pickling = True

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        max_tasks_per_child: int | None = None,
        max_memory_per_child: int | str | None = None,
        blas_threads: int | None = None,
        start_method: str | None = None,
        zero_copy_bytes: int | None = ZERO_COPY_BYTES,
    ) -> None:
        """`blas_threads` caps the threads of BLAS/OpenMP libraries in each worker (numpy, ...)
        so that workers x their threads do not oversubscribe the cores; None leaves them be."""
        super().__init__(max_workers)
        self.max_tasks_per_child = check_workers(max_tasks_per_child, "max_tasks_per_child")
        self.max_memory_per_child = check_memory(max_memory_per_child)
        self.blas_threads = check_workers(blas_threads, "blas_threads")
        self.start_method = _check_start_method(start_method)
        self.zero_copy_bytes = _check_zero_copy(zero_copy_bytes)

    def worker_env(self) -> dict[str, str]:
        """Variables set in each worker: the thread caps, unless the user set them already."""
        if self.blas_threads is None:
            return {}
        return {var: str(self.blas_threads) for var in BLAS_THREAD_VARS if var not in os.environ}

    def default_workers(self) -> int:
        """One per available core; one inside another pool's worker, so nesting cannot explode."""
        return 1 if os.environ.get(WORKER_ENV) else available_cores()

    def executor(
        self, *, initializer: Initializer = None, initargs: tuple[Any, ...] = ()
    ) -> Executor:
        return ProcessPool(
            self.workers,
            initializer,
            initargs,
            self.max_tasks_per_child,
            self.worker_env(),
            self.start_method,
            self.max_memory_per_child,
            self.zero_copy_bytes,
        )


def _check_start_method(start_method: str | None) -> str:
    if start_method is None:
        return default_start_method()
    if start_method not in START_METHODS:
        raise UsageError(
            f"start_method must be one of {', '.join(map(repr, START_METHODS))} or None (the "
            f"best available here), got {start_method!r}"
        )
    if start_method == "forkserver" and default_start_method() != "forkserver":
        raise UsageError(
            "start_method='forkserver' needs Linux >= 5.3 (pidfds), which this system lacks: "
            "use start_method='spawn' or None"
        )
    return start_method


def _check_zero_copy(size: int | None) -> int | None:
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise UsageError(
            f"zero_copy_bytes must be a whole number of bytes >= 1, or None to send every buffer "
            f"through the socket, got {size!r}"
        )
    return size
