"""A task that sleeps and counts how many of its calls run at once, for tests of width."""

from __future__ import annotations

import threading
import time


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
