"""Values that describe what happened: a chunk's results, a pool's or a map call's counters."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ChunkResult:
    """The results of a chunk of items, by position: values, seconds, and the exceptions raised.

    `errors` maps a position to the exception user code raised (or a `TaskError` the pool made,
    such as `WorkerDied`); `values[pos]` is meaningless there.
    """

    values: list[Any]
    seconds: list[float]
    errors: dict[int, BaseException] = field(default_factory=dict)


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
    from gearshift.strategies._worker import run_items

    values, seconds, errors = run_items(fn, items, catch)
    return ChunkResult(values, [seconds / max(1, len(values))] * len(values), errors)


def run_chunk_abandoning(
    fn: Callable[[Any], Any], items: Sequence[Any], timeout: float, first_index: int
) -> ChunkResult:
    """`run_chunk` with a deadline per item, for strategies that cannot kill a task.

    Each item runs in its own daemon thread; at the deadline the item gets `TaskTimeout` and the
    thread is abandoned (it runs on, unseen), so the caller's worker moves on at full width.
    """
    import threading

    from gearshift.errors import TaskTimeout, item_error

    result = ChunkResult([], [], {})
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
            result.seconds.append(one.seconds[0])
            if 0 in one.errors:
                result.errors[pos] = one.errors[0]
            continue
        why = f"ran longer than task_timeout={timeout}s; its thread was abandoned, still running"
        result.values.append(None)
        result.seconds.append(timeout)
        result.errors[pos] = item_error(TaskTimeout, first_index + pos, item, why, timeout=timeout)
    return result


@dataclass(frozen=True)
class Statistics:
    """Counters of a pool or a map call, for tests to assert on instead of timing."""

    tasks_submitted: int = 0
    tasks_done: int = 0
    tasks_failed: int = 0
    tasks_retried: int = 0
    workers_started: int = 0
    workers_lost: int = 0
    chunksize: int = 0
    width: int = 0  # workers a map call ran at, at the end (a ramp may have grown it)

    def replace(self, **changes: int) -> Statistics:
        return dataclasses.replace(self, **changes)
