"""How profile()'s sample runs: batches in this thread, the canary, then items on threads at once.

  0. for map(strategy="auto"), the first item runs on a thread of its own; if it is still
     running after _watch.LONG_SECONDS, the items are long and _watch.py samples them instead,
     while they run: the run starts beside them.
  1. batches: items run in this thread in batches of 1, 4, 16, ... items, each timed as a whole
     (the C loop of `run_items`: a per-item timer would cost more than a tiny item), until they
     took MEASURE_SECONDS (profile(): SEQUENTIAL_SECONDS; at least one item past the first, which
     is left out of the averages as warm-up). No other thread of ours runs meanwhile, so the CPU
     share they show is the work's own.
  2. only what can change the choice is measured next. map(strategy="auto") asks the chooser what
     it would pick if the items held the GIL, and if they did not (shipping not counted yet): the
     same answer ends the sample here; serial either way, with at most FINISH_SECONDS of work
     left, runs the rest in the sample, in one batch (a job too small to pay for a decision
     ends at the speed of its own sample). Else, for CPU-bound items that processes could
     speed up, the canary (_canary.py) watches a batch run in this thread; items that hold the
     GIL end the sample (on threads they would run at 1x while the run waits for processes);
     the others, and all where the choice is between serial and threads, run on
     SCALING_THREADS threads (_onthreads.py), whose speedup over one thread decides.
     Waiting-bound items run one wave at the width the run would use (_onthreads.py).
  3. shipping (_shipping.py), if processes are still a possibility: a few items and results are
     pickled as workers get them.
A fixed sample size (`sample=N`) runs half of it on SCALING_THREADS threads, if that gives each
thread an item, and no canary.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from gearshift.auto._batch import (
    MAX_BATCH,
    WAVE_BELOW_SHARE,
    Ask,
    Limits,
    Phases,
    run_batch,
    scaling_share,
)
from gearshift.auto._batch import Record as Record  # where _shipping.py finds it
from gearshift.auto._canary import Canary, Queued
from gearshift.auto._onthreads import scaling
from gearshift.auto._take import Taker
from gearshift.machine import Mark, resident_bytes

# profile(): ~0.1 s of sample in all (with phase 2) keeps its figures steady (bench/auto.py).
SEQUENTIAL_SECONDS = 0.05
# map(strategy="auto"): enough to know an item's time and CPU share to a few percent; more only
# delays a parallel run (bench/auto.py, 60 SQLite queries of 2 ms: the whole job is 0.12 s).
MEASURE_SECONDS = 0.0005
# Batches double until one takes this long; then one batch makes up the rest of the budget.
STEADY_SECONDS = 1e-4
WAITING_SECONDS = 0.02  # profile(), once its items wait (bench/auto.py: 2 sleeps or GETs do)
# The canary's batch: it stops once its verdict is clear (_canary.MIN_SWITCHES of the items' CPU
# time: ~10 ms), and at the latest after this long (a starved thread gets little CPU under load).
CANARY_MAX_SECONDS = 1.0
CANARY_STEP_SECONDS = 0.002  # of items between looks at the canary (a look releases no GIL)
# At most this much work left, and serial whatever the GIL does: the sample runs it all in one
# batch (bench/auto.py, tiny x*x: the run's chunks cost ~30% more than one batch on 0.01 s).
FINISH_SECONDS = 0.1


def run_sample(
    fn: Callable[[Any], Any],
    iterator: Taker,
    limits: Limits,
    coroutine: bool,
    phases: Phases,
    ask: Ask | None = None,
) -> None:
    """Phases 1 and 2 over the next items of `iterator` (phase 0 may have run one: _watch.py)."""
    if coroutine:
        _coroutines(fn, iterator, limits.size, phases)
        return
    seconds = MEASURE_SECONDS if limits.watch else SEQUENTIAL_SECONDS
    _batches(fn, iterator, limits.size, phases, seconds)
    if phases.exhausted or not phases.measured:
        phases.shipping = phases.shipping and not limits.watch  # auto: nothing left to ship
        return
    own, cpu = phases.own()
    if limits.size is None and cpu >= WAVE_BELOW_SHARE * own:  # CPU-bound: does the GIL matter?
        held = free = None
        if ask is not None:
            held, free = ask(phases, False), ask(phases, True)
            phases.shipping = "processes" in (held, free)
            if held == free:
                if held == "serial":
                    _finish(fn, iterator, limits, phases, own)
                return
        # The canary first only where threads would cost something: on items that hold the
        # GIL they run at 1x, while processes would run at cores x. Where processes cannot pay
        # anyway, the threads run at 1x what serial would, or faster: they measure for free.
        if held != "serial" and _canary_batch(fn, iterator, phases):
            return
    scaling(fn, iterator, limits, phases)


def _batches(
    call: Callable[[Any], Any],
    iterator: Taker,
    size: int | None,
    phases: Phases,
    seconds: float,
) -> None:
    """Phase 1: batches of 1, 4, 16, ... items in this thread until they took `seconds`
    (waiting-bound ones: WAITING_SECONDS, if less), the warm-up item included, and at least one
    item past it was measured."""
    limit = sys.maxsize if size is None else size - scaling_share(size)
    batch, budget, mark, queued = 1, seconds, Mark(), Queued()
    rss: int | None = None
    try:
        while phases.count < limit:
            want = min(batch, limit - phases.count)
            items = iterator.take(want)
            if items:
                first = not phases.taken
                phases.taken.append(run_batch(call, items, queued))
                if first:  # the sample's first item is a warm-up (imports, cold caches)
                    rss = resident_bytes()  # its growth is not the items' (read once: no GIL)
                else:
                    phases.measured.append(phases.taken[-1])
            if len(items) < want:
                phases.exhausted = True
                break
            if not phases.measured:
                continue
            own, cpu = phases.own()
            if cpu < WAVE_BELOW_SHARE * own:
                budget = min(seconds, WAITING_SECONDS)
            if size is None and sum(b.wall for b in phases.taken) >= budget:
                break
            last = phases.taken[-1]
            if last.wall < STEADY_SECONDS:  # tiny batches grow fast: each costs ~10 us itself
                batch *= 4 if last.wall < STEADY_SECONDS / 10 else 2
            else:  # its time is known well enough: make up the rest of the budget at once
                spent = sum(b.wall for b in phases.taken)
                per_item = max(last.wall / len(last.items), 1e-9)
                batch = max(1, int(1.2 * (budget - spent) / per_item))
            batch = min(MAX_BATCH, batch)
    finally:
        queued.close()
    if not phases.measured:  # the warm-up item alone: better than nothing
        phases.measured = list(phases.taken)
    elif rss is not None and (now := resident_bytes()) is not None:  # it frees none: 0 at least
        phases.rss_per_item = max(0.0, (now - rss) / sum(len(b.items) for b in phases.measured))
    phases.stolen = mark.stolen(sum(b.cpu for b in phases.measured))


def _finish(
    call: Callable[[Any], Any], iterator: Taker, limits: Limits, phases: Phases, own: float
) -> None:
    """Serial whatever the GIL does, and little work left: the sample runs it, in one batch,
    rather than the run in chunks (a job too small to pay for a decision ends at the speed of
    its own sample)."""
    if limits.total is not None and (limits.total - phases.count) * own <= FINISH_SECONDS:
        items = iterator.take(limits.total - phases.count)
        if items:
            phases.taken.append(run_batch(call, items))
        phases.exhausted = True


def _canary_batch(call: Callable[[Any], Any], iterator: Taker, phases: Phases) -> bool:
    """Items run in this thread beside the canary until its verdict is clear; True if they hold
    the GIL (then phase 2 is not needed)."""
    own, _ = phases.own()
    step = max(1, min(MAX_BATCH, int(CANARY_STEP_SECONDS / own)))
    with Canary() as canary:
        end = time.perf_counter() + CANARY_MAX_SECONDS
        while not canary.clear() and time.perf_counter() < end:
            items = iterator.take(step)
            if items:
                phases.taken.append(run_batch(call, items))
            if len(items) < step:
                phases.exhausted = True
                break
    phases.gil_share = canary.share()
    return bool(canary.held())


def _coroutines(
    fn: Callable[[Any], Any], iterator: Taker, size: int | None, phases: Phases
) -> None:
    """Phase 1 for a coroutine function, each item awaited in a private event loop."""
    import asyncio

    from gearshift.errors import UsageError

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
        run = lambda x: loop.run_until_complete(fn(x))  # noqa: E731
        _batches(run, iterator, size, phases, SEQUENTIAL_SECONDS)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
