"""The strategies: ways to run work, each one small class behind one interface (`base.Strategy`).

A name maps to a class imported on first use, so a strategy's dependencies (the process pool,
Dask, Lithops) load only when it runs. `auto` is not here: it is a decision made above the
strategies (`gearshift.auto`), which ends in one of these.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gearshift.errors import StrategyUnavailable, UsageError
from gearshift.strategies._ctrl_c import CtrlCGuard, CtrlCHeld, get_interruptibly
from gearshift.strategies._ramp import Ramp
from gearshift.strategies._run import fails_its_item
from gearshift.strategies.base import (
    ChunkExecutor,
    Initializer,
    RecyclesWorkers,
    Strategy,
    check_memory,
    check_workers,
    is_async_callable,
)

if TYPE_CHECKING:
    from gearshift.strategies._asyncio import Asyncio, OnLoop
    from gearshift.strategies._dask import Dask
    from gearshift.strategies._lithops import Lithops
    from gearshift.strategies._loop_pump import LoopPump
    from gearshift.strategies._serial import Serial
    from gearshift.strategies._threads import Threads
    from gearshift.strategies.processes import Processes

__all__ = [
    "Asyncio",
    "ChunkExecutor",
    "CtrlCGuard",
    "CtrlCHeld",
    "Dask",
    "Initializer",
    "Lithops",
    "LoopPump",
    "OnLoop",
    "Processes",
    "Ramp",
    "RecyclesWorkers",
    "Serial",
    "Strategy",
    "Threads",
    "check_memory",
    "check_workers",
    "fails_its_item",
    "get_interruptibly",
    "is_async_callable",
    "names",
    "resolve",
]

# name -> (module, class, the extra that provides what it imports, or None)
_REGISTRY: dict[str, tuple[str, str, str | None]] = {
    "serial": ("gearshift.strategies._serial", "Serial", None),
    "threads": ("gearshift.strategies._threads", "Threads", None),
    "processes": ("gearshift.strategies.processes", "Processes", None),
    "lithops": ("gearshift.strategies._lithops", "Lithops", "lithops"),
    "asyncio": ("gearshift.strategies._asyncio", "Asyncio", None),
    "dask": ("gearshift.strategies._dask", "Dask", "dask"),
}
_CLASSES = {cls: module for module, cls, _ in _REGISTRY.values()}
_CLASSES["OnLoop"] = "gearshift.strategies._asyncio"
_CLASSES["LoopPump"] = "gearshift.strategies._loop_pump"


def names() -> list[str]:
    return sorted(_REGISTRY)


def resolve(strategy: object, max_workers: int | None = None) -> Strategy:
    """A `Strategy` instance from a name or an instance; `max_workers` overrides its width."""
    if isinstance(strategy, Strategy):
        return strategy.with_workers(max_workers)
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        return strategy(max_workers)
    if not isinstance(strategy, str) or strategy not in _REGISTRY:
        raise UsageError(
            f"strategy must be one of {', '.join(repr(n) for n in ['auto', *names()])} or a "
            f"Strategy instance such as gearshift.Processes(max_workers=4), got {strategy!r}"
        )
    module_name, class_name, extra = _REGISTRY[strategy]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StrategyUnavailable(
            f"strategy {strategy!r} needs the {extra!r} extra: pip install 'gearshift[{extra}]'"
        ) from exc
    cls: type[Strategy] = getattr(module, class_name)
    return cls(max_workers)


def __getattr__(name: str) -> Any:
    """The strategy classes, imported on first use."""
    module = _CLASSES.get(name)
    if module is None:
        raise AttributeError(f"module 'gearshift.strategies' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
