"""Serial: each task runs in the calling thread at submit time; the baseline of every speedup."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

from gearshift.strategies._run import fails_its_item
from gearshift.strategies.base import Initializer, Strategy

P = ParamSpec("P")
T = TypeVar("T")


class SerialExecutor(Executor):
    """A `concurrent.futures.Executor` that runs each call before `submit` returns."""

    def __init__(self, initializer: Initializer = None, initargs: tuple[Any, ...] = ()) -> None:
        self._shutdown = False
        if initializer is not None:
            initializer(*initargs)

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        future: Future[T] = Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            if not fails_its_item(exc):  # Ctrl-C and SystemExit reach the caller, as in a loop
                raise
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True


class Serial(Strategy):
    """One item after another in the calling thread: no overhead, no parallelism."""

    name = "serial"
    needs_pickling = False
    submit_runs_items = True

    def default_workers(self) -> int:
        return 1

    def executor(
        self, *, initializer: Initializer = None, initargs: tuple[Any, ...] = ()
    ) -> Executor:
        return SerialExecutor(initializer, initargs)
