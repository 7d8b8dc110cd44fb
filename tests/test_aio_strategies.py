"""Plain functions from async code: `amap`/`aimap` on every strategy and auto, off the loop.

test_api.py runs the behaviour suite through `amap`/`aimap` too; these tests cover what only async
callers have: where the items run (never on the loop's thread), auto's choice from async code, the
loop's responsiveness while CPU-bound work runs, and stopping by cancellation or by leaving early.
Times below are bounds on waits, never asserts on speed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

import gearshift
from gearshift import UsageError
from gearshift.auto import _strategy

SETTLE_SECONDS = 2.0  # the bound: the work stops within 2 s of being cancelled
TIMEOUT_SECONDS = 3.0  # for asyncio.timeout and wait_for: time enough for the workers to start


def square(x: int) -> int:
    return x * x


def spin(seconds: float) -> float:
    """Pure Python for `seconds` of wall time: holds the GIL (between switch intervals)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return seconds


def where(_: int) -> tuple[int, int]:
    return os.getpid(), threading.get_ident()


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def gearshift_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("gearshift")}


def worker_processes() -> set[psutil.Process]:
    """This process's descendants but its fork server (which lives as long as this process)."""
    return {p for p in psutil.Process().children(recursive=True) if not is_fork_server(p)}


def is_fork_server(proc: psutil.Process) -> bool:
    """A child of this process running the fork server, or about to (forked, not yet exec'd)."""
    try:
        if proc.ppid() != os.getpid():
            return False
        cmdline = proc.cmdline()
        return "_forkserver.py" in " ".join(cmdline) or cmdline == psutil.Process().cmdline()
    except psutil.Error:
        return False


def run_and_watch(main: Callable[[], Awaitable[Any]]) -> tuple[Any, set[psutil.Process]]:
    """Run `main()` in a fresh loop; return its result and the worker processes seen meanwhile."""
    before = worker_processes()
    seen: set[psutil.Process] = set()

    async def watched() -> Any:
        async def watch() -> None:
            while True:
                seen.update(worker_processes() - before)
                await asyncio.sleep(0.05)

        watcher = asyncio.create_task(watch())
        try:
            return await main()
        finally:
            watcher.cancel()

    return asyncio.run(watched()), seen


def assert_nothing_left(before: set[threading.Thread], workers: set[psutil.Process]) -> None:
    workers = {p for p in workers if not is_fork_server(p)}  # seen before it ran the server
    _, alive = psutil.wait_procs(list(workers), timeout=SETTLE_SECONDS)
    assert not alive, f"worker processes outlived the stop: {alive}"
    deadline = time.monotonic() + SETTLE_SECONDS
    while gearshift_threads() - before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not gearshift_threads() - before, threading.enumerate()


# ---- where the items run, and what auto chooses ------------------------------------------------
def test_plain_functions_never_run_on_the_loops_thread(strategy: Any) -> None:
    """Serial too: from async code its items run in gearshift's helper thread, one at a time."""

    async def main() -> tuple[list[tuple[int, int]], tuple[int, int]]:
        got = await gearshift.amap(where, range(40), strategy=strategy)
        return got, (os.getpid(), threading.get_ident())

    got, loop_thread = asyncio.run(main())
    assert len(got) == 40 and loop_thread not in got


@pytest.fixture
def auto_picks_serial(monkeypatch: pytest.MonkeyPatch) -> None:
    """auto samples as usual, then chooses serial, as it does here for tiny items on an idle
    machine (a busy one may measure otherwise): for the rule that async code never gets it."""
    real = _strategy.choose

    def serial(profile: Any, **kwargs: Any) -> Any:
        return dataclasses.replace(real(profile, **kwargs), strategy="serial", max_workers=1)

    monkeypatch.setattr(_strategy, "choose", serial)


def test_auto_from_async_code_never_picks_serial_and_says_why(auto_picks_serial: None) -> None:
    async def main() -> tuple[list[tuple[int, int]], Any, tuple[int, int]]:
        async with gearshift.aimap(where, range(1000)) as results:
            got = [x async for x in results]
        return got, results, (os.getpid(), threading.get_ident())

    got, results, loop_thread = asyncio.run(main())
    assert len(got) == 1000 and loop_thread not in got
    choice = results.choice
    assert choice is not None and choice.strategy == "threads" and choice.max_workers == 1
    assert "serial" in choice.why and "allow_serial=False" in choice.why  # what sync code gets
    assert results.strategy.name == "threads" and results.statistics().tasks_done == 1000


@pytest.mark.measures  # what auto measures of real work, here and now: make bench
def test_auto_from_async_code_measures_cpu_bound_work_and_picks_processes() -> None:
    async def main() -> tuple[list[float], Any]:
        async with gearshift.aimap(spin, [0.05] * 60) as results:
            return [x async for x in results], results

    got, results = asyncio.run(main())
    assert got == [0.05] * 60
    assert results.choice is not None and results.choice.strategy == "processes"
    assert "CPU-bound" in results.choice.why and "GIL" in results.choice.why


def test_auto_for_a_coroutine_function_runs_it_on_the_callers_loop_and_says_why() -> None:
    async def main() -> tuple[list[int], Any, set[asyncio.AbstractEventLoop]]:
        loops = set()

        async def double(x: int) -> int:
            loops.add(asyncio.get_running_loop())
            await asyncio.sleep(0)
            return 2 * x

        async with gearshift.aimap(double, range(10)) as results:
            got = [x async for x in results]
        return got, results, loops - {asyncio.get_running_loop()}

    got, results, other_loops = asyncio.run(main())
    assert got == [2 * x for x in range(10)] and not other_loops
    assert results.choice is not None and results.choice.strategy == "asyncio"
    assert "your loop" in results.choice.why


@pytest.mark.parametrize("name", ["serial", "threads", "processes"])
def test_a_coroutine_function_on_a_plain_strategy_is_a_usage_error(name: str) -> None:
    async def fetch(x: int) -> int:
        return x

    with pytest.raises(UsageError, match="coroutine function"):
        asyncio.run(gearshift.amap(fetch, [1], strategy=name))


def test_an_endless_async_iterable_runs_in_bounded_memory(strategy: Any) -> None:
    taken = 0

    async def endless() -> AsyncIterator[int]:
        nonlocal taken
        while True:
            taken += 1
            yield taken

    async def main() -> list[int]:
        got: list[int] = []
        async with gearshift.aimap(square, endless(), strategy=strategy, chunksize=10) as results:
            async for x in results:
                got.append(x)
                if len(got) == 100:
                    break
        return got

    assert asyncio.run(main()) == [x * x for x in range(1, 101)]
    assert taken < 10_000  # the window, plus what the helper thread holds for the loop


# ---- the loop keeps running -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["processes", "auto"])
def test_the_loop_keeps_ticking_while_cpu_bound_work_runs(name: str) -> None:
    """A ticker coroutine ticks in every quarter of the run, auto's sample included (its items
    run on threads beside the loop); run on the loop itself, the work would allow no tick."""

    async def main() -> tuple[list[float], float, float]:
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.005)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.02)
        start = time.perf_counter()
        assert await gearshift.amap(spin, [0.2] * 8, strategy=name) == [0.2] * 8
        end = time.perf_counter()
        task.cancel()
        return ticks, start, end

    ticks, start, end = asyncio.run(main())
    quarter = (end - start) / 4
    for k in range(4):
        low, high = start + k * quarter, start + (k + 1) * quarter
        assert any(low <= t < high for t in ticks), f"no tick in quarter {k + 1} of {end - start}s"


# ---- stopping ---------------------------------------------------------------------------------
async def until(ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not ready() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


async def stop_early(
    how: str, ready: Callable[[], bool], fn: Callable[[Any], Any], items: list[Any], **options: Any
) -> None:
    """Run amap/aimap over `items` and stop it the way `how` says: once `ready()` (work is
    running), or for the timeouts after TIMEOUT_SECONDS."""
    if how == "leave":  # the first item is quick: leave after its result, the rest running
        async with gearshift.aimap(fn, items, ordered=False, **options) as results:
            async for _ in results:
                await until(ready)
                break
        return
    if how == "cancel":
        task = asyncio.create_task(gearshift.amap(fn, items, **options))
        await until(ready)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return
    with pytest.raises(asyncio.TimeoutError):
        if how == "wait_for":
            await asyncio.wait_for(gearshift.amap(fn, items, **options), TIMEOUT_SECONDS)
        else:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                await gearshift.amap(fn, items, **options)


HOWS = [
    "cancel",
    "leave",
    "wait_for",
    pytest.param(
        "timeout",
        marks=pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout: 3.11+"),
    ),
]


@pytest.mark.parametrize("how", HOWS)
def test_stopping_kills_process_workers_and_leaves_nothing_running(how: str) -> None:
    threads = gearshift_threads()
    before = worker_processes()
    items = [0.0] + [60.0] * 5  # 60 s naps: only a kill ends them in time

    def ready() -> bool:  # both workers inside an item (what they do next, the watcher may miss)
        running = worker_processes() - before
        ready_seen.update(running)
        return len(running) == 2

    ready_seen: set[psutil.Process] = set()
    _, seen = run_and_watch(
        lambda: stop_early(how, ready, nap, items, strategy="processes", max_workers=2, chunksize=1)
    )
    seen |= ready_seen
    assert seen, "no worker process was seen running: nothing was stopped"
    assert_nothing_left(threads, seen)


@pytest.mark.parametrize("name", ["threads", "serial", "auto"])
def test_stopping_in_process_strategies_starts_nothing_more(name: str) -> None:
    """Threads cannot be killed: the items running finish (0.3 s), and no queued item starts.
    auto's sample runs CPU-bound items on threads, then processes, which are killed; threads and
    serial nap, so that the loop and psutil are not left waiting for the GIL meanwhile."""
    threads = gearshift_threads()
    started: list[float] = []

    def counted(seconds: float) -> float:
        started.append(seconds)
        return spin(seconds) if name == "auto" else nap(seconds)

    items = [0.3] * 40
    running = 1 if name == "auto" else 2  # auto: items past its sample's run in processes
    _, seen = run_and_watch(
        lambda: stop_early("cancel", lambda: len(started) >= running, counted, items, strategy=name)
    )
    assert_nothing_left(threads, seen)
    count = len(started)
    time.sleep(0.5)
    assert len(started) == count < len(items)  # nothing started after the stop


CTRL_C_SCRIPT = """
import asyncio, os, sys, time, gearshift
def slow(x):
    print(f"started {x}\\n", end="", flush=True)  # one write: workers share the pipe
    time.sleep(60)
    return x
async def main():
    await gearshift.amap(slow, range(8), strategy="processes", max_workers=2, chunksize=1)
print(os.getpid(), flush=True)
try:
    asyncio.run(main())
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


def test_one_ctrl_c_in_asyncio_run_kills_the_workers(tmp_path: Path) -> None:
    """asyncio.run cancels the task awaiting amap on Ctrl-C: the same stop as task.cancel()."""
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_SCRIPT)
    child = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == str(child.pid)
        assert {child.stdout.readline().strip() for _ in range(2)} == {"started 0", "started 1"}
        processes = psutil.Process(child.pid).children(recursive=True)  # workers, fork server
        os.killpg(child.pid, signal.SIGINT)  # one press of Ctrl-C in a terminal
        assert child.wait(30) == 130
        assert child.stdout.read().strip() == "interrupted"
        _, alive = psutil.wait_procs(processes, timeout=SETTLE_SECONDS)
        assert not alive
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
