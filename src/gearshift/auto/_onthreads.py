"""Phase 2 of the sample (_sampling.py): items on threads at once, and their speedup over one.

CPU-bound items (CPU share >= WAVE_BELOW_SHARE) get about THREAD_PHASE_SECONDS x CPU share of
work on SCALING_THREADS threads, which tells GIL-holding work (1.0x) from GIL-free work (2.0x);
half of it first, which decides when it reads clearly one or the other. Waiting-bound items:
one wave on the width the run would use, cores x (1 + wait/CPU) threads (at most MAX_WAVE, and
at most half the items left, unless all of them fit in it: then the wave IS the run), each taking
~WAVE_SECONDS of items. The wave does real work at full width while it shows whether throughput
still rises there. Each thread runs its items as one batch, in the workers' own loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from gearshift.auto._batch import (
    MAX_BATCH,
    MAX_WAVE,
    SCALING_THREADS,
    WAVE_BELOW_SHARE,
    Batch,
    Limits,
    Phases,
    cores,
    run_batch,
    scaling_share,
)
from gearshift.auto._take import Taker
from gearshift.machine import Mark
from gearshift.strategies import fails_its_item
from gearshift.strategies.processes.worker import run_items

# Of CPU work. bench/auto.py on a machine loaded 6x over: pure Python read at most 1.4x with 0.1 s,
# 1.6x with 0.05 s (hashlib: at least 1.8x); less lets GIL-bound work pass for GIL-free.
THREAD_PHASE_SECONDS = 0.1
# Half of it decides when it reads outside these (bench/auto.py, 0.05-0.06 s on 2 threads, load
# 1-13: pure Python and json read 0.97-1.58x, hashlib and zlib 1.43-2.0x; between: the whole).
# Since the canary (_canary.py) sends work that holds the GIL elsewhere first, what reaches this
# phase is mostly GIL-free; a reading under 1.4 that was GIL-free after all goes to processes.
CLEAR_BELOW, CLEAR_ABOVE = 1.4, 1.85
MAX_SCALING = MAX_BATCH * SCALING_THREADS
MIN_SCALING_SECONDS = 0.005  # of work per thread; less measures thread start-up, not the work
WAVE_SECONDS = 0.02  # of items per wave thread: short items run several, so the wave measures


def scaling(fn: Callable[[Any], Any], iterator: Taker, limits: Limits, phases: Phases) -> None:
    """Phase 2: items on threads at once; sets `phases.thread_speedup`.

    CPU-bound items run half of the phase first: a reading outside CLEAR_BELOW..CLEAR_ABOVE
    decides, one inside it gets the whole phase. If the threads did under MIN_SCALING_SECONDS
    of work each, phase 1 overstated the items (a garbage collection or a cold cache in a
    measured item): once, the phase runs again, sized by what the threads saw. Too little work
    per thread measures thread start-up, not the work: GIL-holding items short enough to finish
    before the next thread wakes up read 2x.
    """
    own, cpu = phases.own()
    waves, share, part, resized = cpu < WAVE_BELOW_SHARE * own, cpu / own, 0.5, False
    while True:
        threads, count = _size(own, cpu, limits, phases.count, part)
        batch = iterator.take(count)
        phases.exhausted = len(batch) < count
        if len(batch) < SCALING_THREADS:  # too few to run at once: kept, but not measured
            if batch:
                phases.taken.append(run_batch(fn, batch))
            return
        threads = min(threads, len(batch))
        done, parts, speedup = _on_threads(fn, batch, own - cpu, threads)
        phases.taken.append(done)
        phases.threaded, phases.threads = parts, threads
        work = (done.wall if waves else done.cpu) / threads
        final = phases.exhausted or limits.size is not None
        if work >= MIN_SCALING_SECONDS:
            phases.thread_speedup = speedup
            if final or waves or part == 1 or not CLEAR_BELOW < speedup < CLEAR_ABOVE:
                return
            part = 1.0  # not clear yet: the whole phase
        elif final or resized:
            return
        else:  # the items' own times, as the threads saw them (their CPU share as phase 1 did)
            resized, cpu = True, done.cpu / len(batch)
            own = max(cpu / max(share, 1e-9), 1e-9) if not waves else work * threads / len(batch)


def _size(own: float, cpu: float, limits: Limits, taken: int, part: float) -> tuple[int, int]:
    """How many threads phase 2 runs on, and how many items (`part` of the CPU-bound phase)."""
    if limits.size is not None:
        return SCALING_THREADS, scaling_share(limits.size)
    if cpu < WAVE_BELOW_SHARE * own and limits.threads >= SCALING_THREADS:  # the wave
        wide = round(cores() * own / max(cpu, 1e-9))
        threads = max(SCALING_THREADS, min(MAX_WAVE, limits.threads, wide))
        count = threads * max(1, round(WAVE_SECONDS / own))
        left = None if limits.total is None else limits.total - taken
        if left is not None and left <= threads:  # they all fit: the wave is the run
            count = left
        elif left is not None:  # leave most of the work to the choice
            count = max(SCALING_THREADS, min(count, left // 2))
        return threads, count
    # CPU-bound: the phase tells whether CPU work runs in parallel; it needs CPU work to see
    per_thread = int(part * THREAD_PHASE_SECONDS * cpu / own / SCALING_THREADS / own) + 1
    return SCALING_THREADS, min(MAX_SCALING, SCALING_THREADS * per_thread)


def _on_threads(
    fn: Callable[[Any], Any], batch: Sequence[Any], wait: float, n: int
) -> tuple[Batch, list[Batch], float]:
    """Run `batch` on `n` threads (item i on thread i mod n), released together.

    Returns the batch's outcomes (in input order), each thread's, and the throughput relative to
    one thread: the sum over the threads of the share of its own time (wall time minus waits for
    a busy CPU) spent working, i.e. on CPU or in the item's own waits (`wait` seconds per item,
    measured alone). What is left of a thread's own time is contention: a thread waiting for the
    GIL is off CPU but not runnable, and waiting items that take longer side by side share
    something that does not scale. (On a loaded machine a thread that wakes to take the GIL also
    waits for a CPU, which counts as load: GIL-bound work may then read up to ~1.5x on 2 threads.)
    """
    parts: list[Batch | None] = [None] * n
    shares = [0.0] * n
    escaped: list[BaseException] = []
    go = threading.Event()

    def work(j: int) -> None:
        go.wait()
        mark, cpu = Mark(), time.thread_time()
        mine = batch[j::n]
        try:
            values, wall, errors = run_items(fn, mine, fails_its_item)
        except BaseException as exc:  # SystemExit in a thread would vanish: re-raised below
            escaped.append(exc)
            return
        busy = time.thread_time() - cpu
        lost = mark.queued() + mark.stolen(busy)
        own = max(time.perf_counter() - mark.wall - lost, busy, 1e-9)
        shares[j] = min(1.0, (busy + len(mine) * wait) / own)
        parts[j] = Batch(mine, values, errors, wall, busy, lost)

    threads = [
        threading.Thread(target=work, args=(j,), name=f"gearshift-profile-{j}", daemon=True)
        for j in range(n)
    ]
    for thread in threads:
        thread.start()
    go.set()
    for thread in threads:
        thread.join()
    if escaped:
        raise escaped[0]
    done = [part for part in parts if part is not None]
    values: list[Any] = [None] * len(batch)
    errors: dict[int, BaseException] = {}
    for j, part in enumerate(done):
        values[j::n] = part.values
        errors.update({j + pos * n: error for pos, error in part.errors.items()})
    whole = Batch(batch, values, errors, sum(p.wall for p in done), sum(p.cpu for p in done))
    whole.lost = sum(p.lost for p in done)
    return whole, done, sum(shares)
