"""Issue 3's acceptance run: 2,000 items, 1% kill their worker, 1% hang, 1% raise.

Prints the outcome counts (target: exactly 1,940 results and 60 named errors) and the wall time
against the same run with no faults, side by side.
"""

from __future__ import annotations

import collections
import os
import time

import gearshift

N = 2_000
TASK_TIMEOUT = 0.5  # seconds; a hanging item costs its worker this long, then a restart


def work(x: int) -> int:
    """~1 ms of pure Python; items 0, 100, 200... die, 1, 101... hang, 2, 102... raise."""
    kind = x % 100
    if FAULTY and kind == 0:
        os._exit(1)
    if FAULTY and kind == 1:
        time.sleep(3600)
    if FAULTY and kind == 2:
        raise ValueError(f"bad item {x}")
    total = 0
    for i in range(20_000):
        total += i
    return x


FAULTY = True


EXPECTED = {0: "WorkerDied", 1: "TaskTimeout", 2: "TaskFailed"}  # by item % 100


def run(faulty: bool) -> tuple[float, collections.Counter[str], int]:
    """Wall time, outcome counts, and how many outcomes are not the ones their item asked for
    (a wrong error, an error that names another item, a wrong value)."""
    global FAULTY
    FAULTY = faulty
    start = time.perf_counter()
    results = gearshift.map(
        work, range(N), strategy="processes", task_timeout=TASK_TIMEOUT, return_exceptions=True
    )
    seconds = time.perf_counter() - start
    kinds = collections.Counter(
        type(r).__name__ if isinstance(r, gearshift.TaskError) else "result" for r in results
    )
    wrong = 0
    for x, r in enumerate(results):
        expected = EXPECTED.get(x % 100, "result") if faulty else "result"
        if isinstance(r, gearshift.TaskError):
            wrong += type(r).__name__ != expected or r.index != x
        else:
            wrong += expected != "result" or r != x
    return seconds, kinds, wrong


def main() -> None:
    clean_seconds, clean, clean_wrong = run(faulty=False)
    fault_seconds, faults, fault_wrong = run(faulty=True)
    errors = sum(n for kind, n in faults.items() if kind != "result")
    print(f"no faults : {clean_seconds:6.2f} s  {dict(clean)}")
    print(f"1%/1%/1%  : {fault_seconds:6.2f} s  {dict(faults)}")
    print(
        f"faulty / clean wall time: {fault_seconds / clean_seconds:.2f}x "
        f"(20 hangs x {TASK_TIMEOUT} s on 2 workers cost >= {20 * TASK_TIMEOUT / 2:.0f} s)"
    )
    ok = faults["result"] == 1_940 and errors == 60 and not clean_wrong + fault_wrong
    print(
        f"{'PASS' if ok else 'FAIL'}: {faults['result']} results and {errors} named errors "
        f"(target 1,940 and 60); outcomes not matching their item: {clean_wrong + fault_wrong}"
    )


if __name__ == "__main__":
    main()
