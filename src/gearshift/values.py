"""Values that describe what happened: a chunk's results, a pool's or a map call's counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ChunkResult:
    """The results of a chunk of items, by position, the exceptions raised, and the chunk's time.

    `errors` maps a position to the exception user code raised (or a `TaskError` the pool made,
    such as `WorkerDied`); `values[pos]` is meaningless there. `seconds` is the compute time of
    the whole chunk (items are timed together: timing each would cost more than a tiny item).
    """

    values: list[Any]
    seconds: float
    errors: dict[int, BaseException] = field(default_factory=dict)


@dataclass(frozen=True)
class Statistics:
    """Counters of a pool or a map call, for tests to assert on instead of timing."""

    tasks_submitted: int = 0
    tasks_done: int = 0
    tasks_failed: int = 0
    tasks_retried: int = 0
    workers_started: int = 0
    workers_lost: int = 0
    workers_recycled: int = 0  # retired by max_tasks_per_child or max_memory_per_child, replaced
    chunksize: int = 0
    width: int = 0  # workers a map call ran at, at the end (a ramp may have grown it)
