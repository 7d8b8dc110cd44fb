"""machine: the time a thread loses to a busy machine is measured, and idle time is not."""

from __future__ import annotations

import multiprocessing
import sys
import time

import pytest

from gearshift.machine import (
    MAX_STEAL,
    STEAL_WINDOW,
    Mark,
    lost_to_steal,
    runqueue_seconds,
    steal_seconds,
)

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="schedstat is Linux's")


def burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@linux
def test_a_spinning_thread_queues_when_more_processes_than_cores_spin() -> None:
    context = multiprocessing.get_context("spawn")
    hogs = [context.Process(target=burn, args=(3.0,)) for _ in range(2 * len(_cores()) + 1)]
    for hog in hogs:
        hog.start()
    try:
        time.sleep(0.5)  # the hogs are running
        mark = Mark()
        burn(1.0)
        assert mark.queued() > 0.1
    finally:
        for hog in hogs:
            hog.kill()
            hog.join()


def test_a_sleeping_thread_loses_nothing() -> None:
    mark = Mark()
    time.sleep(0.2)
    assert mark.queued() < 0.1  # a wake-up's wait for a CPU at most, not the sleep
    assert mark.stolen(busy=0.0) == 0.0


def test_the_counters_never_run_backwards() -> None:
    before = (runqueue_seconds(), steal_seconds())
    burn(0.05)
    assert runqueue_seconds() >= before[0] and steal_seconds() >= before[1] >= 0.0


def _cores() -> set[int]:
    import os

    return os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else {0, 1}


def test_a_steal_tick_in_a_short_window_is_not_read_as_most_of_it() -> None:
    # one 10 ms tick of steal on 2 CPUs (5 ms per CPU) counted while a thread ran 2 ms of a
    # 10 ms window: averaged over STEAL_WINDOW it is 5% steal, not 50% over 10 ms (2 ms lost)
    lost = lost_to_steal(busy=0.002, elapsed=0.010, steal=0.005)
    share = 0.005 / STEAL_WINDOW
    assert lost == pytest.approx(0.002 * share / (1 - share))
    assert lost < 0.0002


def test_steal_never_counts_more_than_the_time_off_cpu() -> None:
    assert lost_to_steal(busy=0.002, elapsed=0.0021, steal=0.005) == pytest.approx(0.0001)
    assert lost_to_steal(busy=0.002, elapsed=0.001, steal=0.005) == 0.0  # clocks disagree
    assert lost_to_steal(busy=0.5, elapsed=1.0, steal=0.0) == 0.0


def test_a_long_window_counts_its_share_of_steal() -> None:
    # 10% steal over 1 s: 0.9 s of CPU took 1 s of wall time, 0.1 s of it stolen
    assert lost_to_steal(busy=0.9, elapsed=1.0, steal=0.1) == pytest.approx(0.1)
    # more steal than time: capped at MAX_STEAL, or the estimate would divide by almost nothing
    capped = 0.01 * MAX_STEAL / (1 - MAX_STEAL)
    assert lost_to_steal(busy=0.01, elapsed=1.0, steal=5.0) == pytest.approx(capped)
