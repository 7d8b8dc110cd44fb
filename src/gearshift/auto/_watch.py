"""The sample for long items: they run on threads of their own and are watched while they run,
so that the run can start before they end.

The first item runs on a thread while the caller waits up to LONG_SECONDS. If it ends by then,
the sample goes on as `_sampling` says. If not, waiting for its end before anything else starts
would cost a whole item's time (5 downloads of 0.4 s: 0.4 s lost on a run of 0.4 s), so its
thread's CPU clock decides now:
  - it spent under WAVE_BELOW_SHARE of its time on CPU: a second item starts beside it, and
    if that one also waits (SECOND_SECONDS or to its end), the items are waiting-bound;
  - else CPU-bound: this thread becomes a canary (_canary.py) for up to CANARY_SECONDS: if the
    item holds the GIL, the sample ends here (the run, in processes, starts beside it; two items
    on threads would share the GIL and be the slow part). Otherwise a second item starts on a
    second thread, and for WINDOW_SECONDS (twice that when the reading is unclear) the threads'
    CPU clocks say whether CPU work runs in parallel here: SCALING_THREADS CPU-seconds per
    second (GIL-free), or one. A thread whose item ends gives its place to the next item.
The items still running are handed over with the choice (`Watch.outcome`), never run again.
Per-thread CPU clocks need `time.pthread_getcpuclockid` (Linux, BSD); elsewhere the first item
runs to its end in the calling thread, as the others do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from gearshift.auto._batch import (
    END,
    SCALING_THREADS,
    WAVE_BELOW_SHARE,
    Batch,
    Limits,
    Phases,
    Record,
)
from gearshift.auto._canary import Canary, Queued
from gearshift.auto._onthreads import CLEAR_ABOVE, CLEAR_BELOW
from gearshift.auto._take import Taker
from gearshift.machine import Mark
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
# Of 2 threads running CPU-bound items, as _onthreads.THREAD_PHASE_SECONDS / 2 (its first half).
WINDOW_SECONDS = 0.05
# At most, of the canary beside a CPU-bound first item; its verdict is usually clear after two
# switch intervals of the item's CPU time (_canary.MIN_SWITCHES), ~10 ms on an idle machine;
# beside 2 busy loops, with the tests at nice 10, an item gets ~1/20 of a CPU.
CANARY_SECONDS = 1.0
# Under load, an item's share is read once it had its own time (not queued for a CPU) of
# LONG_SECONDS (SECOND_SECONDS for the second), waiting at most this many times that.
OWN_WAIT = 20


class Runner:
    """One item on a thread of its own; its CPU clock and run-queue waits readable from outside."""

    def __init__(self, fn: Callable[[Any], Any], item: Any, watch: Watch) -> None:
        self.item = item
        self.record: Record | None = None
        self.started = time.perf_counter()
        self._watch = watch
        self._clock: int | None = None
        self._queued: Queued | None = None  # the item's thread's time queued for a CPU
        self._cpu0 = self._queued0 = self._queued1 = 0.0
        self._caller0 = self._caller1 = watch.caller()  # ... and the watching thread's
        ready = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(fn, ready), name="gearshift-profile", daemon=True
        )
        self.thread.start()
        ready.wait()

    def _run(self, fn: Callable[[Any], Any], ready: threading.Event) -> None:
        try:
            self._clock = time.pthread_getcpuclockid(threading.get_ident())
        except OSError:  # no clock to read: the item reads as waiting, and threads are safe
            self._clock = None
        self._queued = queued = Queued()
        self._queued0, self._cpu0 = queued.start, time.thread_time()
        ready.set()
        record = Record()
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            record.value = fn(self.item)
        except BaseException as exc:  # SystemExit in a thread would vanish: the item's outcome
            record.error = exc
        record.wall, record.cpu = time.perf_counter() - wall, time.thread_time() - cpu
        self._queued1, self._caller1 = queued(), self._watch.caller()
        self.record = record
        queued.close()
        self._watch.finished()

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
        a virtual machine, stolen while it ran (since the items were found long); or blocked
        for the GIL while the watching thread, handed it, sat queued for a CPU (each time it
        wakes; at most the item's time neither on CPU nor queued)."""
        done = self.record is not None
        end = self._queued1 if done or self._queued is None else self._queued()
        caller = self._caller1 if done else self._watch.caller()
        steal = self._watch.steal
        own_queue = max(0.0, end - self._queued0) + (steal.stolen(self.cpu()) if steal else 0.0)
        idle = max(0.0, self.wall() - self.cpu() - own_queue)
        return own_queue + min(idle, max(0.0, caller - self._caller0))


class Watch:
    """The sample's items on threads of their own, in input order; `outcome` completes with them."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn
        self.runners: list[Runner] = []
        self.changed = threading.Event()
        self.outcome: Future[ChunkResult] = Future()
        self.share = 0.0  # the first item's CPU share while it ran alone
        self.steal: Mark | None = None  # the machine's steal, from when the items were found long
        self.caller = Queued()  # the watching thread's time queued for a CPU
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
        self.caller.close()  # read no more
        self._settle()

    def _settle(self) -> None:
        with self._lock:
            if not self._sealed or self.outcome.done() or self.running():
                return
            records = [r.record for r in self.runners if r.record is not None]
            errors = {i: r.error for i, r in enumerate(records) if r.error is not None}
            result = ChunkResult([r.value for r in records], sum(r.wall for r in records), errors)
        self.outcome.set_result(result)

    def measured(self) -> list[Batch]:
        """Items for the profile's per-item averages, with the seconds load took from them.

        The items that ended, else the one that has run longest, as far as it got; the first
        item only if it is the only one (it pays for the warm-up: a first download may wait).
        CPU-bound items did not run alone (a canary or a second item beside them, sharing the
        GIL or the CPUs): their own time is their CPU time over the CPU share measured first.
        """

        others = self.runners[1:] or self.runners  # the first pays for the warm-up
        done = [r for r in others if r.record is not None]
        chosen = done or [max(others, key=Runner.wall)]
        batches = []
        for runner in chosen:
            cpu, record = runner.cpu(), runner.record or Record()
            errors: dict[int, BaseException] = {} if record.error is None else {0: record.error}
            if self.share >= WAVE_BELOW_SHARE:
                batch = Batch([runner.item], [record.value], errors, cpu / self.share, cpu)
            else:
                batch = Batch([runner.item], [record.value], errors, runner.wall(), cpu)
                batch.lost = runner.lost()
            batches.append(batch)
        return batches


def watch_first(
    fn: Callable[[Any], Any], iterator: Taker, limits: Limits, phases: Phases
) -> Watch | None:
    """Run the first item on a thread; if it ends within LONG_SECONDS, it joins `phases.taken`
    and the sample goes on as usual (None); else the Watch of the long items, measured."""

    taken = iterator.take(1)  # a Span of the caller's list, if it is one: joins without a copy
    if not taken:
        phases.exhausted = True
        return None
    item = taken[0]
    watch, began = Watch(fn), time.perf_counter()
    first = watch.start(item)
    if watch.changed.wait(LONG_SECONDS):
        first.thread.join()
        record = first.record
        assert record is not None
        if record.error is not None and not isinstance(record.error, Exception):
            raise record.error  # KeyboardInterrupt, SystemExit: as in the calling thread
        errors: dict[int, BaseException] = {} if record.error is None else {0: record.error}
        lost = first.lost()
        phases.taken.append(Batch(taken, [record.value], errors, record.wall, record.cpu, lost))
        late = time.perf_counter() - began - LONG_SECONDS - watch.caller.since()
        watch.caller.close()
        if late > HELD_SECONDS and record.cpu >= WAVE_BELOW_SHARE * (record.wall - lost):
            # this thread could not even wake up while the item ran: one C call held the GIL
            # throughout (sum(range(n)), a regex): a second thread would run 1.0x beside it
            phases.measured, phases.gil_share, phases.held = list(phases.taken), 1.0, True
        return None
    watch.steal, lead = Mark(), first
    if _share(watch, first, LONG_SECONDS) < WAVE_BELOW_SHARE:  # waiting, or a slow start (a
        item = next(iterator, END)  # download, a cold cache), which a second item tells apart
        if item is END:
            phases.exhausted = True
            return watch
        lead = watch.start(item)
        _share(watch, lead, SECOND_SECONDS)
    watch.share = _share(watch, lead, 0.0)
    if watch.share >= WAVE_BELOW_SHARE and limits.threads >= SCALING_THREADS:
        canary = Canary(lead.cpu)  # this thread asks for the GIL while the item runs
        canary.cycles(CANARY_SECONDS, over=lambda: lead.record is not None)
        phases.gil_share = canary.share()
        if canary.held() is False:  # unclear (a starved item): processes, the safe side
            phases.thread_speedup = _window(watch, iterator, phases)
    return watch


def _share(watch: Watch, runner: Runner, own: float) -> float:
    """The share of its own time (wall time less what load took) the item spent on CPU, once
    it has had `own` seconds of own time: a thread that sits queued for a CPU has shown too
    little of itself to tell. If it has not, this thread waits once more, OWN_WAIT x `own` or
    to the item's end: each wake takes the GIL, and on a loaded machine the item then waits,
    blocked, for this thread to get a CPU (time that is neither its CPU nor its queue's)."""
    if runner.record is None and runner.wall() - runner.lost() < own:
        watch.wait(OWN_WAIT * own)
    return min(1.0, runner.cpu() / max(runner.wall() - runner.lost(), 1e-9))


def _window(watch: Watch, iterator: Taker, phases: Phases) -> float | None:
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
