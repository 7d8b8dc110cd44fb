"""_load: the time a thread loses to a busy machine is measured, and idle time is not."""

from __future__ import annotations

import multiprocessing
import sys
import time

import pytest

from gearshift.machine import Mark, runqueue_seconds, steal_seconds

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
    assert mark.queued() < 0.05
    assert mark.stolen(busy=0.0) == 0.0


def test_the_counters_never_run_backwards() -> None:
    before = (runqueue_seconds(), steal_seconds())
    burn(0.05)
    assert runqueue_seconds() >= before[0] and steal_seconds() >= before[1] >= 0.0


def _cores() -> set[int]:
    import os

    return os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else {0, 1}


def test_a_steal_tick_in_a_short_window_is_not_read_as_most_of_it() -> None:
    mark = Mark()
    burn(0.002)
    mark.steal -= 0.005  # one 10 ms tick of steal on 2 CPUs landed in these 2 ms
    elapsed = time.perf_counter() - mark.wall
    lost = mark.stolen(busy=0.002)
    assert lost <= max(0.0, elapsed - 0.002)  # never more than the time the thread was off CPU
    assert lost < 0.0002  # averaged over STEAL_WINDOW, not over 2 ms (which would say 90%)
