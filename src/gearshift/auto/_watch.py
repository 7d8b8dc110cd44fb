"""The sample for long items: they run on threads of their own and are watched while they run,
so that the run can start before they end.

The first item runs on a thread while the caller waits up to LONG_SECONDS. If it ends by then,
the sample goes on as `_sampling` says. If not, waiting for its end before anything else starts
would cost a whole item's time (5 downloads of 0.4 s: 0.4 s lost on a run of 0.4 s), so its
thread's CPU clock decides now:
  - it spent under WAVE_BELOW_SHARE of its time on CPU: a second item starts beside it, and
    if that one also waits (SECOND_SECONDS or to its end), the items are waiting-bound;
  - else CPU-bound: a second item starts on a second thread, and for WINDOW_SECONDS (twice that
    when the reading is unclear) the threads' CPU clocks say whether CPU work runs in parallel
    here: SCALING_THREADS CPU-seconds per second (GIL-free), or one (the GIL). A thread whose
    item ends gives its place to the next item.
The items still running are handed over with the choice (`Watch.outcome`), never run again.
Per-thread CPU clocks need `time.pthread_getcpuclockid` (Linux, BSD); elsewhere the first item
runs to its end in the calling thread, as the others do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

from gearshift.auto._sampling import (
    CLEAR_ABOVE,
    CLEAR_BELOW,
    END,
    SCALING_THREADS,
    WAVE_BELOW_SHARE,
    Limits,
    Phases,
    Record,
    timed,
)
from gearshift.machine import Mark, runqueue_seconds
from gearshift.strategies import fails_its_item
from gearshift.values import ChunkResult

WATCHABLE = hasattr(time, "pthread_getcpuclockid")
# bench/auto.py, few long items (5 x 0.3 s sleeps or HTTP GETs): with SECOND_SECONDS, the run
# starts ~30 ms late (1.1x); at 0.02 + 0.015 s it read 1.14-1.15x. Items shorter than this run
# as _sampling says (its whole sample is ~0.1 s).
LONG_SECONDS = 0.015
# A first item that waited may have waited once (a download, a cold cache): a second one, watched
# this long or to its end, decides.
SECOND_SECONDS = 0.01
# The caller, due to wake after LONG_SECONDS, woke this much later, not for want of a CPU: the
# item held the GIL all along (Python code yields it every 5 ms, sys.getswitchinterval()).
HELD_SECONDS = 0.05
# Of 2 threads running CPU-bound items, as _sampling.THREAD_PHASE_SECONDS / 2 (its first half).
WINDOW_SECONDS = 0.05


class Runner:
    """One item on a thread of its own; its CPU clock and run-queue waits readable from outside."""

    def __init__(self, fn: Callable[[Any], Any], item: Any, watch: Watch) -> None:
        self.item = item
        self.record: Record | None = None
        self.started = time.perf_counter()
        self._clock: int | None = None
        self._tid = 0
        self._cpu0 = self._queued1 = 0.0
        self._mark = Mark()  # replaced on the item's thread
        ready = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(fn, watch, ready), name="gearshift-profile", daemon=True
        )
        self.thread.start()
        ready.wait()

    def _run(self, fn: Callable[[Any], Any], watch: Watch, ready: threading.Event) -> None:

        try:
            self._clock = time.pthread_getcpuclockid(threading.get_ident())
        except OSError:  # no clock to read: the item reads as waiting, and threads are safe
            self._clock = None
        self._tid, self._mark = threading.get_native_id(), Mark()
        self._cpu0 = time.thread_time()
        ready.set()
        try:
            record = timed(fn, self.item)
        except BaseException as exc:  # SystemExit in a thread would vanish: the item's outcome
            record = Record(error=exc, wall=time.perf_counter() - self.started)
        self._queued1 = runqueue_seconds()
        self.record = record
        watch.finished()

    def cpu(self) -> float:
        """CPU seconds the item has used so far."""
        if self.record is None and self._clock is not None:
            try:
                return max(0.0, time.clock_gettime(self._clock) - self._cpu0)
            except OSError:  # the thread ended just now: its record is there
                pass
        return self.record.cpu if self.record is not None else 0.0

    def wall(self) -> float:
        """Wall seconds the item has taken so far."""
        return self.record.wall if self.record is not None else time.perf_counter() - self.started

    def lost(self) -> float:
        """Seconds of its time so far that load took (`machine`): queued for a busy CPU, or, on
        a virtual machine, stolen while it ran."""
        end = self._queued1 if self.record is not None else runqueue_seconds(self._tid)
        return max(0.0, end - self._mark.runqueue) + self._mark.stolen(self.cpu())


class Watch:
    """The sample's items on threads of their own, in input order; `outcome` completes with them."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn
        self.runners: list[Runner] = []
        self.changed = threading.Event()
        self.outcome: Future[ChunkResult] = Future()
        self.share = 0.0  # the first item's CPU share while it ran alone
        self._lock = threading.Lock()
        self._sealed = False

    def start(self, item: Any) -> Runner:
        runner = Runner(self.fn, item, self)
        self.runners.append(runner)
        return runner

    def running(self) -> list[Runner]:
        return [r for r in self.runners if r.record is None]

    def wait(self, timeout: float) -> None:
        """Until an item ends or `timeout` passes."""
        self.changed.wait(timeout)
        self.changed.clear()

    def join(self) -> None:
        for runner in self.runners:
            runner.thread.join()

    def finished(self) -> None:
        """A runner's item ended (called on its thread)."""
        self.changed.set()
        self._settle()

    def seal(self) -> None:
        """No more items join: `outcome` completes once the running ones end."""
        with self._lock:
            self._sealed = True
        self._settle()

    def _settle(self) -> None:
        with self._lock:
            if not self._sealed or self.outcome.done() or self.running():
                return
            records = [r.record for r in self.runners if r.record is not None]
            errors = {i: r.error for i, r in enumerate(records) if r.error is not None}
            result = ChunkResult([r.value for r in records], sum(r.wall for r in records), errors)
        self.outcome.set_result(result)

    def measured(self) -> tuple[list[Record], float]:
        """Records for the profile's per-item averages, and the seconds load took from them.

        The items that ended (the first left out when others did: it pays for the warm-up),
        else the one that has run longest, as far as it got. CPU-bound items ran side by side,
        sharing the CPUs or the GIL: their own time is their CPU time over the first item's
        CPU share when it ran alone.
        """

        done = [r for r in self.runners if r.record is not None]
        if len(done) > 1:
            done = done[1:] if done[0] is self.runners[0] else done
        chosen = done or [max(self.runners, key=Runner.wall)]
        side_by_side = len(self.runners) > 1 and self.share >= WAVE_BELOW_SHARE
        records, preempted = [], 0.0
        for runner in chosen:
            cpu = runner.cpu()
            if side_by_side:
                records.append(Record(wall=cpu / self.share, cpu=cpu))
            else:
                records.append(Record(wall=runner.wall(), cpu=cpu))
                preempted += runner.lost()
        return records, preempted


def watch_first(
    fn: Callable[[Any], Any], iterator: Iterator[Any], limits: Limits, phases: Phases
) -> Watch | None:
    """Run the first item on a thread; if it ends within LONG_SECONDS, it joins `phases.taken`
    and the sample goes on as usual (None); else the Watch of the long items, measured."""

    item = next(iterator, END)
    if item is END:
        phases.exhausted = True
        return None
    watch, mark = Watch(fn), Mark()
    first = watch.start(item)
    if watch.changed.wait(LONG_SECONDS):
        first.thread.join()
        record = first.record
        assert record is not None
        if record.error is not None and not fails_its_item(record.error):
            raise record.error  # KeyboardInterrupt, SystemExit: as in the calling thread
        phases.taken.append((item, record))
        late = time.perf_counter() - mark.wall - LONG_SECONDS - mark.queued()
        if late > HELD_SECONDS and record.cpu >= WAVE_BELOW_SHARE * record.wall:
            # this thread could not even wake up while the item ran: one C call held the GIL
            # throughout (sum(range(n)), a regex): a second thread would run 1.0x beside it
            phases.measured, phases.thread_speedup, phases.held = [record], 1.0, True
        return None
    lead = first
    if _share(first) < WAVE_BELOW_SHARE:  # waiting, or a slow start (a download, a cold cache)
        item = next(iterator, END)
        if item is END:
            phases.exhausted = True
            return watch
        lead = watch.start(item)  # ... which the second item tells apart
        deadline = time.perf_counter() + SECOND_SECONDS
        while lead.record is None and time.perf_counter() < deadline:
            watch.wait(deadline - time.perf_counter())
    watch.share = _share(lead)
    if watch.share >= WAVE_BELOW_SHARE and limits.threads >= SCALING_THREADS:
        phases.thread_speedup = _window(watch, iterator, phases)
    return watch


def _share(runner: Runner) -> float:
    """The share of its own time (wall time minus what load took) the item spent on CPU."""
    return min(1.0, runner.cpu() / max(runner.wall() - runner.lost(), 1e-9))


def _window(watch: Watch, iterator: Iterator[Any], phases: Phases) -> float | None:
    """SCALING_THREADS items at a time for WINDOW_SECONDS (twice that if the reading is unclear
    then): the CPU seconds they used per second of their own time; None if too few items."""

    start, length = time.perf_counter(), WINDOW_SECONDS
    base = {id(r): (r.cpu(), r.lost()) for r in watch.runners}  # later ones start at 0
    while True:
        while not phases.exhausted and len(watch.running()) < SCALING_THREADS:
            item = next(iterator, END)
            if item is END:
                phases.exhausted = True
            else:
                watch.start(item)
        left = start + length - time.perf_counter()
        if left > 0:
            watch.wait(left)
            continue
        if len(watch.runners) < SCALING_THREADS:
            return None
        cpu = queued = 0.0
        for runner in watch.runners:
            cpu0, queued0 = base.get(id(runner), (0.0, 0.0))
            cpu, queued = cpu + runner.cpu() - cpu0, queued + runner.lost() - queued0
        span = time.perf_counter() - start
        speedup = cpu / max(span - queued / SCALING_THREADS, 1e-9)
        if length > WINDOW_SECONDS or not CLEAR_BELOW < speedup < CLEAR_ABOVE:
            return speedup
        length *= 2
