"""strategy="auto" on big numpy arrays: shipping is priced as the pool ships (memfds, zero-copy),
so GIL-holding work goes to processes and GIL-releasing work to threads, both measured."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

import gearshift
from gearshift.strategies.processes import ZERO_COPY_BYTES, _channel, trip

pytestmark = pytest.mark.skipif(not _channel.ZERO_COPY, reason="memfds are Linux's")


def arrays(n: int, megabytes: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.random(megabytes * (1 << 17)) for _ in range(n)]


def loop_over_a_slice(a: np.ndarray) -> float:
    """~50 ms of pure Python on an idle machine: holds the GIL."""
    total = 0.0
    for _ in range(16):
        for x in a[:100_000].tolist():
            total += x
    return total


def median(a: np.ndarray) -> float:
    """numpy sorts with the GIL released: threads run this in parallel (~70 ms here)."""
    return float(np.sort(a)[len(a) // 2])


def test_shipping_a_big_array_is_priced_as_a_memfd_trip_not_a_pickle_copy() -> None:
    a = arrays(1, megabytes=16)[0]
    zero = statistics.median(trip(a, ZERO_COPY_BYTES)[1] for _ in range(5))
    plain = statistics.median(trip(a, None)[1] for _ in range(5))
    assert zero < 0.6 * plain  # one copy into pages the pool keeps, vs pickling + unpickling
    prof = gearshift.profile(loop_over_a_slice, arrays(6, megabytes=16), sample=4)
    assert prof.payload_bytes_in == pytest.approx(a.nbytes, rel=0.01)  # the bytes still count
    assert 0 < prof.ship_seconds_in < plain


@pytest.mark.slow
def test_big_array_work_that_holds_the_gil_goes_to_processes() -> None:
    data = arrays(24)
    it = gearshift.imap(loop_over_a_slice, data, strategy="auto")
    assert list(it) == [loop_over_a_slice(a) for a in data]
    assert it.choice is not None and it.choice.strategy == "processes", it.choice.why


@pytest.mark.slow
def test_big_array_work_that_releases_the_gil_goes_to_threads() -> None:
    # profile() runs the sample to its end, as test_profiler's hashing test does: imap's sample
    # decides while long items run, on 50 ms of CPU clocks, which a loaded machine blurs
    prof = gearshift.profile(median, arrays(24))
    choice = gearshift.choose(prof)
    assert choice.strategy == "threads", choice.why
    assert "releasing the GIL" in choice.why
