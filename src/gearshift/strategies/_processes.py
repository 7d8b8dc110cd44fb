"""Processes: parallelism for CPU-bound Python code, on gearshift's own pipe-per-worker pool."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from typing import Any

from gearshift._cores import available_cores
from gearshift.outcome import ChunkResult
from gearshift.strategies._handles import WORKER_ENV
from gearshift.strategies._pool import ProcessPool
from gearshift.strategies.base import Initializer, Strategy, check_workers

# What OpenBLAS, MKL, Accelerate, OpenMP and numexpr read to size their thread pools.
BLAS_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


class Processes(Strategy):
    """Worker processes, one per available core by default; work travels with cloudpickle.

    Each worker is a fresh interpreter (`python -m gearshift.strategies._worker`), started with
    `subprocess` — like multiprocessing's "spawn", safe when the parent has threads, and your
    `__main__` is not re-imported, so scripts need no `if __name__ == "__main__"` guard.
    """

    name = "processes"
    parallel_cpu = True
    needs_pickling = True
    can_kill = True

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        max_tasks_per_child: int | None = None,
        blas_threads: int | None = None,
    ) -> None:
        """`blas_threads` caps the threads of BLAS/OpenMP libraries in each worker (numpy, ...)
        so that workers x their threads do not oversubscribe the cores; None leaves them be."""
        super().__init__(max_workers)
        self.max_tasks_per_child = check_workers(max_tasks_per_child, "max_tasks_per_child")
        self.blas_threads = check_workers(blas_threads, "blas_threads")

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
            self.workers, initializer, initargs, self.max_tasks_per_child, self.worker_env()
        )

    def submit_chunk(
        self,
        executor: Executor,
        fn: Callable[[Any], Any],
        items: Sequence[Any],
        *,
        first_index: int,
        task_timeout: float | None,
    ) -> Future[ChunkResult]:
        assert isinstance(executor, ProcessPool)
        return executor.submit_chunk(fn, items, first_index=first_index, task_timeout=task_timeout)

    def abort(self, executor: Executor) -> None:
        assert isinstance(executor, ProcessPool)
        executor.terminate()
