"""What one dask task carries and brings back, and a chunk's bookkeeping across its tasks.

    Send(run_packed's arguments) ─► worker: unpickle fn and items, `run_remote` runs them,
        each item's error (and deadline) kept ─► bytes home ─► `outcome` ─► ChunkJob.record
    KilledWorker for a task of several items ─► each item re-sent alone, so only the item whose
    worker died is reported `WorkerDied` (dask's KilledWorker as its __cause__)

gearshift pickles functions and items itself, so one that cannot be pickled fails with a message
that names it, not dask's "Could not serialize object of type ...".
"""

from __future__ import annotations

import functools
import pickle
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, InvalidStateError
from dataclasses import dataclass
from typing import Any, Protocol

import cloudpickle

from gearshift.errors import InitializerFailed, WorkerDied, item_error
from gearshift.strategies._remote import Task, rebuild, run_remote
from gearshift.values import ChunkResult


@dataclass(eq=False)
class Send:
    """One dask task to run (`run_packed`'s arguments), and the future that wants its outcome."""

    args: tuple[Any, ...]
    owner: Future[Any]
    landed: Callable[[Future[Any]], None]
    inner: Future[Any] | None = None  # the client executor's future, once in the cluster


class Sender(Protocol):
    def send(self, send: Send) -> None: ...


class ChunkJob:
    """One chunk on the cluster; after a worker death its items are re-sent one per task."""

    def __init__(
        self,
        executor: Sender,
        fn: bytes,
        items: list[Any],
        first_index: int,
        timeout: float | None,
    ) -> None:
        self.executor, self.fn, self.items = executor, fn, items
        self.first_index, self.timeout = first_index, timeout
        n = len(items)
        self.result = ChunkResult([None] * n, 0.0, {})
        self.left = n
        self.lock = threading.Lock()
        self.future: Future[ChunkResult] = Future()

    def send(self, start: int, stop: int) -> None:
        try:
            items = cloudpickle.dumps(self.items[start:stop])
        except Exception as exc:  # fail only the items that cannot be pickled
            if stop - start > 1:
                for pos in range(start, stop):
                    self.send(pos, pos + 1)
            else:
                why = f"the item could not be pickled: {type(exc).__name__}: {exc}"
                self.record(start, stop, [None], 0.0, {0: TypeError(why)})
            return
        args = (self.fn, items, self.timeout, self.first_index + start, False)
        self.executor.send(Send(args, self.future, functools.partial(self.landed, start, stop)))

    def landed(self, start: int, stop: int, inner: Future[Any]) -> None:
        """One task of this chunk ended (in the client's thread)."""
        if self.future.done():
            return
        if inner.cancelled():
            settle(self.future, exception=CancelledError("the dask future was cancelled"))
            return
        exc = inner.exception()
        if exc is not None and killed(exc) and stop - start > 1:
            for pos in range(start, stop):  # find the item that kills workers
                self.send(pos, pos + 1)
            return
        if exc is None:
            values, seconds, errors = outcome(inner.result(), stop - start)
        else:  # the task as a whole failed: each of its items gets that error
            values, seconds = [None] * (stop - start), 0.0
            errors = {
                pos - start: died(exc, self.first_index + pos, self.items[pos])
                if killed(exc)
                else exc
                for pos in range(start, stop)
            }
        self.record(start, stop, values, seconds, errors)

    def record(
        self,
        start: int,
        stop: int,
        values: list[Any],
        seconds: float,
        errors: dict[int, BaseException],
    ) -> None:
        """The outcomes of positions start..stop; the future resolves with the last ones."""
        with self.lock:
            self.result.values[start:stop] = values
            self.result.seconds += seconds
            for offset, error in errors.items():
                self.result.errors[start + offset] = error
            self.left -= stop - start
            finished = self.left == 0
        if finished:
            settle(self.future, self.result)


def run_packed(
    fn: bytes, items: bytes, timeout: float | None, first_index: int, call: bool, init: bytes | None
) -> bytes:
    """On a worker: unpickle what `DaskExecutor` packed and run it with `run_remote`.

    gearshift pickles it itself, so an unpicklable function or item fails with a message that
    names it (not dask's "Could not serialize object of type ...")."""
    runner = cloudpickle.loads(fn)
    setup = None if init is None else cloudpickle.loads(init)
    if call:
        return run_remote(Task(runner, call=cloudpickle.loads(items)), setup)
    return run_remote(Task(runner, cloudpickle.loads(items), timeout, first_index), setup)


def start_owner(owner: Future[Any]) -> bool:
    """Mark the owner running, unless it is finished or was cancelled (then False)."""
    try:
        return not owner.done() and (owner.running() or owner.set_running_or_notify_cancel())
    except RuntimeError:  # cancelled and notified meanwhile
        return False


def outcome(blob: bytes, n: int) -> tuple[list[Any], float, dict[int, BaseException]]:
    """Unpack what `run_remote` sent home: values, seconds and each failed item's error."""
    message = pickle.loads(blob)
    if message[0] == "init_failed":
        problem = InitializerFailed(f"the executor's initializer raised {message[1][0]!r}")
        problem.__cause__ = rebuild(message[1])
        return [None] * n, 0.0, dict.fromkeys(range(n), problem)
    _, values, seconds, errors = message
    return values, seconds, {pos: rebuild(error) for pos, error in errors.items()}


def killed(exc: BaseException) -> bool:
    return type(exc).__name__ == "KilledWorker"


def died(exc: BaseException, index: int, item: Any, *, call: str | None = None) -> WorkerDied:
    """`WorkerDied` for the item at `index`, or for a submitted `call` (`fn(args)`), which has
    no index: it is named instead, as the process pool names it."""
    last = getattr(getattr(exc, "last_worker", None), "address", "unknown")
    deaths = getattr(exc, "allowed_failures", 0) + 1
    why = f"was running when its dask worker died (worker deaths: {deaths}; last: {last})"
    if call is not None:
        error = WorkerDied(f"the call {call} {why}", index=0, item=call, pid=None, exitcode=None)
    else:
        error = item_error(WorkerDied, index, item, why, pid=None, exitcode=None)
    error.__cause__ = exc
    return error


def settle(
    future: Future[Any], value: Any = None, *, exception: BaseException | None = None
) -> None:
    try:
        if exception is None:
            future.set_result(value)
        else:
            future.set_exception(exception)
    except InvalidStateError:  # cancelled meanwhile: the outcome is no longer wanted
        pass
