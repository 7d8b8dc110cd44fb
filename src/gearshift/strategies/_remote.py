"""What runs on the remote side of Dask and Lithops: one chunk, its errors made portable, pickled.

    home: Task(fn, items) ─► a Lithops function or a dask worker: `run_remote` ─► bytes home
        ─► `rebuild` each item's error, the remote traceback as its `__cause__`

Kept apart from `_lithops` and `_dask` so that a Lambda or a worker imports only this, `_run`,
`values`, `errors` and the process worker's encoding (and cloudpickle, which both runtimes have):
no client code, no threads. Errors travel as a process worker's do (`processes.worker.portable`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gearshift.errors import remote_error
from gearshift.strategies._run import run_chunk, run_chunk_abandoning
from gearshift.strategies.processes.worker import encode_done, portable
from gearshift.values import ChunkResult

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
            return run_chunk(lambda _: self.fn(*args, **kwargs), [None], None)
        if self.timeout is None:
            return run_chunk(self.fn, self.items, None)
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
    return encode_done(result.values, result.seconds, result.errors)


rebuild = remote_error  # at home: the exception, its remote traceback chained as __cause__
