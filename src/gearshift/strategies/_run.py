"""How a chunk runs in whatever thread or process a strategy gives it: every item's outcome kept.

The loop itself is the process worker's (`processes.worker.run_items`, standard library only), so
that serial, threads, asyncio's plain functions, Dask and Lithops all run items exactly as a
process worker does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from gearshift.errors import TaskTimeout, item_error
from gearshift.strategies.processes.worker import run_items
from gearshift.values import ChunkResult


def run_chunk(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    catch: type[BaseException] = Exception,
) -> ChunkResult:
    """Run `fn` over `items`, capturing each item's exception instead of stopping at the first.

    A remote worker passes `catch=BaseException` so that even `SystemExit` from user code
    becomes that item's error instead of ending the worker. Items get equal shares of one
    timer, as in a process worker, whose loop this is.
    """
    values, seconds, errors = run_items(fn, items, catch)
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
            target=lambda item=item, box=box: box.append(run_chunk(fn, [item], BaseException)),
            name=f"gearshift-item-{first_index + pos}",
            daemon=True,
        )
        runner.start()
        runner.join(timeout)
        if box:
            one = box[0]
            if not isinstance(one.errors.get(0, Exception()), Exception):
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
