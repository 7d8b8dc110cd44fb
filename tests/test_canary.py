"""_canary: a thread waiting for the GIL tells work that holds it from work that releases it.

What the canary reads of real work depends on the machine's load (a starved work thread lets the
canary in at once): those tests are `measures`, run by `make bench`. Its rules are tested here.
"""

from __future__ import annotations

import hashlib
import threading
import time

import pytest

from gearshift.auto._canary import Canary, cpu_clock
from gearshift.auto._chooser import choose
from gearshift.auto._profiler import profile, profile_sample

BLOCK = bytes(8 << 20)


def spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def busy_until(canary: Canary, work: object, limit: float = 5.0) -> None:
    """Run `work()` in this thread until the canary has a clear verdict (or `limit` s pass)."""
    end = time.perf_counter() + limit
    while not canary.clear() and time.perf_counter() < end:
        for _ in range(20):
            work()  # type: ignore[operator]


@pytest.mark.measures
def test_python_code_keeps_the_canary_out() -> None:
    with Canary() as canary:
        busy_until(canary, lambda: spin(1000))
    assert canary.held() is True, canary.share()


@pytest.mark.measures
def test_hashing_a_big_buffer_lets_the_canary_in_at_once() -> None:
    with Canary() as canary:
        busy_until(canary, lambda: hashlib.sha256(BLOCK).digest())  # releases the GIL meanwhile
    assert canary.held() is False, canary.share()


def test_too_short_a_run_says_nothing() -> None:
    with Canary() as canary:
        pass
    assert canary.share() is None and canary.held() is None


def test_cycles_while_the_work_is_off_cpu_count_for_nothing() -> None:
    # A work thread queued for a CPU (a loaded machine) lets the canary in again and again; those
    # cycles carry none of its CPU time, so they cannot make work that holds the GIL read free.
    canary = Canary(work_cpu=lambda: 1.0)  # the work never gets a CPU
    canary.cycles(60.0, over=lambda: canary.count > 20)
    assert canary.count > 20 and canary.share() is None


@pytest.mark.measures
def test_the_canary_can_watch_another_thread_from_this_one() -> None:
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            spin(1000)

    worker = threading.Thread(target=loop)
    worker.start()
    try:
        assert worker.ident is not None
        canary = Canary(cpu_clock(worker.ident))
        canary.cycles(5.0)
    finally:
        stop.set()
        worker.join()
    assert canary.held() is True, canary.share()


@pytest.mark.measures
def test_autos_sample_skips_the_thread_phase_for_work_that_holds_the_gil() -> None:
    items = [20_000] * 400  # ~1 ms each: short, so sampled in this thread first
    auto = profile_sample(spin, iter(items), total=len(items), until=lambda _: True).profile
    assert auto.thread_speedup is None and auto.holds_gil, str(auto)
    assert "another thread was kept out of the GIL" in auto.scaling_description()
    assert auto.items_sampled < 200  # ~5 ms, then the canary's ~10 ms: no 2-thread phase
    full = profile(spin, items)  # an explicit profile asks the canary too
    assert full.holds_gil and full.thread_speedup is None, str(full)
    assert choose(full).strategy == "processes"
