"""_canary: a thread waiting for the GIL tells work that holds it from work that releases it.

What the canary reads of real work depends on the machine's load (a starved work thread lets the
canary in at once): those tests are `measures`, run by `make bench`. Its rules are tested here.
"""

from __future__ import annotations

import hashlib
import sys
import time

import pytest

from gearshift.auto._canary import MIN_WAKES, Canary
from gearshift.auto._profiler import profile, profile_sample
from gearshift.auto._sampling import HELD_SWITCHES

BLOCK = bytes(8 << 20)


def spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


@pytest.mark.measures
def test_python_code_makes_the_canary_wait_a_switch_interval() -> None:
    with Canary() as canary:
        end = time.perf_counter() + 0.1
        while time.perf_counter() < end:
            spin(1000)
    wait = canary.wait()
    assert wait is not None and wait >= HELD_SWITCHES * sys.getswitchinterval()


@pytest.mark.measures
def test_hashing_a_big_buffer_lets_the_canary_in_at_once() -> None:
    with Canary() as canary:
        end = time.perf_counter() + 0.1
        while time.perf_counter() < end:
            hashlib.sha256(BLOCK).digest()  # releases the GIL while it hashes
    wait = canary.wait()
    assert wait is not None and wait < HELD_SWITCHES * sys.getswitchinterval()


def test_too_few_waits_say_nothing_and_enough_give_their_median() -> None:
    canary = Canary()  # not started: its waits are given, as its thread would record them
    canary._waits = [0.005] * (MIN_WAKES - 1)
    assert canary.wait() is None
    canary._waits = [0.0001, 0.006, 0.005, 0.0002, 0.007]
    assert canary.wait() == 0.005


@pytest.mark.measures
def test_autos_sample_skips_the_thread_phase_for_work_that_holds_the_gil() -> None:
    items = [20_000] * 400  # ~1 ms each: short, so sampled one at a time first
    auto = profile_sample(spin, iter(items), total=len(items), until=lambda _: True).profile
    assert auto.thread_speedup is None and auto.holds_gil
    assert "another thread waited" in auto.scaling_description()
    assert auto.items_sampled < 100  # the sequential phase's ~50 ms, no 2-thread phase
    full = profile(spin, items)  # an explicit profile still measures threads
    assert full.thread_speedup is not None and full.thread_speedup < 1.7
