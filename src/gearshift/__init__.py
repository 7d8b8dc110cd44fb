"""gearshift: threads or processes? Measure, decide, and run the work that way.

Public names are the ones in `__all__`; nothing else is promised. Heavy modules are imported on
first use of the name that needs them, so `import gearshift` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gearshift.errors import (
    DownloadError,
    GearshiftError,
    InitializerFailed,
    ProfileError,
    StrategyUnavailable,
    TaskError,
    TaskFailed,
    TaskTimeout,
    UsageError,
    WorkerDied,
    WorkerStartFailed,
)

__version__ = "0.1.0"

# name -> module that defines it, imported on first access (PEP 562).
_LAZY = {
    "map": "gearshift.api",
    "imap": "gearshift.api",
    "Executor": "gearshift.executor",
    "Statistics": "gearshift.values",
    "Strategy": "gearshift.strategies.base",
    "Serial": "gearshift.strategies._serial",
    "Threads": "gearshift.strategies._threads",
    "Processes": "gearshift.strategies.processes._strategy",
    "Auto": "gearshift.auto._strategy",
    "Asyncio": "gearshift.strategies._asyncio",
    "Dask": "gearshift.strategies._dask",
    "Lithops": "gearshift.strategies._lithops",
    "amap": "gearshift.aio",
    "aimap": "gearshift.aio",
    "ImageServer": "gearshift.lab._imageserver",
    "plan_lambda": "gearshift.serverless._model",
    "LambdaPlan": "gearshift.serverless._model",
    "download": "gearshift.downloader._download",
    "DownloadResult": "gearshift.downloader._download",
    "bench": "gearshift.lab._bench",
    "BenchResult": "gearshift.lab._bench",
    "profile": "gearshift.auto._profiler",
    "Profile": "gearshift.auto._profiler",
    "choose": "gearshift.auto._chooser",
    "Choice": "gearshift.auto._chooser",
}

__all__ = sorted(
    [
        "DownloadError",
        "GearshiftError",
        "InitializerFailed",
        "ProfileError",
        "StrategyUnavailable",
        "TaskError",
        "TaskFailed",
        "TaskTimeout",
        "UsageError",
        "WorkerDied",
        "WorkerStartFailed",
        "__version__",
        *_LAZY,
    ]
)

if TYPE_CHECKING:
    from gearshift.aio import aimap, amap
    from gearshift.api import imap, map
    from gearshift.auto._chooser import Choice, choose
    from gearshift.auto._profiler import Profile, profile
    from gearshift.auto._strategy import Auto
    from gearshift.downloader._download import DownloadResult, download
    from gearshift.executor import Executor
    from gearshift.lab._bench import BenchResult, bench
    from gearshift.lab._imageserver import ImageServer
    from gearshift.serverless._model import LambdaPlan, plan_lambda
    from gearshift.strategies._asyncio import Asyncio
    from gearshift.strategies._dask import Dask
    from gearshift.strategies._lithops import Lithops
    from gearshift.strategies._serial import Serial
    from gearshift.strategies._threads import Threads
    from gearshift.strategies.base import Strategy
    from gearshift.strategies.processes._strategy import Processes
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
