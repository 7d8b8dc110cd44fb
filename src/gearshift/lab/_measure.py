"""How one configuration is timed and checked, for `bench()` and the demos.

time_runs: [warm-up] + `repeat` timed calls, each result checked (check_same: equal to the
reference, or ProfileError) ─► seconds;  run_auto / auto_row: auto's runs and what it chose
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from gearshift.errors import ProfileError, short_repr

if TYPE_CHECKING:
    from gearshift.lab._bench import Measurement

Progress = Callable[[str], None]


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
    """The auto row: labelled with what it chose (every choice, if runs differed), and why.

    Runs that chose different widths have no one width: workers is None and the ideal is the
    machine's best (`ideal(None)`), never the narrowest choice's."""
    picked = [c for c in choices if c is not None]
    names = sorted({f"{c.strategy} x{c.max_workers}" for c in picked})
    widths = {c.max_workers for c in picked}
    workers = widths.pop() if len(widths) == 1 else None
    label = f"auto -> {' / '.join(names)}" if names else "auto"
    note = f"auto chose {' / '.join(names)}: {picked[-1].why}" if picked else ""
    best = ideal(workers) if callable(ideal) else ideal
    speedup = base / statistics.median(times)
    from gearshift.lab._bench import Measurement

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
