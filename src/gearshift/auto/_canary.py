"""Canary: a thread that asks for the GIL every half millisecond while the sample's items run.

Work that holds the GIL (Python code, or C code that keeps it, like json.loads) makes the canary
wait a whole switch interval (sys.getswitchinterval(), 5 ms) for it; work that releases it
(hashlib, zlib, sqlite on big inputs) lets it in at once. A cycle is "blocked" when its wait,
less the canary's own time queued for a CPU, is BLOCKED_SECONDS or more; the verdict is the
share of the work thread's CPU time that fell in blocked cycles. Weighting by the work's CPU
time is what makes it hold under load: while the work thread sits queued for a CPU it lets the
canary in again and again (0-waits that read "GIL-free" of pure Python by their median; see
/work/notes/issue12b.md), but those cycles carry no CPU time of the work, so they do not count.
Measured at load 5-10 (2 busy loops beside): pure Python, a big sum, json.loads, tiny x*x read
0.9-1.0; sha256, zlib, sleep 0.0-0.1. It costs the items one forced switch per interval.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType

PERIOD = 0.0005  # seconds the canary sleeps between requests for the GIL
# A cycle's wait for the GIL, past its sleep and its time queued, counts as blocked from this on:
# a sleep overshoots by 0.05-0.26 ms (timer slack; measured idle and at load 10), a held GIL
# keeps the canary out for a switch interval (5 ms).
BLOCKED_SECONDS = 0.001
HELD_SHARE = 0.5  # of the work's CPU time in blocked cycles, or more: the work holds the GIL
# A verdict is clear, and the canary may stop early, beyond these, once the work has had
# MIN_SWITCHES switch intervals of CPU time (a held GIL blocks the canary once per interval).
CLEAR_HELD, CLEAR_FREE = 0.75, 0.25
MIN_SWITCHES = 2.0
WATCHABLE = hasattr(time, "pthread_getcpuclockid")


def cpu_clock(thread_ident: int) -> Callable[[], float]:
    """A reader of a thread's CPU seconds so far, callable from any thread (Linux, BSD); where
    per-thread clocks are missing, the wall clock: every cycle weighs its length."""
    if WATCHABLE:
        try:
            clock = time.pthread_getcpuclockid(thread_ident)
        except OSError:
            pass
        else:

            def read() -> float:
                try:
                    return time.clock_gettime(clock)
                except OSError:  # the thread ended
                    return 0.0

            return read
    return time.perf_counter


class Queued:
    """This thread's seconds queued for a CPU so far (Linux schedstat, one pread: ~1 us, where
    opening the file each time, as `machine.runqueue_seconds` does, costs ~50 us under load).
    Readable from any thread; 0.0 where there is no such file."""

    def __init__(self) -> None:
        try:
            path = f"/proc/self/task/{threading.get_native_id()}/schedstat"
            self._fd: int | None = os.open(path, os.O_RDONLY)
        except OSError:  # not Linux: no load to leave out
            self._fd = None
        self.start = self()

    def since(self) -> float:
        """Seconds queued since it was made."""
        return max(0.0, self() - self.start)

    def __call__(self) -> float:
        if self._fd is None:
            return 0.0
        try:
            return int(os.pread(self._fd, 64, 0).split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            return 0.0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Canary:
    """`with Canary() as canary:` around work in this thread, then `canary.held()`; or, to watch
    work on another thread from this one, `Canary(its_cpu_clock).cycles(seconds)`."""

    def __init__(self, work_cpu: Callable[[], float] | None = None) -> None:
        self.work_cpu = work_cpu or cpu_clock(threading.get_ident())
        self.blocked = 0.0  # CPU seconds of the work in cycles where the canary was blocked
        self.total = 0.0  # CPU seconds of the work in all cycles
        self.count = 0  # cycles done
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gearshift-canary", daemon=True)

    def __enter__(self) -> Canary:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the canary thread; the verdict stays as it is now."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()

    def share(self) -> float | None:
        """The share of the work's CPU time during which the canary was blocked on the GIL;
        None: the work has not yet had MIN_SWITCHES switch intervals of CPU time."""
        if self.total < MIN_SWITCHES * sys.getswitchinterval() or self.total <= 0:
            return None
        return self.blocked / self.total

    def held(self) -> bool | None:
        """True: the work holds the GIL; False: it lets others in; None: too soon to tell."""
        share = self.share()
        return None if share is None else share >= HELD_SHARE

    def clear(self) -> bool:
        """The verdict is beyond doubt already: the caller may stop early (no system call, so
        asking does not release the GIL and let the canary in)."""
        share = self.share()
        return share is not None and not CLEAR_FREE < share < CLEAR_HELD

    def cycles(self, seconds: float, over: Callable[[], bool] = lambda: False) -> None:
        """Run the canary in this thread for `seconds`, until its verdict is clear, or `over()`
        (the work ended)."""
        end = time.perf_counter() + seconds
        self._cycle_until(lambda: time.perf_counter() >= end or self.clear() or over())

    def _run(self) -> None:
        self._cycle_until(self._stop.is_set)

    def _cycle_until(self, done: Callable[[], bool]) -> None:
        queued = Queued()
        try:
            start, waited, work = time.perf_counter(), queued(), self.work_cpu()
            while not done():
                time.sleep(PERIOD)
                now, waited_now, work_now = time.perf_counter(), queued(), self.work_cpu()
                ran = max(0.0, work_now - work)
                self.total += ran
                if now - start - PERIOD - (waited_now - waited) >= BLOCKED_SECONDS:
                    self.blocked += ran
                self.count += 1
                start, waited, work = now, waited_now, work_now
        finally:
            queued.close()
