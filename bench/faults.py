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


def run(faulty: bool) -> tuple[float, collections.Counter[str]]:
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
    return seconds, kinds


def main() -> None:
    clean_seconds, clean = run(faulty=False)
    fault_seconds, faults = run(faulty=True)
    errors = sum(n for kind, n in faults.items() if kind != "result")
    print(f"no faults : {clean_seconds:6.2f} s  {dict(clean)}")
    print(f"1%/1%/1%  : {fault_seconds:6.2f} s  {dict(faults)}")
    print(
        f"faulty / clean wall time: {fault_seconds / clean_seconds:.2f}x "
        f"(20 hangs x {TASK_TIMEOUT} s on 2 workers cost >= {20 * TASK_TIMEOUT / 2:.0f} s)"
    )
    ok = faults["result"] == 1_940 and errors == 60
    print(
        f"{'PASS' if ok else 'FAIL'}: {faults['result']} results and {errors} named errors "
        "(target 1,940 and 60)"
    )


if __name__ == "__main__":
    main()
