"""How a chunk runs in whatever thread or process a strategy gives it: every item's outcome kept.

The loop itself is the process worker's (`processes.worker.run_items`, standard library only), so
that serial, threads, asyncio's plain functions, Dask and Lithops all run items exactly as a
process worker does.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from gearshift.errors import TaskTimeout, item_error
from gearshift.strategies.processes.worker import run_items
from gearshift.values import ChunkResult


def fails_its_item(exc: BaseException) -> bool:
    """Does `exc`, raised by fn in this process, fail only its item? Any Exception does, and so
    does asyncio.CancelledError: it is a BaseException so that `except Exception` cannot swallow
    a task's cancellation, but nothing cancels a plain function from outside, so fn raised it of
    its own accord (processes and Dask, where even SystemExit is its item's, agree). Ctrl-C
    (KeyboardInterrupt) and SystemExit reach the caller, as from a plain loop. asyncio is not
    imported for this: an instance of its CancelledError means it is loaded."""
    if isinstance(exc, Exception):
        return True
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and isinstance(exc, asyncio.CancelledError)


def run_chunk(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    keep: Callable[[BaseException], bool] | None = fails_its_item,
) -> ChunkResult:
    """Run `fn` over `items`, capturing each item's exception instead of stopping at the first.

    In the caller's process an exception that `fails_its_item` is its item's error and any other
    reaches the caller; a remote worker passes `keep=None`, so that even `SystemExit` from user
    code becomes that item's error instead of ending the worker. One timer for the chunk, as in
    a process worker, whose loop this is.
    """
    values, seconds, errors = run_items(fn, items, keep)
    return ChunkResult(values, seconds, errors)


def run_chunk_abandoning(
    fn: Callable[[Any], Any], items: Sequence[Any], timeout: float, first_index: int
) -> ChunkResult:
    """`run_chunk` with a deadline per item, for strategies that cannot kill a task.

    Each item runs in its own daemon thread; at the deadline the item gets `TaskTimeout` and the
    thread is abandoned (it runs on, unseen), so the caller's worker moves on at full width.
    """
    result = ChunkResult([], 0.0, {})
    for pos, item in enumerate(items):
        box: list[ChunkResult] = []
        runner = threading.Thread(
            target=lambda item=item, box=box: box.append(run_chunk(fn, [item], None)),
            name=f"gearshift-item-{first_index + pos}",
            daemon=True,
        )
        runner.start()
        runner.join(timeout)
        if box:
            one = box[0]
            if 0 in one.errors and not fails_its_item(one.errors[0]):
                raise one.errors[0]  # Ctrl-C or SystemExit from the task: as in a plain loop
            result.values.append(one.values[0])
            result.seconds += one.seconds
            if 0 in one.errors:
                result.errors[pos] = one.errors[0]
            continue
        why = f"ran longer than task_timeout={timeout}s; its thread was abandoned, still running"
        result.values.append(None)
        result.seconds += timeout
        result.errors[pos] = item_error(TaskTimeout, first_index + pos, item, why, timeout=timeout)
    return result
