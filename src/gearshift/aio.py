"""`amap` and `aimap`: `gearshift.map` from async code, on any strategy, off the loop's thread.

    async for x in aimap(fn, items) ◄── your loop ◄── one call_soon_threadsafe per chunk ──┐
    the pump, one helper thread per call, drives api.imap: auto's sample, the window, order, │
    retries, errors (gearshift.map's own code) and waits for the workers ───────────────────┘
        coroutine functions: each chunk is a task on your loop ("asyncio", or "auto")
        plain functions: the strategy's workers (threads, processes, dask); "serial": the pump

Coroutines run on your loop, so they can share its objects (an aiohttp session, a lock). A plain
function never runs on your loop's thread, where CPU work would stall every coroutine; its results
reach the pump through its futures' callbacks and your loop a chunk at a time, so no thread waits
per item. Cancelling interrupts the pump where it waits, which stops the work as Ctrl-C does.
"""

from __future__ import annotations

import asyncio
import copy
import math
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from types import TracebackType
from typing import Any

from gearshift.api import MapIterator, imap
from gearshift.auto import Auto, Choice, resolve
from gearshift.errors import UsageError
from gearshift.strategies import (
    Asyncio,
    LoopPump,
    OnLoop,
    Strategy,
    check_workers,
    is_async_callable,
)
from gearshift.values import Statistics

__all__ = ["AsyncMapIterator", "aimap", "amap"]

# How long leaving early waits for the work to stop (a plain function's item running in a thread,
# or in the pump for strategy="serial", cannot be stopped: past this, it is left to end alone).
STOP_WAIT_SECONDS = 2.0


async def amap(
    fn: Callable[[Any], Any],
    items: Iterable[Any] | AsyncIterable[Any],
    *,
    strategy: str | Strategy = "auto",
    max_workers: int | None = None,
    chunksize: int | None = None,
    ordered: bool = True,
    task_timeout: float | None = None,
    retries: int = 0,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    return_exceptions: bool = False,
    progress: bool = False,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
    max_memory_per_child: int | str | None = None,
) -> list[Any]:
    """`gearshift.map` from async code: the list of results, awaited; see `aimap`."""
    async with aimap(
        fn,
        items,
        strategy=strategy,
        max_workers=max_workers,
        chunksize=chunksize,
        ordered=ordered,
        task_timeout=task_timeout,
        retries=retries,
        retry_on=retry_on,
        return_exceptions=return_exceptions,
        progress=progress,
        initializer=initializer,
        initargs=initargs,
        max_memory_per_child=max_memory_per_child,
    ) as results:
        return await results._rest()


def aimap(
    fn: Callable[[Any], Any],
    items: Iterable[Any] | AsyncIterable[Any],
    *,
    strategy: str | Strategy = "auto",
    max_workers: int | None = None,
    chunksize: int | None = None,
    ordered: bool = True,
    task_timeout: float | None = None,
    retries: int = 0,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    return_exceptions: bool = False,
    progress: bool = False,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
    max_memory_per_child: int | str | None = None,
) -> AsyncMapIterator:
    """`gearshift.imap` from async code: `async for` the results; every option as `imap`.

    Coroutine functions run on your loop ("auto" or "asyncio"; `max_workers` in flight, default
    100). Plain functions run on `strategy` ("auto" measures, explains in `.choice`, and never
    picks serial), off your loop's thread. `items` may be an async iterable; it is consumed
    lazily. Leaving `async with gearshift.aimap(...) as results:` early, or cancelling the task
    that awaits, stops the work: queued items never start, process workers are killed.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise UsageError(
            "gearshift.aimap runs on the caller's event loop: call it from async code "
            "(async for x in gearshift.aimap(fn, items)); from sync code use gearshift.imap"
        ) from None
    chosen, choice = _placed(fn, strategy, max_workers, loop)
    pump = LoopPump(loop)
    inner = imap(
        fn,
        pump.pull(items) if isinstance(items, AsyncIterable) else items,
        strategy=chosen,
        chunksize=chunksize,
        ordered=ordered,
        task_timeout=task_timeout,
        retries=retries,
        retry_on=retry_on,
        return_exceptions=return_exceptions,
        progress=progress,
        initializer=initializer,
        initargs=initargs,
        max_memory_per_child=max_memory_per_child,
    )
    return AsyncMapIterator(inner, pump, choice)


def _placed(
    fn: object, strategy: object, max_workers: int | None, loop: asyncio.AbstractEventLoop
) -> tuple[Strategy, Choice | None]:
    """The strategy that runs `fn` for async code, and auto's choice if it is made already."""
    chosen = resolve(strategy, check_workers(max_workers))
    if isinstance(chosen, Asyncio):
        return OnLoop(chosen.max_workers, loop), None
    if not isinstance(chosen, Auto):
        return chosen, None
    if is_async_callable(fn):
        on_loop = OnLoop(chosen.max_workers, loop)
        why = (
            f"coroutine function, from async code: not sampled, it runs only on an event loop "
            f"and must on yours -> asyncio x {on_loop.workers} on your loop (max_workers; "
            f"default {on_loop.default_workers()})"
        )
        return on_loop, Choice("asyncio", on_loop.workers, 1, math.nan, why)
    auto = copy.copy(chosen)
    auto.allow_serial = False
    return auto, None


class AsyncMapIterator(AsyncIterator[Any]):
    """What `aimap` returns: an async iterator and context manager; `statistics()`, `choice` and
    `strategy` as `imap`'s iterator has them."""

    def __init__(self, inner: MapIterator, pump: LoopPump, choice: Choice | None) -> None:
        self._inner, self._pump, self._choice = inner, pump, choice
        self._ready: deque[Any] = deque()  # the rest of the last chunk's results
        pump.attach(inner, self)

    def __aiter__(self) -> AsyncMapIterator:
        return self

    async def __anext__(self) -> Any:
        if self._ready:
            return self._ready.popleft()
        batch = await self._pump.next_batch()
        if batch is None:
            raise StopAsyncIteration
        self._ready.extend(batch)
        return self._ready.popleft()

    async def _rest(self) -> list[Any]:
        """Every result left, a batch at a time (for `amap`: no await per result)."""
        values = list(self._ready)
        self._ready.clear()
        while (batch := await self._pump.next_batch()) is not None:
            values += batch
        return values

    async def aclose(self) -> None:
        """Stop early: queued items never start, running ones are cancelled or killed."""
        await self._pump.stop(STOP_WAIT_SECONDS)

    async def __aenter__(self) -> AsyncMapIterator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def statistics(self) -> Statistics:
        return self._inner.statistics()

    @property
    def choice(self) -> Choice | None:
        """What strategy="auto" chose, and why (known once the first results arrive)."""
        return self._choice or self._inner.choice

    @property
    def strategy(self) -> Strategy:
        """The strategy running the work (after auto has chosen, the chosen one)."""
        return self._inner.strategy
