"""The bridge from Lithops' futures to `concurrent.futures`: one driver thread, a few fetchers.

    submit / submit_chunk ──► a Future now; the call queued in the inbox
        driver thread ──► FunctionExecutor.call_async(run_remote, ...)   (the only Lithops caller)
                          at most `width` calls at once; the rest wait here, still cancellable
                     ◄── Lithops' job monitor marks calls ready; the driver polls every 50 ms
        fetch threads ──► ResponseFuture.result() ──► ChunkResult ──► the Future resolved

Lithops' `wait` cannot take calls submitted while it waits and its timeout uses SIGALRM (main
thread only), so the driver polls the states Lithops' monitor sets instead of calling it.
"""

from __future__ import annotations

import atexit
import contextlib
import pickle
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future, InvalidStateError
from concurrent.futures import ThreadPoolExecutor as _Threads
from dataclasses import dataclass
from typing import Any

import cloudpickle

from gearshift.errors import InitializerFailed
from gearshift.strategies._remote import Task, rebuild, run_remote
from gearshift.strategies.base import ChunkExecutor, Initializer
from gearshift.values import ChunkResult

POLL_SECONDS = 0.05  # how often the driver looks for calls Lithops' monitor marked ready
FETCH_THREADS = 8  # results downloaded at once (each is a storage read; S3 on the cloud)
ABORT_JOIN_SECONDS = 30.0  # abort waits this long for the driver to stop the running calls


@dataclass(eq=False)
class _Call:
    """One Lithops call: `task()` remotely gives a ChunkResult; `chunk` says how to resolve."""

    future: Future[Any]
    task: Task
    chunk: bool  # resolve with the ChunkResult (map) or with the one value / exception (submit)
    remote: Any = None  # Lithops' ResponseFuture once invoked


_STOP = object()  # wakes the driver: shutdown or abort was asked for


class LithopsExecutor(ChunkExecutor):
    """A `concurrent.futures.Executor` over one Lithops `FunctionExecutor`, which it owns."""

    def __init__(
        self, config: dict[str, Any], width: int, init: tuple[str, Initializer, tuple[Any, ...]]
    ) -> None:
        from lithops import FunctionExecutor

        self._fexec = FunctionExecutor(config=config, log_level=None)
        self._width = width
        self._checked_fn: object = None
        self._init = init if init[1] is not None else None
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._fetchers = _Threads(FETCH_THREADS, thread_name_prefix="gearshift-lithops-fetch")
        self._lock = threading.Lock()
        self._closing = self._aborting = False
        self._broken: BaseException | None = None
        self._queued: deque[_Call] = deque()  # taken from the inbox, not invoked yet (lock)
        self._pending: list[_Call] = []  # invoked; the driver's alone
        self._fetching: dict[Future[None], _Call] = {}  # ready, being downloaded
        self._driver = threading.Thread(target=self._drive, name="gearshift-lithops", daemon=True)
        self._driver.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._enqueue(_Call(Future(), Task(fn, call=(args, kwargs)), chunk=False))

    def submit_chunk(
        self,
        fn: Callable[[Any], Any],
        items: Sequence[Any],
        *,
        first_index: int,
        task_timeout: float | None,
    ) -> Future[ChunkResult]:
        if fn is not self._checked_fn:  # fail now, so that map names fn in a UsageError
            cloudpickle.dumps(fn)
            self._checked_fn = fn
        task = Task(fn, list(items), task_timeout, first_index)
        return self._enqueue(_Call(Future(), task, chunk=True))

    def _enqueue(self, call: _Call) -> Future[Any]:
        with self._lock:
            if self._broken is not None:
                raise RuntimeError(f"the Lithops executor broke: {self._broken}")
            if self._closing:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._inbox.put(call)
        return call.future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closing = True
            if cancel_futures:
                self._cancel_queued()
            self._inbox.put(_STOP)
        if wait and threading.current_thread() is not self._driver:
            self._driver.join()

    def terminate(self) -> None:
        """Cancel queued calls, stop running ones (localhost kills them; a cloud lets them end)."""
        with self._lock:
            self._closing = self._aborting = True
            self._cancel_queued()
            self._inbox.put(_STOP)
        self._driver.join(ABORT_JOIN_SECONDS)

    def _cancel_queued(self) -> None:
        for call in self._queued:
            call.future.cancel()
        self._queued.clear()
        while True:
            try:
                call = self._inbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(call, _Call):
                call.future.cancel()

    # --- the driver thread: the only one that calls into Lithops, apart from result downloads

    def _drive(self) -> None:
        stopping = False
        try:
            while not self._aborting and not (stopping and self._idle()):
                try:
                    wait = POLL_SECONDS if self._pending or stopping else None
                    message = self._inbox.get(timeout=wait)
                except queue.Empty:
                    message = None
                while message is not None:
                    if message is _STOP:
                        stopping = True
                    else:
                        with self._lock:
                            self._queued.append(message)
                    message = _next_or_none(self._inbox)
                if not self._aborting:
                    self._collect()
                    self._invoke_queued()
        except BaseException as exc:  # Lithops failed as a whole: every call gets the error
            self._broken = exc
            with self._lock:
                self._closing = True
                self._cancel_queued()
        finally:
            self._teardown()

    def _idle(self) -> bool:
        return not (self._queued or self._pending or self._fetching)

    def _invoke_queued(self) -> None:
        while len(self._pending) < self._width:
            with self._lock:
                if not self._queued:
                    return
                call = self._queued.popleft()
            self._invoke(call)

    def _invoke(self, call: _Call) -> None:
        if not call.future.set_running_or_notify_cancel():
            return
        try:
            call.remote = self._fexec.call_async(run_remote, (call.task, self._init))
        except Exception as exc:  # e.g. an item cannot be pickled: that call fails, not the rest
            _settle(call.future, error=exc)
            return
        self._pending.append(call)

    def _collect(self) -> None:
        """Hand the calls Lithops' monitor marked ready (or failed) to the fetch threads."""
        pending = self._pending
        for call in [c for c in pending if c.remote.ready or c.remote.success or c.remote.done]:
            pending.remove(call)
            self._fetching[self._fetchers.submit(self._fetch, call)] = call
        self._fetching = {f: c for f, c in self._fetching.items() if not f.done()}
        monitor = self._fexec.job_monitor
        if pending and not monitor.is_alive():  # it ends once its calls are done; wake it
            monitor.start(fs=[c.remote for c in pending])

    def _fetch(self, call: _Call) -> None:
        try:
            output = call.remote.result(
                throw_except=False, internal_storage=self._fexec.internal_storage
            )
            if call.remote.error or output is None:
                raise _call_error(call.remote)
            result = _decode(output)
        except BaseException as exc:
            _settle(call.future, error=exc)
            return
        if call.chunk:
            _settle(call.future, value=result)
        elif 0 in result.errors:
            _settle(call.future, error=result.errors[0])
        else:
            _settle(call.future, value=result.values[0])

    def _teardown(self) -> None:
        """Settle every call left, stop what still runs, delete the jobs' data, end the threads."""
        self._fetchers.shutdown(wait=not self._aborting, cancel_futures=True)
        error = self._broken or CancelledError("the executor was stopped before this call ended")
        for call in [*self._pending, *self._fetching.values()]:
            _settle(call.future, error=error)  # a no-op for a call whose result came home
        fexec = self._fexec
        with contextlib.suppress(Exception):
            fexec.__exit__(None, None, None)  # stops the monitor, kills local calls still running
        with contextlib.suppress(Exception):
            if fexec.data_cleaner:  # Lithops' own setting: delete the jobs' data in storage
                fexec.clean(clean_cloudobjects=False, clean_fn=True, force=True)
        with contextlib.suppress(Exception):
            atexit.unregister(fexec._clean_at_exit)  # done above; don't keep the executor alive


def _next_or_none(inbox: queue.SimpleQueue[Any]) -> Any:
    try:
        return inbox.get_nowait()
    except queue.Empty:
        return None


def _settle(future: Future[Any], *, value: Any = None, error: BaseException | None = None) -> None:
    """Resolve a future unless it already is (an abort may have settled it first)."""
    with contextlib.suppress(InvalidStateError):
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


def _decode(output: bytes) -> ChunkResult:
    kind, *rest = pickle.loads(output)
    if kind == "init_failed":
        error = InitializerFailed(
            "the initializer raised in a Lithops function, so no task could run; the cause says why"
        )
        error.__cause__ = rebuild(rest[0])
        raise error
    values, seconds, errors = rest
    return ChunkResult(values, seconds, {pos: rebuild(e) for pos, e in errors.items()})


def _call_error(remote: Any) -> BaseException:
    """The error of a call that Lithops itself failed (timeout, out of memory, lost output)."""
    info = getattr(remote, "_exception", None)
    if isinstance(info, tuple) and len(info) >= 2 and isinstance(info[1], BaseException):
        return info[1]
    return RuntimeError(
        f"Lithops call {getattr(remote, 'call_id', '?')} of job {getattr(remote, 'job_id', '?')} "
        "returned no result; see Lithops' logs (logger 'lithops')"
    )
