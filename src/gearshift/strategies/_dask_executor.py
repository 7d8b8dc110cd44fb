"""The executor behind the Dask strategy: late binding over a dask client.

    submit / submit_chunk ─► local FIFO ─► at most TASKS_PER_THREAD tasks per cluster thread in
         ▲                                  the cluster (ClientExecutor ─► scheduler ─► worker)
         └──── outcome ◄── ChunkJob / Send (`_dask_tasks`) ◄── each task as it lands ◄┘

Why late binding: dask places a small group of tasks on workers eagerly, so a chunk queued
behind a slow one would wait while another worker idles, and would die with that worker's
culprit. Holding the surplus here lets the scheduler always place a task on a free thread.
"""

from __future__ import annotations

import concurrent.futures as futures
import contextlib
import functools
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future
from typing import Any

import cloudpickle

from gearshift.errors import call_repr
from gearshift.strategies._dask_tasks import (
    ChunkJob,
    Send,
    died,
    killed,
    outcome,
    run_packed,
    settle,
    start_owner,
)
from gearshift.strategies._exit import finish_at_exit, refused
from gearshift.strategies.base import ChunkExecutor
from gearshift.values import ChunkResult

Init = tuple[str, Callable[..., object], tuple[Any, ...]]  # token, initializer, initargs
# Tasks in the cluster per cluster thread; the rest wait here. bench/cluster.py finds 2 a little
# faster on a busy machine (the next task waits on the worker, not one round trip away), but a
# task queued on a worker dies with it and waits behind a slow one: 1 keeps blame exact.
TASKS_PER_THREAD = 1
CAPACITY_REFRESH_SECONDS = 2.0  # how often the cluster's thread count is asked again
FN_CACHE_SIZE = 8  # functions kept pickled per executor


def threads_of(client: Any) -> int:
    """The number of threads of the cluster's workers (a call to the scheduler)."""
    return max(1, int(sum(client.nthreads().values())))


class DaskExecutor(ChunkExecutor):
    """A `concurrent.futures.Executor` on a dask client; closes what it started on shutdown."""

    def __init__(self, client: Any, owned: list[Any], setup: Init | None) -> None:
        self._client = client
        self._owned = owned  # the client and cluster it started, closed in that order
        self._inner = client.get_executor(pure=False)
        self._setup = None if setup is None else cloudpickle.dumps(setup)
        self._fns: dict[int, tuple[Callable[..., Any], bytes]] = {}  # id -> (fn, pickled)
        self._lock = threading.Lock()
        self._closed = self._released = False
        self._owners: set[Future[Any]] = set()  # unfinished futures handed out
        self._waiting: deque[Send] = deque()
        self._in_cluster: set[Send] = set()
        self._threads = threads_of(client)
        self._dead: dict[str, int] = {}  # workers seen dying since: address -> their threads
        self._refreshed = time.monotonic()
        if owned:  # a cluster of its own: like a ThreadPoolExecutor's, its calls finish at exit
            finish_at_exit(self)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self._refresh()
        owner = self._own(Future())
        try:
            call = (self.pickled(fn), cloudpickle.dumps((args, kwargs)), None, 0, True)
        except Exception as exc:  # as ProcessPoolExecutor does: the future holds the error
            settle(owner, exception=exc)
            return owner
        label = call_repr(fn, args, kwargs)  # names the call if its worker dies; holds no args

        def landed(inner: Future[Any]) -> None:
            if inner.cancelled():
                settle(owner, exception=CancelledError("the dask future was cancelled"))
            elif (exc := inner.exception()) is not None:
                settle(owner, exception=died(exc, 0, None, call=label) if killed(exc) else exc)
            else:
                values, _, errors = outcome(inner.result(), 1)
                settle(owner, values[0], exception=errors.get(0))

        self.send(Send(call, owner, landed))
        return owner

    def submit_chunk(
        self,
        fn: Callable[[Any], Any],
        items: Sequence[Any],
        *,
        first_index: int,
        task_timeout: float | None,
    ) -> Future[ChunkResult]:
        """Run `fn` on each item on the cluster; the result holds every item's outcome."""
        self._refresh()
        job = ChunkJob(self, self.pickled(fn), list(items), first_index, task_timeout)
        self._own(job.future)
        job.send(0, len(items))
        return job.future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new work; cancel the queued calls if asked; wait for the rest if asked;
        close the client and cluster this executor started."""
        with self._lock:
            self._closed = True
            owners = list(self._owners)
        if cancel_futures:
            for owner in owners:
                owner.cancel()  # refused by those already running on the cluster
        if wait:
            futures.wait(owners)
        with self._lock:
            release, self._released = not self._released, True
        if release:
            for resource in self._owned:
                resource.close()

    def finish_at_exit(self) -> None:
        """At Python's exit: wait for the submitted calls, unless they were let go already."""
        if not self._released:
            self.shutdown(wait=True)

    def terminate(self) -> None:
        """Cancel everything, queued or in the cluster (a running task's thread runs on)."""
        with self._lock:
            self._closed = True
            sent = [s.inner for s in self._in_cluster if s.inner is not None]
            owners = list(self._owners)
        for owner in owners:
            owner.cancel()
        for inner in sent:
            inner.cancel()
        self.shutdown(wait=False)
        for owner in owners:  # whatever the closed client will never report
            settle(owner, exception=CancelledError("the executor was shut down"))

    # ---- the window into the cluster ----------------------------------------------------------
    def send(self, send: Send) -> None:
        with self._lock:
            if len(self._in_cluster) >= self._capacity():
                self._waiting.append(send)
                return
            self._in_cluster.add(send)
        self._dispatch(send)

    def _dispatch(self, send: Send | None) -> None:
        while send is not None:
            if start_owner(send.owner):
                inner: Future[Any]
                try:
                    inner = self._inner.submit(run_packed, *send.args, self._setup)
                except BaseException as exc:  # the client is closed or broken
                    inner = Future()
                    inner.set_exception(exc)
                send.inner = inner
                inner.add_done_callback(functools.partial(self._landed, send))
                return
            send = self._next(send)  # its owner was cancelled: the slot goes to the next

    def _next(self, done: Send) -> Send | None:
        with self._lock:
            self._in_cluster.discard(done)
            if not self._waiting or len(self._in_cluster) >= self._capacity():
                return None
            send = self._waiting.popleft()
            self._in_cluster.add(send)
            return send

    def _landed(self, send: Send, inner: Future[Any]) -> None:
        send.inner = None  # drop it: its result may leave the cluster
        exc = None if inner.cancelled() else inner.exception()
        if exc is not None and killed(exc):
            worker = getattr(exc, "last_worker", None)
            with self._lock:
                self._dead[str(getattr(worker, "address", ""))] = getattr(worker, "nthreads", 1)
        self._dispatch(self._next(send))  # keep the cluster busy first
        send.landed(inner)

    def _capacity(self) -> int:
        """Tasks allowed in the cluster: per live thread (a dead worker's until it is replaced,
        so that a task re-sent after a death never queues behind another on one worker)."""
        return TASKS_PER_THREAD * max(1, self._threads - sum(self._dead.values()))

    def _refresh(self) -> None:
        """Follow the cluster's size (workers join, die, restart) every few seconds.

        A call to the scheduler: only from the caller's thread, never the client's own."""
        if time.monotonic() - self._refreshed < CAPACITY_REFRESH_SECONDS:
            return
        self._refreshed = time.monotonic()
        threads = threads_of(self._client)
        with self._lock:
            self._threads, self._dead = threads, {}
            ready = []
            while self._waiting and len(self._in_cluster) < self._capacity():
                ready.append(self._waiting.popleft())
                self._in_cluster.add(ready[-1])
        for send in ready:
            self._dispatch(send)

    def pickled(self, fn: Callable[..., Any]) -> bytes:
        """`fn` pickled once per executor (map sends it with every chunk)."""
        cached = self._fns.get(id(fn))
        if cached is None or cached[0] is not fn:
            cached = (fn, cloudpickle.dumps(fn))  # unpicklable: map names fn in a UsageError
            if len(self._fns) >= FN_CACHE_SIZE:
                self._fns.pop(next(iter(self._fns)))
            self._fns[id(fn)] = cached
        return cached[1]

    def _own(self, future: Future[Any]) -> Future[Any]:
        with self._lock:
            if self._closed:
                raise RuntimeError(refused())
            self._owners.add(future)
        future.add_done_callback(self._disown)
        return future

    def _disown(self, future: Future[Any]) -> None:
        with self._lock:
            self._owners.discard(future)
        if future.cancelled():  # wake concurrent.futures.wait() on it, as executors must
            with contextlib.suppress(RuntimeError):  # `_start` notified it first
                future.set_running_or_notify_cancel()
