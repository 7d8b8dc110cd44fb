"""`amap` and `aimap`: `gearshift.map`'s semantics from async code, on the caller's event loop.

    async for x in aimap(fn, items) ◄── bounded queue ◄── the pump (one helper thread) drives
         api.imap(fn, items, strategy=<asyncio on the caller's loop>)   window, order, retries,
              └─► each chunk runs as a task on the caller's loop         errors: api.py's, once

Coroutines run on your loop, so they can share its objects (an aiohttp session, a connection
pool). The bookkeeping runs in the pump thread, so api.py's semantics are reused, not copied.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import Future
from types import TracebackType
from typing import Any

from gearshift.api import MapIterator, imap
from gearshift.errors import UsageError
from gearshift.strategies import OnLoop, check_workers
from gearshift.values import Statistics

__all__ = ["AsyncMapIterator", "aimap", "amap"]

# Results the pump may hold ready for a consumer that is slow to take them.
RESULT_BUFFER = 1024
_VALUE, _END, _ERROR = "value", "end", "error"
_NO_MORE = object()


async def amap(
    fn: Callable[[Any], Any],
    items: Iterable[Any] | AsyncIterable[Any],
    *,
    max_workers: int | None = None,
    chunksize: int | None = None,
    ordered: bool = True,
    task_timeout: float | None = None,
    retries: int = 0,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    return_exceptions: bool = False,
    progress: bool = False,
) -> list[Any]:
    """`[await fn(x) for x in items]` with `max_workers` coroutines in flight; see `aimap`."""
    async with aimap(
        fn,
        items,
        max_workers=max_workers,
        chunksize=chunksize,
        ordered=ordered,
        task_timeout=task_timeout,
        retries=retries,
        retry_on=retry_on,
        return_exceptions=return_exceptions,
        progress=progress,
    ) as results:
        return [value async for value in results]


def aimap(
    fn: Callable[[Any], Any],
    items: Iterable[Any] | AsyncIterable[Any],
    *,
    max_workers: int | None = None,
    chunksize: int | None = None,
    ordered: bool = True,
    task_timeout: float | None = None,
    retries: int = 0,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    return_exceptions: bool = False,
    progress: bool = False,
) -> AsyncMapIterator:
    """Yield `await fn(x)` for each item, running on the caller's loop; options as `imap`.

    `max_workers` coroutines are in flight at once (default 100); `items` may be an async
    iterable and is consumed lazily. `task_timeout` cancels an overdue coroutine and yields or
    raises `TaskTimeout`. Use `async with gearshift.aimap(...) as results:` to stop the work
    when you leave the loop early. Plain functions run in a thread pool of `max_workers`.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise UsageError(
            "gearshift.aimap runs on the caller's event loop: call it from async code "
            "(async for x in gearshift.aimap(fn, items)); from sync code use "
            "gearshift.imap(fn, items, strategy='asyncio')"
        ) from None
    strategy = OnLoop(check_workers(max_workers), loop)
    pump = _Pump(strategy, loop)
    source = pump.pull(items) if isinstance(items, AsyncIterable) else items
    pump.inner = imap(
        fn,
        source,
        strategy=strategy,
        chunksize=chunksize,
        ordered=ordered,
        task_timeout=task_timeout,
        retries=retries,
        retry_on=retry_on,
        return_exceptions=return_exceptions,
        progress=progress,
    )
    return AsyncMapIterator(pump)


class AsyncMapIterator(AsyncIterator[Any]):
    """What `aimap` returns: an async iterator and context manager; `statistics()` as `imap`."""

    def __init__(self, pump: _Pump) -> None:
        self._pump = pump
        self._finalizer = weakref.finalize(self, pump.stop)  # abandoned: the work still stops

    def __aiter__(self) -> AsyncMapIterator:
        return self

    async def __anext__(self) -> Any:
        pump = self._pump
        if pump.thread is None:
            pump.start()
        if pump.ended:
            raise StopAsyncIteration
        kind, value = await pump.queue.get()
        if kind == _VALUE:
            pump.room.release()
            return value
        pump.ended = True
        self._finalizer.detach()
        await asyncio.wrap_future(pump.done)
        if kind == _END:
            raise StopAsyncIteration
        raise value

    async def aclose(self) -> None:
        """Stop early: cancel the coroutines in flight and wait for them to unwind."""
        pump = self._pump
        pump.ended = True
        self._finalizer.detach()
        if pump.thread is not None:
            pump.stop()
            await asyncio.wrap_future(pump.done)

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
        return self._pump.inner.statistics()


class _Pump:
    """The helper thread that drives api's iterator and posts each result to the caller's loop."""

    inner: MapIterator

    def __init__(self, strategy: OnLoop, loop: asyncio.AbstractEventLoop) -> None:
        self.strategy, self.loop = strategy, loop
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.room = threading.Semaphore(RESULT_BUFFER)
        self.done: Future[None] = Future()
        self.thread: threading.Thread | None = None
        self.stopping = self.ended = False
        self.pulling: Future[Any] | None = None  # an async source's __anext__ in flight

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name="gearshift-aimap", daemon=True)
        self.thread.start()

    def run(self) -> None:
        try:
            for value in self.inner:
                self.room.acquire()
                if self.stopping:
                    break
                self.post(_VALUE, value)
            else:
                self.post(_END, None)
        except BaseException as exc:
            if not self.stopping:
                self.post(_ERROR, exc)
        finally:
            self.inner.close()
            self.done.set_result(None)

    def post(self, kind: str, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody listens
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, value))

    def stop(self) -> None:
        """Wake the pump wherever it waits and make it finish (any thread; returns at once)."""
        self.stopping = True
        self.room.release()
        if self.pulling is not None:
            self.pulling.cancel()
        self.strategy.stop()

    def pull(self, source: AsyncIterable[Any]) -> Iterator[Any]:
        """An async iterable as a plain iterator for the pump: each item awaited on the loop."""
        iterator = source.__aiter__()
        try:
            while not self.stopping:
                self.pulling = asyncio.run_coroutine_threadsafe(_anext(iterator), self.loop)
                value = self.pulling.result()
                if value is _NO_MORE:
                    return
                yield value
        finally:
            self.pulling = None
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    asyncio.run_coroutine_threadsafe(aclose(), self.loop).result(timeout=5)


async def _anext(iterator: AsyncIterator[Any]) -> Any:
    try:
        return await iterator.__anext__()
    except StopAsyncIteration:
        return _NO_MORE
