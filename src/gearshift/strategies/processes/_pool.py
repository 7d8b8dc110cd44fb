"""gearshift's process pool: one duplex socket per worker, one dispatcher thread.

    submit / submit_chunk ─► job queue ─► dispatcher ──("run", chunk)──► worker socket ─► worker
             ▲                              │  polls every socket, every worker's exit
             └──── future resolved ◄────────┴─ sentinel and a wake-up pipe (one select.poll)

The dispatcher always knows which chunk ("piece") each worker holds, in order, so a dead worker
or an overdue item is attributed to exactly that item: the worker is killed (timeouts) or reaped
(deaths) and replaced, its unstarted pieces go back to the queue, and the pool never "breaks"
(`_pool_state` and `_losses` do that accounting). No queue, lock or semaphore is shared between
processes, so the pool runs where /dev/shm is missing (AWS Lambda). Workers are forked by a fork
server or started as fresh interpreters (`_launch`; your `__main__` is not re-imported);
functions and items travel pickled, their big buffers apart, zero-copy, in memfds (`_channel`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from gearshift.errors import PicklingFailed, WorkerStartFailed, chained
from gearshift.strategies.base import ChunkExecutor
from gearshift.strategies.processes._handles import (
    Call,
    Job,
    Piece,
    WorkerHandle,
    fail,
    kill,
    start,
)
from gearshift.strategies.processes._launch import default_start_method
from gearshift.strategies.processes._losses import Losses
from gearshift.strategies.processes._pickling import ZERO_COPY_BYTES
from gearshift.strategies.processes._pool_state import PICKLE_HINT
from gearshift.strategies.processes.worker import FN_CACHE_SIZE, STOP
from gearshift.values import ChunkResult, Statistics

# A second chunk is sent ahead to a busy worker, to hide the round trip, only if it is this small
# (a worker stuck in C code cannot drain its socket, and the dispatcher must never block on a send)
PREFETCH_MAX_BYTES = 64 * 1024
# ... and only while this function's chunks are short: there the round trip matters, and a
# chunk queued behind a slow one would wait for it while another worker idles. bench/pool.py.
PREFETCH_MAX_SECONDS = 0.005
TICK_SECONDS = 0.5  # how often worker liveness is polled where no exit sentinel exists
STOP_GRACE_SECONDS = 2.0  # how long a stopping worker may take before it is killed


class ProcessPool(ChunkExecutor):
    """A `concurrent.futures.Executor` on worker processes that one bad task cannot break."""

    def __init__(
        self,
        max_workers: int,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        max_tasks_per_child: int | None = None,
        env: dict[str, str] | None = None,
        start_method: str | None = None,
        max_memory_per_child: int | None = None,
        zero_copy_bytes: int | None = ZERO_COPY_BYTES,
    ) -> None:
        """`env`: variables set in every worker, on top of this process's environment.
        `start_method`: "forkserver" or "spawn" (see `_launch`); None picks the best here.
        `max_memory_per_child`: resident bytes past which a worker retires after an item.
        `zero_copy_bytes`: buffers this big or bigger travel in memfds (None: never)."""
        method = start_method or default_start_method()
        limits = (max_tasks_per_child, dict(env or {}), method, max_memory_per_child)
        self._state = _Dispatcher(max_workers, initializer, initargs, *limits, zero_copy_bytes)
        weakref.finalize(self, self._state.close, False)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._state.submit(Call(fn, args, kwargs), [None], None, None)

    def submit_chunk(
        self,
        fn: Callable[[Any], Any],
        items: Sequence[Any],
        *,
        first_index: int,
        task_timeout: float | None,
    ) -> Future[ChunkResult]:
        """Run `fn` on each item; the result holds every item's value or error, by position."""
        return self._state.submit(fn, list(items), first_index, task_timeout)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._state.close(wait, cancel_futures)

    def terminate(self) -> None:
        """Kill every worker now and fail what is still pending."""
        self._state.terminate()

    def statistics(self) -> Statistics:
        return self._state.statistics()


class _Dispatcher(Losses):
    """The one thread that moves work between the queue and the workers, and its user-side API."""

    # ---- called from user threads -------------------------------------------------------------
    def submit(
        self,
        fn: Callable[..., Any],
        items: list[Any],
        first_index: int | None,
        task_timeout: float | None,
    ) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            key, fn_bytes, fn_buffers = self.pickled(fn)
        except Exception as exc:
            if first_index is not None:
                raise  # map turns this into a UsageError that names fn
            error = PicklingFailed(f"the call {fn!r} could not be pickled for a worker process")
            future.set_exception(chained(error, exc, PICKLE_HINT))  # as ProcessPoolExecutor does
            return future
        with self.lock:
            if self.broken is not None:
                raise type(self.broken)(*self.broken.args) from self.broken
            if self.closing:
                raise RuntimeError("cannot schedule new futures after shutdown")
            label = repr(fn) if isinstance(fn, Call) else ""
            job = Job(future, key, fn_bytes, items, first_index, task_timeout, label, fn_buffers)
            self.queue.append(Piece(job, 0, len(items)))
            self.counts["tasks_submitted"] += len(items)
            if self.thread is None:
                self.thread = threading.Thread(target=self.run, name="gearshift-pool", daemon=True)
                self.thread.start()
                _live.add(self)
        self.wake()
        return future

    def statistics(self) -> Statistics:
        return Statistics(**self.counts)

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a full pipe: the dispatcher will wake anyway
            os.write(self.wake_w, b"x")

    def close(self, wait: bool = True, cancel_futures: bool = False) -> None:
        with self.lock:
            self.closing = True
            self.cancel_queued = self.cancel_queued or cancel_futures
            thread = self.thread
        self.wake()
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()

    def terminate(self) -> None:
        with self.lock:
            self.closing = self.cancel_queued = True
            self.broken = self.broken or RuntimeError("the pool was terminated")
            workers = list(self.workers)
        for worker in workers:
            kill(worker)
        self.close(wait=True)

    # ---- the dispatcher thread ----------------------------------------------------------------
    def run(self) -> None:
        try:
            while self._step():
                pass
        except BaseException as exc:  # a bug here must fail futures, never leave them hanging
            self.broken = self.broken or exc
        finally:
            pieces = list(self.queue) + [p for w in self.workers for p in w.pieces]
            self._stop_all()
            self.spares.clear()
            self.queue.clear()
            fail(pieces, self.broken or RuntimeError("the pool was shut down"))
            _live.discard(self)

    def _step(self) -> bool:
        """One round: hand out work, wait for an event, handle it. False when the pool is done."""
        with self.lock:
            closing, cancel, broken = self.closing, self.cancel_queued, self.broken
        if broken is not None:
            return False
        if cancel:
            self.cancel_queued_calls()
        self._dispatch()
        idle = not self.queue and not any(w.pieces for w in self.workers)
        self.spares.idle(idle)
        if closing and idle:
            return False
        deadline = self.next_deadline()
        timeout = TICK_SECONDS if deadline is None else max(0.0, deadline - time.monotonic())
        ready = {fd for fd, _ in self.poller.poll(1000 * min(timeout, TICK_SECONDS))}
        if self.wake_r in ready:
            os.read(self.wake_r, 4096)
        for worker in list(self.workers):
            sentinel = worker.proc.sentinel
            if worker.fd in ready:
                if not self.receive(worker):
                    self.lose(worker, None)
            elif (sentinel is None or sentinel in ready) and worker.proc.poll() is not None:
                self.lose(worker, None)
        self.expire(time.monotonic())
        return True

    def _dispatch(self) -> None:
        """Send queued pieces to idle workers, starting workers while there is work for them."""
        while self.queue:
            piece = self.queue[0]
            if piece.job.future.done() or (not piece.job.started and piece.job.future.cancelled()):
                self.queue.popleft()
                continue
            if not self.pickle_piece(piece):
                continue
            workers = [w for w in self.workers if not w.retiring]
            idle = [w for w in workers if not w.pieces]
            if not idle and len(workers) < self.max_workers:
                idle = [self._start_worker(piece)]
            target = idle[0] if idle else self._prefetch_target(piece)
            if target is None:
                return
            self.queue.popleft()
            if target.budget is not None and piece.stop - piece.start > target.budget:
                rest = Piece(piece.job, piece.start + target.budget, piece.stop, piece.isolated)
                self.queue.appendleft(rest)  # the worker retires after its share
                piece = Piece(piece.job, piece.start, rest.start, piece.isolated)
                if not self.pickle_piece(piece):
                    continue
            self._send(target, piece)

    def _prefetch_target(self, piece: Piece) -> WorkerHandle | None:
        """The busy worker likeliest to finish soon, if sending ahead to it pays off."""
        typical = None if piece.job.fn_key is None else self.chunk_seconds.get(piece.job.fn_key)
        if typical is None or typical > PREFETCH_MAX_SECONDS:
            return None
        if piece.nbytes > PREFETCH_MAX_BYTES:  # big buffers apart count: memory held twice
            return None
        now = time.monotonic()
        busy = [w for w in self.workers if len(w.pieces) == 1 and not w.retiring]
        busy = [w for w in busy if now - w.pieces[0].item_started < 2 * typical + 0.001]
        return max(busy, key=lambda w: w.pieces[0].item_started, default=None)

    def _start_worker(self, piece: Piece) -> WorkerHandle:
        by_value = any(b"cloudpickle" in data for data in (piece.job.fn_bytes, piece.blob or b""))
        try:
            worker = start(
                self.start_method,
                self.initializer,
                self.max_tasks_per_child,
                self.env,
                by_value,  # a function (or items) pickled by value: preload cloudpickle
                self.max_memory_per_child,
                self.zero_copy,
                self.spares,
            )
        except OSError as exc:  # fails the pool (see run), as a worker that dies starting does
            raise WorkerStartFailed(
                f"could not start a worker process ({exc}): the system may be out of processes, "
                "file descriptors or memory; try fewer workers, or strategy='threads'"
            ) from exc
        self.watch(worker)
        self.counts["workers_started"] += 1
        return worker

    def _send(self, worker: WorkerHandle, piece: Piece) -> None:
        job = piece.job
        if not job.started:
            job.started = True
            if not job.future.set_running_or_notify_cancel():
                return
        fn_bytes = None
        if job.fn_key is None:  # a call: sent whole, not kept by the worker
            fn_bytes = job.fn_bytes
        elif job.fn_key not in worker.fn_keys:
            fn_bytes = job.fn_bytes
            if len(worker.fn_keys) >= FN_CACHE_SIZE:  # mirrors the worker's own eviction
                worker.fn_keys.pop(next(iter(worker.fn_keys)))
            worker.fn_keys[job.fn_key] = None
        if not worker.pieces:
            piece.item_started = time.monotonic()
        piece.loading = fn_bytes is not None and piece.exact  # the worker says when it is done
        if worker.budget is not None:
            worker.budget -= piece.stop - piece.start
        worker.pieces.append(piece)
        try:  # a call's buffers (sent with it every time), then its items'; a copy: sent empties it
            message = pickle.dumps(("run", job.fn_key, fn_bytes, piece.blob, piece.exact))
            worker.conn.send(message, b"", [*job.fn_buffers, *piece.buffers])
        except OSError:
            self.unsent(worker, piece)

    def _stop_all(self) -> None:
        """Ask every worker to exit, give them all one grace period together, kill the rest."""
        workers = list(self.workers)
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.conn.send(STOP)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for worker in workers:
            if not worker.proc.wait(max(0.0, deadline - time.monotonic())):
                kill(worker)
            self.reap(worker)


_live: weakref.WeakSet[_Dispatcher] = weakref.WeakSet()


def _at_exit() -> None:
    """At interpreter exit, let every live pool finish its work and stop its workers."""
    for dispatcher in list(_live):
        dispatcher.close(wait=True)


getattr(threading, "_register_atexit", atexit.register)(_at_exit)
