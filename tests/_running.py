"""Helpers for tests of running work: a task that counts how many of its calls run at once, a
release that waits for a state instead of a fixed sleep, the threads a test left, and the skip
for Pythons that cannot start a thread at exit."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

import pytest


class Running:
    """`sleep(x)` sleeps `seconds` and returns x; `now` calls are running, `peak` at most."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.now = self.peak = 0
        self._lock = threading.Lock()

    def sleep(self, x: int) -> int:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.seconds)
        with self._lock:
            self.now -= 1
        return x


def release_once(done: Callable[[], bool], release: Callable[[], object]) -> None:
    """In a thread: call `release()` once `done()` holds (at most 30 s on), so that a call blocked
    until then ends after what the test waits for, however loaded the machine is."""

    def wait() -> None:
        deadline = time.monotonic() + 30
        while not done() and time.monotonic() < deadline:
            time.sleep(0.01)
        release()

    threading.Thread(target=wait, daemon=True).start()


def new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    """Threads alive now that were not in `before` (a `set(threading.enumerate())`): what a test
    left running, however many threads of earlier tests end meanwhile."""
    return [t for t in threading.enumerate() if t not in before]


# Python 3.12.0-3.12.2 cannot start a thread once exit has begun (CPython gh-113964)
NO_THREADS_AT_EXIT = pytest.mark.skipif(
    (3, 12, 0) <= sys.version_info[:3] < (3, 12, 3),
    reason="Python 3.12.0-3.12.2 cannot start a thread at exit (gh-113964)",
)
