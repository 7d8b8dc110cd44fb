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
    ProfileError,
    StrategyUnavailable,
    TaskError,
    TaskFailed,
    TaskTimeout,
    UsageError,
    WorkerDied,
)

__version__ = "0.1.0"

# name -> module that defines it, imported on first access (PEP 562).
_LAZY = {
    "map": "gearshift.api",
    "imap": "gearshift.api",
    "Executor": "gearshift.executor",
    "Statistics": "gearshift.outcome",
    "TaskOutcome": "gearshift.outcome",
    "Strategy": "gearshift.strategies.base",
    "Serial": "gearshift.strategies._serial",
    "Threads": "gearshift.strategies._threads",
    "Processes": "gearshift.strategies._processes",
    "ImageServer": "gearshift.imageserver",
    "plan_lambda": "gearshift.serverless",
    "LambdaPlan": "gearshift.serverless",
}

__all__ = sorted(
    [
        "DownloadError",
        "GearshiftError",
        "ProfileError",
        "StrategyUnavailable",
        "TaskError",
        "TaskFailed",
        "TaskTimeout",
        "UsageError",
        "WorkerDied",
        "__version__",
        *_LAZY,
    ]
)

if TYPE_CHECKING:
    from gearshift.api import imap, map
    from gearshift.executor import Executor
    from gearshift.imageserver import ImageServer
    from gearshift.outcome import Statistics, TaskOutcome
    from gearshift.serverless import LambdaPlan, plan_lambda
    from gearshift.strategies._processes import Processes
    from gearshift.strategies._serial import Serial
    from gearshift.strategies._threads import Threads
    from gearshift.strategies.base import Strategy


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gearshift' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
