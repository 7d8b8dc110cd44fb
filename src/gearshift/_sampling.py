"""How profile()'s sample runs: one item at a time, then on threads at once, then shipped.

How big the sample is (the constants below):
  1. sequential: items run one at a time in the calling thread until they took SEQUENTIAL_SECONDS
     (at least MIN_SEQUENTIAL, at most MAX_SEQUENTIAL items). The profile leaves the first item
     out of its averages when there are others: it often pays for imports and cold caches.
  2. scaling: about THREAD_PHASE_SECONDS x CPU share more work (at least one item per thread,
     at most MAX_SCALING items) runs on SCALING_THREADS threads at once; its throughput over the
     sequential throughput is `thread_speedup`. Waiting-bound work needs little of it: its CPU
     part decides nothing. Coroutine functions skip this phase.
  3. shipping: up to SHIP_ITEMS sampled items and their results go through cloudpickle,
     stopping once that took SHIP_SECONDS.
A fixed sample size (`sample=N`) runs half of it on threads, if that gives each thread an item.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from gearshift.errors import UsageError

# Tuned by bench/auto.py: ~0.1 s of sample in all keeps auto's overhead near 5% of 2 s of work.
SEQUENTIAL_SECONDS = 0.05
MIN_SEQUENTIAL = 2  # one warm-up item, one measured
MAX_SEQUENTIAL = 1000  # tiny items: 1000 of them say all there is to say
SCALING_THREADS = 2  # 2 threads tell GIL-bound (1.0x) from GIL-free or waiting (2.0x)
THREAD_PHASE_SECONDS = 0.1  # of CPU work: less lets pure Python read up to 1.8x on a loaded machine
MAX_SCALING = 2000
MIN_SCALING_SECONDS = 0.005  # of work per thread; less measures thread start-up, not the work
SHIP_ITEMS = 8
SHIP_SECONDS = 0.02


@dataclass
class Record:
    """One item's run: its value or the exception it raised, wall and thread CPU seconds."""

    value: Any = None
    error: BaseException | None = None
    wall: float = 0.0
    cpu: float = 0.0


def _timed(call: Callable[[Any], Any], item: Any) -> Record:
    record = Record()
    cpu, wall = time.thread_time(), time.perf_counter()
    try:
        record.value = call(item)
    except Exception as exc:  # the item's outcome; KeyboardInterrupt and SystemExit go through
        record.error = exc
    record.wall = time.perf_counter() - wall
    record.cpu = time.thread_time() - cpu
    return record


_END = object()
Pairs = list[tuple[Any, Record]]


@dataclass
class Phases:
    """What phases 1 and 2 ran: (item, record) pairs, and the time the threads waited for a CPU.

    `preempted` is how long the measured sequential items sat runnable while other processes
    held the CPUs (Linux schedstat; 0 elsewhere): that is load, not a trait of the work.
    """

    sequential: Pairs = field(default_factory=list)
    scaling: Pairs = field(default_factory=list)
    thread_speedup: float | None = None  # phase 2's throughput over one thread's
    preempted: float = 0.0
    exhausted: bool = False

    @property
    def measured(self) -> list[Record]:
        """The sequential records the averages use: all but the warm-up item, if others exist."""
        pairs = self.sequential[1:] if len(self.sequential) > 1 else self.sequential
        return [record for _, record in pairs]


def run_sample(
    fn: Callable[[Any], Any], iterator: Iterator[Any], size: int | None, coroutine: bool
) -> Phases:
    """Phases 1 and 2 over the first items of `iterator`."""
    phases = Phases()
    if coroutine:
        _sample_coroutines(fn, iterator, size, phases)
        return phases
    _sequential(fn, iterator, size, phases)
    if not phases.exhausted:
        _scaling(fn, iterator, size, phases)
    return phases


def _sequential(
    call: Callable[[Any], Any], iterator: Iterator[Any], size: int | None, phases: Phases
) -> None:
    """Phase 1: one item at a time until the budget is spent."""
    limit = MAX_SEQUENTIAL if size is None else size - _scaling_share(size)
    pairs = phases.sequential
    spent, marks = 0.0, [runqueue_seconds()]
    while len(pairs) < limit and (
        size is not None or len(pairs) < MIN_SEQUENTIAL or spent < SEQUENTIAL_SECONDS
    ):
        item = next(iterator, _END)
        if item is _END:
            phases.exhausted = True
            break
        record = _timed(call, item)
        spent += record.wall
        pairs.append((item, record))
        if len(pairs) == 1:
            marks.append(runqueue_seconds())  # the warm-up item's waits are left out with it
    phases.preempted = runqueue_seconds() - (marks[-1] if len(pairs) > 1 else marks[0])


def _scaling_share(size: int) -> int:
    """With a fixed sample size: half of it runs on threads, if that gives each thread an item."""
    return size // 2 if size >= 1 + SCALING_THREADS else 0


def _scaling(
    fn: Callable[[Any], Any], iterator: Iterator[Any], size: int | None, phases: Phases
) -> None:
    """Phase 2: items on SCALING_THREADS threads at once; sets `phases.thread_speedup`."""
    measured = phases.measured
    own = max(sum(r.wall for r in measured) - phases.preempted, 1e-9) / len(measured)
    cpu = min(own, sum(r.cpu for r in measured) / len(measured))
    wait = own - cpu
    if size is not None:
        count = _scaling_share(size)
    else:  # the phase tells whether CPU work runs in parallel: it needs CPU work to see
        per_thread = int(THREAD_PHASE_SECONDS * cpu / own / SCALING_THREADS / own) + 1
        count = min(MAX_SCALING, SCALING_THREADS * per_thread)
    batch = list(islice(iterator, count))
    phases.exhausted = len(batch) < count
    if len(batch) < SCALING_THREADS:  # too few to run at once: kept, but not measured
        phases.sequential.extend((item, _timed(fn, item)) for item in batch)
        return
    records, speedup = _on_threads(fn, batch, wait)
    phases.scaling = list(zip(batch, records, strict=True))
    if len(batch) * own / SCALING_THREADS >= MIN_SCALING_SECONDS:
        phases.thread_speedup = speedup


def _on_threads(
    fn: Callable[[Any], Any], batch: list[Any], wait: float
) -> tuple[list[Record], float]:
    """Run `batch` on SCALING_THREADS threads (item i on thread i mod n), released together.

    Returns the records and the throughput relative to one thread: the sum over the threads of
    the share of its own time (wall time minus waits for a busy CPU) spent working, i.e. on CPU
    or in the item's own waits (`wait` seconds per item, from phase 1). What is left of a thread's
    own time is contention: a thread waiting for the GIL is off CPU but not runnable. (On a loaded
    machine a thread that wakes to take the GIL also waits for a CPU, which counts as load: GIL-
    bound work may then read up to ~1.5x.)
    """
    n = SCALING_THREADS
    records: list[Record] = [Record() for _ in batch]
    shares = [0.0] * n
    escaped: list[BaseException] = []
    go = threading.Event()

    def work(j: int) -> None:
        go.wait()
        wall, cpu, waited = time.perf_counter(), time.thread_time(), runqueue_seconds()
        mine = range(j, len(batch), n)
        try:
            for i in mine:
                records[i] = _timed(fn, batch[i])
        except BaseException as exc:  # SystemExit in a thread would vanish: re-raised below
            escaped.append(exc)
        elapsed, busy = time.perf_counter() - wall, time.thread_time() - cpu
        own = max(elapsed - (runqueue_seconds() - waited), busy, 1e-9)
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


def runqueue_seconds() -> float:
    """Seconds this thread has waited, runnable, for a CPU others held (Linux); 0.0 elsewhere."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/schedstat", "rb") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


def ship_cost(fn: Callable[[Any], Any], pairs: Pairs) -> dict[str, Any]:
    """Mean cloudpickle bytes and dumps+loads seconds of arguments and results, or why not."""
    import cloudpickle

    sizes: dict[str, list[float]] = {"in": [], "out": []}
    times: dict[str, list[float]] = {"in": [], "out": []}
    unpicklable = None
    step = max(1, len(pairs) // SHIP_ITEMS)
    spent = 0.0
    try:
        cloudpickle.dumps(fn)
    except Exception as exc:
        unpicklable = f"the function: {type(exc).__name__}: {exc}"
    for index in range(0, len(pairs), step):
        item, record = pairs[index]
        targets = [("in", item)] + ([("out", record.value)] if record.error is None else [])
        for direction, obj in targets:
            start = time.perf_counter()
            try:
                data = cloudpickle.dumps(obj)
                cloudpickle.loads(data)
            except Exception as exc:
                what = "an argument" if direction == "in" else "a result"
                unpicklable = unpicklable or f"{what} (item {index}): {type(exc).__name__}: {exc}"
                continue
            took = time.perf_counter() - start
            spent += took
            sizes[direction].append(len(data))
            times[direction].append(took)
        if spent >= SHIP_SECONDS:
            break
    return {
        "payload_bytes_in": _mean(sizes["in"]),
        "payload_bytes_out": _mean(sizes["out"]),
        "ship_seconds_in": _mean(times["in"]),
        "ship_seconds_out": _mean(times["out"]),
        "unpicklable": unpicklable,
    }


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0
