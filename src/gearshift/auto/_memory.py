"""What auto remembers of a function between map calls: few long items that hold the GIL.

The first call of such work pays for its sample: its first item runs in this process, where it
holds the GIL, and when one C call holds it throughout (the source's `sum(range(n))`), nothing
else in this process can run until it ends, not even the code that would start processes beside
it: on 5 items and 2 cores the run takes 3 item-times instead of 2.5. So when a call's sample
found long items (LONG_SECONDS or more) that compute and hold the GIL, and processes were chosen,
the function is remembered; a later call of it with at most FEW_PER_CORE x cores items starts
the pool at once and runs every item there, all at once (`decide`). What that run measures
keeps the memory honest: items that turn out short make auto forget the function.
"""

from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass
from typing import Any

from gearshift.auto._chooser import WAITING_BOUND_SHARE, Choice
from gearshift.auto._profiler import Profile
from gearshift.auto._watch import LONG_SECONDS

# Items per core, at most, that a remembered call runs all at once, one process each: 5 long
# items on 2 cores take 2.5 item-times that way, 3 in rounds of 2 (bench/auto.py, `make demo`).
FEW_PER_CORE = 4


@dataclass(frozen=True)
class Hint:
    """What the last sampled call of a function measured: an item's own seconds, CPU share."""

    seconds: float
    cpu_share: float


_hints: weakref.WeakKeyDictionary[Any, Hint] = weakref.WeakKeyDictionary()


def remember(fn: Any, profile: Profile, choice: Choice) -> None:
    """Keep (or drop) what this call's sample says about `fn`."""
    long = profile.seconds_per_item >= LONG_SECONDS
    computes = profile.cpu_share >= WAITING_BOUND_SHARE and profile.holds_gil
    if choice.strategy == "processes" and long and computes and not profile.coroutine:
        _keep(fn, Hint(profile.seconds_per_item, profile.cpu_share))
    else:
        forget(fn)


def recall(fn: Any, total: int | None, cores: int) -> Hint | None:
    """The hint for a call of `fn` over `total` items, if it is one to run all at once."""
    if total is None or not 2 <= total <= FEW_PER_CORE * cores:
        return None
    try:
        return _hints.get(fn)
    except TypeError:  # not weakly referable (a builtin): never remembered
        return None


def observed(fn: Any, seconds: float, items: int) -> None:
    """A remembered call ran `items` items in `seconds` of compute: short ones end the hint."""
    if items and seconds / items < LONG_SECONDS:
        forget(fn)


def forget(fn: Any) -> None:
    with contextlib.suppress(TypeError):  # not weakly referable: never remembered
        _hints.pop(fn, None)


def _keep(fn: Any, hint: Hint) -> None:
    with contextlib.suppress(TypeError):
        _hints[fn] = hint
