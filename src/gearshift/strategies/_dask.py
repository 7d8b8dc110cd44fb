"""Dask: gearshift's semantics on a `distributed` cluster: a LocalCluster it starts, or yours.

    Dask()                  ─► LocalCluster(one single-threaded worker process per core),
                               closed with the executor
    Dask(address="tcp://…") ─► a Client to that scheduler, closed with the executor
    Dask(client=client)     ─► your client, left open
          └─► DaskExecutor (`_dask_executor`): chunks, late binding, deaths isolated

Dask cannot stop a running task, so `task_timeout` is enforced on the worker: the overdue item
gets `TaskTimeout` and its thread is abandoned there (as with threads). gearshift must be
importable on the workers; `distributed` is imported only when a Dask strategy is created.
"""

from __future__ import annotations

import importlib
import importlib.util
import uuid
from concurrent.futures import Executor
from typing import Any

from gearshift.errors import StrategyUnavailable, UsageError
from gearshift.machine import available_cores
from gearshift.strategies._dask_executor import DaskExecutor, threads_of
from gearshift.strategies.base import Initializer, Strategy

CONNECT_TIMEOUT_SECONDS = 10  # reaching a scheduler at `address`
# A LocalCluster of ours fails a task at the first death of its worker (dask's default is 3):
# gearshift then re-runs the chunk's items one by one, so a bad item kills one more worker, not 4.
LOCAL_ALLOWED_FAILURES = 0
_INSTALL = "pip install 'gearshift[dask]'"


def _require_distributed() -> None:
    if importlib.util.find_spec("distributed") is None:
        raise StrategyUnavailable(f"strategy 'dask' needs the 'dask' extra: {_INSTALL}")


class Dask(Strategy):
    """Work on a Dask cluster: `Dask()` starts a LocalCluster (one single-threaded worker
    process per core) per executor and closes it after; `Dask(address="tcp://host:8786")`
    connects to a scheduler; `Dask(client=client)` uses your client and leaves it open."""

    name = "dask"
    needs_pickling = True
    # A dask task costs ~1 ms of scheduler, client and worker time, and each chunk waits a round
    # trip for its slot (late binding): ~200 ms chunks keep that near 1% (bench/cluster.py).
    target_chunk_seconds = 0.2

    def __init__(
        self, max_workers: int | None = None, *, address: str | None = None, client: Any = None
    ) -> None:
        super().__init__(max_workers)
        if address is not None and client is not None:
            raise UsageError("Dask takes address= or client=, not both: pass one of them")
        if address is not None and not isinstance(address, str):
            raise UsageError(
                f"address must be a scheduler address such as 'tcp://127.0.0.1:8786', "
                f"got {address!r}"
            )
        _require_distributed()
        self.address = address
        self.client = client
        self._cluster_threads: int | None = None

    def __repr__(self) -> str:
        where = f", address={self.address!r}" if self.address else ""
        where += ", client=..." if self.client is not None else ""
        return f"Dask(max_workers={self.max_workers!r}{where})"

    def default_workers(self) -> int:
        """A local cluster: one worker per core; a cluster of yours: all its threads."""
        if self.client is not None:
            return threads_of(self.client)
        if self.address is not None:
            if self._cluster_threads is None:
                client = _connect(self.address)
                try:
                    self._cluster_threads = threads_of(client)
                finally:
                    client.close()
            return self._cluster_threads
        return available_cores()

    def executor(
        self, *, initializer: Initializer = None, initargs: tuple[Any, ...] = ()
    ) -> Executor:
        owned: list[Any] = []
        if self.client is not None:
            client = self.client
        elif self.address is not None:
            client = _connect(self.address)
            owned.append(client)
        else:
            cluster = start_local_cluster(self.workers)
            client = _distributed().Client(cluster)
            owned += [client, cluster]
        setup = None if initializer is None else (uuid.uuid4().hex, initializer, initargs)
        return DaskExecutor(client, owned, setup)


def start_local_cluster(workers: int) -> Any:
    """A LocalCluster of `workers` single-threaded processes on 127.0.0.1, failing fast on
    deaths; several can run at once (no fixed ports)."""
    distributed = _distributed()  # first: it registers the defaults that config.set overlays
    config = importlib.import_module("dask").config
    with config.set({"distributed.scheduler.allowed-failures": LOCAL_ALLOWED_FAILURES}):
        return distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,  # no dashboard (it needs bokeh) ...
            # ... and the scheduler's HTTP endpoints on any free loopback port, not 8787
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        )


def _connect(address: str) -> Any:
    try:
        return _distributed().Client(address, timeout=CONNECT_TIMEOUT_SECONDS)
    except (OSError, TimeoutError) as exc:
        raise StrategyUnavailable(
            f"could not reach a dask scheduler at address={address!r} within "
            f"{CONNECT_TIMEOUT_SECONDS}s ({type(exc).__name__}: {exc}): start one with "
            "`dask scheduler` (and workers with `dask worker ADDRESS`), or fix the address"
        ) from exc


def _distributed() -> Any:
    return importlib.import_module("distributed")
