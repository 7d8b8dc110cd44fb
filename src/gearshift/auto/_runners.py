"""The threads long items run on while the sample watches them (_watch.py): one `Runner` per item,
its CPU clock and its time lost to load readable from outside, and the `Watch` that holds them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from gearshift.auto._batch import WAVE_BELOW_SHARE, Batch, Record
from gearshift.auto._canary import Queued
from gearshift.machine import Mark
from gearshift.values import ChunkResult


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

    def queued(self) -> float:
        """Seconds of its time so far spent queued for a busy CPU, or, on a virtual machine,
        stolen while it ran (since the items were found long)."""
        end = self._queued1 if self.record is not None or self._queued is None else self._queued()
        steal = self._watch.steal
        return max(0.0, end - self._queued0) + (steal.stolen(self.cpu()) if steal else 0.0)

    def lost(self) -> float:
        """Seconds of its time so far that load took (`machine`): `queued()`, and time blocked
        for the GIL while the watching thread, handed it, sat queued for a CPU (each time it
        wakes; at most the item's time neither on CPU nor queued)."""
        queued = self.queued()
        caller = (
            self._caller1 if self.record is not None else self._watch.caller()
        ) - self._caller0
        return queued + min(max(0.0, self.wall() - self.cpu() - queued), max(0.0, caller))


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

    def errors(self) -> int:
        """How many of the items that ended raised."""
        return sum(r.record is not None and r.record.error is not None for r in self.runners)

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
