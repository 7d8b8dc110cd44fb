"""`gearshift.Executor`: a drop-in `concurrent.futures.Executor` over any strategy."""

from __future__ import annotations

import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor as _StdExecutor
from concurrent.futures import Future
from itertools import islice
from typing import Any, TypeVar

from gearshift.auto import resolve
from gearshift.errors import UsageError
from gearshift.strategies import Strategy
from gearshift.values import Statistics

T = TypeVar("T")


class Executor(_StdExecutor):
    """Swap it in for `ProcessPoolExecutor` or `ThreadPoolExecutor`; same methods, same semantics.

    `map` keeps the standard library's meaning (eager submission, `timeout` for the whole call,
    `buffersize=` to bound it as in Python 3.14); `gearshift.map`/`imap` are the lazy ones.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        strategy: str | Strategy = "processes",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        max_tasks_per_child: int | None = None,
        mp_context: object = None,
        max_memory_per_child: int | str | None = None,
    ) -> None:
        """`mp_context` is accepted for drop-in use and ignored: workers are always fresh
        interpreters (like "spawn"). `max_tasks_per_child` recycles process workers after that
        many calls, `max_memory_per_child` ("2GB") after a call that leaves one over that RSS."""
        chosen = resolve(strategy, max_workers)
        self.strategy = chosen.with_recycling(
            max_tasks_per_child=max_tasks_per_child, max_memory_per_child=max_memory_per_child
        )
        self._inner = self.strategy.executor(initializer=initializer, initargs=tuple(initargs))

    @property
    def max_workers(self) -> int:
        return self.strategy.workers

    @property
    def _max_workers(self) -> int:
        """The standard pools' name for it, which dask (`pool=`) and other libraries read."""
        return self.strategy.workers

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        self.strategy.check_callable(fn)
        return self._inner.submit(fn, *args, **kwargs)

    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[T]:
        """Like `concurrent.futures.Executor.map`; `chunksize` batches calls into one task.

        On asyncio `chunksize` is checked and ignored (as `ThreadPoolExecutor` ignores it): each
        call is its own task on the loop, so coroutines are awaited and overlap.
        """
        if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
            raise UsageError(f"chunksize must be a whole number >= 1, got {chunksize!r}")
        if buffersize is not None and (not isinstance(buffersize, int) or buffersize < 1):
            raise UsageError(f"buffersize must be None or a whole number >= 1, got {buffersize!r}")
        self.strategy.check_callable(fn)
        if self.strategy.runs_coroutines:
            chunksize = 1
        end_time = None if timeout is None else timeout + time.monotonic()
        calls: Iterator[tuple[Any, ...]] = zip(*iterables, strict=False)
        task: Callable[..., Any] = fn
        args_iter = calls
        if chunksize > 1:
            batches = iter(lambda: tuple(islice(calls, chunksize)), ())
            args_iter = ((fn, batch) for batch in batches)
            task = _call_batch
        fs = deque(self.submit(task, *args) for args in islice(args_iter, buffersize))
        owner = weakref.ref(self) if buffersize else None
        results = _results(fs, end_time, owner, task, args_iter)
        return _flatten(results) if chunksize > 1 else results

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._inner.shutdown(wait=wait, cancel_futures=cancel_futures)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """Leaving the block waits for the submitted calls, as the standard pools do; leaving it
        by Ctrl-C stops them instead (kills process workers), so one press is enough."""
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            self.strategy.abort(self._inner)
        else:
            self.shutdown(wait=True)

    def statistics(self) -> Statistics:
        """Counters of the pool (processes); zeros for strategies that keep none."""
        stats = getattr(self._inner, "statistics", None)
        return stats() if stats is not None else Statistics()


def _call_batch(fn: Callable[..., T], batch: tuple[tuple[Any, ...], ...]) -> list[T]:
    return [fn(*args) for args in batch]


def _flatten(batches: Iterator[list[T]]) -> Iterator[T]:
    """Each batch's results in order, none kept once yielded (as the standard map does)."""
    for batch in batches:
        batch.reverse()
        while batch:
            yield batch.pop()


def _results(
    fs: deque[Future[Any]],
    end_time: float | None,
    owner: weakref.ref[Executor] | None,
    fn: Callable[..., Any],
    args_iter: Iterator[tuple[Any, ...]],
) -> Iterator[Any]:
    """Yield results in order; with a buffer, submit one more call per result taken. No local
    refers to a future or a result while suspended: a result the caller dropped is freed."""
    try:
        while fs:
            if owner is not None and (executor := owner()) is not None:
                args = next(args_iter, None)
                if args is not None:
                    fs.append(executor.submit(fn, *args))
                del executor, args
            yield _result_or_cancel(fs.popleft(), end_time)
    finally:
        for future in fs:
            future.cancel()


def _result_or_cancel(future: Future[Any], end_time: float | None) -> Any:
    if end_time is None:
        return future.result()
    try:
        return future.result(end_time - time.monotonic())
    finally:
        future.cancel()
