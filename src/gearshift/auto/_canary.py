"""Canary: a thread that asks for the GIL every half millisecond while the sample's items run.

Work that holds the GIL (Python code, or C code that keeps it, like json.loads) makes the canary
wait a whole switch interval (sys.getswitchinterval(), 5 ms) for it; work that releases it
(hashlib, zlib, sqlite on big inputs) lets it in at once. bench/auto.py's workloads, 5 runs
each at load 1: pure Python, json.loads, a big list's sum, tiny x*x waited 5.2-6.1 ms (median);
sha256, zlib and SQLite 0.09-0.11 ms. It costs the items one forced switch per interval.
"""

from __future__ import annotations

import statistics
import threading
import time
from types import TracebackType

PERIOD = 0.0005  # seconds the canary sleeps between requests for the GIL
MIN_WAKES = 5  # fewer waits measured than this say nothing


class Canary:
    """`with Canary() as canary:` around the work; then `canary.wait()`."""

    def __init__(self) -> None:
        self._waits: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gearshift-canary", daemon=True)

    def __enter__(self) -> Canary:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def wait(self) -> float | None:
        """The median seconds the canary waited for the GIL past its sleep; None: too few."""
        waits = self._waits
        return statistics.median(waits) if len(waits) >= MIN_WAKES else None

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.perf_counter()
            time.sleep(PERIOD)
            self._waits.append(max(0.0, time.perf_counter() - start - PERIOD))
