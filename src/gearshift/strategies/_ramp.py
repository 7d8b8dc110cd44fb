"""Ramp: a thread pool's width, doubled while its throughput still rises (TCP's slow start).

A width is judged by the chunks sent at it: with a number of chunks in flight proportional to
the width, each taking its measured time from being sent to being collected, throughput is in
proportion to width x items / seconds (Little's law). That time includes waiting for a thread
and for the GIL, so a width the GIL caps reads no faster; and unlike completions per second, it
is not misread when items of equal length finish in waves.
"""

from __future__ import annotations

from collections.abc import Callable

# A doubling must raise throughput this much for the next one to happen. tests/test_ramp.py's
# workloads on this 2-core VM (load 4): ~1 ms pure-Python items (the GIL: no gain) read 0.5-1.0
# per doubling, once 2.0 on a noisy first step; 20 ms sleeps read 1.94-2.12.
GAIN = 1.10
MIN_ITEMS = 16  # a width is judged on at least this many items, and on 2 per thread


class Ramp:
    """The width to run at; `record` the items of each finished chunk started at `epoch`."""

    def __init__(self, start: int, limit: int, widen: Callable[[int], None]) -> None:
        self.width = max(1, min(start, limit))
        self.widen = widen  # makes the pool this wide
        self.limit = limit
        self.epoch = 0  # bumped at every change: chunks started before it are not judged
        self.growing = self.width < limit
        self._best = 0.0  # throughput at the previous width
        self._items = 0
        self._seconds = 0.0

    def record(self, epoch: int, items: int, seconds: float) -> None:
        """A chunk of `items` sent at `epoch` came back `seconds` after it was sent."""
        if not self.growing or epoch != self.epoch:
            return
        self._items += items
        self._seconds += seconds
        if self._items < max(MIN_ITEMS, 2 * self.width):
            return
        rate = self.width * self._items / max(self._seconds, 1e-9)
        self.epoch += 1
        self._items, self._seconds = 0, 0.0
        if rate < self._best * GAIN:  # the last doubling did not pay: stay here
            self.growing = False
            return
        self._best = rate
        self.width = min(self.limit, self.width * 2)
        self.growing = self.width < self.limit
        self.widen(self.width)
