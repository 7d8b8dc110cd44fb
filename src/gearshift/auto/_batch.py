"""What the sample (_sampling.py) records: batches of items timed as a whole, and its phases."""

from __future__ import annotations

import math
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, overload

from gearshift.auto._canary import Queued
from gearshift.auto._take import joined_items
from gearshift.machine import available_cores
from gearshift.strategies import fails_its_item
from gearshift.strategies.processes.worker import run_items
from gearshift.values import ChunkResult

CORES_SECONDS = 1.0  # how long `cores()` trusts its last reading


def cores() -> int:
    """`machine.available_cores()`, read at most once a second: it reads a few cgroup files
    (~0.15 ms), and a tiny job's sample asked three times."""
    now = time.monotonic()
    if now - _cores[1] > CORES_SECONDS:
        _cores[:] = [available_cores(), now]
    return int(_cores[0])


_cores: list[float] = [1, -math.inf]
MAX_BATCH = 1 << 16  # items in a batch at most: 64k tiny ones take ~5 ms
SCALING_THREADS = 2  # 2 threads tell GIL-bound (1.0x) from GIL-free or waiting (2.0x)
# Phase 2 for waiting-bound work (bench/auto.py: HTTP, sleep, subprocess). Below this CPU share,
# as chooser.WAITING_BOUND_SHARE: what 2 threads show about the GIL decides nothing there.
WAVE_BELOW_SHARE = 0.5
MAX_WAVE = 64  # threads; as chooser.MAX_THREADS: no wider than the run itself may go


@dataclass
class Record:
    """One item's outcome: its value or the exception it raised, wall and thread CPU seconds."""

    value: Any = None
    error: BaseException | None = None
    wall: float = 0.0
    cpu: float = 0.0


@dataclass
class Batch:
    """Items run together, timed as a whole: their values, the exceptions raised (by position),
    wall and thread CPU seconds, and the seconds load took from them (`machine`)."""

    items: Sequence[Any]
    values: list[Any]
    errors: dict[int, BaseException]
    wall: float
    cpu: float
    lost: float = 0.0

    def record(self, i: int) -> Record:
        """Item i's outcome, with an equal share of the batch's times."""
        n = len(self.items)
        return Record(self.values[i], self.errors.get(i), self.wall / n, self.cpu / n)


def run_batch(
    call: Callable[[Any], Any], items: Sequence[Any], queued: Queued | None = None
) -> Batch:
    """`items` run in this thread by the workers' own loop, timed as a whole; with `queued`
    (this thread's), the time it sat queued for a CPU meanwhile is the batch's `lost`."""
    before, cpu = 0.0 if queued is None else queued(), time.thread_time()
    values, wall, errors = run_items(call, items, fails_its_item)  # Ctrl-C goes through
    cpu = time.thread_time() - cpu
    lost = 0.0 if queued is None else queued() - before
    return Batch(items, values, errors, wall, cpu, lost)


END = object()
# What the chooser would pick if the items held the GIL (False) or released it (True).
Ask = Callable[["Phases", bool], str]


@dataclass
class Phases:
    """What the sample ran: batches in input order, and which of them the averages use."""

    taken: list[Batch] = field(default_factory=list)  # every sampled batch, in input order
    measured: list[Batch] = field(default_factory=list)  # what the per-item averages use
    threaded: list[Batch] = field(default_factory=list)  # what phase 2 ran, per thread
    threads: int = SCALING_THREADS  # how many threads phase 2 ran on
    thread_speedup: float | None = None  # its throughput over one thread's
    exhausted: bool = False
    held: bool = False  # the first item held the GIL throughout, for long (_watch.py): enough
    gil_share: float | None = None  # the canary's: share of the items' CPU time it was locked out
    stolen: float = 0.0  # of the measured items' time, by the hypervisor (`machine.Mark.stolen`)
    shipping: bool = True  # whether processes may still be chosen, so shipping needs measuring
    rss_per_item: float | None = None  # bytes resident memory grew per measured item, phase 1

    @property
    def count(self) -> int:
        return sum(len(batch.items) for batch in self.taken)

    def averages(self) -> tuple[float, float, float, float]:
        """Per measured item: wall, CPU and preempted seconds (load takes no CPU time), and how
        much items differ (coefficient of variation of the batches' means; phase 2's if fewer
        than two were measured)."""
        n = sum(len(b.items) for b in self.measured)
        wall = sum(b.wall for b in self.measured) / n
        cpu = min(wall, sum(b.cpu for b in self.measured) / n)
        lost = min((sum(b.lost for b in self.measured) + self.stolen) / n, wall - cpu)
        walls = [b.wall / len(b.items) for b in self.measured]
        if len(walls) < 2:
            walls = [b.wall / len(b.items) for b in self.threaded]
        mean = sum(walls) / len(walls) if walls else 0.0
        spread = math.sqrt(sum((w - mean) ** 2 for w in walls) / len(walls)) if walls else 0.0
        return wall, cpu, lost, spread / max(mean, 1e-12)

    def own(self) -> tuple[float, float]:
        """An item's own time (wall less load, at least its CPU time) and CPU time, measured."""
        n = sum(len(b.items) for b in self.measured)
        wall, cpu = sum(b.wall for b in self.measured), sum(b.cpu for b in self.measured)
        cpu = min(wall, cpu) / n
        lost = sum(b.lost for b in self.measured) + self.stolen
        return max((wall - lost) / n, cpu, 1e-9), cpu


@dataclass(frozen=True)
class Limits:
    """What the caller allows the sample: its fixed size, the input's length, how many threads."""

    size: int | None = None  # None: adaptive
    total: int | None = None  # the wave takes at most half of the items, if known
    threads: int = MAX_WAVE
    watch: bool = False  # map(strategy="auto"): long items may be handed over still running


def scaling_share(size: int) -> int:
    """With a fixed sample size: half of it runs on threads, if that gives each thread an item."""
    return size // 2 if size >= 1 + SCALING_THREADS else 0


def joined(batches: list[Batch]) -> tuple[Sequence[Any], ChunkResult]:
    """The batches' items and outcomes as one chunk's, in input order. The biggest batch's
    results become the joined list, the others spliced in around them: a splice moves pointers,
    where a new list touches every object and page (1-3 ms on 200,000 results here). The batches
    are spent afterwards."""
    big = max(range(len(batches)), key=lambda i: len(batches[i].items))
    values = batches[big].values
    head: list[Any] = []
    for batch in batches[:big]:
        head += batch.values
    values[0:0] = head
    for batch in batches[big + 1 :]:
        values += batch.values
    items = joined_items([batch.items for batch in batches])
    errors: dict[int, BaseException] = {}
    start = 0
    for batch in batches:
        errors.update({start + pos: error for pos, error in batch.errors.items()})
        start += len(batch.items)
    return items, ChunkResult(values, sum(batch.wall for batch in batches), errors)


class Pairs(Sequence[tuple[Any, Record | None]]):
    """(item, its Record) of every item in `batches`, made only when asked for (_shipping.py
    looks at a few of them; a tiny job's sample has 100,000s)."""

    def __init__(self, batches: list[Batch]) -> None:
        self.batches = batches
        self.starts = list(accumulate((len(b.items) for b in batches), initial=0))

    def __len__(self) -> int:
        return self.starts[-1]

    @overload
    def __getitem__(self, index: int) -> tuple[Any, Record | None]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[Any, Record | None]]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self._pair(i) for i in range(*index.indices(len(self)))]
        return self._pair(index)

    def _pair(self, index: int) -> tuple[Any, Record | None]:
        batch = bisect_right(self.starts, index) - 1
        offset = index - self.starts[batch]
        return self.batches[batch].items[offset], self.batches[batch].record(offset)
