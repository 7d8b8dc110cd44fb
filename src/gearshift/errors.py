"""The one exception tree of gearshift.

    GearshiftError
    ├── UsageError (also ValueError)        bad input: which argument, what was wrong, the fix
    ├── StrategyUnavailable                 a missing extra or an unreachable cluster
    ├── TaskError                           one item's failure: .index, .item (a truncated repr)
    │   ├── TaskFailed                      user code raised; the original exception is __cause__
    │   ├── TaskTimeout (also TimeoutError) the item ran past task_timeout
    │   └── WorkerDied (also BrokenProcessPool)  the item's process died: .pid, .exitcode
    ├── PicklingFailed (also PicklingError, TypeError)  a call, an item or a result could not
    │                                       be pickled to cross to the other process
    ├── UnpicklingFailed (also UnpicklingError, BrokenProcessPool)  ... or not unpickled there
    ├── InitializerFailed (also BrokenExecutor)  a worker's initializer raised: the pool is unusable
    ├── WorkerStartFailed (also BrokenProcessPool)  a worker exited or hung before it was ready
    ├── ProfileError                        the work could not be measured
    └── DownloadError                       a URL could not be fetched: .url, .status

The "also" bases let code written for the standard pools catch what it catches there:
`ProcessPoolExecutor` raises `BrokenProcessPool` when a worker dies or a call or result cannot be
unpickled, and the pickler's own error when one cannot be pickled. gearshift fails only the call
concerned and the pool runs on, so `breaks_pool` tells the errors after which a pool can run
nothing (the last two above, a standard pool's) from those that concern one call.
`WorkerDied`, `UnpicklingFailed` and `WorkerStartFailed` are made on first use: the module that
defines `BrokenProcessPool` imports multiprocessing and subprocess, which `import gearshift` and a
serial map must not pay for.

A worker's traceback travels home as a `RemoteTraceback` chained as `__cause__` of the original
exception, as `concurrent.futures` does.
"""

from __future__ import annotations

import reprlib
import signal
from _pickle import PicklingError, UnpicklingError
from concurrent.futures import BrokenExecutor
from typing import TYPE_CHECKING, Any, TypeVar

__all__ = [
    "DownloadError",
    "GearshiftError",
    "InitializerFailed",
    "PicklingFailed",
    "ProfileError",
    "RemoteError",
    "RemoteTraceback",
    "StrategyUnavailable",
    "TaskError",
    "TaskFailed",
    "TaskTimeout",
    "UnpicklingFailed",
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


class _WorkerStartFailed(GearshiftError):
    """A worker process exited or hung before it was ready to run tasks: the pool cannot run
    any. Also `BrokenProcessPool`, as the standard pool raises when its workers cannot start."""


class PicklingFailed(GearshiftError, PicklingError, TypeError):
    """A call (fn with its arguments), an item or a result could not be pickled to cross to the
    other process; only that call fails. Also the pickler's usual errors, which the standard
    pool raises there; the cause is the pickler's own."""


class _UnpicklingFailed(GearshiftError, UnpicklingError):
    """A call or a result was pickled but could not be unpickled where it arrived (a module
    missing there, a `__reduce__` that raises); only that call fails. Also `BrokenProcessPool`,
    what the standard pool raises there (its pool breaks)."""


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
ExcT = TypeVar("ExcT", bound=BaseException)


class TaskFailed(TaskError):
    """User code raised; the original exception is `__cause__`."""


class TaskTimeout(TaskError, TimeoutError):
    """The item ran longer than `task_timeout`."""

    def __init__(self, message: str, *, index: int, item: str, timeout: float) -> None:
        super().__init__(message, index=index, item=item)
        self.timeout = timeout


class _WorkerDied(TaskError):
    """The worker process running the item died (killed, crashed, exited). Only this item
    failed and the pool runs on. Also `BrokenProcessPool`, what the standard pool raises here."""

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


# The errors that are also BrokenProcessPool, by name: their bodies above, their classes made
# on first use (see the module docstring); a type checker and the docs see them below.
_ALSO_BROKEN_POOL = {
    "WorkerDied": _WorkerDied,
    "UnpicklingFailed": _UnpicklingFailed,
    "WorkerStartFailed": _WorkerStartFailed,
}

if TYPE_CHECKING:
    from concurrent.futures.process import BrokenProcessPool

    class WorkerDied(_WorkerDied, BrokenProcessPool):
        """The worker process running the item died (killed, crashed, exited)."""

    class UnpicklingFailed(_UnpicklingFailed, BrokenProcessPool):
        """A call or a result could not be unpickled where it arrived."""

    class WorkerStartFailed(_WorkerStartFailed, BrokenProcessPool):
        """A worker process exited or hung before it was ready to run tasks."""


def __getattr__(name: str) -> type[GearshiftError]:
    body = _ALSO_BROKEN_POOL.get(name)
    if body is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from concurrent.futures.process import BrokenProcessPool

    made = type(name, (body, BrokenProcessPool), {"__module__": __name__, "__doc__": body.__doc__})
    cls: type[GearshiftError] = globals().setdefault(name, made)  # one, even if threads race
    return cls


def breaks_pool(exc: BaseException) -> bool:
    """True when `exc` means the executor cannot run anything any more: `InitializerFailed`,
    `WorkerStartFailed`, or a standard pool's `BrokenExecutor`. `WorkerDied` and
    `UnpicklingFailed` are `BrokenExecutor`s too, but each concerns one call."""
    return isinstance(exc, BrokenExecutor) and not isinstance(exc, TaskError | _UnpicklingFailed)


def signal_name(exitcode: int | None) -> str | None:
    """`SIGKILL` for exit code -9; None for a normal exit."""
    if exitcode is None or exitcode >= 0:
        return None
    try:
        return signal.Signals(-exitcode).name
    except ValueError:
        return f"signal {-exitcode}"


def call_repr(fn: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """`name(1, 'a', key=2)`, each argument shortened: how errors name a submitted call."""
    name = getattr(fn, "__qualname__", None) or short_repr(fn)
    shown = [short_repr(a) for a in args] + [f"{k}={short_repr(v)}" for k, v in kwargs.items()]
    more = ", ..." if len(shown) > 6 else ""
    return f"{name}({', '.join(shown[:6])}{more})"


def chained(error: ExcT, cause: BaseException, hint: str = "") -> ExcT:
    """`error`, its message completed with `cause` (`(TypeError: ...)`) and `hint`, and `cause`
    as its `__cause__`: what a failure means for the call, and what the library said."""
    error.args = (f"{error.args[0]} ({type(cause).__name__}: {cause}){hint}",)
    error.__cause__ = cause
    return error


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
