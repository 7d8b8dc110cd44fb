"""How profile()'s sample runs: items one at a time, then several at once on threads.

How big the sample is (the constants below):
  0. for map(strategy="auto"), the first item runs on a thread of its own; if it is still
     running after _watch.LONG_SECONDS, the items are long and _watch.py samples them instead,
     while they run: the run starts beside them.
  1. sequential: items run one at a time in the calling thread until they took SEQUENTIAL_SECONDS
     (at least MIN_SEQUENTIAL, at most MAX_SEQUENTIAL items; once they are waiting-bound,
     WAITING_SECONDS does). The profile leaves the first item out of its averages when there
     are others: it often pays for imports and cold caches. Meanwhile a canary thread
     (_canary.py) measures how long it waits for the GIL.
  2. on threads, items run at once; their throughput over one thread's is `thread_speedup`.
     CPU-bound items (CPU share >= WAVE_BELOW_SHARE): about THREAD_PHASE_SECONDS x CPU share
     of work (at least one item per thread, at most MAX_SCALING items) on SCALING_THREADS
     threads, which tells GIL-holding work (1.0x) from GIL-free work (2.0x); half of it first,
     which decides when it reads clearly one or the other. Waiting-bound
     items: one wave on the width the run would use, cores x (1 + wait/CPU) threads (at most
     MAX_WAVE, and at most half the items left, unless all of them fit in it: then the wave IS
     the run), each taking ~WAVE_SECONDS of items. The wave does real work at full width while
     it shows whether throughput still rises there.
     Coroutine functions skip this phase, and so, in map(strategy="auto"), do CPU-bound items
     whose canary waited HELD_SWITCHES switch intervals or more: they hold the GIL, and on 2
     threads they would run at 1x while the run waits for its processes.
  3. shipping (_shipping.py): a few items and results are pickled as workers get them.
A fixed sample size (`sample=N`) runs half of it on SCALING_THREADS threads, if that gives each
thread an item.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from gearshift.auto._canary import Canary
from gearshift.errors import UsageError
from gearshift.machine import Mark, available_cores
from gearshift.strategies import fails_its_item

# Tuned by bench/auto.py: ~0.1 s of sample in all keeps auto's overhead near 5% of 2 s of work.
SEQUENTIAL_SECONDS = 0.05
MIN_SEQUENTIAL = 2  # one warm-up item, one measured
MAX_SEQUENTIAL = 1000  # tiny items: 1000 of them say all there is to say
SCALING_THREADS = 2  # 2 threads tell GIL-bound (1.0x) from GIL-free or waiting (2.0x)
# Of CPU work. bench/auto.py on a machine loaded 6x over: pure Python read at most 1.4x with 0.1 s,
# 1.6x with 0.05 s (hashlib: at least 1.8x); less lets GIL-bound work pass for GIL-free.
THREAD_PHASE_SECONDS = 0.1
# Half of it decides when it reads outside these (bench/auto.py, 0.05-0.06 s on 2 threads, load
# 1-13: pure Python and json read 0.97-1.58x, hashlib and zlib 1.43-2.0x; between: the whole).
# json.loads read 1.12-1.32x at load 1-2, so below 1.3 it often paid for the whole phase (~50 ms
# more at 1x); a reading under 1.4 that was GIL-free after all goes to processes, the safe side.
CLEAR_BELOW, CLEAR_ABOVE = 1.4, 1.85
MAX_SCALING = 2000
MIN_SCALING_SECONDS = 0.005  # of work per thread; less measures thread start-up, not the work
WAITING_SECONDS = 0.02  # phase 1, once its items wait (bench/auto.py: 2 sleeps or HTTP GETs do)
# Phase 2 for waiting-bound work (bench/auto.py: HTTP, sleep, subprocess). Below this CPU share,
# as chooser.WAITING_BOUND_SHARE: what 2 threads show about the GIL decides nothing there.
WAVE_BELOW_SHARE = 0.5
MAX_WAVE = 64  # threads; as chooser.MAX_THREADS: no wider than the run itself may go
WAVE_SECONDS = 0.02  # of items per wave thread: short items run several, so the wave measures
# Phase 1's canary (_canary.py) waited this many switch intervals for the GIL or more (median):
# the items hold it. Held read 1.04-1.22 intervals, GIL-free 0.02 (bench/auto.py, load 1).
HELD_SWITCHES = 0.5


@dataclass
class Record:
    """One item's run: its value or the exception it raised, wall and thread CPU seconds."""

    value: Any = None
    error: BaseException | None = None
    wall: float = 0.0
    cpu: float = 0.0


def timed(call: Callable[[Any], Any], item: Any) -> Record:
    record, cpu, wall = Record(), time.thread_time(), time.perf_counter()
    try:
        record.value = call(item)
    except BaseException as exc:
        if not fails_its_item(exc):  # KeyboardInterrupt and SystemExit go through
            raise
        record.error = exc
    record.wall, record.cpu = time.perf_counter() - wall, time.thread_time() - cpu
    return record


END = object()
Pairs = list[tuple[Any, Record]]


@dataclass
class Phases:
    """What the sample ran: (item, record) pairs in input order, and which of them to average.

    `preempted` is how long the measured items lost to load (`machine`: queued for a busy CPU,
    or stolen by the hypervisor): not a trait of the work.
    """

    taken: Pairs = field(default_factory=list)  # every sampled item, in input order
    measured: list[Record] = field(default_factory=list)  # what the per-item averages use
    threaded: list[Record] = field(default_factory=list)  # what phase 2 ran
    threads: int = SCALING_THREADS  # how many threads phase 2 ran on
    thread_speedup: float | None = None  # its throughput over one thread's
    preempted: float = 0.0
    exhausted: bool = False
    held: bool = False  # the first item held the GIL throughout, for long (_watch.py): enough
    gil_wait: float | None = None  # how long another thread waited for the GIL in phase 1
    rss_growth: int | None = None  # bytes resident memory grew over phase 1's measured items


@dataclass(frozen=True)
class Limits:
    """What the caller allows the sample: its fixed size, the input's length, how many threads."""

    size: int | None = None  # None: adaptive
    total: int | None = None  # the wave takes at most half of the items, if known
    threads: int = MAX_WAVE
    watch: bool = False  # long items may be handed over still running (_watch.py)


def run_sample(
    fn: Callable[[Any], Any],
    iterator: Iterator[Any],
    limits: Limits,
    coroutine: bool,
    phases: Phases,
) -> None:
    """Phases 1 and 2 over the next items of `iterator` (phase 0 may have run one: _watch.py)."""
    if coroutine:
        _sample_coroutines(fn, iterator, limits.size, phases)
        return
    with Canary() as canary:
        _sequential(fn, iterator, limits.size, phases)
    phases.gil_wait = canary.wait()
    if not phases.exhausted and not (limits.watch and _holds_gil(phases)):
        _scaling(fn, iterator, limits, phases)


def _holds_gil(phases: Phases) -> bool:
    """For map(strategy="auto"): phase 1's items computed and held the GIL, by the canary,
    so phase 2 (which runs them at 1x, while processes would run them at cores x) is skipped."""
    if phases.gil_wait is None or phases.gil_wait < HELD_SWITCHES * sys.getswitchinterval():
        return False
    wall = sum(r.wall for r in phases.measured)
    return sum(r.cpu for r in phases.measured) >= WAVE_BELOW_SHARE * wall > 0


def _sequential(
    call: Callable[[Any], Any], iterator: Iterator[Any], size: int | None, phases: Phases
) -> None:
    """Phase 1: one item at a time until the budget is spent (the first may have run already,
    on a thread of its own: _watch.py)."""
    limit = MAX_SEQUENTIAL if size is None else size - _scaling_share(size)
    pairs = phases.taken
    spent, cpu, budget = sum(record.wall for _, record in pairs), 0.0, SEQUENTIAL_SECONDS
    marks = [(Mark(), 0.0)] + [(Mark(), spent)] * len(pairs)
    while len(pairs) < limit and (
        size is not None or len(pairs) < MIN_SEQUENTIAL or spent < budget
    ):
        item = next(iterator, END)
        if item is END:
            phases.exhausted = True
            break
        record = timed(call, item)
        spent += record.wall
        pairs.append((item, record))
        if len(pairs) == 1:  # the warm-up item's waits are left out with it
            marks.append((Mark(), spent))
        else:
            cpu += record.cpu
            if cpu < WAVE_BELOW_SHARE * (spent - marks[-1][1]):
                budget = WAITING_SECONDS
    mark, before = marks[-1] if len(pairs) > 1 else marks[0]
    # Preemptions between items (the loop's own time) are no item's: count the items' share.
    inside = (spent - before) / max(time.perf_counter() - mark.wall, 1e-9)
    busy = cpu if len(pairs) > 1 else sum(record.cpu for _, record in pairs)
    phases.preempted = mark.queued() * min(1.0, inside) + mark.stolen(busy)
    phases.measured = [record for _, record in (pairs[1:] if len(pairs) > 1 else pairs)]
    phases.rss_growth = mark.rss_growth()  # read twice, not per item: reads release the GIL


def _scaling_share(size: int) -> int:
    """With a fixed sample size: half of it runs on threads, if that gives each thread an item."""
    return size // 2 if size >= 1 + SCALING_THREADS else 0


def _scaling(
    fn: Callable[[Any], Any], iterator: Iterator[Any], limits: Limits, phases: Phases
) -> None:
    """Phase 2: items on threads at once; sets `phases.thread_speedup`.

    CPU-bound items run half of the phase first: a reading outside CLEAR_BELOW..CLEAR_ABOVE
    decides, one inside it gets the whole phase. If the threads did under MIN_SCALING_SECONDS
    of work each, phase 1 overstated the items (a garbage collection or a cold cache in a
    measured item): once, the phase runs again, sized by what the threads saw. Too little work
    per thread measures thread start-up, not the work: GIL-holding items short enough to finish
    before the next thread wakes up read 2x.
    """
    measured = phases.measured
    n, wall = len(measured), sum(r.wall for r in measured)
    cpu = min(wall, sum(r.cpu for r in measured)) / n
    own = max((wall - phases.preempted) / n, cpu, 1e-9)  # load takes no CPU time
    waves, share, part, resized = cpu < WAVE_BELOW_SHARE * own, cpu / own, 0.5, False
    while True:
        threads, count = _phase_two_size(own, cpu, limits, len(phases.taken), part)
        batch = list(islice(iterator, count))
        phases.exhausted = len(batch) < count
        if len(batch) < SCALING_THREADS:  # too few to run at once: kept, but not measured
            phases.taken += [(item, timed(fn, item)) for item in batch]
            return
        threads = min(threads, len(batch))
        records, speedup = _on_threads(fn, batch, own - cpu, threads)
        phases.taken += zip(batch, records, strict=True)
        phases.threaded, phases.threads = records, threads
        done = sum(r.wall if waves else r.cpu for r in records) / threads
        final = phases.exhausted or limits.size is not None
        if done >= MIN_SCALING_SECONDS:
            phases.thread_speedup = speedup
            if final or waves or part == 1 or not CLEAR_BELOW < speedup < CLEAR_ABOVE:
                return
            part = 1.0  # not clear yet: the whole phase
        elif final or resized:
            return
        else:  # the items' own times, as the threads saw them (their CPU share as phase 1 did)
            resized, cpu = True, sum(r.cpu for r in records) / len(records)
            own = max(cpu / max(share, 1e-9), 1e-9) if not waves else done * threads / len(records)


def _phase_two_size(
    own: float, cpu: float, limits: Limits, taken: int, part: float
) -> tuple[int, int]:
    """How many threads phase 2 runs on, and how many items (`part` of the CPU-bound phase)."""
    if limits.size is not None:
        return SCALING_THREADS, _scaling_share(limits.size)
    if cpu < WAVE_BELOW_SHARE * own and limits.threads >= SCALING_THREADS:  # the wave
        wide = round(available_cores() * own / max(cpu, 1e-9))
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
    fn: Callable[[Any], Any], batch: list[Any], wait: float, n: int
) -> tuple[list[Record], float]:
    """Run `batch` on `n` threads (item i on thread i mod n), released together.

    Returns the records and the throughput relative to one thread: the sum over the threads of
    the share of its own time (wall time minus waits for a busy CPU) spent working, i.e. on CPU
    or in the item's own waits (`wait` seconds per item, measured alone). What is left of a
    thread's own time is contention: a thread waiting for the GIL is off CPU but not runnable,
    and waiting items that take longer side by side share something that does not scale. (On a
    loaded machine a thread that wakes to take the GIL also waits for a CPU, which counts as
    load: GIL-bound work may then read up to ~1.5x on 2 threads.)
    """
    records: list[Record] = [Record() for _ in batch]
    shares = [0.0] * n
    escaped: list[BaseException] = []
    go = threading.Event()

    def work(j: int) -> None:
        go.wait()
        mark, cpu = Mark(), time.thread_time()
        mine = range(j, len(batch), n)
        try:
            for i in mine:
                records[i] = timed(fn, batch[i])
        except BaseException as exc:  # SystemExit in a thread would vanish: re-raised below
            escaped.append(exc)
        elapsed, busy = time.perf_counter() - mark.wall, time.thread_time() - cpu
        own = max(elapsed - mark.queued() - mark.stolen(busy), busy, 1e-9)
        shares[j] = min(1.0, (busy + len(mine) * wait) / own)

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
    return records, sum(shares)


def _sample_coroutines(
    fn: Callable[[Any], Any], iterator: Iterator[Any], size: int | None, phases: Phases
) -> None:
    """Phase 1 for a coroutine function, each item awaited in a private event loop."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise UsageError(
            "profiling a coroutine function needs its own event loop, and this thread runs one: "
            "call it from a worker thread: await asyncio.to_thread(gearshift.profile, fn, items)"
        )
    loop = asyncio.new_event_loop()
    try:
        _sequential(lambda x: loop.run_until_complete(fn(x)), iterator, size, phases)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
