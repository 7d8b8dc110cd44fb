"""The Dask strategy's own modes and faults, on the session's LocalCluster (conftest.py).

The shared behaviour suite (test_api.py, test_executor.py) runs on Dask(client=...) too.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import subprocess
import sys
import time
from typing import Any

import pytest

import gearshift
from _running import NO_THREADS_AT_EXIT
from gearshift import StrategyUnavailable, TaskTimeout, UsageError, WorkerDied

pytest.importorskip("distributed")


def square(x: int) -> int:
    return x * x


def die_on_five(x: int) -> int:
    if x == 5:
        os._exit(3)  # the worker process dies mid-task
    return x


def sleep_for(x: float) -> float:
    time.sleep(x)
    return x


def clients_of(client: Any) -> int:
    return int(client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.clients)))


def test_address_mode_connects_runs_and_disconnects(dask_client: Any) -> None:
    before = clients_of(dask_client)
    strategy = gearshift.Dask(address=dask_client.scheduler.address)
    assert strategy.workers == 2  # the cluster's threads, asked of the scheduler
    assert gearshift.map(square, range(100), strategy=strategy) == [x * x for x in range(100)]
    deadline = time.monotonic() + 10
    while clients_of(dask_client) != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert clients_of(dask_client) == before  # its own client was closed


def test_client_mode_leaves_the_users_client_open(dask_client: Any) -> None:
    strategy = gearshift.Dask(client=dask_client)
    assert gearshift.map(square, range(10), strategy=strategy) == [x * x for x in range(10)]
    with gearshift.Executor(strategy=strategy) as ex:
        assert ex.submit(square, 3).result(timeout=30) == 9
    assert dask_client.status == "running"
    assert dask_client.submit(square, 4).result(timeout=30) == 16


def test_a_killed_worker_fails_only_the_item_it_ran(dask_client: Any) -> None:
    strategy = gearshift.Dask(client=dask_client)
    try:
        got = gearshift.map(
            die_on_five, range(12), strategy=strategy, chunksize=4, return_exceptions=True
        )
    finally:
        dask_client.wait_for_workers(2, timeout=30)  # the nanny restarts it, for later tests
    assert got[:5] == [0, 1, 2, 3, 4] and got[6:] == list(range(6, 12))
    error = got[5]
    assert isinstance(error, WorkerDied) and error.index == 5 and error.item == "5"
    assert type(error.__cause__).__name__ == "KilledWorker"


def test_a_killed_worker_fails_the_submitted_call_with_worker_died(dask_client: Any) -> None:
    try:
        with gearshift.Executor(strategy=gearshift.Dask(client=dask_client)) as ex:
            error = ex.submit(die_on_five, 5).exception(timeout=60)
            assert ex.submit(die_on_five, 4).result(timeout=60) == 4  # still usable
    finally:
        dask_client.wait_for_workers(2, timeout=30)
    assert isinstance(error, WorkerDied) and type(error.__cause__).__name__ == "KilledWorker"
    # a submitted call has no item index: it is named by itself, as the process pool names it
    assert str(error).startswith("the call die_on_five(5) was running when its dask worker died")
    assert error.item == "die_on_five(5)" and "item 0" not in str(error)


def test_task_timeout_is_per_item_inside_a_chunk(dask_client: Any) -> None:
    start = time.monotonic()
    got = gearshift.map(
        sleep_for,
        [0.0, 30.0, 0.0, 0.0],
        strategy=gearshift.Dask(client=dask_client),
        chunksize=4,
        task_timeout=0.5,
        return_exceptions=True,
    )
    assert time.monotonic() - start < 15
    assert got[0] == 0.0 and got[2:] == [0.0, 0.0]
    assert isinstance(got[1], TaskTimeout) and got[1].index == 1


def test_unpicklable_function_is_a_usage_error_naming_it(dask_client: Any) -> None:
    import threading

    lock = threading.Lock()
    with pytest.raises(UsageError, match="could not be pickled"):
        gearshift.map(lambda x: (lock, x), [1], strategy=gearshift.Dask(client=dask_client))


def test_an_unpicklable_item_fails_alone(dask_client: Any) -> None:
    import threading

    got = gearshift.map(
        str,
        [1, threading.Lock(), 3],
        strategy=gearshift.Dask(client=dask_client),
        chunksize=3,
        return_exceptions=True,
    )
    assert got[0] == "1" and got[2] == "3"
    assert isinstance(got[1], gearshift.TaskFailed) and "could not be pickled" in str(got[1])


def test_bad_arguments_are_usage_errors(dask_client: Any) -> None:
    with pytest.raises(UsageError, match="not both"):
        gearshift.Dask(address="tcp://127.0.0.1:8786", client=dask_client)
    with pytest.raises(UsageError, match="address"):
        gearshift.Dask(address=8786)  # type: ignore[arg-type]


def test_an_unreachable_scheduler_is_strategy_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    from gearshift.strategies import _dask

    monkeypatch.setattr(_dask, "CONNECT_TIMEOUT_SECONDS", 1)
    with pytest.raises(StrategyUnavailable, match="could not reach a dask scheduler"):
        gearshift.map(square, [1], strategy=gearshift.Dask(address="tcp://127.0.0.1:9"))


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    with pytest.raises(StrategyUnavailable, match=r"pip install 'gearshift\[dask\]'"):
        gearshift.map(square, [1], strategy="dask")


@pytest.mark.slow
def test_by_name_it_starts_a_local_cluster_and_closes_it_afterwards() -> None:
    before = set(multiprocessing.active_children())  # other tests' children may still be ending
    with gearshift.Executor(1, strategy="dask") as executor:
        assert isinstance(executor, concurrent.futures.Executor)
        cluster = executor._inner._owned[-1]  # type: ignore[attr-defined]
        assert executor.submit(square, 7).result(timeout=60) == 49
        assert list(executor.map(square, range(4))) == [0, 1, 4, 9]
    assert cluster.status.name == "closed"
    assert set(multiprocessing.active_children()) <= before  # its worker processes are gone too
    assert gearshift.map(square, range(5), strategy="dask", max_workers=1) == [0, 1, 4, 9, 16]
    assert set(multiprocessing.active_children()) <= before


EXIT_SCRIPT = """
import atexit, time
import gearshift

def sleep_and_print(seconds, word):
    time.sleep(seconds)
    print(word, flush=True)

def submit_at_exit():
    try:
        ex.submit(print, "too late")
    except RuntimeError as exc:
        print(exc, flush=True)

if __name__ == "__main__":
    atexit.register(submit_at_exit)  # runs after the executor's own exit hook
    ex = gearshift.Executor(1, strategy="dask")
    ex.submit(sleep_and_print, 1.0, "apple")
"""


@pytest.mark.slow
@NO_THREADS_AT_EXIT  # distributed starts threads as it runs the call
def test_interpreter_exit_lets_submitted_calls_finish_on_its_own_cluster() -> None:
    """As for a `ThreadPoolExecutor` (CPython's test_interpreter_shutdown): an executor never
    shut down still runs what it was given before its cluster closes at exit."""
    done = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "apple",
        "cannot schedule new futures after interpreter shutdown",
    ], done.stderr
