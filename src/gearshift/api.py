"""`map` and `imap`: `[fn(x) for x in items]` run by any strategy, with every option checked first.

The work itself runs in the bounded window of `_window.MapIterator`, written once over every
strategy's `submit_chunk`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from gearshift._window import MapIterator, Options
from gearshift.auto import resolve
from gearshift.errors import UsageError, short_repr
from gearshift.strategies import Strategy, check_workers

__all__ = ["MapIterator", "imap", "map"]

DEFAULT_STRATEGY = "auto"


def map(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    strategy: str | Strategy = DEFAULT_STRATEGY,
    max_workers: int | None = None,
    chunksize: int | None = None,
    ordered: bool = True,
    task_timeout: float | None = None,
    retries: int = 0,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    return_exceptions: bool = False,
    progress: bool = False,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
    max_memory_per_child: int | str | None = None,
) -> list[Any]:
    """`[fn(x) for x in items]`, run by `strategy`; see `imap` for every option."""
    it = imap(
        fn,
        items,
        strategy=strategy,
        max_workers=max_workers,
        chunksize=chunksize,
        ordered=ordered,
        task_timeout=task_timeout,
        retries=retries,
        retry_on=retry_on,
        return_exceptions=return_exceptions,
        progress=progress,
        initializer=initializer,
        initargs=initargs,
        max_memory_per_child=max_memory_per_child,
    )
    chunks = it.batches()  # a chunk at a time (list +=), not item by item
    results: list[Any] = next(chunks, [])  # the first chunk's own list: nothing else keeps it
    for values in chunks:
        results += values
    return results


def imap(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    strategy: str | Strategy = DEFAULT_STRATEGY,
    max_workers: int | None = None,
    chunksize: int | None = None,
    ordered: bool = True,
    task_timeout: float | None = None,
    retries: int = 0,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    return_exceptions: bool = False,
    progress: bool = False,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
    max_memory_per_child: int | str | None = None,
) -> MapIterator:
    """Lazily yield `fn(x)` for each item: in input order, or as completed with `ordered=False`.

    `items` is consumed through a bounded window, so any iterable (a generator of ten million
    items) runs in bounded memory. The first failure raises `TaskFailed` (user code raised),
    `TaskTimeout` or `WorkerDied`, naming the item; `return_exceptions=True` yields those errors
    in place instead. `retries` re-runs a failed item (of a `retry_on` type) up to that many times.
    `chunksize=None` adapts chunk sizes to measured durations. `max_memory_per_child` ("2GB")
    recycles a process worker after an item that leaves it over that resident memory (with
    "auto": if it chooses processes). Arguments are checked now; the work starts on the first
    `next()`.
    """
    if not callable(fn):
        raise UsageError(
            f"fn must be callable, got {type(fn).__name__} {short_repr(fn)}: pass the function "
            "itself, e.g. gearshift.map(square, items), not gearshift.map(square(2), items)"
        )
    try:
        iterator = iter(items)
    except TypeError:
        raise UsageError(
            f"items must be iterable (a list, range, generator...), got {type(items).__name__}"
        ) from None
    chosen = resolve(strategy, check_workers(max_workers))
    chosen = chosen.with_recycling(max_memory_per_child=max_memory_per_child)
    chosen.check_callable(fn)
    options = Options(
        chunksize=check_workers(chunksize, "chunksize"),
        ordered=bool(ordered),
        task_timeout=_check_timeout(task_timeout),
        retries=_check_retries(retries),
        retry_on=retry_on if isinstance(retry_on, tuple) else (retry_on,),
        return_exceptions=bool(return_exceptions),
        progress=bool(progress),
        initializer=initializer,
        initargs=tuple(initargs),
    )
    total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
    return MapIterator(fn, iterator, total, chosen, options)


def _check_timeout(task_timeout: object) -> float | None:
    if task_timeout is None:
        return None
    if (
        isinstance(task_timeout, bool)
        or not isinstance(task_timeout, int | float)
        or task_timeout <= 0
    ):
        raise UsageError(
            f"task_timeout must be a number of seconds > 0 or None, got {task_timeout!r}"
        )
    return float(task_timeout)


def _check_retries(retries: object) -> int:
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise UsageError(f"retries must be a whole number >= 0, got {retries!r}")
    return retries
