"""Ramp: the width doubles while throughput rises by GAIN, and stops at the first doubling that
did not: on hand-fed latencies, then on real thread pools."""

from __future__ import annotations

import subprocess
import sys

import pytest

import gearshift
from _running import Running
from gearshift.strategies._ramp import GAIN, MIN_ITEMS, Ramp


def ignore(width: int) -> None:
    """A pool that needs no widening: the rule alone is under test."""


def run_width(ramp: Ramp, latency: float) -> None:
    """Collect one judged width's worth of single-item chunks, each back after `latency`."""
    epoch = ramp.epoch
    while ramp.epoch == epoch and ramp.growing:
        ramp.record(epoch, 1, latency)


def test_constant_latency_doubles_the_width_up_to_the_limit() -> None:
    widened: list[int] = []
    ramp = Ramp(2, 40, widened.append)
    widths = [ramp.width]
    while ramp.growing:
        run_width(ramp, 0.05)  # sleeping items: twice the threads, twice the throughput
        widths.append(ramp.width)
    assert widths == [2, 4, 8, 16, 32, 40]
    assert widened == widths[1:]  # the pool was widened at every step


def test_latency_that_grows_with_the_width_stops_the_ramp_after_one_doubling() -> None:
    ramp = Ramp(4, 64, ignore)
    run_width(ramp, 0.004)  # width 4: 1,000 items/s
    assert ramp.width == 8
    run_width(ramp, 0.008 / GAIN * 1.01)  # width 8 gains just under GAIN: stay at 8
    assert (ramp.width, ramp.growing) == (8, False)
    ramp.record(ramp.epoch, 1000, 1e-6)  # nothing is judged once it stopped
    assert ramp.width == 8


def test_chunks_sent_before_a_doubling_are_not_judged_at_the_new_width() -> None:
    ramp = Ramp(2, 64, ignore)
    stale = ramp.epoch
    run_width(ramp, 0.01)
    assert ramp.width == 4
    for _ in range(10 * MIN_ITEMS):
        ramp.record(stale, 1, 100.0)  # slow, but sent at width 2: ignored
    assert (ramp.width, ramp.growing) == (4, True)
    run_width(ramp, 0.01)
    assert ramp.width == 8


@pytest.mark.parametrize(("start", "limit"), [(8, 8), (16, 8)])
def test_a_start_at_or_over_the_limit_never_grows(start: int, limit: int) -> None:
    ramp = Ramp(start, limit, ignore)
    assert (ramp.width, ramp.growing) == (limit, False)


def test_a_real_thread_pool_of_sleeping_items_grows_to_its_limit() -> None:
    running = Running(0.02)
    it = gearshift.imap(running.sleep, range(600), strategy=gearshift.Threads(2, grow_to=32))
    assert list(it) == list(range(600))
    assert it.statistics().width == 32
    assert running.peak == 32  # the ramp sets how many run at once; the pool never runs more


GIL_BOUND = """
import gearshift

def spin(x):  # ~1 ms of pure Python: holds the GIL, so more threads add no throughput
    total = 0
    for i in range(20_000):
        total += i
    return x

it = gearshift.imap(spin, range(1500), strategy=gearshift.Threads(2, grow_to=64))
assert list(it) == list(range(1500))
print(it.statistics().width)
"""


@pytest.mark.measures  # what 2 -> 4 threads gain on this machine, now: make bench
def test_a_real_thread_pool_of_gil_bound_items_stops_growing_early() -> None:
    # In a fresh interpreter: in this one, a test fixture's busy thread would hand more threads
    # a larger share of the GIL, a real gain that the ramp would rightly take.
    run = subprocess.run(
        [sys.executable, "-c", GIL_BOUND], capture_output=True, text=True, timeout=50, check=True
    )
    assert int(run.stdout) <= 16  # 2 -> 4 gains nothing; noise may grant one more step


def test_without_grow_to_the_width_is_fixed() -> None:
    running = Running(0.01)
    it = gearshift.imap(running.sleep, range(100), strategy=gearshift.Threads(3))
    list(it)
    assert (it.statistics().width, running.peak) == (3, 3)


def test_grow_to_is_checked() -> None:
    with pytest.raises(gearshift.UsageError, match="grow_to must be greater than 0"):
        gearshift.Threads(2, grow_to=0)
