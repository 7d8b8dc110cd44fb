"""gearshift: threads or processes? Measure, decide, and run the work that way.

Public names are the ones in `__all__`; nothing else is promised. Heavy modules are imported on
first use of the name that needs them, so `import gearshift` stays cheap.

The packages, each importing only those below it (tests/test_layers.py holds the rule):

    cli/                          `gearshift ...`: one module per command, tables and charts
    lab/  downloader/  serverless/  bench() and the demos; download(); plan_lambda()
    api  executor  aio  _window   the engine: map, imap, Executor, amap over any strategy
    auto/                         profile(), choose(), and Auto, which decides per map call
    strategies/                   serial, threads, processes/ (the pool), asyncio, dask, lithops
    chunking                      how work is cut into chunks
    errors  values  units  machine  the exception tree, result values, formats, cores and load
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gearshift.errors import (
    DownloadError,
    GearshiftError,
    InitializerFailed,
    PicklingFailed,
    ProfileError,
    StrategyUnavailable,
    TaskError,
    TaskFailed,
    TaskTimeout,
    UsageError,
)

__version__ = "0.1.0"

# name -> module that defines it, imported on first access (PEP 562).
_LAZY = {
    "WorkerDied": "gearshift.errors",  # also BrokenProcessPool: its module imports multiprocessing
    "UnpicklingFailed": "gearshift.errors",
    "WorkerStartFailed": "gearshift.errors",
    "map": "gearshift.api",
    "imap": "gearshift.api",
    "Executor": "gearshift.executor",
    "amap": "gearshift.aio",
    "aimap": "gearshift.aio",
    "Statistics": "gearshift.values",
    "Strategy": "gearshift.strategies",
    "Serial": "gearshift.strategies",
    "Threads": "gearshift.strategies",
    "Processes": "gearshift.strategies",
    "Asyncio": "gearshift.strategies",
    "Dask": "gearshift.strategies",
    "Lithops": "gearshift.strategies",
    "Auto": "gearshift.auto",
    "profile": "gearshift.auto",
    "Profile": "gearshift.auto",
    "choose": "gearshift.auto",
    "Choice": "gearshift.auto",
    "bench": "gearshift.lab",
    "BenchResult": "gearshift.lab",
    "ImageServer": "gearshift.lab",
    "download": "gearshift.downloader",
    "DownloadResult": "gearshift.downloader",
    "plan_lambda": "gearshift.serverless",
    "LambdaPlan": "gearshift.serverless",
}

__all__ = sorted(
    [
        "DownloadError",
        "GearshiftError",
        "InitializerFailed",
        "PicklingFailed",
        "ProfileError",
        "StrategyUnavailable",
        "TaskError",
        "TaskFailed",
        "TaskTimeout",
        "UsageError",
        "__version__",
        *_LAZY,
    ]
)

if TYPE_CHECKING:
    from gearshift.aio import aimap, amap
    from gearshift.api import imap, map
    from gearshift.auto import Auto, Choice, Profile, choose, profile
    from gearshift.downloader import DownloadResult, download
    from gearshift.errors import UnpicklingFailed, WorkerDied, WorkerStartFailed
    from gearshift.executor import Executor
    from gearshift.lab import BenchResult, ImageServer, bench
    from gearshift.serverless import LambdaPlan, plan_lambda
    from gearshift.strategies import (
        Asyncio,
        Dask,
        Lithops,
        Processes,
        Serial,
        Strategy,
        Threads,
    )
    from gearshift.values import Statistics


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gearshift' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
