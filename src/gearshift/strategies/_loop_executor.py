"""LoopExecutor: a `concurrent.futures.Executor` whose calls run as tasks on an event loop.

    submit / submit_chunk (any thread) ──call_soon_threadsafe──► the loop: a queue of calls in
        submit order ─► one task per call or chunk once one of `max_workers` slots is free
    the loop: its own, in a helper thread (closed on shutdown), or a running one (the caller's)

A chunk's coroutines run one after another inside its slot; `task_timeout` cancels an overdue
coroutine for real. Plain functions run in a thread pool of `max_workers` threads (like
`asyncio.to_thread`); an awaitable they return is awaited on the loop. This module decides when
a call runs and how the executor stops; how a call or chunk runs is `_loop_calls`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from gearshift.errors import InitializerFailed
from gearshift.strategies._exit import finish_at_exit, refused
from gearshift.strategies._loop_calls import (
    CANCEL_GRACE_SECONDS,
    LoopCalls,
    cancelled_from_outside,
)
from gearshift.strategies.base import ChunkExecutor, Initializer
from gearshift.values import ChunkResult

_SHUT = "the executor was shut down"


class LoopExecutor(ChunkExecutor):
    """A `concurrent.futures.Executor` whose calls run as tasks on an event loop.

    With `loop=None` it starts its own loop in a thread and closes it on shutdown; otherwise it
    uses `loop` (which must be running in another thread than the one calling `shutdown`).
    """

    def __init__(
        self,
        max_workers: int,
        loop: asyncio.AbstractEventLoop | None = None,
        initializer: Initializer = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        self._width = max_workers
        self._lock = threading.Lock()
        self._closed = self._halted = False
        self._live = 0  # scheduled calls whose task has not ended yet
        self._idle = threading.Event()
        self._idle.set()
        self._waiting: dict[Future[Any], None] = {}  # scheduled, no slot yet; in submit order
        # touched in the loop only: calls waiting for a slot in submit order (`_queued` holds the
        # ones not cancelled meanwhile), the tasks of those holding one, and the free slots
        self._queue: deque[_Call] = deque()
        self._queued: dict[Future[Any], _Call] = {}
        self._tasks: dict[Future[Any], asyncio.Task[None]] = {}
        self._free = max_workers
        self._threads = ThreadPoolExecutor(max_workers, thread_name_prefix="gearshift-asyncio")
        self._thread: threading.Thread | None = None
        if loop is None:
            loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=_serve, args=(loop,), name="gearshift-asyncio", daemon=True
            )
            self._thread.start()
            finish_at_exit(self)  # like a ThreadPoolExecutor's, its calls finish at exit
        self._loop = loop
        self._calls = LoopCalls(loop, self._threads)
        self._ready = asyncio.run_coroutine_threadsafe(
            self._initialize(initializer, initargs), loop
        )

    async def _initialize(self, initializer: Initializer, initargs: tuple[Any, ...]) -> None:
        if initializer is not None:
            try:
                result = initializer(*initargs)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                raise InitializerFailed(f"the executor's initializer raised {exc!r}") from exc

    # ---- called from any thread ---------------------------------------------------------------
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._schedule(lambda: self._calls.call(fn, args, kwargs))

    def submit_chunk(
        self,
        fn: Callable[[Any], Any],
        items: Sequence[Any],
        *,
        first_index: int,
        task_timeout: float | None,
    ) -> Future[ChunkResult]:
        """Run `fn` on each item in turn; the result holds every item's value or error."""
        chunk = list(items)
        return self._schedule(lambda: self._calls.chunk(fn, chunk, first_index, task_timeout))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new calls; cancel the ones still waiting for a slot if asked; then stop.

        Calls that a free slot was waiting for are not cancelled: like calls an idle
        `ThreadPoolExecutor` thread has taken, they run.
        """
        with self._lock:
            self._closed = True
            waiting = list(self._waiting) if cancel_futures else []
            free = self._width - (self._live - len(self._waiting))
        for future in waiting[max(free, 0) :]:
            future.cancel()  # fails harmlessly for one that has started meanwhile
        self._when_idle_stop()
        if wait:
            self._idle.wait()
            self._join()
            self._threads.shutdown(wait=True)

    def terminate(self) -> None:
        """Cancel every call now (coroutines for real, threads abandoned) and stop."""
        self.cancel_all()
        self._idle.wait(CANCEL_GRACE_SECONDS)
        self._when_idle_stop(force=True)
        self._join(2 * CANCEL_GRACE_SECONDS)  # a coroutine blocking the loop is abandoned
        self._threads.shutdown(wait=False, cancel_futures=True)

    def finish_at_exit(self) -> None:
        """At Python's exit: wait for the submitted calls, unless `terminate` gave up on them."""
        if not self._halted:
            self.shutdown(wait=True)

    def cancel_all(self) -> None:
        """Refuse new calls and cancel every call scheduled; returns at once (any thread)."""
        with self._lock:
            self._closed = self._halted = True
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self._loop.call_soon_threadsafe(self._cancel_all)

    def _schedule(self, make: Callable[[], Coroutine[Any, Any, Any]]) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError(refused())
            self._live += 1
            self._idle.clear()
            self._waiting[future] = None
            try:  # under the lock: the loop queues calls in the order `_waiting` lists them
                self._loop.call_soon_threadsafe(self._start, _Call(future, make))
                closed = None
            except RuntimeError as exc:  # the loop was closed under us
                closed = exc
        if closed is not None:
            self._ended(future)
            raise closed
        return future

    def _ended(self, future: Future[Any]) -> None:
        with self._lock:
            self._waiting.pop(future, None)
            self._live -= 1
            idle = self._live == 0
            if idle:
                self._idle.set()
        if idle:
            self._when_idle_stop()

    def _when_idle_stop(self, force: bool = False) -> None:
        """Once closed and idle (or forced), stop the thread pool (not before: a call that holds
        a slot may still give it a function) and a loop this executor owns."""
        with self._lock:
            done = self._closed and (force or self._live == 0)
        if done:
            self._threads.shutdown(wait=False)
        if done and self._thread is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._loop.stop)

    def _join(self, timeout: float | None = None) -> None:
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # ---- in the loop --------------------------------------------------------------------------
    def _start(self, call: _Call) -> None:
        if call.future.cancelled() or self._halted:
            self._finished(call)
            return
        self._queue.append(call)
        self._queued[call.future] = call
        call.future.add_done_callback(self._on_cancel)
        self._next()

    def _next(self) -> None:
        """Give free slots to the calls waiting longest: calls start in submit order."""
        while self._free and self._queue:
            call = self._queue.popleft()
            if self._queued.pop(call.future, None) is None:
                continue  # cancelled while it waited: already finished
            self._free -= 1
            task = self._loop.create_task(self._run(call))
            self._tasks[call.future] = task
            task.add_done_callback(functools.partial(self._finished, call))

    def _on_cancel(self, future: Future[Any]) -> None:
        """A future cancelled while waiting for a slot: stop waiting (any thread)."""
        if future.cancelled():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._cancel, future)

    def _cancel(self, future: Future[Any]) -> None:
        task = self._tasks.get(future)
        if task is not None:
            task.cancel()
        elif (call := self._queued.pop(future, None)) is not None:
            self._finished(call)

    def _cancel_all(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        queued, self._queued = self._queued, {}
        self._queue.clear()
        for call in queued.values():
            self._finished(call)

    async def _run(self, call: _Call) -> None:
        """Run a call that holds a slot, once the initializer has run."""
        future = call.future
        if not self._ready.done() or self._ready.exception() is not None:
            await asyncio.wrap_future(self._ready)
        with self._lock:
            self._waiting.pop(future, None)
        call.settled = True
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(await call.make())
        except BaseException as exc:  # even cancellation: the outcome goes to the future
            ours = isinstance(exc, asyncio.CancelledError) and cancelled_from_outside()
            future.set_exception(CancelledError(_SHUT) if ours else exc)

    def _finished(self, call: _Call, task: asyncio.Task[None] | None = None) -> None:
        """The call's task ended (or never started): settle its future if nothing did."""
        if task is not None:
            del self._tasks[call.future]
            self._free += 1
            if not task.cancelled():
                task.exception()  # retrieved: the initializer's error goes to the future below
        if not call.settled:  # it never got a slot: cancelled, shut down, or init failed
            call.settled = True
            if call.future.set_running_or_notify_cancel():
                error = self._ready.exception() if self._ready.done() else None
                call.future.set_exception(error or CancelledError(_SHUT))
        self._ended(call.future)
        if task is not None:
            self._next()


@dataclass(eq=False)
class _Call:
    """One scheduled call; `settled` once its future was told it runs or was cancelled."""

    future: Future[Any]
    make: Callable[[], Coroutine[Any, Any, Any]]
    settled: bool = False


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    """The helper thread: run the loop until stopped, then cancel leftovers and close it."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
        leftovers = asyncio.all_tasks(loop)
        for task in leftovers:
            task.cancel()
        if leftovers:
            loop.run_until_complete(asyncio.wait(leftovers, timeout=CANCEL_GRACE_SECONDS))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
