"""The process pool's state, and how a worker's messages become outcomes for its items.

`PoolState` holds the queue of pieces and the workers with the pieces each holds, in order.
Its methods turn each message into outcomes for exactly the items concerned: results (a chunk
that raised nothing is filled with one slice assignment), a chunk that could not be loaded, an
item that cannot be pickled, an initializer that failed. What a worker's end means (a death, a
timeout, a worker never ready) is `_losses`'. Only the dispatcher thread (`_pool`) calls these
methods; `lock` guards what users' threads read.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import pickle
import select
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import cloudpickle

from gearshift.errors import (
    InitializerFailed,
    PicklingFailed,
    UnpicklingFailed,
    chained,
    remote_error,
)
from gearshift.strategies.processes._apart import split
from gearshift.strategies.processes._handles import (
    Call,
    Job,
    Piece,
    Spares,
    WorkerHandle,
    fail,
    retire,
)
from gearshift.strategies.processes._oom import OomLedger
from gearshift.strategies.processes._pickling import by_value, dumps_apart, zero_copy
from gearshift.strategies.processes.worker import FN_CACHE_SIZE

if TYPE_CHECKING:
    from gearshift.strategies.processes._received import Message

_UNPICKLE_HINT = ": can every module it needs be imported there (same sys.path, same packages)?"
PICKLE_HINT = ": pass data that pickle can carry, or use strategy='threads'"


class PoolState:
    """Queue, workers and counters, and the accounting of every message, death and timeout."""

    def __init__(
        self,
        max_workers: int,
        initializer: Callable[..., object] | None,
        initargs: tuple[Any, ...],
        max_tasks_per_child: int | None,
        env: dict[str, str],
        start_method: str,
        max_memory_per_child: int | None = None,
        zero_copy_bytes: int | None = None,
    ) -> None:
        self.max_workers = max_workers
        self.max_tasks_per_child = max_tasks_per_child
        self.max_memory_per_child = max_memory_per_child
        self.env = env
        self.start_method = start_method
        self.initializer = (
            None if initializer is None else cloudpickle.dumps((initializer, initargs))
        )
        self.lock = threading.Lock()
        self.queue: deque[Piece] = deque()
        self.workers: list[WorkerHandle] = []
        self.closing = self.cancel_queued = False
        self.broken: BaseException | None = None
        counted = ["tasks_submitted", "tasks_done", "tasks_failed", "workers_started"]
        self.counts = dict.fromkeys([*counted, "workers_lost", "workers_recycled"], 0)
        self.keys = itertools.count()
        self.chunk_seconds: dict[int, float] = {}  # fn key -> a recent chunk's compute time
        self.fns: dict[int, tuple[Callable[..., Any], int, bytes]] = {}  # id -> (fn, key, bytes)
        self.poller = select.poll()  # the workers' sockets and exit sentinels, kept registered
        self.wake_r, self.wake_w = os.pipe()  # a byte here wakes the dispatcher thread
        os.set_blocking(self.wake_w, False)
        self.poller.register(self.wake_r, select.POLLIN)
        weakref.finalize(self, _close_fds, self.wake_r, self.wake_w)
        self.thread: threading.Thread | None = None  # the dispatcher, once started
        self.oom = OomLedger()
        self.zero_copy = zero_copy(zero_copy_bytes)  # (bytes, memfd name) or None: all in band
        self.threshold = None if self.zero_copy is None else self.zero_copy[0]
        self.spares = Spares(2 * max_workers)  # memfds given back, to refill (2: one sent ahead)

    def pickled(self, fn: Callable[..., Any]) -> tuple[int | None, bytes, list[Any]]:
        """Pickle each function once (map sends it with every chunk); keys are never reused.
        A call (fn with its arguments) has no key: workers do not keep it; its big buffers
        (its arguments') travel apart, as items' do."""
        if isinstance(fn, Call):
            return None, *split(by_value, fn, self.threshold)
        cached = self.fns.get(id(fn))
        if cached is None or cached[0] is not fn:
            cached = (fn, next(self.keys), cloudpickle.dumps(fn))
            if len(self.fns) >= FN_CACHE_SIZE:
                self.fns.pop(next(iter(self.fns)))
            self.fns[id(fn)] = cached
        return cached[1], cached[2], []

    def pickle_piece(self, piece: Piece) -> bool:
        """Pickle the piece's items once; on failure, fail only the unpicklable items."""
        if piece.blob is not None:
            return True
        try:
            items = piece.job.items[piece.start : piece.stop]
            piece.blob, piece.buffers = dumps_apart(items, self.threshold)
            return True
        except Exception as exc:
            if self.queue and self.queue[0] is piece:
                self.queue.popleft()
            self.unpicklable(piece, exc)
            return False

    def cancel_queued_calls(self) -> None:
        """shutdown(cancel_futures=True), once: cancel what is queued, except the calls free
        workers take now, as the standard pool runs those already in its call queue."""
        with self.lock:
            self.cancel_queued = False
        free = self.max_workers - sum(1 for worker in self.workers if worker.pieces)
        kept: deque[Piece] = deque()
        for piece in self.queue:
            if piece.job.started or (free > 0 and not piece.job.future.done()):
                free -= not piece.job.started
                kept.append(piece)
            else:
                fail([piece], None)
        self.queue = kept

    def break_pool(self, error: BaseException) -> None:
        """Nothing can run any more: every pending future gets `error`, later submits raise it."""
        with self.lock:
            self.broken = self.broken or error

    def watch(self, worker: WorkerHandle) -> None:
        """Wake the dispatcher when the worker sends a message or its exit code is known."""
        self.workers.append(worker)
        for fd in (worker.fd, worker.proc.sentinel):
            if fd is not None:
                self.poller.register(fd, select.POLLIN)
        self.oom.watch(worker.proc.pid)  # the first worker's cgroup counts OOM kills

    def receive(self, worker: WorkerHandle) -> bool:
        """Handle one message from a worker's socket (it was readable); False: EOF, it died."""
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            return False
        self.handle(worker, message)
        return True

    def handle(self, worker: WorkerHandle, message: Message) -> None:
        """One message: its head always unpickles, its body (big buffers apart) may not."""
        kind, *head = pickle.loads(message[0])
        if kind in ("ready", "started"):  # initialized / loaded fn: deadlines start now
            worker.ready = True
            if worker.pieces:
                worker.pieces[0].item_started = time.monotonic()
                worker.pieces[0].loading = worker.pieces[0].loading and kind == "ready"
            return
        if kind == "over":  # past max_memory_per_child after an item (unless retired already)
            if worker.pieces or not worker.retiring:
                self.queue.extendleft(reversed(retire(worker)))
                self.counts["workers_recycled"] += 1
            return
        try:
            body = pickle.loads(message[1], buffers=message[2])
        except BaseException as exc:  # even a sys.exit() in a __reduce__: only its items fail
            body = exc
        if kind == "log":  # the pool's own handlers emit the worker's record
            if isinstance(body, logging.LogRecord):
                logging.getLogger(body.name).handle(body)
        elif kind == "init_failed":
            raised = body if isinstance(body, BaseException) else remote_error(body)
            self.break_pool(chained(InitializerFailed("the pool's initializer raised"), raised))
        else:
            self._outcomes(worker, kind, head, body)

    def _outcomes(self, worker: WorkerHandle, kind: str, head: list[Any], body: Any) -> None:
        """A "done" or "fail" message: outcomes for the next items of the running piece."""
        piece = worker.pieces[0]
        job, base = piece.job, piece.start + piece.done
        n = piece.stop - base if kind == "fail" else head[0]
        if kind == "fail":  # fn, the call or the items could not be loaded: all its items fail
            if head[0] == "fn" and job.fn_key is not None:
                worker.fn_keys.pop(job.fn_key, None)  # the worker could not cache it
            error = self._not_loaded(job, head[0], body)
            for pos in range(base, piece.stop):
                self.finish(job, pos, None, 0.0, error)
        elif isinstance(body, BaseException):
            self._not_unpickled(piece, n, body)
        else:
            self._absorb(job, base, *body[1:4])
        piece.done += n
        piece.item_started = time.monotonic()
        if piece.done >= piece.stop - piece.start:
            worker.pieces.popleft()
            if worker.pieces:
                worker.pieces[0].item_started = time.monotonic()
            elif worker.retiring:  # max_tasks_per_child reached: let it exit, reap it later
                retire(worker)
                self.counts["workers_recycled"] += 1

    def _not_unpickled(self, piece: Piece, n: int, exc: BaseException) -> None:
        """The next `n` outcomes of `piece` arrived but cannot be unpickled here: one item's is
        its error; a chunk's items are re-run one by one, so that only the culprit fails."""
        job, base = piece.job, piece.start + piece.done
        if n > 1:
            self.queue.extendleft(
                Piece(job, p, p + 1, isolated=True) for p in reversed(range(base, base + n))
            )
            return
        what = "the result" if job.first_index is not None else f"the result of {job.label}"
        error = UnpicklingFailed(f"{what} could not be unpickled in the pool's process")
        self.finish(job, base, None, 0.0, chained(error, exc, _UNPICKLE_HINT))

    def _not_loaded(self, job: Job, what: str, body: Any) -> BaseException:
        """A "fail" message: the worker could not unpickle fn (or the call), or the items."""
        exc = body if isinstance(body, BaseException) else remote_error(body)
        if job.first_index is None:  # a call: fn and its arguments travel together
            what = f"the call {job.label}"
        error = UnpicklingFailed(f"{what} could not be unpickled in the worker process")
        return chained(error, exc, _UNPICKLE_HINT)

    def _absorb(
        self, job: Job, base: int, values: list[Any], seconds: float, errors: dict[int, Any]
    ) -> None:
        """A "done" message: `values` for positions `base...`, `seconds` for all of them."""
        n = len(values)
        if job.first_index is None or errors:  # a plain call, or something raised: item by item
            for offset, value in enumerate(values):
                error = errors.get(offset)
                error = None if error is None else remote_error(error)
                self.finish(job, base + offset, value, seconds / n, error)
        else:
            job.result.values[base : base + n] = values
            job.result.seconds += seconds
            job.left -= n
            self.counts["tasks_done"] += n
            self.resolve(job)
        if job.fn_key is not None:  # map's chunks; plain calls have no key
            if len(self.chunk_seconds) >= FN_CACHE_SIZE:
                self.chunk_seconds.clear()
            self.chunk_seconds[job.fn_key] = seconds

    def finish(
        self, job: Job, pos: int, value: Any, seconds: float, error: BaseException | None
    ) -> None:
        """One position's outcome."""
        job.result.values[pos] = value
        job.result.seconds += seconds
        if error is not None:
            job.result.errors[pos] = error
            self.counts["tasks_failed"] += 1
        job.left -= 1
        self.counts["tasks_done"] += 1
        self.resolve(job)

    def resolve(self, job: Job) -> None:
        """Complete the job's future once every position has its outcome."""
        if job.left or job.future.done():
            return
        if job.first_index is not None:
            job.future.set_result(job.result)
        elif 0 in job.result.errors:
            job.future.set_exception(job.result.errors[0])
        else:
            job.future.set_result(job.result.values[0])

    def unpicklable(self, piece: Piece, exc: Exception) -> None:
        """Fail only the items that cannot be pickled; send the rest on, one by one."""
        job = piece.job
        for pos in range(piece.start, piece.stop):
            try:
                cloudpickle.dumps(job.items[pos])
            except Exception as item_exc:
                error = PicklingFailed("the item could not be pickled")
                self.finish(job, pos, None, 0.0, chained(error, item_exc, PICKLE_HINT))
            else:
                self.queue.appendleft(Piece(job, pos, pos + 1, isolated=True))


def _close_fds(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
