"""How work is cut into chunks: ~20 ms of work each, adapted to measured durations (joblib's idea).

One rule for the whole library: `first_size` is what auto predicts with and starts a run at;
`ChunkSizer` keeps chunks near the same target while the run measures them.
"""

from __future__ import annotations

import math

# Tuned by bench/pool.py: ~20 ms of work per chunk keeps per-chunk overhead near 1% while the
# unevenness at the end of a run stays small. Checked on its ~1 ms tasks x 2,000: chunks settle
# at ~20 items (~110 chunks), the parent spends ~0.5 ms of CPU per chunk over its two threads and
# a worker waits ~25 us (median) between chunks; 50 ms chunks measured the same within noise.
# A strategy whose per-chunk cost is larger says so with its own `Strategy.target_chunk_seconds`.
TARGET_CHUNK_SECONDS = 0.02
# Tuned by bench/pool.py (x*x over 200,000 ints): larger chunks gain nothing and cost memory.
MAX_CHUNK = 10_000
# How fast a chunk may grow after one measurement: the first items are often slow (warm-up).
MAX_GROWTH = 8
# Each worker gets at least this many chunks of what is left, when the input's length is known,
# so that no worker ends the run with a big chunk while the others idle.
CHUNKS_PER_WORKER_LEFT = 2
# Items whose times vary more than this (coefficient of variation) get chunks half as big, so that
# an unlucky chunk of slow items does not hold the end of the run.
UNEVEN_VARIATION = 1.0


def first_size(
    seconds_per_item: float,
    workers: int,
    total: int | None,
    variation: float = 0.0,
    target: float = TARGET_CHUNK_SECONDS,
) -> int:
    """The chunk size for items that take `seconds_per_item` each, before any chunk has run."""
    size = int(target / max(seconds_per_item, 1e-9))
    if total is not None:
        size = min(size, math.ceil(total / (CHUNKS_PER_WORKER_LEFT * workers)))
    if variation > UNEVEN_VARIATION:
        size //= 2
    return max(1, min(size, MAX_CHUNK))


class ChunkSizer:
    """Chooses the size of the next chunk; `observe` feeds it each finished chunk's compute time."""

    def __init__(
        self,
        fixed: int | None,
        workers: int,
        total: int | None,
        start: int = 1,
        target: float = TARGET_CHUNK_SECONDS,
    ) -> None:
        self.fixed = fixed
        self.target = target
        self.workers = workers
        self.total = total
        self.size = fixed or max(1, start)
        self.taken = 0
        self._per_item: float | None = None

    def next(self) -> int:
        """The size of the chunk to cut now."""
        size = self.size
        if self.fixed is None and self.total is not None:
            left = self.total - self.taken
            size = min(size, max(1, math.ceil(left / (CHUNKS_PER_WORKER_LEFT * self.workers))))
        self.taken += size
        return size

    def observe(self, n: int, seconds: float) -> None:
        """A chunk of `n` items took `seconds` of compute: adjust the size toward the target."""
        if self.fixed is not None or n <= 0:
            return
        per_item = max(seconds / n, 1e-9)
        self._per_item = per_item if self._per_item is None else (self._per_item + per_item) / 2
        ideal = int(self.target / self._per_item)
        self.size = max(1, min(ideal, self.size * MAX_GROWTH, MAX_CHUNK))
