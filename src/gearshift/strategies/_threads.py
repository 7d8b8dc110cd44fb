"""Threads: concurrency in one process; pays off while tasks wait (I/O) or run GIL-free C code."""

from __future__ import annotations

from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from gearshift.machine import available_cores
from gearshift.strategies._ramp import Ramp
from gearshift.strategies.base import Initializer, Strategy, check_workers

# Same formula as ThreadPoolExecutor's default; `auto` widens it for waiting-bound work.
DEFAULT_MAX_THREADS = 32


class Threads(Strategy):
    """A thread pool: one process, shared memory, no pickling; the GIL serializes Python code.

    With `grow_to`, `map`/`imap` start `max_workers` threads wide and double the width while
    throughput still rises, up to `grow_to` (`_ramp`). An `Executor` does not
    grow.
    """

    name = "threads"
    needs_pickling = False

    def __init__(self, max_workers: int | None = None, *, grow_to: int | None = None) -> None:
        super().__init__(max_workers)
        self.grow_to = check_workers(grow_to, "grow_to")

    def __repr__(self) -> str:
        return f"Threads(max_workers={self.max_workers!r}, grow_to={self.grow_to!r})"

    def default_workers(self) -> int:
        return min(DEFAULT_MAX_THREADS, available_cores() + 4)

    def executor(
        self, *, initializer: Initializer = None, initargs: tuple[Any, ...] = ()
    ) -> Executor:
        return ThreadPool(
            self.workers, thread_name_prefix="gearshift", initializer=initializer, initargs=initargs
        )

    def ramp(self, executor: Executor) -> Ramp | None:
        if (self.grow_to or 0) <= self.workers or not isinstance(executor, ThreadPool):
            return None
        return Ramp(self.workers, self.grow_to or 0, executor.widen)


class ThreadPool(ThreadPoolExecutor):
    """A ThreadPoolExecutor that can be widened while it runs, for `map`'s ramp."""

    def widen(self, workers: int) -> None:
        # Each submit starts a thread while fewer than _max_workers run (CPython 3.8-3.13):
        # raising it is all widening takes. tests/test_ramp.py counts the threads that run.
        self._max_workers = max(self._max_workers, workers)
