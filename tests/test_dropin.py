"""gearshift.Executor as a drop-in for the standard pools, tried the way their users' code and
libraries use them: manager proxies passed to tasks, the standard exception types, dask's
`pool=`, asyncio's `run_in_executor`. (CPython's own test_concurrent_futures runs against it
too: see ../shared/tools/cf_conformance.py.)"""

from __future__ import annotations

import asyncio
import functools
import gc
import multiprocessing
import os
import pickle
import threading
import weakref
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
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


def crash() -> None:
    os._exit(3)


class RefusesPickling:
    def __reduce__(self) -> Any:
        raise pickle.PicklingError("not this one")


def refuse() -> RefusesPickling:
    return RefusesPickling()


def test_code_written_for_the_standard_pool_catches_what_it_expects() -> None:
    """What ProcessPoolExecutor raises, gearshift's errors are too; and the pool lives on."""
    with gearshift.Executor(2) as pool:
        with pytest.raises(BrokenProcessPool) as died:
            pool.submit(crash).result()
        assert isinstance(died.value, gearshift.WorkerDied) and died.value.exitcode == 3
        assert "the call crash() killed its worker" in str(died.value)
        with pytest.raises(pickle.PicklingError, match="the result could not be pickled"):
            pool.submit(refuse).result()
        with pytest.raises(pickle.PicklingError, match=r"the call id\(.*\) could not be pickled"):
            pool.submit(id, RefusesPickling()).result()
        with pytest.raises(TypeError, match="could not be pickled"):  # a lock: pickle's TypeError
            pool.submit(id, threading.Lock()).result()
        assert pool.submit(abs, -5).result() == 5


def test_map_runs_on_after_a_worker_death_that_is_also_a_broken_pool() -> None:
    """WorkerDied is a BrokenExecutor now, yet it fails its item only, not the whole map."""

    def die_on_one(x: int) -> int:
        if x == 1:
            os._exit(3)
        return x

    got = gearshift.map(die_on_one, range(4), strategy="processes", return_exceptions=True)
    assert isinstance(got[1], gearshift.WorkerDied) and [got[i] for i in (0, 2, 3)] == [0, 2, 3]


@pytest.mark.parametrize("strategy", ["threads", "processes"])
def test_dask_accepts_the_executor_as_its_pool(strategy: str) -> None:
    dask = pytest.importorskip("dask")
    bag = pytest.importorskip("dask.bag")
    with gearshift.Executor(2, strategy=strategy) as pool:
        assert pool._max_workers == 2  # what dask (and others) read
        with dask.config.set(scheduler="processes", pool=pool):
            total = bag.from_sequence(range(10), npartitions=4).map(abs).sum().compute()
    assert total == 45


@pytest.mark.parametrize("strategy", ["threads", "processes"])
def test_asyncio_runs_calls_in_the_executor(strategy: str) -> None:
    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        with gearshift.Executor(2, strategy=strategy) as pool:
            return list(
                await asyncio.gather(*(loop.run_in_executor(pool, abs, -x) for x in range(4)))
            )

    assert asyncio.run(main()) == [0, 1, 2, 3]


class Dropped:
    pass


def make_dropped(_: int) -> Dropped:
    return Dropped()


@pytest.mark.parametrize("strategy", ["threads", "processes"])
@pytest.mark.parametrize("chunksize", [1, 3])
def test_map_keeps_no_result_the_caller_dropped(strategy: str, chunksize: int) -> None:
    with gearshift.Executor(2, strategy=strategy) as pool:
        for result in pool.map(make_dropped, range(6), chunksize=chunksize):
            ref = weakref.ref(result)
            del result
            gc.collect()
            assert ref() is None


@pytest.mark.parametrize("strategy", ["threads", "processes"])
def test_max_workers_message_has_the_standard_wording_and_ours(strategy: str) -> None:
    with pytest.raises(ValueError, match="max_workers must be greater than 0") as info:
        gearshift.Executor(0, strategy=strategy)
    assert "a whole number >= 1, or None (the default), got 0" in str(info.value)


def test_shutdown_cancel_futures_runs_what_free_workers_take_at_once() -> None:
    """As the standard pool runs the calls already in its call queue: some always run."""
    pool = gearshift.Executor(3)
    futures = [pool.submit(abs, -x) for x in range(30)]
    pool.shutdown(cancel_futures=True)
    ran = [f for f in futures if not f.cancelled()]
    assert 3 <= len(ran) < 30 and all(f.result() == abs(-futures.index(f)) for f in ran)
