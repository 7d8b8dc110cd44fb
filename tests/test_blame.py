"""Exact blame under stress: deaths of every kind, hangs, errors, instant and slow items, every
chunk size, together; each outcome must be the one its own item asked for (issue 12)."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

import gearshift
from _faulty import TIMEOUT, faulty, wrong_outcomes


@pytest.mark.slow
@pytest.mark.parametrize(
    ("chunksize", "task_timeout", "max_tasks_per_child", "slow"),
    [
        (None, TIMEOUT, None, False),  # instant items, adaptive chunks: the case
        (1, TIMEOUT, None, True),
        (50, TIMEOUT, 120, True),  # workers also retire now and then
        (1, None, None, False),
        (16, None, None, True),  # chunks run as one message: a death re-runs them one by one
        (400, None, 300, False),
    ],
)
@pytest.mark.timeout(300)  # minutes under load: every death starts a worker
def test_every_outcome_is_its_own_items(
    chunksize: int | None, task_timeout: float | None, max_tasks_per_child: int | None, slow: bool
) -> None:
    hang = task_timeout is not None
    got = gearshift.map(
        functools.partial(faulty, hang=hang, slow=slow),
        range(1000),
        strategy=gearshift.Processes(2, max_tasks_per_child=max_tasks_per_child),
        chunksize=chunksize,
        task_timeout=task_timeout,
        return_exceptions=True,
    )
    assert wrong_outcomes(got, hang) == []


SCRIPT = """
import json, os, signal, sys, time
import gearshift
sys.path.insert(0, {tests!r})
from _faulty import FAULTS, HANGS, TIMEOUT, wrong_outcomes

def fn(i):  # lives in __main__: it travels by value, with cloudpickle
    if i % 7 == 3:
        time.sleep(0.002)
    kind = FAULTS.get(i % 50)
    if kind == "exit":
        os._exit(3)
    if kind == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "segfault":
        import ctypes
        ctypes.string_at(0)
    if kind == "raise":
        raise ValueError(i)
    if i in HANGS:
        time.sleep(600)
    return i

got = gearshift.map(fn, range(1000), strategy="processes", max_workers=2,
                    task_timeout=TIMEOUT, return_exceptions=True)
print(json.dumps(wrong_outcomes(got, hang=True)))
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_fn_in_a_scripts_main_is_blamed_exactly(tmp_path: Path) -> None:
    script = tmp_path / "blame_script.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent)))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=280, check=True
    )
    assert json.loads(done.stdout.splitlines()[-1]) == []
