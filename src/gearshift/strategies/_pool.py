"""gearshift's process pool: one duplex pipe per worker, one dispatcher thread.

    submit / submit_chunk ─► job queue ─► dispatcher ──("run", chunk)──► worker pipe ─► worker
             ▲                              │  waits on every pipe, every worker's pidfd
             └──── future resolved ◄────────┴─ and a wake-up pipe (multiprocessing.connection.wait)

The dispatcher always knows which chunk ("piece") each worker holds, in order, so a dead worker
or an overdue item is attributed to exactly that item: the worker is killed (timeouts) or reaped
(deaths) and replaced, its unstarted pieces go back to the queue, and the pool never "breaks".
A chunk that ran in one message when its worker died is re-run one item per piece, which isolates
the item that kills workers. There is no shared queue, lock or semaphore between processes, so
the pool runs where /dev/shm is missing (AWS Lambda). Workers are fresh interpreters started with
`subprocess` (your `__main__` is not re-imported); functions, items and results travel with
cloudpickle.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any

import cloudpickle

from gearshift.errors import (
    InitializerFailed,
    TaskError,
    TaskTimeout,
    WorkerDied,
    signal_name,
)
from gearshift.outcome import ChunkResult, Statistics
from gearshift.strategies._handles import Job, Piece, WorkerHandle, fail, kill, rebuild, spawn
from gearshift.strategies._worker import FN_CACHE_SIZE, STOP

# A second chunk is sent ahead to a busy worker, to hide the round trip, only if it is this small
# (a worker stuck in C code cannot drain its pipe, and the dispatcher must never block on a send)
PREFETCH_MAX_BYTES = 64 * 1024
# ... and only while this function's chunks are short: there the round trip matters, and a
# chunk queued behind a slow one would wait for it while another worker idles. bench/pool.py.
PREFETCH_MAX_SECONDS = 0.005
TICK_SECONDS = 0.5  # how often worker liveness is polled where no pidfd exists
STOP_GRACE_SECONDS = 2.0  # how long a stopping worker may take before it is killed


class ProcessPool(Executor):
    """A `concurrent.futures.Executor` on worker processes that one bad task cannot break."""

    def __init__(
        self,
        max_workers: int,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        max_tasks_per_child: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """`env`: variables set in every worker, on top of this process's environment."""
        self._state = _Dispatcher(
            max_workers, initializer, initargs, max_tasks_per_child, dict(env or {})
        )
        weakref.finalize(self, self._state.close, False)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._state.submit(_Call(fn, args, kwargs), [None], None, None)

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


@dataclass(frozen=True)
class _Call:
    """`fn(*args, **kwargs)` as a one-argument callable, for `submit`."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def __call__(self, _: object) -> Any:
        return self.fn(*self.args, **self.kwargs)


class _Dispatcher:
    """The pool's state and the one thread that moves work between the queue and the workers."""

    def __init__(
        self,
        max_workers: int,
        initializer: Callable[..., object] | None,
        initargs: tuple[Any, ...],
        max_tasks_per_child: int | None,
        env: dict[str, str],
    ) -> None:
        self.max_workers = max_workers
        self.max_tasks_per_child = max_tasks_per_child
        self.env = env
        self.initializer = (
            None if initializer is None else cloudpickle.dumps((initializer, initargs))
        )
        self.lock = threading.Lock()
        self.queue: deque[Piece] = deque()
        self.workers: list[WorkerHandle] = []
        self.closing = self.cancel_queued = False
        self.broken: BaseException | None = None
        self.counts = dict.fromkeys(
            ["tasks_submitted", "tasks_done", "tasks_failed", "workers_started", "workers_lost"], 0
        )
        self.keys = itertools.count()
        self.fns: dict[int, tuple[Callable[..., Any], int, bytes]] = {}  # id -> (fn, key, bytes)
        self.chunk_seconds: dict[int, float] = {}  # fn key -> a recent chunk's compute time
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        weakref.finalize(self, _close_fds, self.wake_r, self.wake_w)
        self.thread: threading.Thread | None = None

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
            key, fn_bytes = self._pickled(fn)
        except Exception as exc:
            if first_index is not None:
                raise  # map turns this into a UsageError that names fn
            future.set_exception(exc)  # as ProcessPoolExecutor does for a call it cannot pickle
            return future
        with self.lock:
            if self.broken is not None:
                raise type(self.broken)(*self.broken.args) from self.broken
            if self.closing:
                raise RuntimeError("cannot schedule new futures after shutdown")
            job = Job(future, key, fn_bytes, items, first_index, task_timeout)
            self.queue.append(Piece(job, 0, len(items)))
            self.counts["tasks_submitted"] += len(items)
            if self.thread is None:
                self.thread = threading.Thread(target=self.run, name="gearshift-pool", daemon=True)
                self.thread.start()
                _live.add(self)
        self.wake()
        return future

    def _pickled(self, fn: Callable[..., Any]) -> tuple[int, bytes]:
        """Pickle each function once (map sends it with every chunk); keys are never reused."""
        if isinstance(fn, _Call):
            return next(self.keys), cloudpickle.dumps(fn)
        cached = self.fns.get(id(fn))
        if cached is None or cached[0] is not fn:
            cached = (fn, next(self.keys), cloudpickle.dumps(fn))
            if len(self.fns) >= FN_CACHE_SIZE:
                self.fns.pop(next(iter(self.fns)))
            self.fns[id(fn)] = cached
        return cached[1], cached[2]

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
            fail([p for p in self.queue if not p.job.started], None)
            self.queue = deque(p for p in self.queue if p.job.started)
        self._dispatch()
        if closing and not self.queue and not any(w.pieces for w in self.workers):
            return False
        deadline = self._next_deadline()
        timeout = TICK_SECONDS if deadline is None else max(0.0, deadline - time.monotonic())
        waitables: list[Any] = [self.wake_r]
        for worker in self.workers:
            waitables.append(worker.conn)
            if worker.pidfd is not None:
                waitables.append(worker.pidfd)
        ready = wait(waitables, min(timeout, TICK_SECONDS))
        if self.wake_r in ready:
            os.read(self.wake_r, 4096)
        for worker in list(self.workers):
            if worker.conn in ready:
                self._receive(worker)
            elif worker.proc.poll() is not None:
                self._lose(worker, None)
        self._expire(time.monotonic())
        return True

    def _dispatch(self) -> None:
        """Send queued pieces to idle workers, starting workers while there is work for them."""
        while self.queue:
            piece = self.queue[0]
            if piece.job.future.done() or (not piece.job.started and piece.job.future.cancelled()):
                self.queue.popleft()
                continue
            if not self._pickle(piece):
                continue
            workers = [w for w in self.workers if not w.retiring]
            idle = [w for w in workers if not w.pieces]
            if not idle and len(workers) < self.max_workers:
                idle = [self._start_worker()]
            target = idle[0] if idle else self._prefetch_target(piece)
            if target is None:
                return
            self.queue.popleft()
            if target.budget is not None and piece.stop - piece.start > target.budget:
                rest = Piece(piece.job, piece.start + target.budget, piece.stop, piece.isolated)
                self.queue.appendleft(rest)  # the worker retires after its share
                piece = Piece(piece.job, piece.start, rest.start, piece.isolated)
                if not self._pickle(piece):
                    continue
            self._send(target, piece)

    def _pickle(self, piece: Piece) -> bool:
        """Pickle the piece's items once; on failure, fail only the unpicklable items."""
        if piece.blob is not None:
            return True
        try:
            piece.blob = cloudpickle.dumps(piece.job.items[piece.start : piece.stop])
            return True
        except Exception as exc:
            if self.queue and self.queue[0] is piece:
                self.queue.popleft()
            self._unpicklable(piece, exc)
            return False

    def _prefetch_target(self, piece: Piece) -> WorkerHandle | None:
        """The busy worker likeliest to finish soon, if sending ahead to it pays off."""
        typical = self.chunk_seconds.get(piece.job.fn_key)
        assert piece.blob is not None
        if typical is None or typical > PREFETCH_MAX_SECONDS:
            return None
        if len(piece.blob) > PREFETCH_MAX_BYTES:
            return None
        now = time.monotonic()
        busy = [w for w in self.workers if len(w.pieces) == 1 and not w.retiring]
        busy = [w for w in busy if now - w.pieces[0].item_started < 2 * typical + 0.001]
        return max(busy, key=lambda w: w.pieces[0].item_started, default=None)

    def _start_worker(self) -> WorkerHandle:
        worker = spawn(list(sys.path), self.initializer, self.max_tasks_per_child, self.env)
        self.workers.append(worker)
        self.counts["workers_started"] += 1
        return worker

    def _send(self, worker: WorkerHandle, piece: Piece) -> None:
        job = piece.job
        if not job.started:
            job.started = True
            if not job.future.set_running_or_notify_cancel():
                return
        fn_bytes = None
        if job.fn_key not in worker.fn_keys:
            fn_bytes = job.fn_bytes
            if len(worker.fn_keys) >= FN_CACHE_SIZE:  # mirrors the worker's own eviction
                worker.fn_keys.pop(next(iter(worker.fn_keys)))
            worker.fn_keys[job.fn_key] = None
        if not worker.pieces:
            piece.item_started = time.monotonic()
        if worker.budget is not None:
            worker.budget -= piece.stop - piece.start
        worker.pieces.append(piece)
        try:
            worker.conn.send_bytes(
                pickle.dumps(("run", job.fn_key, fn_bytes, piece.blob, piece.exact))
            )
        except OSError:
            self._lose(worker, None)

    def _unpicklable(self, piece: Piece, exc: Exception) -> None:
        """Fail only the items that cannot be pickled; send the rest on, one by one."""
        job = piece.job
        for pos in range(piece.start, piece.stop):
            try:
                cloudpickle.dumps(job.items[pos])
            except Exception as item_exc:
                why = f"the item could not be pickled: {type(item_exc).__name__}: {item_exc}"
                self._finish(job, pos, None, 0.0, TypeError(why))
            else:
                self.queue.appendleft(Piece(job, pos, pos + 1, isolated=True))

    def _receive(self, worker: WorkerHandle) -> None:
        """Handle every message waiting on a worker's pipe; a closed pipe means it died."""
        try:
            while worker.conn.poll():
                self._handle(worker, pickle.loads(worker.conn.recv_bytes()))
        except (EOFError, OSError):
            self._lose(worker, None)

    def _handle(self, worker: WorkerHandle, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "log":  # the pool's own handlers emit the worker's record
            logging.getLogger(message[1].name).handle(message[1])
            return
        if kind == "ready":
            worker.ready = True
            if worker.pieces:
                worker.pieces[0].item_started = time.monotonic()
            return
        if kind == "init_failed":
            exc = rebuild(message[1])
            with self.lock:
                self.broken = InitializerFailed(f"the pool's initializer raised {exc!r}")
                self.broken.__cause__ = exc
            return
        piece = worker.pieces[0]
        job, base = piece.job, piece.start + piece.done
        if kind == "fail":
            exc = rebuild(message[1])
            for pos in range(base, piece.stop):
                self._finish(job, pos, None, 0.0, exc)
            piece.done = piece.stop - piece.start
        else:
            _, values, seconds, errors, _final = message
            for offset, value in enumerate(values):
                error = errors.get(offset)
                error = None if error is None else rebuild(error)
                self._finish(job, base + offset, value, seconds[offset], error)
            piece.done += len(values)
            if job.first_index is not None:  # map's chunks; plain calls each have their own key
                if len(self.chunk_seconds) >= FN_CACHE_SIZE:
                    self.chunk_seconds.clear()
                self.chunk_seconds[job.fn_key] = sum(seconds)
        piece.item_started = time.monotonic()
        if piece.done >= piece.stop - piece.start:
            worker.pieces.popleft()
            if worker.pieces:
                worker.pieces[0].item_started = time.monotonic()
            elif worker.retiring:  # max_tasks_per_child reached: let it exit, reap it later
                with contextlib.suppress(OSError):
                    worker.conn.send_bytes(STOP)

    def _finish(
        self, job: Job, pos: int, value: Any, seconds: float, error: BaseException | None
    ) -> None:
        job.result.values[pos] = value
        job.result.seconds[pos] = seconds
        if error is not None:
            job.result.errors[pos] = error
            self.counts["tasks_failed"] += 1
        job.left -= 1
        self.counts["tasks_done"] += 1
        if job.left or job.future.done():
            return
        if job.first_index is not None:
            job.future.set_result(job.result)
        elif 0 in job.result.errors:
            job.future.set_exception(job.result.errors[0])
        else:
            job.future.set_result(job.result.values[0])

    def _deadline(self, worker: WorkerHandle) -> float | None:
        """When the item `worker` is running becomes overdue (None: no timeout, or not started)."""
        if not worker.ready or not worker.pieces:
            return None
        timeout = worker.pieces[0].job.task_timeout
        return None if timeout is None else worker.pieces[0].item_started + timeout

    def _next_deadline(self) -> float | None:
        deadlines = [d for w in self.workers if (d := self._deadline(w)) is not None]
        return min(deadlines, default=None)

    def _expire(self, now: float) -> None:
        for worker in list(self.workers):
            deadline = self._deadline(worker)
            if deadline is not None and now >= deadline:
                self._lose(worker, worker.pieces[0].job.task_timeout)

    def _lose(self, worker: WorkerHandle, timeout: float | None) -> None:
        """A worker died (or overran `timeout`): blame the running item, requeue the rest."""
        if worker not in self.workers:
            return
        if worker.retiring and not worker.pieces:  # it exited as told, nothing was lost
            self._reap(worker)
            return
        kill(worker)
        self._reap(worker)
        self.counts["workers_lost"] += 1
        if not worker.pieces:
            return
        running, *waiting = worker.pieces
        job, pos = running.job, running.start + running.done
        requeue = [Piece(p.job, p.start, p.stop, p.isolated) for p in waiting]
        if running.exact or pos + 1 == running.stop:  # the running item is known
            error: TaskError
            if timeout is not None:
                why = f"ran longer than task_timeout={timeout}s and its worker was killed"
                error = job.error_for(pos, TaskTimeout, why, timeout=timeout)
            else:
                pid, code = worker.proc.pid, worker.proc.returncode
                why = f"killed its worker (pid {pid}, {signal_name(code) or f'exit code {code}'})"
                error = job.error_for(pos, WorkerDied, why, pid=pid, exitcode=code)
            self._finish(job, pos, None, 0.0, error)
            if pos + 1 < running.stop:
                requeue.insert(0, Piece(job, pos + 1, running.stop))
        else:  # the chunk ran as one message: re-run its items one by one to find the culprit
            requeue[:0] = [Piece(job, p, p + 1, isolated=True) for p in range(pos, running.stop)]
        self.queue.extendleft(reversed(requeue))

    def _reap(self, worker: WorkerHandle) -> None:
        if worker in self.workers:
            self.workers.remove(worker)
        worker.proc.wait()
        worker.conn.close()
        if worker.pidfd is not None:
            os.close(worker.pidfd)

    def _stop_all(self) -> None:
        """Ask every worker to exit, give them all one grace period together, kill the rest."""
        workers = list(self.workers)
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.conn.send_bytes(STOP)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for worker in workers:
            try:
                worker.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                kill(worker)
            self._reap(worker)


def _close_fds(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


_live: weakref.WeakSet[_Dispatcher] = weakref.WeakSet()


def _at_exit() -> None:
    """At interpreter exit, let every live pool finish its work and stop its workers."""
    for dispatcher in list(_live):
        dispatcher.close(wait=True)


getattr(threading, "_register_atexit", atexit.register)(_at_exit)
