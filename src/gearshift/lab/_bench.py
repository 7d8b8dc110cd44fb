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
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from gearshift.api import map as gmap
from gearshift.auto import resolve
from gearshift.errors import UsageError, short_repr
from gearshift.lab._measure import (
    NOISY_SPREAD,
    Machine,
    Measurement,
    Progress,
    auto_row,
    check_same,
    machine,
    run_auto,
    time_runs,
)
from gearshift.strategies import check_workers

__all__ = ["BenchResult", "bench"]


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
