"""profile(): run a small sample of the work and measure what decides how to run the rest.

Per item: wall time and the CPU time of the running thread (their ratio is the CPU share); whether
the work scales on threads (C code that releases the GIL does, pure Python does not); what the
argument and the result cost to ship to another process (pickled bytes, dumps+loads seconds);
how much items differ. With the cores really available and the GIL's state, that is what
`choose()` decides on.

How big the sample is, and why: `_sampling`. Part of the sample may run on threads at once
(two; for waiting-bound work, as many as the run would use), so `fn` must be thread-safe. Every
result is kept (`profile_sample`), so `map(strategy="auto")` runs no item twice: the sample only
costs the parallelism it forgoes: in map(strategy="auto") ~5 ms of items plus what can still
change the choice (the canary: ~10 ms; threads only where they may be chosen), or for long
items ~15-25 ms (they are measured while they run, and the run starts beside them: _watch.py).
The targets, checked by bench/auto.py: auto's own overhead is <= 5% of the total on work of 2 s
or more; a job too small to pay for a decision runs at the speed of its own sample.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, replace
from typing import Any

from gearshift.auto._batch import MAX_WAVE, SCALING_THREADS, Limits, Pairs, Phases, Record, joined
from gearshift.auto._batch import cores as machine_cores
from gearshift.auto._canary import HELD_SHARE
from gearshift.auto._runners import Watch
from gearshift.auto._sampling import run_sample
from gearshift.auto._shipping import ship_cost
from gearshift.auto._take import Taker
from gearshift.auto._watch import WATCHABLE, watch_first
from gearshift.errors import ProfileError, UsageError
from gearshift.machine import gil_enabled
from gearshift.strategies import is_async_callable
from gearshift.units import percent, seconds, size
from gearshift.values import ChunkResult

__all__ = ["Profile", "Sample", "profile", "profile_sample"]

# Long items still running: how often `until` is asked again. The rest starts within this of the
# moment processes pay for their start (bench/auto.py: 5 x 0.5 s of pure Python).
WATCH_SECONDS = 0.01
_SHIPPED = ("payload_bytes_in", "payload_bytes_out", "ship_seconds_in", "ship_seconds_out")
NO_SHIPPING: dict[str, Any] = {**dict.fromkeys(_SHIPPED, 0.0), "unpicklable": None}


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
    # The canary's (_canary.py): share of the items' CPU time during which another thread could
    # not get the GIL; None: not measured.
    gil_held_share: float | None = None
    shipping_measured: bool = True  # False: processes could not pay anyway, so it was not
    # Bytes resident memory grew per item, over the items run alone after the first (None: not
    # measured): what a worker may pass max_memory_per_child by before it retires.
    rss_growth_per_item: float | None = None

    @property
    def holds_gil(self) -> bool:
        """Another thread was kept out of the GIL most of the time the items ran: they hold it."""
        share = self.gil_held_share
        return share is not None and share >= HELD_SHARE

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
            f"  shipping: {self._shipping()}",
            f"  items vary by {self.variation:.0%} (coefficient of variation of wall time)",
            f"  memory: {self.memory_description()}",
            f"  machine: {self.cores} cores available, "
            f"GIL {'enabled' if self.gil_enabled else 'off'}",
        ]
        return "\n".join(lines)

    def _shipping(self) -> str:
        if not self.shipping_measured:
            return "not measured (processes could not pay for their start on this work)"
        text = (
            f"argument {size(self.payload_bytes_in)}, result {size(self.payload_bytes_out)}, "
            f"{seconds(self.ship_seconds_per_item)} per item ({percent(self.ship_ratio)} of its "
            "compute)"
        )
        return text + (f"; cannot travel: {self.unpicklable}" if self.unpicklable else "")

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
            share = self.gil_held_share or 0.0
            return f"not needed: another thread was kept out of the GIL {share:.0%} of the time"
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
    items: Sequence[Any]
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
    choose: Callable[[Profile], str] | None = None,
) -> Sample:
    """Measure `fn` on the first items of `items` and keep their results.

    An iterator is advanced exactly `len(sample.items)` items, so the caller can go on with the
    rest. `size` fixes the sample's size (None: adaptive, by the rule in `_sampling`);
    `total` is the input's length when `items` has no `len()`; `max_threads` caps how many
    items run at once (waiting-bound work runs a wave of up to MAX_WAVE).

    With `until` (map(strategy="auto")), the sample is lean: long items (_watch.py) are measured
    while they run, and the sample returns as soon as `until(profile)` holds (or they all
    ended), with items still running: `outcome` completes when they end. Until then, the
    profile is re-measured every WATCH_SECONDS or when an item ends. `choose(profile)` names the
    strategy the caller would pick: the sample measures only what can change that answer.
    """
    if not callable(fn):
        raise UsageError(f"fn must be callable, got {type(fn).__name__}: pass the function itself")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise UsageError(f"sample must be a whole number >= 1 or None (adaptive), got {size!r}")
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    try:
        iterator = Taker(iter(items))
    except TypeError:
        raise UsageError(f"items must be iterable, got {type(items).__name__}") from None
    started = time.perf_counter()
    coroutine = is_async_callable(fn)
    limits = Limits(
        size, total, MAX_WAVE if max_threads is None else max_threads, watch=until is not None
    )
    phases, watch, cores = Phases(), None, machine_cores()

    def measure(shipping: bool = True) -> Profile:
        return _profile(fn, phases, watch, (total, cores), coroutine, started, shipping)

    if not coroutine and limits.watch and limits.size is None and WATCHABLE:
        watch = watch_first(fn, iterator, limits, phases)  # phase 0: long items?
    if watch is None and not phases.exhausted and not phases.held:
        ask = None if choose is None else lambda _, free: choose(_assume(measure(False), free))
        run_sample(fn, iterator, limits, coroutine, phases, ask)
    if watch is None:
        if not phases.taken:
            raise ProfileError("items is empty: profiling needs at least one item to run")
        prof = measure(phases.shipping)  # before `joined` spends the batches
        items_run, result = joined(phases.taken)
        outcome: Future[ChunkResult] = Future()
        outcome.set_result(result)
        return Sample(prof, items_run, outcome, phases.exhausted)
    prof = measure()
    while watch.running() and until is not None and not until(prof):
        watch.wait(WATCH_SECONDS)
        prof = measure()
    watch.seal()
    items = [runner.item for runner in watch.runners]
    return Sample(prof, items, watch.outcome, phases.exhausted)


def _assume(prof: Profile, gil_free: bool) -> Profile:
    """`prof` as if its items released the GIL (or held it), for the chooser's what-if."""
    if gil_free:
        return replace(prof, thread_speedup=float(SCALING_THREADS), gil_held_share=0.0)
    return replace(prof, thread_speedup=None, gil_held_share=1.0)


def _profile(
    fn: Callable[[Any], Any],
    phases: Phases,
    watch: Watch | None,
    sizes: tuple[int | None, int],
    coroutine: bool,
    started: float,
    shipping: bool = True,
) -> Profile:
    """The profile of what the sample ran (long items: as far as they got, _watch.py);
    `sizes`: the input's length (if known) and the cores available."""
    (total, cores), running = sizes, 0
    pairs: Sequence[tuple[Any, Record | None]] = Pairs(phases.taken)
    if watch is not None:
        phases.measured = watch.measured()
        pairs = [(runner.item, runner.record) for runner in watch.runners]
        running = len(watch.running())
    wall, cpu, preempted, variation = phases.averages()
    return Profile(
        function=getattr(fn, "__qualname__", None) or repr(fn),
        items_sampled=len(pairs),
        items_total=total,
        wall_seconds_per_item=wall,
        cpu_seconds_per_item=cpu,
        preempted_seconds_per_item=preempted,
        variation=variation,
        thread_speedup=phases.thread_speedup,
        gil_held_share=phases.gil_share,
        scaling_threads=phases.threads,
        cores=cores,
        gil_enabled=gil_enabled(),
        coroutine=coroutine,
        errors=sum(len(b.errors) for b in phases.taken) if watch is None else watch.errors(),
        sample_seconds=time.perf_counter() - started,
        items_running=running,
        shipping_measured=shipping,
        rss_growth_per_item=phases.rss_per_item,
        **(ship_cost(fn, pairs) if shipping else NO_SHIPPING),  # type: ignore[arg-type]
    )
