"""Lithops: the same map fanned out over Lithops' FunctionExecutor (AWS Lambda, other clouds, here).

Each chunk is one Lithops function call running `run_chunk` remotely (`_remote`); the
bridge to `concurrent.futures` is `_lithops_executor`. Without a Lithops config, calls run on the
localhost backend as processes of `sys.executable` (not the `python` found on PATH), so a virtual
environment's packages are there.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
import uuid
from concurrent.futures import Executor
from typing import Any

from gearshift.errors import StrategyUnavailable
from gearshift.machine import available_cores
from gearshift.strategies.base import Initializer, Strategy

LOCAL_MONITORING_INTERVAL = 0.2  # seconds; localhost storage is a local directory: cheap to list


class Lithops(Strategy):
    """Lithops functions (AWS Lambda, other clouds; this machine without a config): one per chunk.

    `config` is a Lithops config dict; None reads the user's (`~/.lithops/config`,
    `LITHOPS_CONFIG_FILE`, `LITHOPS_CONFIG`), and with none found runs on the localhost backend.
    `backend` / `storage` override the config's, e.g. `Lithops(backend="aws_lambda")`.
    """

    name = "lithops"
    needs_pickling = True
    target_chunk_seconds = 5.0  # a call costs ~0.7 s on localhost, more on a cloud

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        config: dict[str, Any] | None = None,
        backend: str | None = None,
        storage: str | None = None,
    ) -> None:
        if importlib.util.find_spec("lithops") is None:
            raise StrategyUnavailable(
                "strategy 'lithops' needs the 'lithops' extra: pip install 'gearshift[lithops]'"
            )
        super().__init__(max_workers)
        self.config, self.backend, self.storage = config, backend, storage
        self._resolved: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"Lithops(max_workers={self.max_workers!r}, backend={self.backend!r})"

    def resolved_config(self) -> dict[str, Any]:
        """The complete Lithops config this strategy runs with (read once, then kept)."""
        if self._resolved is None:
            self._resolved = _resolve(self.config, self.backend, self.storage)
        return self._resolved

    @property
    def local(self) -> bool:
        return bool(self.resolved_config()["lithops"]["mode"] == "localhost")

    def default_workers(self) -> int:
        """Localhost: `worker_processes` (default: the available cores); a cloud: `max_workers`."""
        config = self.resolved_config()
        if self.local:
            return int(config["localhost"]["worker_processes"])
        return int(config[config["lithops"]["backend"]].get("max_workers") or available_cores())

    def executor(
        self, *, initializer: Initializer = None, initargs: tuple[Any, ...] = ()
    ) -> Executor:
        from gearshift.strategies._lithops_executor import LithopsExecutor

        config = copy.deepcopy(self.resolved_config())
        if self.local:
            config["localhost"]["worker_processes"] = self.workers
        return LithopsExecutor(config, self.workers, (uuid.uuid4().hex, initializer, initargs))


def _resolve(
    config: dict[str, Any] | None, backend: str | None, storage: str | None
) -> dict[str, Any]:
    """The user's Lithops config completed by Lithops; on localhost, run `sys.executable`."""
    from lithops.config import default_config, load_config

    raw = copy.deepcopy(config) if config else load_config(log=False)
    overwrite = {"lithops": {k: v for k, v in [("backend", backend), ("storage", storage)] if v}}
    resolved: dict[str, Any] = default_config(config_data=raw, config_overwrite=overwrite)
    if resolved["lithops"]["mode"] == "localhost":
        user = raw.get("localhost") or {}
        if not user.get("runtime"):
            resolved["localhost"]["runtime"] = sys.executable
        if not user.get("worker_processes"):  # Lithops counts all CPUs, not this process's
            resolved["localhost"]["worker_processes"] = available_cores()
        if "monitoring_interval" not in (raw.get("lithops") or {}):
            resolved["lithops"]["monitoring_interval"] = LOCAL_MONITORING_INTERVAL
    return resolved
