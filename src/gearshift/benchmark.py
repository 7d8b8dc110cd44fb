"""`bench()`: run one function over the same items on every strategy and worker count, side by side.

    serial once (the baseline and the reference result)
      ─► each strategy x each worker count: warm-up run, then `repeat` timed runs of gearshift.map
      ─► results checked equal to serial's ─► median, spread, speedup, efficiency vs the ideal
      ─► BenchResult (frozen; .to_dict() is JSON), rendered by the CLI and gearshift.plot

Each timed run is one `gearshift.map` call, as user code would make it: a process pool's
start-up is part of the time. The ideal for w workers is min(w, cores, items) times serial's speed:
what CPU-bound work can reach here. Work that waits (I/O) can beat it.
"""

from __future__ import annotations

import functools
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from gearshift.errors import GearshiftError, ProfileError, UsageError, short_repr

__all__ = ["NOISY_SPREAD", "BenchResult", "Machine", "Measurement", "bench", "machine"]

# Timed runs of one configuration that differ by more than this fraction of their median mean the
# machine was busy: a difference between strategies smaller than that is noise, not a result.
# Quiet runs of `gearshift demo` on the 2-core reference machine stay below ~0.10 (README).
NOISY_SPREAD = 0.25
# A 1-minute load average above this many runnable processes per core when a run starts means
# other programs were busy: every row is slowed alike, which the spread cannot see.
BUSY_LOAD_PER_CORE = 0.5
START_METHOD = "subprocess (fresh interpreter)"  # how gearshift's Processes start their workers
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Machine:
    """Facts that decide what "ideal" means here."""

    cores: int  # CPUs this process may use (affinity mask and cgroup quota)
    python: str
    gil: str  # "enabled", "disabled (free-threaded build)", ...
    start_method: str  # how gearshift's process workers start
    platform: str
    cpu: str
    load_before: float | None = None  # 1-minute load average when the run started (Unix)

    @property
    def busy(self) -> bool:
        """Other programs were running when the measurement started."""
        return self.load_before is not None and self.load_before > BUSY_LOAD_PER_CORE * self.cores


@dataclass(frozen=True)
class Measurement:
    """The timed runs of one configuration, and what they mean against serial and the ideal."""

    label: str  # "processes x4", "5 threads (queue of workers, as in the source)"
    strategy: str  # "serial", "threads", "processes", "auto", "multiprocessing.Process", ...
    workers: int | None  # None: the strategy picked its own
    seconds: tuple[float, ...]
    speedup: float  # serial's median / this median
    ideal_speedup: float  # the best speedup this machine allows for this configuration
    note: str = ""  # auto: what it chose and why

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def spread(self) -> float:
        """(max - min) / median of the timed runs: 0.05 means they agree within 5%."""
        return (max(self.seconds) - min(self.seconds)) / self.median if self.median else 0.0

    @property
    def noisy(self) -> bool:
        return self.spread > NOISY_SPREAD

    @property
    def efficiency(self) -> float:
        """speedup / ideal speedup: 1.0 is the machine's limit."""
        return self.speedup / self.ideal_speedup

    def to_dict(self) -> dict[str, Any]:
        computed = ("median", "spread", "noisy", "efficiency")
        return {**asdict(self), "seconds": list(self.seconds)} | {
            k: getattr(self, k) for k in computed
        }


@dataclass(frozen=True)
class BenchResult:
    """What `bench()` measured: one Measurement per configuration, serial's first."""

    function: str
    items: int
    repeat: int
    warmup: bool
    machine: Machine
    measurements: tuple[Measurement, ...]
    skipped: tuple[str, ...] = field(default=())  # strategies that could not run here, and why

    @property
    def serial(self) -> Measurement:
        return self.measurements[0]

    @property
    def noisy(self) -> bool:
        """Some configuration's runs disagreed by more than NOISY_SPREAD."""
        return any(m.noisy for m in self.measurements)

    @property
    def best(self) -> Measurement:
        return min(self.measurements, key=lambda m: m.median)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "bench",
            "function": self.function,
            "items": self.items,
            "repeat": self.repeat,
            "warmup": self.warmup,
            "machine": asdict(self.machine),
            "measurements": [m.to_dict() for m in self.measurements],
            "skipped": list(self.skipped),
            "noisy": self.noisy,
            "noisy_threshold": NOISY_SPREAD,
            "busy": self.machine.busy,
            "best": self.best.label,
        }


def machine() -> Machine:
    """The facts of this machine and interpreter that a reader needs to judge the numbers."""
    from gearshift._cores import available_cores, gil_enabled

    if hasattr(sys, "_is_gil_enabled"):
        gil = "enabled" if gil_enabled() else "disabled (free-threaded build)"
    else:
        gil = "enabled (this Python has no free-threaded build)"
    return Machine(
        cores=available_cores(),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        gil=gil,
        start_method=START_METHOD,
        platform=platform.platform(terse=True),
        cpu=_cpu_model(),
        load_before=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def auto_available() -> bool:
    """True once `strategy="auto"` is accepted by gearshift.map (it lands in a later release)."""
    from gearshift.api import imap
    from gearshift.strategies import resolve

    try:
        resolve("auto")
        return True
    except UsageError:
        pass
    except GearshiftError:
        return True
    try:
        imap(abs, [], strategy="auto").close()  # checks the arguments; starts no work
    except UsageError:
        return False
    except GearshiftError:
        return True
    return True


def run_auto(fn: Callable[[Any], Any], items: list[Any], choices: list[Any]) -> list[Any]:
    """`gearshift.map(fn, items, strategy="auto")`, keeping what auto chose (its `Choice`)."""
    from gearshift.api import imap

    iterator = imap(fn, items, strategy="auto")
    results = list(iterator)
    choices.append(getattr(iterator, "choice", None))
    return results


def auto_row(
    times: tuple[float, ...],
    choices: list[Any],
    base: float,
    ideal: float | Callable[[int | None], float],
) -> Measurement:
    """The auto row: labelled with what it chose (every choice, if runs differed), and why."""
    picked = [c for c in choices if c is not None]
    names = sorted({f"{c.strategy} x{c.max_workers}" for c in picked})
    workers = picked[-1].max_workers if picked else None
    label = f"auto -> {' / '.join(names)}" if names else "auto"
    note = f"auto chose {' / '.join(names)}: {picked[-1].why}" if picked else ""
    best = ideal(workers) if callable(ideal) else ideal
    speedup = base / statistics.median(times)
    return Measurement(label, "auto", workers, times, speedup, best, note)


def time_runs(
    run: Callable[[], Any],
    *,
    repeat: int,
    warmup: bool,
    check: Callable[[Any], None] | None = None,
    progress: Progress | None = None,
    label: str = "",
) -> tuple[float, ...]:
    """Seconds of `repeat` calls of `run`, after an untimed one if `warmup`; each result checked."""
    times = []
    for i in range(-1 if warmup else 0, repeat):
        if progress is not None:
            progress(f"{label}: {'warm-up' if i < 0 else f'run {i + 1} of {repeat}'}")
        start = time.perf_counter()
        result = run()
        took = time.perf_counter() - start
        if check is not None:
            check(result)
        if i >= 0:
            times.append(took)
    return tuple(times)


def check_same(reference: Sequence[Any], label: str) -> Callable[[Any], None]:
    """A check that raises ProfileError when a result differs from the reference (serial's)."""

    def check(result: Any) -> None:
        got = list(result)
        if len(got) != len(reference):
            raise ProfileError(
                f"{label} returned {len(got)} results for {len(reference)} items: a wrong answer "
                "is an error, not a speedup"
            )
        for index, (a, b) in enumerate(zip(reference, got, strict=True)):
            if not _equal(a, b):
                raise ProfileError(
                    f"{label} returned {short_repr(b)} for item {index}, serial returned "
                    f"{short_repr(a)}: a wrong answer is an error, not a speedup. Benchmark a "
                    "deterministic function whose results compare equal with =="
                )

    return check


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # numpy arrays and the like: == is elementwise
        return repr(a) == repr(b)


def bench(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    strategies: Sequence[str] = ("serial", "threads", "processes", "auto"),
    workers: Sequence[int] = (1, 2, 4, 8),
    repeat: int = 3,
    warmup: bool = True,
    progress: Progress | None = None,
) -> BenchResult:
    """Time `gearshift.map(fn, items)` on each strategy x worker count, side by side.

    Serial always runs (once, at 1 worker): it is the baseline of every speedup and the reference
    every other result must equal. `auto` runs once, with the width it picks, if this gearshift
    has it. `progress`, if given, is called with a short note before each run.
    """
    from gearshift.api import map as gmap
    from gearshift.strategies import resolve
    from gearshift.strategies.base import check_workers

    if not callable(fn):
        raise UsageError(f"fn must be callable, got {short_repr(fn)}: pass the function itself")
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise UsageError(f"items must be a list, range or other iterable, got {short_repr(items)}")
    todo = list(items)
    if not todo:
        raise UsageError("items is empty: give at least one item to run fn on")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise UsageError(f"repeat must be a whole number >= 1, got {repeat!r}")
    widths = sorted({check_workers(w, "workers") or 1 for w in workers})
    if not widths:
        raise UsageError("workers is empty: give worker counts such as (1, 2, 4, 8)")
    names, skipped = [], []
    for name in dict.fromkeys(strategies):  # unique, in the given order
        if name == "auto":
            if auto_available():
                names.append(name)
            else:
                skipped.append("auto: not in this version of gearshift yet; it joins when it is")
        elif name != "serial":
            resolve(name)  # UsageError naming the valid strategies
            names.append(name)
    facts = machine()

    def ideal(w: int | None) -> float:
        return float(min(w or facts.cores, facts.cores, len(todo)))

    if progress is not None:
        progress("serial: the reference result")
    reference = gmap(fn, todo, strategy="serial")  # untimed; it is serial's warm-up too
    seconds = time_runs(
        lambda: gmap(fn, todo, strategy="serial"),
        repeat=repeat,
        warmup=False,
        check=check_same(reference, "serial"),
        progress=progress,
        label="serial",
    )
    base = statistics.median(seconds)
    rows = [Measurement("serial", "serial", 1, seconds, 1.0, 1.0)]
    for name in names:
        if name == "auto":
            choices: list[Any] = []
            times = time_runs(
                functools.partial(run_auto, fn, todo, choices),
                repeat=repeat,
                warmup=warmup,
                check=check_same(reference, "auto"),
                progress=progress,
                label="auto",
            )
            rows.append(auto_row(times, choices[-repeat:], base, ideal))
            continue
        for w in widths:
            label = f"{name} x{w}"

            def run(name: str = name, w: int = w) -> list[Any]:
                return gmap(fn, todo, strategy=name, max_workers=w)

            times = time_runs(
                run,
                repeat=repeat,
                warmup=warmup,
                check=check_same(reference, label),
                progress=progress,
                label=label,
            )
            rows.append(
                Measurement(label, name, w, times, base / statistics.median(times), ideal(w))
            )
    return BenchResult(
        function=f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}",
        items=len(todo),
        repeat=repeat,
        warmup=warmup,
        machine=facts,
        measurements=tuple(rows),
        skipped=tuple(skipped),
    )
