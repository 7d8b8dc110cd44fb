"""fn for tests/test_blame.py, in a module of its own that imports little (like a user's):
every worker that replaces a dead one imports it again."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from gearshift import TaskFailed, TaskTimeout, WorkerDied

# item % 50 -> what it does; hangs are only asked for where a task_timeout ends them
FAULTS = {11: "exit", 23: "sigkill", 37: "segfault", 43: "raise"}
HANGS = (71, 571)
TIMEOUT = 2.0  # seconds: far above an instant item's time even on a loaded machine


def faulty(i: int, hang: bool = False, slow: bool = False) -> int:
    """The way users write fn: a module-level function that sometimes misbehaves."""
    if slow and i % 7 == 3:
        time.sleep(0.002)  # slow items among instant ones
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
    if hang and i in HANGS:
        time.sleep(600)
    return i


def expected(i: int, hang: bool) -> tuple[str, Any]:
    kind = FAULTS.get(i % 50)
    if kind == "exit":
        return "WorkerDied", 3
    if kind == "sigkill":
        return "WorkerDied", -signal.SIGKILL
    if kind == "segfault":
        return "WorkerDied", -signal.SIGSEGV
    if kind == "raise":
        return "TaskFailed", None
    if hang and i in HANGS:
        return "TaskTimeout", None
    return "value", i


def wrong_outcomes(got: list[Any], hang: bool) -> list[str]:
    """Every outcome that is not exactly what its item asked for, described."""
    wrong = []
    for i, outcome in enumerate(got):
        kind, detail = expected(i, hang)
        if isinstance(outcome, WorkerDied):
            ok = kind == "WorkerDied" and outcome.index == i and outcome.exitcode == detail
        elif isinstance(outcome, TaskTimeout | TaskFailed):
            ok = kind == type(outcome).__name__ and outcome.index == i
        else:
            ok = kind == "value" and outcome == i
        if not ok:
            wrong.append(f"item {i}: wanted {kind} {detail}, got {outcome!r}")
    return wrong
