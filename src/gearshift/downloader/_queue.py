"""Which download runs next, and how many run at once.

HostQueue: input order; at most `per_host` downloads in flight per host, so a slow host never
           holds workers that another host could use; a retry waits in a heap until it is due.
Width:     "auto" starts at START workers and doubles while throughput keeps rising.
Meter:     bytes and files so far, shared by the width rule and the progress bar.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gearshift.downloader._fetch import Job

__all__ = ["AUTO_MAX", "AUTO_START", "HostQueue", "Meter", "Width"]

# Tuned with bench/download.py (200 × 256 KiB, 50 ms latency): starting at 32 reaches the 64
# connections of the per-host default after one latency period; starting at 16 took one more
# period (4 -> 5 rounds for 200 files, ~15% longer).
AUTO_START = 32
AUTO_MAX = 128  # threads: past this, GIL-bound request handling stops paying for itself
GAIN = 1.10  # a doubling must raise throughput by 10% for the next doubling to happen


class HostQueue:
    """Hands jobs to workers; `take` blocks while every ready job's host is at its limit."""

    def __init__(self, jobs: Iterable[Job], per_host: int) -> None:
        self._per_host = per_host
        self._cond = threading.Condition()
        self._ready: dict[str, deque[Job]] = {}  # host -> its ready jobs, in input order
        self._delayed: list[tuple[float, int, Job]] = []  # (due, tie-breaker, job)
        self._active: dict[str, int] = {}
        self._seq = itertools.count()
        self._closed = False
        for job in jobs:
            self._ready.setdefault(job.host, deque()).append(job)

    def take(self) -> Job | None:
        """The next job to run; None once nothing is left to start or the queue is closed."""
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    job = heapq.heappop(self._delayed)[2]
                    self._ready.setdefault(job.host, deque()).appendleft(job)  # retries first
                for host, jobs in self._ready.items():
                    if self._active.get(host, 0) < self._per_host:
                        self._active[host] = self._active.get(host, 0) + 1
                        job = jobs.popleft()
                        if not jobs:
                            del self._ready[host]
                        return job
                if not self._ready and not self._delayed:
                    return None  # a worker holding a job puts any retry back, and takes it itself
                self._cond.wait(self._delayed[0][0] - now if self._delayed else None)
            return None

    def done(self, job: Job, retry_in: float | None = None) -> None:
        """Free the host slot of `job`; with `retry_in`, run it again that many seconds later."""
        with self._cond:
            self._active[job.host] -= 1
            if retry_in is not None:
                due = time.monotonic() + retry_in
                heapq.heappush(self._delayed, (due, next(self._seq), job))
            self._cond.notify_all()

    def close(self) -> None:
        """Make every `take` return None now (Ctrl-C, or the end)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class Meter:
    """Bytes received and files finished so far; thread-safe, cheap enough to call per read."""

    def __init__(self) -> None:
        self.bytes = 0
        self.files = 0
        self.failed = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self.bytes += n

    def file_done(self, ok: bool) -> None:
        with self._lock:
            self.files += 1
            self.failed += not ok


class Width:
    """How many workers to run: fixed, or "auto".

    The auto rule: start at AUTO_START; each time as many downloads have finished as there are
    workers (a window), compare the window's bytes/s with the previous window's. Double while it
    rose by GAIN (the first window always doubles); after the first window that did not, stay.
    Never more than `limit` (the jobs, the per-host limits, AUTO_MAX).
    """

    def __init__(self, workers: int | None, limit: int, meter: Meter) -> None:
        self.auto = workers is None
        self.current = min(limit, AUTO_START if workers is None else workers)
        self._limit, self._meter = limit, meter
        self._growing = self.auto and self.current < limit
        self._window_start = (time.monotonic(), 0, 0)  # (time, bytes, files)
        self._last_rate: float | None = None

    def observe(self) -> int:
        """Call after each finished download; returns the width to run from now on."""
        if not self._growing:
            return self.current
        t0, bytes0, files0 = self._window_start
        meter, now = self._meter, time.monotonic()
        if meter.files - files0 < self.current:
            return self.current
        rate = (meter.bytes - bytes0) / max(now - t0, 1e-6)
        if self._last_rate is not None and rate < self._last_rate * GAIN:
            self._growing = False
            return self.current
        self._last_rate = rate
        self.current = min(self._limit, self.current * 2)
        self._growing = self.current < self._limit
        self._window_start = (now, meter.bytes, meter.files)
        return self.current
