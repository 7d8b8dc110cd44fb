"""The one exception tree of gearshift.

    GearshiftError
    ├── UsageError (also ValueError)        bad input: which argument, what was wrong, the fix
    ├── StrategyUnavailable                 a missing extra or an unreachable cluster
    ├── TaskError                           one item's failure: .index, .item (a truncated repr)
    │   ├── TaskFailed                      user code raised; the original exception is __cause__
    │   ├── TaskTimeout (also TimeoutError) the item ran past task_timeout
    │   └── WorkerDied                      the process running the item died: .pid, .exitcode
    ├── InitializerFailed (also BrokenExecutor)  a worker's initializer raised: the pool is unusable
    ├── WorkerStartFailed (also BrokenExecutor)  a worker exited before it was ready: same
    ├── ProfileError                        the work could not be measured
    └── DownloadError                       a URL could not be fetched: .url, .status

A worker's traceback travels home as a `RemoteTraceback` chained as `__cause__` of the original
exception, as `concurrent.futures` does.
"""

from __future__ import annotations

import reprlib
import signal
from concurrent.futures import BrokenExecutor
from typing import Any, TypeVar

__all__ = [
    "DownloadError",
    "GearshiftError",
    "InitializerFailed",
    "ProfileError",
    "RemoteError",
    "RemoteTraceback",
    "StrategyUnavailable",
    "TaskError",
    "TaskFailed",
    "TaskTimeout",
    "UsageError",
    "WorkerDied",
    "WorkerStartFailed",
]

_repr = reprlib.Repr()
_repr.maxstring = 80
_repr.maxother = 80
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 6


def short_repr(obj: object) -> str:
    """A repr short enough for an error message, whatever the object's size."""
    try:
        return _repr.repr(obj)
    except Exception:  # a broken __repr__ must not hide the real error
        return f"<{type(obj).__name__} object>"


class GearshiftError(Exception):
    """Base of every error gearshift raises."""


class UsageError(GearshiftError, ValueError):
    """An argument was wrong; the message names it and says what to do."""


class StrategyUnavailable(GearshiftError):
    """A strategy cannot run here: a missing extra or an unreachable cluster."""


class InitializerFailed(GearshiftError, BrokenExecutor):
    """A worker's `initializer` raised, so the pool cannot run anything; the cause says why."""


class WorkerStartFailed(GearshiftError, BrokenExecutor):
    """A worker process exited before it was ready to run tasks, so the pool cannot run any."""


class ProfileError(GearshiftError):
    """The work could not be measured (for instance: no items to sample)."""


class DownloadError(GearshiftError):
    """A URL could not be downloaded."""

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, {"url": self.url, "status": self.status}))


class TaskError(GearshiftError):
    """One item's failure. `index` is its position in the input, `item` a truncated repr of it."""

    def __init__(self, message: str, *, index: int, item: str) -> None:
        super().__init__(message)
        self.index = index
        self.item = item
        self.attempts = 1

    def __reduce__(self) -> tuple[Any, ...]:
        state = {k: v for k, v in vars(self).items() if not k.startswith("__")}
        return (_rebuild, (type(self), self.args, state))


TaskErrorT = TypeVar("TaskErrorT", bound=TaskError)


class TaskFailed(TaskError):
    """User code raised; the original exception is `__cause__`."""


class TaskTimeout(TaskError, TimeoutError):
    """The item ran longer than `task_timeout`."""

    def __init__(self, message: str, *, index: int, item: str, timeout: float) -> None:
        super().__init__(message, index=index, item=item)
        self.timeout = timeout


class WorkerDied(TaskError):
    """The worker process running the item died (killed, crashed, exited)."""

    def __init__(
        self, message: str, *, index: int, item: str, pid: int | None, exitcode: int | None
    ) -> None:
        super().__init__(message, index=index, item=item)
        self.pid = pid
        self.exitcode = exitcode

    @property
    def signal_name(self) -> str | None:
        """The name of the signal that killed the worker (`SIGKILL`), if a signal did."""
        return signal_name(self.exitcode)


def signal_name(exitcode: int | None) -> str | None:
    """`SIGKILL` for exit code -9; None for a normal exit."""
    if exitcode is None or exitcode >= 0:
        return None
    try:
        return signal.Signals(-exitcode).name
    except ValueError:
        return f"signal {-exitcode}"


def item_error(
    cls: type[TaskErrorT], index: int, item: object, why: str, **extra: Any
) -> TaskErrorT:
    """A `TaskError` whose message and fields name the item: "item 3 ('abc') <why>"."""
    text = short_repr(item)
    return cls(f"item {index} ({text}) {why}", index=index, item=text, **extra)


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in another process."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return f'\n"""\n{self.tb}"""'


class RemoteError(Exception):
    """Stands in for a worker's exception that could not be pickled: its type and message."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(type_name, message)
        self.type_name = type_name
        self.message = message

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message} (the original exception could not be pickled)"


def remote_error(error: tuple[BaseException, str]) -> BaseException:
    """At home: an exception sent by a worker (`portable`), its traceback text chained as the
    `__cause__`, as `concurrent.futures` does."""
    exc, text = error
    exc.__cause__ = RemoteTraceback(text)
    return exc


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    obj = cls.__new__(cls)
    obj.args = args
    obj.__dict__.update(state)
    return obj
