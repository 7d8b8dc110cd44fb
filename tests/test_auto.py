"""strategy="auto" end to end: it measures, chooses by the rules, and never runs an item twice."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import gearshift
from gearshift import UsageError
from gearshift._cores import available_cores


def pure_python(x: int) -> int:
    total = 0
    for i in range(200_000):
        total += i
    return x


def sleepy(x: int) -> int:
    time.sleep(0.02)
    return x


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


def test_no_item_runs_twice(tmp_path: Path) -> None:
    log = tmp_path / "calls"

    def record(x: int) -> int:
        with open(log, "a") as f:
            f.write(f"{x}\n")
        total = 0
        for i in range(100_000):
            total += i
        return x

    it = gearshift.imap(record, range(150))
    assert list(it) == list(range(150))
    assert it.choice is not None and it.choice.strategy == "processes"  # sampled here, run there
    assert sorted(int(line) for line in log.read_text().split()) == list(range(150))


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


def test_processes_chosen_by_auto_cap_blas_threads(monkeypatch: pytest.MonkeyPatch) -> None:
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
