"""strategy="auto" end to end: it measures, chooses by the rules, and never runs an item twice.

Which strategy auto picks for CPU-bound work is what this machine measured, and a busy machine
can change it: those tests are `measures` (run by `make bench`; bench/auto.py times the picks).
Tests of what follows a choice make auto pick processes (`auto_picks_processes`), whatever it
measured; waiting work is told from computing work on any machine.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import gearshift
from gearshift import UsageError
from gearshift.auto import _strategy
from gearshift.auto._chooser import SCALES_ON_THREADS
from gearshift.auto._profiler import profile_sample
from gearshift.machine import available_cores


def pure_python(x: int) -> int:
    total = 0
    for i in range(200_000):
        total += i
    return x


def heavy(x: int) -> int:
    """~25 ms of pure Python on an idle machine: a few dozen items are worth processes."""
    for _ in range(3):
        pure_python(x)
    return x


def sleepy(x: int) -> int:
    time.sleep(0.02)
    return x


@pytest.fixture
def auto_picks_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """auto samples and measures as usual, then runs the rest on 2 processes, as it would for
    CPU-bound work on an idle machine: for tests of what happens after that choice."""
    real = _strategy.choose

    def processes(profile: Any, **kwargs: Any) -> Any:
        return dataclasses.replace(real(profile, **kwargs), strategy="processes", max_workers=2)

    monkeypatch.setattr(_strategy, "choose", processes)


@pytest.mark.measures
def test_pure_python_goes_to_processes() -> None:
    it = gearshift.imap(pure_python, range(150))  # ~2 s of work: processes pay for their start
    assert list(it) == list(range(150))
    assert it.choice is not None and it.choice.strategy == "processes"
    assert "GIL" in it.choice.why
    stats = it.statistics()
    assert stats.tasks_done == stats.tasks_submitted == 150


def test_sleeping_goes_to_wide_threads() -> None:
    it = gearshift.imap(sleepy, range(100))
    assert list(it) == list(range(100))
    assert it.choice is not None and it.choice.strategy == "threads"
    assert it.choice.max_workers >= 8


def test_tiny_items_stay_serial() -> None:
    it = gearshift.imap(lambda x: x * x, range(10_000))
    assert sum(it) == sum(x * x for x in range(10_000))
    assert it.choice is not None and it.choice.strategy == "serial"


def test_no_item_runs_twice(tmp_path: Path, auto_picks_processes: None) -> None:
    log = tmp_path / "calls"

    def record(x: int) -> int:
        with open(log, "a") as f:
            f.write(f"{x}\n")
        return pure_python(x)

    it = gearshift.imap(record, range(100))
    assert list(it) == list(range(100))
    assert it.choice is not None
    assert it.choice.strategy == "processes", it.choice.why  # sampled here, run there
    assert sorted(int(line) for line in log.read_text().split()) == list(range(100))


def test_sample_failures_follow_the_usual_rules() -> None:
    def fail_on_zero(x: int) -> int:
        if x == 0:
            raise ValueError("zero")
        return x

    got = gearshift.map(fail_on_zero, range(5), return_exceptions=True)
    assert isinstance(got[0], gearshift.TaskFailed) and got[1:] == [1, 2, 3, 4]
    with pytest.raises(gearshift.TaskFailed):
        gearshift.map(fail_on_zero, range(5))


def test_unordered_auto_yields_every_item() -> None:
    assert sorted(gearshift.imap(sleepy, range(30), ordered=False)) == list(range(30))


def test_initializer_skips_the_in_process_sample() -> None:
    def init() -> None:
        os.environ["GEARSHIFT_TEST_INIT"] = "yes"

    def read(_: int) -> str:
        return os.environ.get("GEARSHIFT_TEST_INIT", "no")

    it = gearshift.imap(read, range(3), initializer=init)
    assert list(it) == ["yes"] * 3
    assert it.choice is not None and it.choice.strategy == "processes"


def test_processes_chosen_by_auto_cap_blas_threads(
    monkeypatch: pytest.MonkeyPatch, auto_picks_processes: None
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)

    def threads_setting(x: int) -> str | None:
        pure_python(x)
        return os.environ.get("OMP_NUM_THREADS")

    it = gearshift.imap(threads_setting, range(150), strategy=gearshift.Auto(max_workers=2))
    got = list(it)
    assert it.choice is not None and it.choice.strategy == "processes"
    assert set(got[-5:]) == {str(max(1, available_cores() // 2))}


def test_auto_width_is_capped_by_max_workers() -> None:
    it = gearshift.imap(sleepy, range(50), max_workers=4)
    list(it)
    assert it.choice is not None and it.choice.strategy == "threads"
    assert it.choice.max_workers > 4 and it.strategy.workers == 4


def test_an_executor_cannot_be_auto() -> None:
    with pytest.raises(UsageError, match="auto"):
        gearshift.Executor(strategy="auto")


def test_empty_input_with_auto() -> None:
    assert gearshift.map(pure_python, iter(())) == []
    assert gearshift.map(pure_python, []) == []


def test_few_long_waiting_items_all_run_at_once() -> None:
    # the first two are measured while they run, the rest start beside them: each item waits
    # until all five run, which only happens if none waited for the sample to end
    all_five = threading.Barrier(5, timeout=30)

    def meet(x: int) -> int:
        all_five.wait()  # BrokenBarrierError after 30 s: that item fails
        return x

    it = gearshift.imap(meet, range(5))
    assert list(it) == list(range(5))
    assert it.choice is not None and it.choice.strategy == "threads", it.choice
    assert it.statistics().tasks_done == 5


def test_long_items_are_measured_while_they_run() -> None:
    sample = profile_sample(sleepy_long, iter([0.3] * 4), until=lambda _: True)
    prof = sample.profile
    assert prof.items_running >= 1 and not sample.outcome.done()
    assert "still running" in str(prof)
    assert prof.cpu_share < 0.5
    assert sample.result.values == [0.3] * len(sample.items)  # waits for them
    assert sample.outcome.done()


@pytest.mark.measures
def test_long_gil_bound_items_are_told_from_gil_free_ones_while_they_run() -> None:
    sample = profile_sample(spin_long, iter([3_000_000] * 4), until=lambda _: True)
    assert sample.profile.cpu_share > 0.6, str(sample.profile)
    assert sample.profile.holds_gil, str(sample.profile)  # the canary, beside the first item
    speedup = sample.profile.thread_speedup  # so no second item shared the GIL with it
    assert speedup is None or speedup < SCALES_ON_THREADS, str(sample.profile)
    assert len(sample.result.values) == len(sample.items) >= 1


@pytest.mark.measures
def test_a_long_waiting_first_item_does_not_make_cpu_work_look_waiting() -> None:
    def lazy(n: int) -> int:  # the first call waits for a (pretend) download, then all compute
        if n == 0:
            time.sleep(0.1)
            return 0
        return heavy(n)

    it = gearshift.imap(lazy, [0] + [1] * 80)
    assert list(it) == [0] + [1] * 80
    assert it.choice is not None and it.choice.strategy == "processes", it.choice.why


def sleepy_long(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def spin_long(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def big_sum(n: int) -> int:
    """One C call that holds the GIL throughout, as the source's experiment does."""
    return sum(range(n))


def test_few_long_gil_holding_items_are_remembered_and_run_all_at_once_next_time() -> None:
    items = [10_000_000] * 4  # ~0.1-0.2 s each: worth processes, too few to sample at length
    first = gearshift.imap(big_sum, items)
    assert list(first) == [big_sum(items[0])] * 4
    assert first.choice is not None and first.choice.strategy == "processes", first.choice.why
    assert not first.choice.why.startswith("remembered")
    again = gearshift.imap(big_sum, items)  # the same function, as few items: into the pool
    assert list(again) == [big_sum(items[0])] * 4
    assert again.choice is not None and again.choice.why.startswith("remembered"), again.choice
    stats = again.statistics()
    assert stats.workers_started == 4 and stats.tasks_done == stats.tasks_submitted == 4
    assert again.choice.max_workers == 4  # one process each, all at once
    short = gearshift.imap(big_sum, [10] * 4)  # now short: run in the pool once, then forgotten
    assert list(short) == [45] * 4
    later = gearshift.imap(big_sum, [10] * 4)
    assert list(later) == [45] * 4
    assert later.choice is not None and later.choice.strategy == "serial", later.choice.why


def test_what_is_remembered_is_for_few_items_of_the_same_function() -> None:
    gearshift.map(big_sum, [10_000_000] * 3)  # remembered, as above
    many = gearshift.imap(big_sum, [10] * 100)  # too many items to run all at once: sampled
    assert list(many) == [45] * 100
    assert many.choice is not None and not many.choice.why.startswith("remembered")
