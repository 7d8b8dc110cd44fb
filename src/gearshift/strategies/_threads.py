"""Threads: concurrency in one process; pays off while tasks wait (I/O) or run GIL-free C code."""

from __future__ import annotations

from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from gearshift._cores import available_cores
from gearshift.strategies.base import Initializer, Strategy

# Same formula as ThreadPoolExecutor's default; `auto` widens it for waiting-bound work.
DEFAULT_MAX_THREADS = 32


class Threads(Strategy):
    """A thread pool: one process, shared memory, no pickling; the GIL serializes Python code."""

    name = "threads"
    parallel_cpu = False
    needs_pickling = False
    can_kill = False

    def default_workers(self) -> int:
        return min(DEFAULT_MAX_THREADS, available_cores() + 4)

    def executor(
        self, *, initializer: Initializer = None, initargs: tuple[Any, ...] = ()
    ) -> Executor:
        return ThreadPoolExecutor(
            self.workers, thread_name_prefix="gearshift", initializer=initializer, initargs=initargs
        )
