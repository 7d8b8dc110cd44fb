"""Coroutine functions: strategy="asyncio" from sync code, `amap`/`aimap` on the caller's loop.

The shared behaviour suite (test_api.py) also runs on "asyncio" with plain functions; these
tests cover what only coroutines do: the bound on coroutines in flight, cancellation at the
timeout, the caller's loop, async input and early exit.
"""

from __future__ import annotations

import asyncio
import functools
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import gearshift
from _running import NO_THREADS_AT_EXIT, new_threads, release_once
from gearshift import TaskFailed, TaskTimeout, UsageError


class InFlight:
    """Counts coroutines running at once, and those cancelled."""

    def __init__(self) -> None:
        self.now = self.peak = self.cancelled = self.finished = 0

    async def run(self, x: float) -> float:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(x)
            self.finished += 1
            return x
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.now -= 1


async def double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


async def fail_on_three(x: int) -> int:
    await asyncio.sleep(0)
    if x == 3:
        raise ValueError(f"three is bad: {x}")
    return x


def test_map_runs_coroutine_functions_from_sync_code() -> None:
    assert gearshift.map(double, range(50), strategy="asyncio") == [2 * x for x in range(50)]


def test_max_workers_bounds_the_coroutines_in_flight() -> None:
    counter = InFlight()
    got = gearshift.map(counter.run, [0.02] * 60, strategy="asyncio", max_workers=7)
    assert got == [0.02] * 60
    assert counter.peak == 7  # the bound is reached, never passed


def test_task_timeout_cancels_the_coroutine_and_names_the_item() -> None:
    counter = InFlight()
    start = time.monotonic()
    got = gearshift.map(
        counter.run, [0.0, 30.0, 0.0], strategy="asyncio", task_timeout=0.3, return_exceptions=True
    )
    assert time.monotonic() - start < 10  # not 30: cancelled, not awaited
    assert got[0] == 0.0 and got[2] == 0.0
    assert isinstance(got[1], TaskTimeout) and got[1].index == 1 and got[1].item == "30.0"
    assert counter.cancelled == 1 and counter.now == 0  # really cancelled: its finally ran


def test_a_timeout_error_raised_by_user_code_is_not_a_task_timeout() -> None:
    async def times_out(_: int) -> int:
        raise TimeoutError("the user's own")

    got = gearshift.map(times_out, [1], strategy="asyncio", task_timeout=5, return_exceptions=True)
    assert type(got[0]) is TaskFailed and isinstance(got[0].__cause__, TimeoutError)


def test_failure_names_the_item_with_the_original_as_cause() -> None:
    with pytest.raises(TaskFailed) as info:
        gearshift.map(fail_on_three, range(10), strategy="asyncio")
    assert info.value.index == 3 and isinstance(info.value.__cause__, ValueError)


def test_retries_rerun_a_failed_coroutine() -> None:
    calls: dict[int, int] = {}

    async def flaky(x: int) -> int:
        calls[x] = calls.get(x, 0) + 1
        if x == 2 and calls[x] == 1:
            raise ConnectionError("transient")
        return x

    it = gearshift.imap(flaky, range(5), strategy="asyncio", retries=1)
    assert list(it) == [0, 1, 2, 3, 4]
    assert it.statistics().tasks_retried == 1 and calls[2] == 2


def test_unordered_map_of_coroutines_yields_as_completed() -> None:
    counter = InFlight()
    items = [0.5, 0.0, 0.0, 0.0]
    got = list(gearshift.imap(counter.run, items, strategy="asyncio", ordered=False, chunksize=1))
    assert got[-1] == 0.5 and sorted(got) == [0.0, 0.0, 0.0, 0.5]


async def raise_cancelled_on_one(x: int) -> int:
    await asyncio.sleep(0)
    if x == 1:
        raise asyncio.CancelledError("raised by the coroutine itself")
    return x


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10 has no Task.cancelling()")
@pytest.mark.parametrize("task_timeout", [None, 5.0])
def test_a_coroutine_raising_cancelled_error_fails_only_its_item(
    task_timeout: float | None,
) -> None:
    got = gearshift.map(
        raise_cancelled_on_one,
        range(4),
        strategy="asyncio",
        chunksize=4,
        task_timeout=task_timeout,
        return_exceptions=True,
    )
    assert got[0] == 0 and got[2:] == [2, 3]  # its neighbours in the chunk keep their values
    assert isinstance(got[1], TaskFailed) and got[1].index == 1
    assert isinstance(got[1].__cause__, asyncio.CancelledError)
    assert "raised by the coroutine itself" in str(got[1])
    with gearshift.Executor(1, strategy="asyncio") as ex:
        error = ex.submit(raise_cancelled_on_one, 1).exception(timeout=30)
    assert isinstance(error, asyncio.CancelledError) and "itself" in str(error)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10 has no Task.cancelling()")
def test_an_awaitable_from_a_plain_function_raising_cancelled_error_fails_only_its_item() -> None:
    got = gearshift.map(
        lambda x: raise_cancelled_on_one(x), range(4), strategy="asyncio", return_exceptions=True
    )
    assert got[0] == 0 and got[2:] == [2, 3]
    assert isinstance(got[1], TaskFailed) and isinstance(got[1].__cause__, asyncio.CancelledError)


def test_lambda_returning_a_coroutine_is_awaited() -> None:
    assert gearshift.map(lambda x: double(x), [1, 2], strategy="asyncio") == [2, 4]


def test_auto_refuses_a_plain_function_returning_coroutines_and_says_what_to_do() -> None:
    with pytest.raises(UsageError, match="strategy='asyncio'") as info:
        gearshift.map(lambda x: double(x), [1, 2])
    assert "not an async function" in str(info.value)

    async def main() -> None:
        with pytest.raises(UsageError, match="pass the async function itself"):
            await gearshift.amap(lambda x: double(x), [1, 2])

    asyncio.run(main())


def test_executor_submit_of_a_coroutine_function_and_an_async_initializer() -> None:
    seen: list[str] = []

    async def init(tag: str) -> None:
        await asyncio.sleep(0)
        seen.append(tag)

    with gearshift.Executor(2, strategy="asyncio", initializer=init, initargs=("ready",)) as ex:
        assert ex.submit(double, 21).result(timeout=30) == 42
        assert isinstance(ex.submit(fail_on_three, 3).exception(timeout=30), ValueError)
    assert seen == ["ready"]


async def until_set(flag: threading.Event) -> str:
    while not flag.is_set():
        await asyncio.sleep(0.01)
    return "released"


async def append_soon(to: list[int], x: int) -> None:
    to.append(x)
    await asyncio.sleep(0)


def test_executor_starts_calls_in_submit_order() -> None:
    """As with `ThreadPoolExecutor(1)`: one slot runs the calls one after another, in the order
    they were submitted, even those submitted while the loop is still starting."""
    for _ in range(20):
        order: list[int] = []
        ex = gearshift.Executor(1, strategy="asyncio")
        for i in range(6):
            ex.submit(append_soon, order, i)
        ex.shutdown(wait=True)
        assert order == list(range(6))


def test_executor_shutdown_cancels_coroutines_waiting_for_a_slot() -> None:
    counter, release = InFlight(), threading.Event()
    ex = gearshift.Executor(1, strategy="asyncio")
    running = ex.submit(until_set, release)
    queued = [ex.submit(counter.run, 0.0) for _ in range(5)]
    deadline = time.monotonic() + 30
    while not running.running() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert running.running()  # it holds the only slot, and cannot end before `release`
    # it ends while shutdown waits for it, once the queued calls are cancelled, not before
    release_once(lambda: all(f.done() for f in queued), release.set)
    ex.shutdown(wait=True, cancel_futures=True)
    assert running.result() == "released"
    assert all(f.cancelled() for f in queued) and counter.now == counter.finished == 0


def test_shutdown_cancels_only_calls_no_free_slot_was_waiting_for() -> None:
    """50 calls, 5 slots, shut down at once: 45 cancelled, and the 5 a free slot was there for
    run, as those an idle `ThreadPoolExecutor` thread takes would (CPython's own test)."""
    release = threading.Event()
    ex = gearshift.Executor(5, strategy="asyncio")
    futures = [ex.submit(until_set, release) for _ in range(50)]
    ex.shutdown(wait=False, cancel_futures=True)
    release.set()
    cancelled = [f for f in futures if f.cancelled()]
    assert len(cancelled) == 45 and cancelled == futures[5:]  # in submit order
    assert [f.result(timeout=30) for f in futures[:5]] == ["released"] * 5


def test_shutdown_without_wait_still_runs_every_submitted_function() -> None:
    """Plain functions go to the executor's thread pool once they hold a slot: shutting down
    without waiting must not close that pool under them (it lost 284 of 300 calls)."""
    ex = gearshift.Executor(3, strategy="asyncio")
    futures = [ex.submit(time.sleep, 0.001) for _ in range(9)]
    ex.shutdown(wait=False)
    assert [f.result(timeout=30) for f in futures] == [None] * 9


EXIT_SCRIPT = """
import asyncio, atexit, sys, time
import gearshift

async def coroutine():
    await asyncio.sleep(0.5)
    print("ran", flush=True)

def function():
    time.sleep(0.5)
    print("ran", flush=True)

def submit_at_exit():
    try:
        ex.submit(print, "too late")
    except RuntimeError as exc:
        print(exc, flush=True)

atexit.register(submit_at_exit)  # runs after the executor's own exit hook
ex = gearshift.Executor(3, strategy="asyncio")
ex.submit(globals()[sys.argv[2]])
if sys.argv[1] == "no-wait":
    ex.shutdown(wait=False)
"""


@pytest.mark.parametrize("kind", ["coroutine", pytest.param("function", marks=NO_THREADS_AT_EXIT)])
@pytest.mark.parametrize("how", ["no-wait", "never-shut-down"])
def test_interpreter_exit_lets_submitted_calls_finish_as_thread_pools_do(
    how: str, kind: str
) -> None:
    """Python's exit waits for calls a `ThreadPoolExecutor` was given (gh-83386): so does it
    for ours, with or without `shutdown(wait=False)`; a submit after that is refused."""
    done = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT, how, kind], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "ran",
        "cannot schedule new futures after interpreter shutdown",
    ]


FORK_SCRIPT = """
import multiprocessing, threading
import gearshift

async def until(flag):
    while not flag.is_set():
        await asyncio.sleep(0.01)

import asyncio
release = threading.Event()
ex = gearshift.Executor(1, strategy="asyncio")
ex.submit(until, release)
child = multiprocessing.get_context("fork").Process(target=int)
child.start()
child.join(30)
print(child.exitcode, flush=True)
release.set()
"""


def test_a_forked_child_exits_while_the_parents_executor_is_busy() -> None:
    """A forked child has a copy of the executor but none of its threads: its exit must not wait
    for the parent's calls (CPython's test_hang_global_shutdown_lock hung on this)."""
    done = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", FORK_SCRIPT],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert (done.returncode, done.stdout) == (0, "0\n"), done.stderr


async def scale(x: int, factor: int) -> int:
    await asyncio.sleep(0)
    return factor * x


class AsyncDouble:
    """A callable object whose `__call__` is a coroutine function."""

    async def __call__(self, x: int) -> int:
        return await double(x)


# Three shapes of coroutine function: async def, a partial of one, an object with async __call__.
ASYNC_SHAPES = [double, functools.partial(scale, factor=2), AsyncDouble()]
SHAPE_IDS = ["async_def", "partial", "async_call"]


@pytest.mark.parametrize("fn", ASYNC_SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("name", ["asyncio", "auto"])
def test_every_shape_of_coroutine_function_is_awaited(name: str, fn: Any) -> None:
    it = gearshift.imap(fn, range(6), strategy=name)
    assert list(it) == [2 * x for x in range(6)]
    if name == "auto":
        assert it.choice is not None and it.choice.strategy == "asyncio"


@pytest.mark.parametrize("fn", ASYNC_SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("name", ["serial", "threads", "processes", "dask", "lithops"])
def test_coroutine_function_on_a_non_async_strategy_is_a_usage_error(name: str, fn: Any) -> None:
    if name in ("dask", "lithops"):
        pytest.importorskip("distributed" if name == "dask" else "lithops")
    for run in (gearshift.map, gearshift.imap):
        with pytest.raises(UsageError) as info:
            run(fn, [1], strategy=name)
        message = str(info.value)
        assert message.startswith("fn ") and "is a coroutine function" in message
        assert f"strategy {name!r}" in message and "strategy='asyncio'" in message
        assert "gearshift.amap" in message


# ---- amap / aimap: on the caller's loop ---------------------------------------------------------
def test_amap_returns_results_in_order_on_the_callers_loop() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        lock = asyncio.Lock()  # loop-bound objects of the caller work inside fn

        async def on_my_loop(x: int) -> int:
            assert asyncio.get_running_loop() is loop
            async with lock:
                await asyncio.sleep(0)
            return x * x

        assert await gearshift.amap(on_my_loop, range(30)) == [x * x for x in range(30)]

    asyncio.run(main())


def test_aimap_unordered_yields_as_completed_within_the_bound() -> None:
    counter = InFlight()

    async def main() -> list[Any]:
        items = [0.5, 0.0, 0.0, 0.0]
        return [x async for x in gearshift.aimap(counter.run, items, ordered=False, chunksize=1)]

    got = asyncio.run(main())
    assert got[-1] == 0.5 and sorted(got) == [0.0, 0.0, 0.0, 0.5]


def test_amap_options_behave_as_map() -> None:
    counter = InFlight()

    async def main() -> tuple[list[Any], list[Any]]:
        bounded = await gearshift.amap(counter.run, [0.01] * 30, max_workers=4)
        errors = await gearshift.amap(
            fail_on_three, range(6), return_exceptions=True, retries=2, task_timeout=5
        )
        return bounded, errors

    bounded, errors = asyncio.run(main())
    assert bounded == [0.01] * 30 and counter.peak == 4
    assert errors[:3] == [0, 1, 2] and errors[4:] == [4, 5]
    assert isinstance(errors[3], TaskFailed) and errors[3].attempts == 3


def test_amap_timeout_cancels_the_coroutine() -> None:
    counter = InFlight()

    async def main() -> list[Any]:
        return await gearshift.amap(
            counter.run, [30.0, 0.0], task_timeout=0.3, return_exceptions=True
        )

    got = asyncio.run(asyncio.wait_for(main(), 20))
    assert isinstance(got[0], TaskTimeout) and got[0].index == 0 and got[1] == 0.0
    assert counter.cancelled == 1


def test_amap_raises_task_failed() -> None:
    with pytest.raises(TaskFailed) as info:
        asyncio.run(gearshift.amap(fail_on_three, range(10)))
    assert info.value.index == 3 and "three is bad" in str(info.value)


def test_aimap_takes_an_async_iterable_lazily_and_stops_on_early_exit() -> None:
    taken = 0
    counter = InFlight()

    async def endless() -> AsyncIterator[float]:
        nonlocal taken
        while True:
            taken += 1
            yield 0.01 if taken > 5 else 30.0  # the first five would take 30 s

    async def main() -> list[Any]:
        got = []
        async with gearshift.aimap(counter.run, endless(), ordered=False, max_workers=10) as it:
            async for x in it:
                got.append(x)
                if len(got) == 3:
                    break
        return got

    start = time.monotonic()
    assert asyncio.run(main()) == [0.01] * 3
    assert time.monotonic() - start < 10  # the 30-second coroutines were cancelled
    assert taken < 1000  # a bounded window, not the endless input
    assert counter.now == 0 and counter.cancelled >= 5


@pytest.mark.parametrize("plain", [False, True], ids=["coroutine_fn", "plain_fn"])
def test_cancelling_the_awaiting_task_cancels_the_work(plain: bool) -> None:
    counter = InFlight()
    fn: Any = (lambda x: counter.run(x)) if plain else counter.run  # plain: returns awaitables

    async def main() -> None:
        on_loop = "asyncio" if plain else "auto"  # auto needs `async def` to tell it (below)
        task = asyncio.ensure_future(
            gearshift.amap(fn, [30.0] * 20, strategy=on_loop, max_workers=5, chunksize=1)
        )
        while counter.now < 5:  # all five slots are running
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    threads = set(threading.enumerate())
    asyncio.run(asyncio.wait_for(main(), 20))
    assert counter.peak == 5 and counter.now == 0 and counter.cancelled == 5
    deadline = time.monotonic() + 2  # the helper thread ends right after it posts `done`
    while new_threads(threads) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert new_threads(threads) == []  # the helper thread is gone


def test_aimap_outside_an_event_loop_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="async code"):
        gearshift.aimap(double, [1])


def test_aimap_checks_its_options_at_once() -> None:
    async def main() -> None:
        with pytest.raises(UsageError, match="max_workers"):
            gearshift.aimap(double, [1], max_workers=0)
        with pytest.raises(UsageError, match="task_timeout"):
            gearshift.aimap(double, [1], task_timeout=-1)

    asyncio.run(main())
