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

import time
from collections.abc import Callable
from typing import Any

from gearshift.auto._batch import END, SCALING_THREADS, WAVE_BELOW_SHARE, Batch, Limits, Phases
from gearshift.auto._canary import HELD_SHARE, Canary
from gearshift.auto._onthreads import CLEAR_ABOVE, CLEAR_BELOW
from gearshift.auto._runners import Runner, Watch
from gearshift.auto._take import Taker
from gearshift.machine import Mark
from gearshift.strategies import fails_its_item

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
        if record.error is not None and not fails_its_item(record.error):
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
        phases.gil_share = _canary(watch, iterator, phases)
        if phases.gil_share is not None and phases.gil_share < HELD_SHARE:  # unclear (a
            phases.thread_speedup = _window(watch, iterator, phases)  # starved item): processes
    return watch


def _share(watch: Watch, runner: Runner, own: float) -> float:
    """The share of its own time (wall time less what load took) the item spent on CPU, once
    it has had `own` seconds of own time (or ended, or OWN_WAIT x `own` passed): a thread that
    sits queued for a CPU has shown too little of itself to tell. This thread wakes seldom
    meanwhile (each wait twice the last): each wake takes the GIL, and on a loaded machine the
    item then waits, blocked, for this thread to get a CPU (neither its CPU nor its queue)."""
    deadline, pause = time.perf_counter() + OWN_WAIT * own, 0.0
    while runner.record is None and (had := runner.wall() - runner.queued()) < own:
        pause = min(max(own - had, 2 * pause), deadline - time.perf_counter())
        if pause <= 0:
            break
        watch.wait(pause)
    return min(1.0, runner.cpu() / max(runner.wall() - runner.lost(), 1e-9))


def _canary(watch: Watch, iterator: Taker, phases: Phases) -> float | None:
    """This thread as a canary (_canary.py) while the items run, one at a time: an item that
    ends before the verdict is clear is followed by the next. The canary's verdict, or None."""
    canary = Canary(lambda: sum(runner.cpu() for runner in watch.runners))
    end = time.perf_counter() + CANARY_SECONDS
    while not canary.clear() and time.perf_counter() < end:
        canary.cycles(end - time.perf_counter(), over=lambda: not watch.running())
        if not watch.running() and not canary.clear():
            item = next(iterator, END)
            if item is END:
                phases.exhausted = True
                break
            watch.start(item)
    return canary.share()


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
