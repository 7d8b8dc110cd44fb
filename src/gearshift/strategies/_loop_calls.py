"""How one call or chunk runs on an event loop: coroutines there, plain functions in threads.

    LoopCalls.call(fn, args, kwargs)  ─► `await fn(...)`, or fn in a pool thread (an awaitable
        it returns is awaited on the loop)
    LoopCalls.chunk(fn, items, ...)   ─► each item in turn; `task_timeout` cancels an overdue
        coroutine for real (`TaskTimeout`), a plain function's item is abandoned

`LoopExecutor` (`_loop_executor`) decides when a call runs (slots, shutdown); this decides how.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from time import perf_counter
from typing import Any

from gearshift.errors import TaskTimeout, item_error
from gearshift.strategies._run import run_chunk, run_chunk_abandoning
from gearshift.strategies.base import is_async_callable
from gearshift.values import ChunkResult

# How long cancelled coroutines may take to unwind before the executor stops waiting for them.
CANCEL_GRACE_SECONDS = 2.0


class LoopCalls:
    """Runs calls on `loop`; plain functions go to `threads` (like `asyncio.to_thread`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, threads: ThreadPoolExecutor) -> None:
        self._loop = loop
        self._threads = threads

    async def call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Any) -> Any:
        """`fn(*args, **kwargs)`'s value: awaited if it is a coroutine function or returned one."""
        if is_async_callable(fn):
            return await fn(*args, **kwargs)
        value = await self._loop.run_in_executor(
            self._threads, functools.partial(fn, *args, **kwargs)
        )
        return await value if inspect.isawaitable(value) else value

    async def chunk(
        self, fn: Callable[[Any], Any], items: list[Any], first: int, timeout: float | None
    ) -> ChunkResult:
        """Every item's value or error, one item after another; `first` is items[0]'s index."""
        if not is_async_callable(fn):
            return await self._chunk_in_thread(fn, items, first, timeout)
        result = ChunkResult([], 0.0, {})
        for pos, item in enumerate(items):
            start = perf_counter()
            value = None
            try:
                value = await bounded(fn(item), timeout, first + pos, item)
            except Exception as exc:
                result.errors[pos] = exc
            except asyncio.CancelledError as exc:
                if cancelled_from_outside():
                    raise
                result.errors[pos] = exc  # the coroutine raised it itself: its item's error
            result.values.append(value)
            result.seconds += perf_counter() - start
        return result

    async def _chunk_in_thread(
        self, fn: Callable[[Any], Any], items: list[Any], first: int, timeout: float | None
    ) -> ChunkResult:
        """A plain function: the whole chunk runs in one pool thread; awaitables it returned
        (`lambda x: fetch(x)`) are then awaited here."""
        if timeout is None:
            call = functools.partial(run_chunk, fn, items)
        else:
            call = functools.partial(run_chunk_abandoning, fn, items, timeout, first)
        result = await self._loop.run_in_executor(self._threads, call)
        for pos, value in enumerate(result.values):
            if pos not in result.errors and inspect.isawaitable(value):
                start = perf_counter()
                try:
                    result.values[pos] = await bounded(value, timeout, first + pos, items[pos])
                except Exception as exc:
                    result.values[pos] = None
                    result.errors[pos] = exc
                except asyncio.CancelledError as exc:
                    if cancelled_from_outside():
                        raise
                    result.values[pos] = None
                    result.errors[pos] = exc  # the awaitable raised it itself
                result.seconds += perf_counter() - start
        return result


def cancelled_from_outside() -> bool:
    """Is the running task itself being cancelled (shutdown, early exit), rather than a user
    coroutine raising `CancelledError` on its own? Python 3.10 cannot tell: it says yes."""
    cancelling = getattr(asyncio.current_task(), "cancelling", None)
    return cancelling is None or cancelling() > 0


async def bounded(awaitable: Awaitable[Any], timeout: float | None, index: int, item: Any) -> Any:
    """Await it; past `timeout` seconds cancel it and raise `TaskTimeout` naming the item.

    A `TimeoutError` that user code raises itself stays the user's error.
    """
    if timeout is None:
        return await awaitable
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except BaseException:  # this chunk was cancelled: take the item's task down with it
        task.cancel()
        raise
    if done:
        return task.result()
    task.cancel()
    await asyncio.wait({task}, timeout=CANCEL_GRACE_SECONDS)  # let it unwind (finally blocks)
    why = f"ran longer than task_timeout={timeout}s and was cancelled"
    raise item_error(TaskTimeout, index, item, why, timeout=timeout)
