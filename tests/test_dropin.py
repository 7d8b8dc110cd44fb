"""gearshift.Executor as a drop-in for the standard pools, tried the way their users' code and
libraries use them: manager proxies passed to tasks, the standard exception types, dask's
`pool=`, asyncio's `run_in_executor`. (CPython's own test_concurrent_futures runs against it
too: see ../shared/tools/cf_conformance.py.)"""

from __future__ import annotations

import functools
import multiprocessing
import os
from collections.abc import Iterator
from typing import Any

import pytest

import gearshift
from gearshift.strategies.processes import START_METHODS


@pytest.fixture(scope="module")
def manager() -> Iterator[Any]:
    with multiprocessing.Manager() as started:
        yield started


def put_twice(queue: Any, x: int) -> int:
    queue.put(2 * x)
    return x


def record_under_lock(lock: Any, table: Any, x: int) -> int:
    with lock:
        table[x] = os.getpid()
    return x


class SetsOnCollection:
    """Sets its manager event when garbage collected: where it lives, whether it is freed."""

    def __init__(self, manager: Any) -> None:
        self.event = manager.Event()

    def __del__(self) -> None:
        self.event.set()


@pytest.mark.parametrize("start_method", START_METHODS)
def test_manager_proxies_work_in_submitted_calls(manager: Any, start_method: str) -> None:
    queue, lock, table = manager.Queue(), manager.Lock(), manager.dict()
    strategy = gearshift.Processes(2, start_method=start_method)
    with gearshift.Executor(strategy=strategy) as pool:
        assert [pool.submit(put_twice, queue, x).result() for x in range(3)] == [0, 1, 2]
        assert sorted(queue.get(timeout=10) for _ in range(3)) == [0, 2, 4]
        assert pool.submit(record_under_lock, lock, table, 7).result() == 7
    assert list(table.keys()) == [7] and table[7] != os.getpid()


def test_manager_proxies_work_in_map(manager: Any) -> None:
    queue, lock, table = manager.Queue(), manager.Lock(), manager.dict()
    got = gearshift.map(functools.partial(put_twice, queue), range(5), strategy="processes")
    assert got == [0, 1, 2, 3, 4]
    assert sorted(queue.get(timeout=10) for _ in range(5)) == [0, 2, 4, 6, 8]
    record = functools.partial(record_under_lock, lock, table)
    assert gearshift.map(record, range(4), strategy="processes", max_workers=2) == [0, 1, 2, 3]
    assert sorted(table.keys()) == [0, 1, 2, 3]


def test_a_calls_arguments_are_freed_in_the_worker_once_it_ran(manager: Any) -> None:
    """A worker used to keep each call (fn with its arguments) in its function cache."""
    watched = SetsOnCollection(manager)
    with gearshift.Executor(1) as pool:
        pool.submit(id, watched).result()
        assert watched.event.wait(timeout=10)  # the worker's copy was collected
        assert pool.submit(abs, -1).result() == 1
