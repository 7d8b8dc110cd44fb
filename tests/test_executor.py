"""gearshift.Executor as a drop-in concurrent.futures.Executor, on every strategy.

Modelled on CPython's Lib/test/test_concurrent_futures: submit, map, shutdown, wait, as_completed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import functools
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import gearshift
from _running import release_once
from gearshift import UsageError


def mul(x: int, y: int) -> int:
    return x * y


def sleep_and_return(seconds: float, value: int) -> int:
    time.sleep(seconds)
    return value


def raise_value_error(message: str) -> None:
    raise ValueError(message)


async def amul(x: int, y: int) -> int:
    await asyncio.sleep(0)
    return x * y


class AsyncMul:
    """A callable object whose `__call__` is a coroutine function."""

    async def __call__(self, x: int, y: int) -> int:
        return await amul(x, y)


# Three shapes of coroutine function: async def, a partial of one, an object with async __call__.
ASYNC_SHAPES = [amul, functools.partial(amul), AsyncMul()]


def test_is_a_concurrent_futures_executor(strategy: str) -> None:
    with gearshift.Executor(2, strategy=strategy) as ex:
        assert isinstance(ex, cf.Executor)
        future = ex.submit(mul, 6, y=7)
        assert isinstance(future, cf.Future)
        assert future.result(timeout=30) == 42


def test_submit_exception_is_the_original(strategy: str) -> None:
    with gearshift.Executor(2, strategy=strategy) as ex:
        future = ex.submit(raise_value_error, "bad input")
        assert isinstance(future.exception(timeout=30), ValueError)
        with pytest.raises(ValueError, match="bad input"):
            future.result()


def give_up(x: int) -> int:
    raise asyncio.CancelledError(f"gave up on {x}")  # a plain function's own error


def test_a_call_raising_cancelled_error_holds_it_as_its_exception(strategy: str) -> None:
    if strategy == "asyncio" and sys.version_info < (3, 11):
        pytest.skip("3.10 has no Task.cancelling(): the call's task reads it as its own cancel")
    with gearshift.Executor(1, strategy=strategy) as ex:
        future = ex.submit(give_up, 5)  # serial runs it here: it must not escape submit
        error = future.exception(timeout=30)
        assert not future.cancelled()  # the call raised it; nobody cancelled the future
        assert isinstance(error, asyncio.CancelledError) and "gave up on 5" in str(error)
        assert ex.submit(mul, 2, 3).result(timeout=30) == 6


def test_map_matches_builtin_map(strategy: str) -> None:
    with gearshift.Executor(2, strategy=strategy) as ex:
        assert list(ex.map(mul, range(10), range(10))) == list(map(mul, range(10), range(10)))
        assert list(ex.map(mul, range(10), range(10), chunksize=3)) == [x * x for x in range(10)]
        assert list(ex.map(mul, range(10), range(5), buffersize=2)) == [x * x for x in range(5)]


@pytest.mark.parametrize("fn", ASYNC_SHAPES, ids=["async_def", "partial", "async_call"])
def test_asyncio_map_with_chunksize_gives_the_values_of_coroutines(fn: Any) -> None:
    squares = [x * x for x in range(7)]
    with gearshift.Executor(3, strategy="asyncio") as ex:
        assert list(ex.map(fn, range(7), range(7), chunksize=2)) == squares
        assert list(ex.map(fn, range(7), range(7), chunksize=3, buffersize=2)) == squares
        returns_coroutines = lambda x, y: amul(x, y)  # noqa: E731 - a plain fn giving awaitables
        assert list(ex.map(returns_coroutines, range(7), range(7), chunksize=4)) == squares


def test_coroutine_function_is_refused_where_it_cannot_run(strategy: Any) -> None:
    if strategy == "asyncio":
        pytest.skip("asyncio runs coroutine functions")
    name = strategy if isinstance(strategy, str) else strategy.name
    with gearshift.Executor(1, strategy=strategy) as ex:
        for fn in ASYNC_SHAPES:
            for call, args, kwargs in (
                (ex.submit, (fn, 2, 3), {}),
                (ex.map, (fn, [2], [3]), {}),
                (ex.map, (fn, [2, 4], [3, 5]), {"chunksize": 2}),
            ):
                with pytest.raises(UsageError) as info:
                    call(*args, **kwargs)
                message = str(info.value)
                assert message.startswith("fn ") and "is a coroutine function" in message
                assert f"strategy {name!r}" in message and "strategy='asyncio'" in message
        assert ex.submit(mul, 2, 3).result(timeout=30) == 6  # the executor is still usable


def test_map_raises_at_the_failing_item(strategy: str) -> None:
    with gearshift.Executor(2, strategy=strategy) as ex:
        results = ex.map(raise_value_error, ["a"])
        with pytest.raises(ValueError):
            next(results)


def wait_and_return(event: threading.Event | None, value: int) -> int:
    if event is not None:
        event.wait(30)
    return value


def test_map_timeout_is_for_the_whole_call_and_raises_what_the_standard_pool_raises() -> None:
    # concurrent.futures.TimeoutError: on 3.10 its own class, since 3.11 the builtin TimeoutError
    raised = []
    for ex in (cf.ThreadPoolExecutor(2), gearshift.Executor(2, strategy="threads")):
        release = threading.Event()
        with ex:
            results = ex.map(wait_and_return, [None, release], [1, 2], timeout=0.5)
            assert next(results) == 1
            with pytest.raises(cf.TimeoutError) as caught:
                next(results)
            release.set()
        raised.append(caught.type)
    assert raised[0] is raised[1]


def test_bad_map_arguments(strategy: str) -> None:
    with gearshift.Executor(1, strategy=strategy) as ex:
        with pytest.raises(ValueError, match="chunksize"):
            ex.map(mul, [1], [1], chunksize=0)
        with pytest.raises(UsageError, match="buffersize"):
            ex.map(mul, [1], [1], buffersize=0)


def test_wait_and_as_completed_work_with_its_futures(strategy: str) -> None:
    with gearshift.Executor(2, strategy=strategy) as ex:
        futures = [ex.submit(sleep_and_return, 0.01 * i, i) for i in range(4)]
        done, not_done = cf.wait(futures, timeout=30)
        assert not not_done and {f.result() for f in done} == {0, 1, 2, 3}
        got = sorted(f.result() for f in cf.as_completed(futures, timeout=30))
        assert got == [0, 1, 2, 3]


def test_submit_after_shutdown_raises(strategy: str) -> None:
    ex = gearshift.Executor(1, strategy=strategy)
    ex.shutdown()
    with pytest.raises(RuntimeError):
        ex.submit(mul, 1, 2)


def return_once_file_exists(path: Path, value: int) -> int:
    deadline = time.monotonic() + 30
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return value


def signal_start_then_wait(started: Path, release: Path, value: int) -> int:
    started.touch()
    return return_once_file_exists(release, value)


@pytest.mark.parametrize("name", ["threads", "processes"])
def test_shutdown_cancel_futures_cancels_queued_work(name: str, tmp_path: Path) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    ex = gearshift.Executor(1, strategy=name)
    running = ex.submit(signal_start_then_wait, started, release, 1)
    queued = [ex.submit(sleep_and_return, 0, i) for i in range(5)]
    return_once_file_exists(started, 0)
    assert started.exists()  # the first call runs (however long its worker took to start)
    # it ends while shutdown waits for it, once the queued calls are cancelled, not before
    release_once(lambda: all(f.done() for f in queued[1:]), release.touch)
    ex.shutdown(wait=True, cancel_futures=True)
    assert running.result() == 1
    assert all(f.cancelled() for f in queued[1:])


def test_shutdown_without_wait_returns_before_the_running_call_ends(tmp_path: Path) -> None:
    release = tmp_path / "release"
    ex = gearshift.Executor(1, strategy="processes")
    future = ex.submit(return_once_file_exists, release, 7)
    ex.shutdown(wait=False)
    assert not future.done()  # it cannot end before the file exists: shutdown did not wait
    release.touch()
    assert future.result(timeout=30) == 7


def test_initializer_and_initargs(strategy: str) -> None:
    def init(value: int) -> None:
        import builtins

        builtins.gearshift_executor_value = value  # type: ignore[attr-defined]

    def read() -> int:
        import builtins

        return int(builtins.gearshift_executor_value)  # type: ignore[attr-defined]

    with gearshift.Executor(1, strategy=strategy, initializer=init, initargs=(5,)) as ex:
        assert ex.submit(read).result(timeout=30) == 5


def test_failing_initializer_breaks_the_pool_clearly() -> None:
    def bad_init() -> None:
        raise RuntimeError("cannot start")

    with gearshift.Executor(1, strategy="processes", initializer=bad_init) as ex:
        future = ex.submit(mul, 1, 2)
        with pytest.raises(cf.BrokenExecutor) as info:
            future.result(timeout=30)
    assert isinstance(info.value, gearshift.GearshiftError)
    assert "cannot start" in repr(info.value.__cause__)


def test_statistics_of_the_process_pool() -> None:
    with gearshift.Executor(2, strategy="processes") as ex:
        assert [f.result() for f in [ex.submit(mul, i, i) for i in range(6)]] == [
            i * i for i in range(6)
        ]
        stats = ex.statistics()
    assert stats.tasks_submitted == stats.tasks_done == 6
    assert 1 <= stats.workers_started <= 2 and stats.workers_lost == 0


def test_max_tasks_per_child_keeps_the_strategys_other_settings() -> None:
    strategy = gearshift.Processes(2, start_method="spawn", blas_threads=1)
    with gearshift.Executor(strategy=strategy, max_tasks_per_child=3) as ex:
        assert isinstance(ex.strategy, gearshift.Processes)
        assert (ex.strategy.start_method, ex.strategy.blas_threads) == ("spawn", 1)
        assert ex.strategy.max_tasks_per_child == 3
        assert list(ex.map(abs, [-1, -2])) == [1, 2]
    assert strategy.max_tasks_per_child is None  # the caller's instance is left as it was
