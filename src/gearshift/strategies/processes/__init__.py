"""gearshift's process pool: one socket pair per worker, one dispatcher thread, a fork server.

The face is lazy: `worker` (standard library only; it is also the loop every strategy runs items
with) must be importable without loading the pool, cloudpickle or subprocess.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gearshift.strategies.processes._launch import (
        START_METHODS,
        WORKER_ENV,
        default_start_method,
    )
    from gearshift.strategies.processes._pickling import ZERO_COPY_BYTES, dumps, trip
    from gearshift.strategies.processes._pool import ProcessPool
    from gearshift.strategies.processes._strategy import Processes

__all__ = [
    "START_METHODS",
    "WORKER_ENV",
    "ZERO_COPY_BYTES",
    "ProcessPool",
    "Processes",
    "default_start_method",
    "dumps",
    "trip",
]

_LAZY = {
    "Processes": "gearshift.strategies.processes._strategy",
    "ProcessPool": "gearshift.strategies.processes._pool",
    "START_METHODS": "gearshift.strategies.processes._launch",
    "WORKER_ENV": "gearshift.strategies.processes._launch",
    "default_start_method": "gearshift.strategies.processes._launch",
    "dumps": "gearshift.strategies.processes._pickling",
    "trip": "gearshift.strategies.processes._pickling",
    "ZERO_COPY_BYTES": "gearshift.strategies.processes._pickling",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
