"""`bench()`: run one function over the same items on every strategy and worker count, side by side.

    serial once (the baseline and the reference result)
      ─► each strategy x each worker count: warm-up run, then `repeat` timed runs of gearshift.map
      ─► results checked equal to serial's ─► median, spread, speedup, efficiency vs the ideal
      ─► BenchResult (frozen; .to_dict() is JSON), rendered by the CLI and gearshift.cli.charts

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from gearshift.errors import UsageError, short_repr
from gearshift.lab._measure import Progress, auto_row, check_same, run_auto, time_runs
from gearshift.strategies.processes._launch import default_start_method

__all__ = ["NOISY_SPREAD", "BenchResult", "Machine", "Measurement", "bench", "machine"]

# Timed runs of one configuration that differ by more than this fraction of their median mean the
# machine was busy: a difference between strategies smaller than that is noise, not a result.
# On the 2-core reference machine, quiet runs of `gearshift demo` stayed within 0.20 (the README's
# table) while runs beside other jobs reached 0.27-0.78.
NOISY_SPREAD = 0.25
# A 1-minute load average above this many runnable processes per core when a run starts means
# other programs were busy: every row is slowed alike, which the spread cannot see.
BUSY_LOAD_PER_CORE = 0.5


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
            "noisy": self.noisy,
            "noisy_threshold": NOISY_SPREAD,
            "busy": self.machine.busy,
            "best": self.best.label,
        }


def machine() -> Machine:
    """The facts of this machine and interpreter that a reader needs to judge the numbers."""
    from gearshift.machine import available_cores, gil_enabled

    if hasattr(sys, "_is_gil_enabled"):
        gil = "enabled" if gil_enabled() else "disabled (free-threaded build)"
    else:
        gil = "enabled (this Python has no free-threaded build)"
    return Machine(
        cores=available_cores(),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        gil=gil,
        start_method=default_start_method(),  # how Processes start their workers here
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
    every other result must equal. `auto` runs once, with the width it picks. `progress`, if
    given, is called with a short note before each run.
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
    names = [name for name in dict.fromkeys(strategies) if name != "serial"]  # unique, in order
    for name in names:
        resolve(name)  # UsageError naming the valid strategies
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
    )
