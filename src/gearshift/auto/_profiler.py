"""profile(): run a small sample of the work and measure what decides how to run the rest.

Per item: wall time and the CPU time of the running thread (their ratio is the CPU share); whether
the work scales on threads (C code that releases the GIL does, pure Python does not); what the
argument and the result cost to ship to another process (pickled bytes, dumps+loads seconds);
how much items differ. With the cores really available and the GIL's state, that is what
`choose()` decides on.

How big the sample is, and why: `_sampling`. Part of the sample runs on threads at once
(two; for waiting-bound work, as many as the run would use), so `fn` must be thread-safe. Every
result is kept (`profile_sample`), so `map(strategy="auto")` runs no item twice: the sample only
costs the parallelism it forgoes, ~0.1 s of work, or for long items ~25 ms (they are measured
while they run, and the run starts beside them: _watch.py). The target, checked by
bench/auto.py: auto's own overhead is <= 5% of the total on work of 2 s or more.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from typing import Any

from gearshift.auto._sampling import (
    HELD_SWITCHES,
    MAX_WAVE,
    SCALING_THREADS,
    Limits,
    Phases,
    Record,
    run_sample,
)
from gearshift.auto._shipping import ship_cost
from gearshift.auto._watch import WATCHABLE, Watch, watch_first
from gearshift.errors import ProfileError, UsageError
from gearshift.machine import available_cores, gil_enabled
from gearshift.strategies import is_async_callable
from gearshift.units import percent, seconds, size
from gearshift.values import ChunkResult

__all__ = ["Profile", "Sample", "profile", "profile_sample"]

WATCH_SECONDS = 0.05  # long items still running: how often `until` is asked again


@dataclass(frozen=True)
class Profile:
    """Measurements of a sample of `fn` over its items; `str()` explains them in a few lines."""

    function: str
    items_sampled: int
    items_total: int | None  # len(items) when known
    wall_seconds_per_item: float
    cpu_seconds_per_item: float  # CPU time of the thread running the item
    preempted_seconds_per_item: float  # runnable, but other processes held the CPUs (load)
    thread_speedup: float | None  # throughput on SCALING_THREADS threads / on one; None: unmeasured
    payload_bytes_in: float  # mean pickled size of an argument (_pickling.dumps)
    payload_bytes_out: float  # ... and of a result
    ship_seconds_in: float  # mean dumps+loads seconds of an argument
    ship_seconds_out: float  # ... and of a result
    unpicklable: str | None  # why the work cannot travel to another process, if it cannot
    variation: float  # coefficient of variation of the items' wall times
    cores: int
    gil_enabled: bool
    coroutine: bool
    errors: int  # sampled items that raised
    sample_seconds: float
    scaling_threads: int = SCALING_THREADS
    items_running: int = 0  # long items still running when measured: times so far
    gil_wait_seconds: float | None = None  # another thread's median wait for the GIL meanwhile
    # Bytes resident memory grew per item, over the items run alone after the first (None: not
    # measured): what a worker may pass max_memory_per_child by before it retires.
    rss_growth_per_item: float | None = None

    @property
    def holds_gil(self) -> bool:
        """Another thread waited a large part of a switch interval for the GIL: it is held."""
        wait = self.gil_wait_seconds
        return wait is not None and wait >= HELD_SWITCHES * sys.getswitchinterval()

    @property
    def seconds_per_item(self) -> float:
        """An item's own time: its wall time minus the time other processes held the CPUs."""
        return max(self.wall_seconds_per_item - self.preempted_seconds_per_item, 1e-9)

    @property
    def cpu_share(self) -> float:
        """Fraction of an item's own time spent on CPU (0..1)."""
        return min(1.0, self.cpu_seconds_per_item / self.seconds_per_item)

    @property
    def wait_seconds_per_item(self) -> float:
        """Own time an item spends off CPU: I/O, sleeping, waiting for locks or other programs."""
        return max(0.0, self.seconds_per_item - self.cpu_seconds_per_item)

    @property
    def ship_seconds_per_item(self) -> float:
        return self.ship_seconds_in + self.ship_seconds_out

    @property
    def ship_ratio(self) -> float:
        """What shipping an item and its result costs, relative to running it."""
        return self.ship_seconds_per_item / self.seconds_per_item

    def to_dict(self) -> dict[str, Any]:
        """Fields and derived measures, JSON-ready (`gearshift plan-lambda --profile` reads it)."""
        data = asdict(self)
        for name in ("seconds_per_item", "cpu_share", "wait_seconds_per_item"):
            data[name] = getattr(self, name)
        data["ship_seconds_per_item"] = self.ship_seconds_per_item
        data["ship_ratio"] = self.ship_ratio
        return data

    def __str__(self) -> str:
        total = f" of {self.items_total}" if self.items_total is not None else ""
        lines = [
            f"profile of {self.function}: {self.items_sampled}{total} items sampled in "
            f"{self.sample_seconds:.2f} s"
            + (f", {self.errors} raised" if self.errors else "")
            + (
                f", {self.items_running} still running (times so far)" if self.items_running else ""
            ),
            f"  per item: {seconds(self.wall_seconds_per_item)} wall{self._preempted()}, "
            f"{seconds(self.cpu_seconds_per_item)} CPU -> {self.cpu_share:.0%} of its time on CPU",
            f"  threads: {self.scaling_description()}",
            f"  shipping: argument {size(self.payload_bytes_in)}, result "
            f"{size(self.payload_bytes_out)}, {seconds(self.ship_seconds_per_item)} per item "
            f"({percent(self.ship_ratio)} of its compute)"
            + (f"; cannot travel: {self.unpicklable}" if self.unpicklable else ""),
            f"  items vary by {self.variation:.0%} (coefficient of variation of wall time)",
            f"  memory: {self.memory_description()}",
            f"  machine: {self.cores} cores available, "
            f"GIL {'enabled' if self.gil_enabled else 'off'}",
        ]
        return "\n".join(lines)

    def _preempted(self) -> str:
        if self.preempted_seconds_per_item < 0.01 * self.wall_seconds_per_item:
            return ""
        return f" ({seconds(self.preempted_seconds_per_item)} of it waiting for a busy CPU)"

    def memory_description(self) -> str:
        """E.g. "resident memory grew 21.0 MB per item": what max_memory_per_child allows for."""
        if self.rss_growth_per_item is None:
            return "not measured (no item ran alone, or no way to read memory here)"
        return f"resident memory grew {size(self.rss_growth_per_item)} per item"

    def scaling_description(self) -> str:
        """E.g. "2 threads ran 1.0x": what the scaling phase saw, in words."""
        if self.coroutine:
            return "not measured (coroutine function)"
        if self.thread_speedup is None and self.items_running:
            return "not measured (long items, decided while they ran)"
        if self.thread_speedup is None and self.holds_gil:
            wait = seconds(self.gil_wait_seconds or 0.0)
            return f"not needed: another thread waited {wait} for the GIL, a switch interval"
        if self.thread_speedup is None:
            return "not measured (too few or too short items)"
        return f"{self.scaling_threads} threads ran {self.thread_speedup:.1f}x"


@dataclass(frozen=True)
class Sample:
    """A profile plus the sample's items and their results, so that no item has to run twice.

    `outcome` completes with one value per item in `items` (in order) and, in `errors`, the
    exception an item raised; long items may still be running. `exhausted` says the input
    ended within the sample.
    """

    profile: Profile
    items: list[Any]
    outcome: Future[ChunkResult]
    exhausted: bool

    @property
    def result(self) -> ChunkResult:
        """The sample's results (waiting for items still running)."""
        return self.outcome.result()


def profile(
    fn: Callable[[Any], Any], items: Iterable[Any], *, sample: int | None = None
) -> Profile:
    """Run `fn` on a sample of `items` and measure it; `sample` fixes the sample's size.

    The sampled items really run (their side effects happen), some of them on threads at once
    (up to 64 for work that waits): `fn` must be thread-safe. `map(strategy="auto")` keeps
    the sample's results, so there no item runs twice.
    """
    return profile_sample(fn, items, size=sample).profile


def profile_sample(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    size: int | None = None,
    total: int | None = None,
    max_threads: int | None = None,
    until: Callable[[Profile], bool] | None = None,
) -> Sample:
    """Measure `fn` on the first items of `items` and keep their results.

    An iterator is advanced exactly `len(sample.items)` items, so the caller can go on with the
    rest. `size` fixes the sample's size (None: adaptive, by the rule in `_sampling`);
    `total` is the input's length when `items` has no `len()`; `max_threads` caps how many
    items run at once (waiting-bound work runs a wave of up to MAX_WAVE).

    With `until` (map(strategy="auto")), long items (_watch.py) are measured while they run,
    and the sample returns as soon as `until(profile)` holds (or they all ended), with items
    still running: `outcome` completes when they end. Until then, the profile is re-measured
    every WATCH_SECONDS or when an item ends.
    """
    if not callable(fn):
        raise UsageError(f"fn must be callable, got {type(fn).__name__}: pass the function itself")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise UsageError(f"sample must be a whole number >= 1 or None (adaptive), got {size!r}")
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    try:
        iterator = iter(items)
    except TypeError:
        raise UsageError(f"items must be iterable, got {type(items).__name__}") from None
    started = time.perf_counter()
    coroutine = is_async_callable(fn)
    limits = Limits(
        size, total, MAX_WAVE if max_threads is None else max_threads, watch=until is not None
    )
    phases, watch = Phases(), None
    if not coroutine and limits.watch and limits.size is None and WATCHABLE:
        watch = watch_first(fn, iterator, limits, phases)  # phase 0: long items?
    if watch is None and not phases.exhausted and not phases.held:
        run_sample(fn, iterator, limits, coroutine, phases)
    if watch is None:
        if not phases.taken:
            raise ProfileError("items is empty: profiling needs at least one item to run")
        prof = _profile(fn, phases, watch, total, coroutine, started)
        records = phases.taken
        result = ChunkResult(
            [r.value for _, r in records],
            sum(r.wall for _, r in records),
            {i: r.error for i, (_, r) in enumerate(records) if r.error is not None},
        )
        outcome: Future[ChunkResult] = Future()
        outcome.set_result(result)
        return Sample(prof, [item for item, _ in records], outcome, phases.exhausted)
    prof = _profile(fn, phases, watch, total, coroutine, started)
    while watch.running() and until is not None and not until(prof):
        watch.wait(WATCH_SECONDS)
        prof = _profile(fn, phases, watch, total, coroutine, started)
    watch.seal()
    items = [runner.item for runner in watch.runners]
    return Sample(prof, items, watch.outcome, phases.exhausted)


def _profile(
    fn: Callable[[Any], Any],
    phases: Phases,
    watch: Watch | None,
    total: int | None,
    coroutine: bool,
    started: float,
) -> Profile:
    """The profile of what the sample ran (long items: as far as they got, _watch.py)."""
    running = 0
    pairs: list[tuple[Any, Record | None]] = list(phases.taken)
    if watch is not None:
        phases.measured, phases.preempted = watch.measured()
        pairs = [(runner.item, runner.record) for runner in watch.runners]
        running = len(watch.running())
    shipping = ship_cost(fn, pairs)
    measured = phases.measured
    wall = statistics.fmean(r.wall for r in measured)
    cpu = min(wall, statistics.fmean(r.cpu for r in measured))
    preempted = min(phases.preempted / len(measured), wall - cpu)  # load takes no CPU time
    walls = [r.wall for r in measured]
    if len(walls) < 2:
        walls = [r.wall for r in phases.threaded]
    variation = statistics.pstdev(walls) / max(statistics.fmean(walls), 1e-12) if walls else 0.0
    return Profile(
        function=getattr(fn, "__qualname__", None) or repr(fn),
        items_sampled=len(pairs),
        items_total=total,
        wall_seconds_per_item=wall,
        cpu_seconds_per_item=cpu,
        preempted_seconds_per_item=preempted,
        thread_speedup=phases.thread_speedup,
        gil_wait_seconds=phases.gil_wait,
        scaling_threads=phases.threads,
        variation=variation,
        cores=available_cores(),
        gil_enabled=gil_enabled(),
        coroutine=coroutine,
        errors=sum(r is not None and r.error is not None for _, r in pairs),
        sample_seconds=time.perf_counter() - started,
        items_running=running,
        rss_growth_per_item=_per_item(phases.rss_growth, len(measured)),
        **shipping,
    )


def _per_item(growth: int | None, items: int) -> float | None:
    """Phase 1's growth of resident memory per measured item (it frees none: 0 at least)."""
    return None if growth is None else max(0.0, growth / items)
