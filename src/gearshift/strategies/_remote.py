"""What runs on the remote side of Dask and Lithops: one chunk, its errors made portable, pickled.

    home: Task(fn, items) ─► a Lithops function or a dask worker: `run_remote` ─► bytes home
        ─► `rebuild` each item's error, the remote traceback as its `__cause__`

Kept apart from `_lithops` and `_dask` so that a Lambda or a worker imports only this, `outcome`
and `errors` (and cloudpickle, which both runtimes have): no client code, no threads.
"""

from __future__ import annotations

import pickle
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gearshift.errors import RemoteError, RemoteTraceback
from gearshift.strategies._run import run_chunk, run_chunk_abandoning
from gearshift.values import ChunkResult

Portable = tuple[BaseException, str]  # an exception (or a picklable stand-in) and its traceback

_initialized: set[str] = set()  # initializers already run in this process (a warm Lambda is reused)


@dataclass
class Task:
    """A chunk (`fn` over `items`) or, with `call`, one `fn(*args, **kwargs)` from `submit`.

    `fn` is an attribute of its own so that Lithops' module analysis finds the user's function
    and ships its module to the function's runtime.
    """

    fn: Callable[..., Any]
    items: list[Any] = field(default_factory=lambda: [None])
    timeout: float | None = None
    first_index: int = 0
    call: tuple[tuple[Any, ...], dict[str, Any]] | None = None

    def __call__(self) -> ChunkResult:
        if self.call is not None:
            args, kwargs = self.call
            return run_chunk(lambda _: self.fn(*args, **kwargs), [None], BaseException)
        if self.timeout is None:
            return run_chunk(self.fn, self.items, BaseException)
        return run_chunk_abandoning(self.fn, self.items, self.timeout, self.first_index)


def run_remote(
    runner: Task,
    init: tuple[str, Callable[..., object], tuple[Any, ...]] | None,
) -> bytes:
    """Run one chunk; returns `("done", values, seconds, errors)` or `("init_failed", error)`."""
    import cloudpickle

    if init is not None and init[0] not in _initialized:
        token, initializer, initargs = init
        try:
            initializer(*initargs)
        except BaseException as exc:
            return bytes(cloudpickle.dumps(("init_failed", portable(exc))))
        _initialized.add(token)
    result = runner()
    errors = {pos: portable(exc) for pos, exc in result.errors.items()}
    try:
        return bytes(cloudpickle.dumps(("done", result.values, result.seconds, errors)))
    except Exception:
        pass
    values = list(result.values)
    for pos, value in enumerate(values):  # a value that cannot travel fails its item, not the chunk
        try:
            cloudpickle.dumps(value)
        except Exception as exc:
            values[pos] = None
            problem = TypeError(f"the result could not be pickled: {type(exc).__name__}: {exc}")
            errors[pos] = portable(problem)
    return bytes(cloudpickle.dumps(("done", values, result.seconds, errors)))


def portable(exc: BaseException) -> Portable:
    """The exception (or a `RemoteError` for one that cannot be pickled) and its traceback."""
    import cloudpickle

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        pickle.loads(cloudpickle.dumps(exc))
    except Exception:
        exc = RemoteError(f"{type(exc).__module__}.{type(exc).__qualname__}", str(exc))
    return exc, text


def rebuild(error: Portable) -> BaseException:
    """At home: the exception with the remote traceback chained as its `__cause__`."""
    exc, text = error
    exc.__cause__ = RemoteTraceback(text)
    return exc
