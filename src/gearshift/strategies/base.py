"""The one interface every strategy implements: hand out an executor, declare capabilities."""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from typing import Any, ClassVar, TypeVar

from gearshift.chunking import TARGET_CHUNK_SECONDS
from gearshift.errors import UsageError, short_repr
from gearshift.strategies._ramp import Ramp
from gearshift.strategies._run import run_chunk, run_chunk_abandoning
from gearshift.units import parse_size
from gearshift.values import ChunkResult

Initializer = Callable[..., object] | None
# A Python interpreter alone is resident in ~10 MB: a smaller memory limit is a unit mistake
# ("max_memory_per_child=512" meant MB), and would retire every worker after every item.
MIN_MEMORY_LIMIT = 2**20


def check_workers(max_workers: object, argument: str = "max_workers") -> int | None:
    """Validate a worker count: None (the strategy's default) or an int >= 1."""
    if max_workers is None:
        return None
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise UsageError(
            f"{argument} must be greater than 0: a whole number >= 1, or None (the default), "
            f"got {max_workers!r}"
        )
    return max_workers


def check_memory(limit: object, argument: str = "max_memory_per_child") -> int | None:
    """Validate a memory limit: None, bytes (a number), or a size such as "2GB" or "1.5GiB"
    (`units.parse_size`: kB, MB, GB count in powers of 1,000; KiB, MiB, GiB of 1,024)."""
    if limit is None:
        return None
    value = None
    if isinstance(limit, str):
        with contextlib.suppress(ValueError):
            value = parse_size(limit)
    elif isinstance(limit, int | float) and not isinstance(limit, bool) and math.isfinite(limit):
        value = int(limit)
    if value is None:
        raise UsageError(
            f"{argument} must be a number of bytes, a size such as '2GB', '512MB' or '1.5GiB' "
            f"(kB, MB, GB: powers of 1,000; KiB, MiB, GiB: of 1,024), or None; got {limit!r}"
        )
    if value < MIN_MEMORY_LIMIT:
        raise UsageError(
            f"{argument}={limit!r} is under 1 MiB, less than a Python interpreter alone takes, "
            f"so every worker would retire after every item: a plain number counts bytes; "
            f"write the unit, e.g. '{limit}MB'"
        )
    return value


def is_async_callable(fn: object) -> bool:
    """True for `async def` functions, partials of them and objects with `async def __call__`."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - the method itself is what is inspected
    )


class ChunkExecutor(Executor):
    """An executor that runs chunks itself (per-item outcomes, tasks it can stop) and can stop
    everything at once; `Strategy` hands chunks and aborts to it."""

    @abstractmethod
    def submit_chunk(
        self,
        fn: Callable[[Any], Any],
        items: Sequence[Any],
        *,
        first_index: int,
        task_timeout: float | None,
    ) -> Future[ChunkResult]:
        """Run `fn` over `items`; the future's result has one entry per item."""

    @abstractmethod
    def terminate(self) -> None:
        """Cancel what is queued and stop what runs, now."""


class Strategy(ABC):
    """A way to run work: serial, threads, processes, ...

    Subclasses set the capability flags and implement `default_workers` and `executor`.
    Everything else (chunking, the window, ordering, retries) lives once in the engine
    (`gearshift.api`, `gearshift._window`).
    """

    name: ClassVar[str]
    needs_pickling: ClassVar[bool]  # functions, items and results cross a process boundary
    runs_coroutines: ClassVar[bool] = False
    submit_runs_items: ClassVar[bool] = False  # serial: submit returns once the items ran
    # Work per chunk that makes the strategy's per-chunk cost negligible (see gearshift.chunking).
    target_chunk_seconds: ClassVar[float] = TARGET_CHUNK_SECONDS

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = check_workers(max_workers)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_workers={self.max_workers!r})"

    def with_workers(self, max_workers: int | None) -> Strategy:
        """A copy of this strategy with another width (None keeps this one's)."""
        if max_workers is None:
            return self
        clone = copy.copy(self)
        clone.max_workers = check_workers(max_workers)
        return clone

    def with_recycling(
        self,
        *,
        max_tasks_per_child: int | None = None,
        max_memory_per_child: int | str | None = None,
    ) -> Strategy:
        """A copy whose worker processes are replaced after `max_tasks_per_child` items each, or
        after an item that leaves one over `max_memory_per_child`; strategies without worker
        processes refuse a limit, and None keeps the strategy's own."""
        for argument, limit in (
            ("max_tasks_per_child", max_tasks_per_child),
            ("max_memory_per_child", max_memory_per_child),
        ):
            if limit is not None:
                raise UsageError(
                    f"{argument} recycles worker processes; strategy {self.name!r} has none: "
                    "use strategy='processes'"
                )
        return self

    @property
    def workers(self) -> int:
        return self.max_workers or self.default_workers()

    def check_callable(self, fn: object, argument: str = "fn") -> None:
        """Refuse a coroutine function here unless this strategy runs coroutines: called as a
        plain function it would only hand back un-awaited coroutine objects."""
        if self.runs_coroutines or not is_async_callable(fn):
            return
        qualname = getattr(fn, "__qualname__", None)
        name = repr(qualname) if isinstance(qualname, str) else short_repr(fn)
        raise UsageError(
            f"{argument} {name} is a coroutine function (async def), and strategy "
            f"{self.name!r} calls plain functions, so it would only get un-awaited coroutines "
            f"back: use strategy='asyncio', or from async code `await gearshift.amap(fn, items)`"
        )

    @abstractmethod
    def default_workers(self) -> int:
        """The width used when the user gives none."""

    @abstractmethod
    def executor(
        self, *, initializer: Initializer = None, initargs: tuple[Any, ...] = ()
    ) -> Executor:
        """A fresh `concurrent.futures.Executor` running this strategy's way."""

    def submit_chunk(
        self,
        executor: Executor,
        fn: Callable[[Any], Any],
        items: Sequence[Any],
        *,
        first_index: int,
        task_timeout: float | None,
    ) -> Future[ChunkResult]:
        """Submit `fn` over a chunk of items; the future's result has one entry per item.

        A plain executor cannot kill a task, so with `task_timeout` an overdue item is abandoned.
        """
        if isinstance(executor, ChunkExecutor):
            return executor.submit_chunk(
                fn, items, first_index=first_index, task_timeout=task_timeout
            )
        if task_timeout is not None:
            return executor.submit(run_chunk_abandoning, fn, items, task_timeout, first_index)
        return executor.submit(run_chunk, fn, items)

    def ramp(self, executor: Executor) -> Ramp | None:
        """For `map`: a rule that widens `executor` while throughput rises; None keeps it as is."""
        return None

    def abort(self, executor: Executor) -> None:
        """Stop as fast as this strategy can: cancel queued work, stop running work if possible."""
        if isinstance(executor, ChunkExecutor):
            executor.terminate()
        else:
            executor.shutdown(wait=False, cancel_futures=True)


RecyclingT = TypeVar("RecyclingT", bound="RecyclesWorkers")


class RecyclesWorkers(Strategy):
    """A strategy whose work may run in worker processes (processes, or auto if it picks them):
    `with_recycling` sets their limits instead of refusing them."""

    max_tasks_per_child: int | None = None
    max_memory_per_child: int | None = None

    def with_recycling(
        self: RecyclingT,
        *,
        max_tasks_per_child: int | None = None,
        max_memory_per_child: int | str | None = None,
    ) -> RecyclingT:
        """A copy with these limits; None keeps this one's (and its other settings)."""
        clone = copy.copy(self)
        if max_tasks_per_child is not None:
            clone.max_tasks_per_child = check_workers(max_tasks_per_child, "max_tasks_per_child")
        if max_memory_per_child is not None:
            clone.max_memory_per_child = check_memory(max_memory_per_child)
        return clone
