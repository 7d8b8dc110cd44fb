"""The lithops strategy on Lithops' localhost backend (no cloud account needed), and its config.

Lithops' localhost backend starts a fresh interpreter for every call (~0.7 s here), so the shared
behaviour suite (tests/test_api.py) runs as a representative subset, imported by name and run
with the `strategy` fixture overridden below, plus the promises of this strategy alone. The whole
suite passes on Lithops in ~100 s (checked 2026-11-26) except the as-completed test, whose 1 s item
is shorter than a call's start-up: it is rewritten below with a longer item.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

pytest.importorskip("lithops", reason="the 'lithops' extra is not installed")

import gearshift
from _from_async import FROM_SYNC
from gearshift import TaskFailed, TaskTimeout, UsageError
from gearshift.errors import RemoteTraceback
from gearshift.machine import available_cores
from gearshift.strategies import names
from gearshift.strategies._lithops import Lithops
from test_api import (  # noqa: F401  the shared behaviour tests: pytest collects them here too
    fail_on_three,
    slow_then_fast,
    square,
    test_empty_input_gives_empty_list,
    test_failure_carries_the_workers_traceback,
    test_first_failure_raises_task_failed_naming_the_item,
    test_generator_input_error_propagates,
    test_initializer_runs_before_tasks,
    test_input_is_consumed_lazily,
    test_item_repr_is_truncated,
    test_lambdas_and_closures_run,
    test_retries_rerun_a_failed_item,
)

pytestmark = pytest.mark.slow

# Never a developer's own Lithops config (it may name a cloud). The data cleaner is off because
# it runs as a detached process that outlives the tests; the fixture below deletes the files.
LOCAL = {"lithops": {"backend": "localhost", "storage": "localhost", "data_cleaner": False}}


@pytest.fixture(scope="module", autouse=True)
def _lithops_files_removed() -> Iterator[None]:
    """Lithops keeps every call's files under /tmp/lithops-$USER, this test run's own (conftest
    sets USER): delete it."""
    from lithops.constants import LITHOPS_TEMP_DIR

    assert "gearshift-tests-" in LITHOPS_TEMP_DIR  # never another run's, nor a developer's
    yield
    shutil.rmtree(LITHOPS_TEMP_DIR, ignore_errors=True)


@pytest.fixture(scope="module")
def strategy() -> Lithops:
    """Overrides conftest's: the shared tests imported above run on this one instance."""
    return Lithops(config=LOCAL)


@pytest.fixture
def run() -> Any:
    """Overrides test_api's: the shared tests run from sync code only here, as every Lithops call
    is slow to start; amap's route to a strategy is the same for all (tests/test_api.py)."""
    return FROM_SYNC


def test_results_equal_builtin_map(strategy: Lithops) -> None:
    items = list(range(-50, 250))
    it = gearshift.imap(square, items, strategy=strategy, chunksize=100)
    assert list(it) == list(map(square, items))
    stats = it.statistics()
    assert (stats.chunksize, stats.tasks_done) == (100, 300)


def test_unordered_yields_as_completed() -> None:
    # The shared test's 1-second item is too short here: each localhost call starts a fresh
    # interpreter (~0.7 s), so on 2 workers the last quick call can end after it. With a worker
    # per item all four start together, and the 3-second one ends last.
    got = list(
        gearshift.imap(
            slow_then_fast,
            [3.0, 0.0, 0.0, 0.0],
            strategy=Lithops(4, config=LOCAL),
            ordered=False,
            chunksize=1,
        )
    )
    assert got == [0.0, 0.0, 0.0, 3.0]


def test_by_name_with_the_config_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "lithops" in names()
    monkeypatch.setenv("LITHOPS_CONFIG", json.dumps(LOCAL))
    assert gearshift.map(square, [1, 2, 3], strategy="lithops", chunksize=3) == [1, 4, 9]


def test_return_exceptions_name_items_with_the_remote_traceback(strategy: Lithops) -> None:
    got = gearshift.map(
        fail_on_three, range(6), strategy=strategy, chunksize=3, return_exceptions=True
    )
    assert got[:3] == [0, 1, 2] and got[4:] == [4, 5]
    error = got[3]
    assert isinstance(error, TaskFailed) and error.index == 3 and "item 3" in str(error)
    assert isinstance(error.__cause__, ValueError)
    assert isinstance(error.__cause__.__cause__, RemoteTraceback)
    assert "fail_on_three" in str(error.__cause__.__cause__)


def test_executor_submit_returns_values_and_raises_remote_errors(strategy: Lithops) -> None:
    with gearshift.Executor(strategy=strategy) as ex:
        good, bad = ex.submit(square, 7), ex.submit(fail_on_three, 3)
        assert good.result(timeout=30) == 49
        with pytest.raises(ValueError, match="three is bad") as info:
            bad.result(timeout=30)
    assert "fail_on_three" in str(info.value.__cause__)


def test_shutdown_cancel_futures_cancels_the_calls_not_started() -> None:
    ex = gearshift.Executor(strategy=Lithops(1, config=LOCAL))
    futures = [ex.submit(time.sleep, 1) for _ in range(4)]
    deadline = time.monotonic() + 10
    while not futures[0].running() and time.monotonic() < deadline:
        time.sleep(0.01)  # the first call has been handed to Lithops
    ex.shutdown(wait=True, cancel_futures=True)
    assert futures[0].result() is None
    assert [f.cancelled() for f in futures] == [False, True, True, True]


def sleep_on_one(x: int) -> int:
    if x == 1:
        time.sleep(30)
    return x


def test_task_timeout_fails_only_the_overdue_item(strategy: Lithops) -> None:
    got = gearshift.map(
        sleep_on_one,
        range(4),
        strategy=strategy,
        chunksize=1,
        task_timeout=1.0,
        return_exceptions=True,
    )
    assert isinstance(got[1], TaskTimeout) and got[1].index == 1
    assert [g for i, g in enumerate(got) if i != 1] == [0, 2, 3]


def exit_on_two(x: int) -> int:
    if x == 2:
        os._exit(3)
    return x


def test_a_call_whose_process_dies_fails_its_items_by_name(strategy: Lithops) -> None:
    got = gearshift.map(
        exit_on_two, range(4), strategy=strategy, chunksize=1, return_exceptions=True
    )
    assert got[:2] == [0, 1] and got[3] == 3
    assert isinstance(got[2], TaskFailed) and got[2].index == 2 and "code 3" in str(got[2])


def _runners() -> list[psutil.Process]:
    """Lithops' localhost task processes started by this test process."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if any("localhost-runner" in part for part in child.cmdline()):
                found.append(child)
        except psutil.Error:
            pass
    return found


def test_close_stops_the_running_calls(strategy: Lithops) -> None:
    it = gearshift.imap(sleep_on_one, [0, 1, 1, 1], strategy=strategy, chunksize=1)
    assert next(it) == 0
    start = time.monotonic()
    it.close()
    assert time.monotonic() - start < 15  # the 30-second calls were killed, not awaited
    _, alive = psutil.wait_procs(_runners(), timeout=10)
    assert not alive


def test_unpicklable_function_is_a_usage_error(strategy: Lithops) -> None:
    import threading

    lock = threading.Lock()

    def uses_lock(x: int) -> int:
        with lock:
            return x

    with pytest.raises(UsageError, match="could not be pickled"):
        gearshift.map(uses_lock, [1], strategy=strategy)


def test_without_a_config_runs_on_localhost_with_this_interpreter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lithops import constants

    if any(os.path.exists(f) for f in (constants.CONFIG_FILE, constants.CONFIG_FILE_GLOBAL)):
        pytest.skip("a Lithops config file exists on this machine, so it would be used")
    monkeypatch.delenv("LITHOPS_CONFIG", raising=False)
    monkeypatch.delenv("LITHOPS_CONFIG_FILE", raising=False)
    config = Lithops().resolved_config()
    assert (config["lithops"]["backend"], config["lithops"]["storage"]) == (
        "localhost",
        "localhost",
    )
    assert config["localhost"]["runtime"] == sys.executable  # not the `python` found on PATH
    assert Lithops().workers == available_cores()


def test_the_users_config_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    user = {
        "lithops": {"backend": "localhost"},
        "localhost": {"runtime": "/opt/python3.12/bin/python3", "worker_processes": 3},
    }
    monkeypatch.setenv("LITHOPS_CONFIG", json.dumps(user))
    strategy = Lithops()
    assert strategy.resolved_config()["localhost"]["runtime"] == "/opt/python3.12/bin/python3"
    assert strategy.workers == 3 and Lithops(max_workers=5).workers == 5
