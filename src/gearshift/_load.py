"""How much of a thread's time the machine's load took, so that a profile measures the work.

Two kinds of lost time look like waiting but are load (Linux; 0 elsewhere): a runnable thread
queued while other processes hold the CPUs (the thread's schedstat), and, in a virtual machine,
time the hypervisor gave this machine's CPUs to other guests ("steal" in /proc/stat), which
stretches a running thread's wall time without adding to its CPU time.
"""

from __future__ import annotations

import os
import threading
import time

MAX_STEAL = 0.9  # of a CPU's time; beyond it the estimate would divide by almost nothing
# Steal is averaged over at least this long: /proc/stat counts it in ticks (10 ms of a CPU at
# USER_HZ 100), and one tick landing in a 1 ms window read as 90% steal, which made 1.5 M tiny
# items look like 0% CPU (waiting-bound).
STEAL_WINDOW = 0.1


def runqueue_seconds(native_id: int | None = None) -> float:
    """Seconds a thread (default: this one) has waited, runnable, for a CPU others held (Linux).

    0.0 elsewhere, and for a thread that has ended.
    """
    tid = threading.get_native_id() if native_id is None else native_id
    try:
        with open(f"/proc/self/task/{tid}/schedstat", "rb") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


def steal_seconds() -> float:
    """Seconds per CPU the hypervisor gave this machine's CPUs to others (Linux); else 0.0."""
    try:
        with open("/proc/stat", "rb") as stat:
            fields = stat.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK") / (os.cpu_count() or 1)
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


class Mark:
    """A moment of the calling thread: wall clock, its run-queue waits, the machine's steal."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.runqueue = runqueue_seconds()
        self.steal = steal_seconds()

    def queued(self) -> float:
        """Seconds since the mark this thread sat runnable while others held the CPUs."""
        return max(0.0, runqueue_seconds() - self.runqueue)

    def stolen(self, busy: float) -> float:
        """Seconds since the mark that `busy` CPU seconds of this thread lost to steal.

        A running thread loses the share f of steal on its CPU: its CPU time covers 1 - f of the
        wall time it ran, so it lost busy x f / (1 - f); never more than its time off CPU.
        """
        elapsed = time.perf_counter() - self.wall
        share = (steal_seconds() - self.steal) / max(elapsed, STEAL_WINDOW)
        share = min(MAX_STEAL, max(0.0, share))
        return min(busy * share / (1.0 - share), max(0.0, elapsed - busy))
