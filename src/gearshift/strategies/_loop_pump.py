"""LoopPump: a blocking source of results driven in a helper thread, handed to an event loop.

    the loop:  await pump.next_batch()  ◄── call_soon_threadsafe, one per batch ──┐
    the pump thread: for batch in source.batches()  (blocks where the source waits)┘
    stop(): interrupt the source where it waits; wait, bounded, for the thread to let go

`gearshift.aimap` drives `imap`'s iterator with it, so the engine's window, order, retries and
auto's sample run unchanged, never on the loop's thread. The pump holds at most RESULT_BUFFER
results the loop has not taken (one batch may exceed it), so a slow consumer bounds the work in
flight. An async iterable becomes the source's input through `pull`: each item awaited on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Generator, Iterator
from concurrent.futures import Future
from typing import Any, Protocol

RESULT_BUFFER = 1024  # results the pump may hold ready for a consumer slow to take them
_BATCH, _END, _ERROR = "batch", "end", "error"
_NO_MORE = object()


class Source(Protocol):
    """What the pump drives: `imap`'s iterator (`gearshift._window.MapIterator`)."""

    def batches(self) -> Iterator[list[Any]]: ...

    def interrupt(self, error: BaseException) -> None: ...

    def close(self) -> None: ...


class Stopped(Exception):
    """Raised in the pump thread where the source waits, once the consumer has stopped it."""


class LoopPump:
    """Drives one source in a helper thread (started by the first `next_batch`) for `loop`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.finished = asyncio.Event()  # the thread has let go of the source
        self.room = threading.Condition()
        self.buffered = 0  # results posted to the loop and not taken yet
        self.source: Source | None = None
        self.thread: threading.Thread | None = None
        self.stopping = self.ended = False
        self.pulling: Future[Any] | None = None  # an async input's __anext__ in flight
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self.pulled: Generator[Any, None, None] | None = None  # `pull`'s, if the input is async

    def attach(self, source: Source, owner: object) -> None:
        """Drive `source`; if `owner` is garbage-collected unfinished, the work still stops."""
        self.source = source
        self._finalizer = weakref.finalize(owner, self.halt)

    async def next_batch(self) -> list[Any] | None:
        """The next batch of results, None at the end; the source's error is raised here."""
        if self.thread is None and not self.ended:
            self.thread = threading.Thread(target=self._run, name="gearshift-aimap", daemon=True)
            self.thread.start()
        if self.ended:
            return None
        kind, value = await self.queue.get()
        if kind == _BATCH:
            with self.room:
                self.buffered -= len(value)
                self.room.notify()
            return value  # type: ignore[no-any-return]
        self._end()
        await self.finished.wait()  # the workers are stopped: nothing runs on after the end
        if kind == _ERROR:
            raise value
        return None

    async def stop(self, wait: float) -> None:
        """Stop the work and wait for the thread to let go of it, at most `wait` seconds (a plain
        function's item running in a thread cannot be stopped: it ends alone, unseen)."""
        self._end()
        if self.thread is None:
            return
        self.halt()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.finished.wait(), wait)

    def halt(self) -> None:
        """Interrupt the source wherever the thread waits (any thread; returns at once)."""
        with self.room:
            self.stopping = True
            self.room.notify_all()
        pulling = self.pulling
        if pulling is not None:
            pulling.cancel()
        if self.source is not None:
            self.source.interrupt(Stopped("the consumer stopped the work"))

    def _end(self) -> None:
        self.ended = True
        if self._finalizer is not None:
            self._finalizer.detach()

    def _run(self) -> None:
        assert self.source is not None
        try:
            for batch in self.source.batches():
                if not batch:
                    continue
                with self.room:
                    self.room.wait_for(lambda: self.buffered < RESULT_BUFFER or self.stopping)
                    if self.stopping:
                        break
                    self.buffered += len(batch)
                self._post(_BATCH, batch)
            else:
                self._post(_END, None)
        except BaseException as exc:  # the work's error goes to the consumer, whatever it is
            if not self.stopping:
                self._post(_ERROR, exc)
        finally:
            self.source.close()
            if self.pulled is not None:
                self.pulled.close()  # an async input's aclose, on the loop, before `finished`
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
                self.loop.call_soon_threadsafe(self.finished.set)

    def _post(self, kind: str, value: Any) -> None:
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, value))

    def pull(self, source: AsyncIterable[Any]) -> Generator[Any, None, None]:
        """An async iterable as a plain iterator for the thread: each item awaited on the loop,
        and closed (`aclose`, awaited there) by the thread as it lets go, while the loop runs."""
        self.pulled = self._pull(source)
        return self.pulled

    def _pull(self, source: AsyncIterable[Any]) -> Generator[Any, None, None]:
        iterator = source.__aiter__()
        try:
            while not self.stopping:
                pulling = asyncio.run_coroutine_threadsafe(_anext(iterator), self.loop)
                self.pulling = pulling
                if self.stopping:  # halt() ran before `pulling` was set: it could not cancel it
                    pulling.cancel()
                value = pulling.result()
                if value is _NO_MORE:
                    return
                yield value
        finally:
            self.pulling = None
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                closing = aclose()
                try:
                    asyncio.run_coroutine_threadsafe(closing, self.loop).result(timeout=5)
                except RuntimeError:  # the loop is closed: nothing can await it any more
                    closing.close()
                except Exception:  # the iterable's own error on closing: ignored
                    pass


async def _anext(iterator: AsyncIterator[Any]) -> Any:
    try:
        return await iterator.__anext__()
    except StopAsyncIteration:
        return _NO_MORE
