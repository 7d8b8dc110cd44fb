"""Issue 12's blame case, run again and again: is a death ever charged to an innocent item?

    python bench/blame.py [--runs 20] [--kill sigkill|exit]

2,000 *instant* items on 2 worker processes with task_timeout=1.0 and return_exceptions=True:
item % 100 == 17 kills its own worker, == 42 sleeps 600 s, == 71 raises. Every other item only
returns itself. fn lives in `__main__`, so it travels by value (cloudpickle), as a script's does.
Prints, per run, the outcomes that are not what their own item asked for (an innocent item's
`WorkerDied` or `TaskTimeout`, an error naming another item); the target is 0 in every run.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _workloads

import gearshift

N = 2_000
EXPECTED = {17: "WorkerDied", 42: "TaskTimeout", 71: "TaskFailed"}  # by item % 100
KILL = "sigkill"


def work(i: int) -> int:
    kind = i % 100
    if kind == 17:
        if KILL == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(3)
    if kind == 42:
        time.sleep(600)
    if kind == 71:
        raise ValueError(i)
    return i


def wrong(got: list[Any]) -> list[tuple[int, str]]:
    """(item, what it got) for every outcome that is not its own item's."""
    found = []
    for i, outcome in enumerate(got):
        want = EXPECTED.get(i % 100, "result")
        if isinstance(outcome, gearshift.TaskError):
            if type(outcome).__name__ != want or outcome.index != i:
                found.append((i, type(outcome).__name__))
        elif want != "result" or outcome != i:
            found.append((i, repr(outcome)))
    return found


def main() -> int:
    global KILL
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--kill", choices=["sigkill", "exit"], default="sigkill")
    args = parser.parse_args()
    KILL = args.kill
    print(f"{_workloads.machine()}; {args.runs} runs, deaths by {args.kill}")
    total = 0
    for run in range(1, args.runs + 1):
        start = time.perf_counter()
        got = gearshift.map(
            work,
            range(N),
            strategy="processes",
            max_workers=2,
            task_timeout=1.0,
            return_exceptions=True,
        )
        bad = wrong(got)
        total += len(bad)
        seconds = time.perf_counter() - start
        print(f"run {run:2}: {seconds:5.1f} s, outcomes not their own item's: {len(bad)} {bad[:6]}")
    verdict = "PASS" if total == 0 else "FAIL"
    print(f"{verdict}: {total} innocent or misnamed outcomes in {args.runs} runs (target 0)")
    return 0 if total == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
