"""The strategy registry: a name maps to a class imported on first use."""

from __future__ import annotations

import importlib

from gearshift.errors import StrategyUnavailable, UsageError
from gearshift.strategies.base import Strategy

# name -> (module, class, the extra that provides what it imports, or None)
_REGISTRY: dict[str, tuple[str, str, str | None]] = {
    "auto": ("gearshift.auto._strategy", "Auto", None),
    "serial": ("gearshift.strategies._serial", "Serial", None),
    "threads": ("gearshift.strategies._threads", "Threads", None),
    "processes": ("gearshift.strategies.processes._strategy", "Processes", None),
    "lithops": ("gearshift.strategies._lithops", "Lithops", "lithops"),
    "asyncio": ("gearshift.strategies._asyncio", "Asyncio", None),
    "dask": ("gearshift.strategies._dask", "Dask", "dask"),
}


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
            f"strategy must be one of {', '.join(repr(n) for n in names())} or a Strategy "
            f"instance such as gearshift.Processes(max_workers=4), got {strategy!r}"
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
