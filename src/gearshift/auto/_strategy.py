"""Auto: not a way to run work but a decision, made per map call by measuring a sample of it."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field, replace
from typing import Any

from gearshift import strategies
from gearshift.auto._chooser import WAITING_BOUND_SHARE, Choice, choose
from gearshift.auto._profiler import Profile, profile_sample
from gearshift.errors import ProfileError, UsageError
from gearshift.machine import available_cores
from gearshift.strategies import Initializer, Strategy, check_memory, check_workers
from gearshift.values import ChunkResult


class Auto(Strategy):
    """Measure the first items (`gearshift.profile`), then run the rest as `gearshift.choose` says.

    `max_workers` caps the width auto may choose. `limit_blas_threads` (default on) caps the
    BLAS/OpenMP threads of each process worker so processes x threads fit the cores. Auto sets
    no recycling limit itself; one given (`with_recycling`) applies if it chooses processes.
    `allow_serial=False` (`gearshift.aimap`'s): where serial would win, one worker thread runs
    the rest (threads x 1), so that the thread iterating stays free to hand results on.
    """

    name = "auto"
    needs_pickling = False
    runs_coroutines = True  # coroutine functions are routed to the asyncio strategy

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        limit_blas_threads: bool = True,
        allow_serial: bool = True,
    ) -> None:
        super().__init__(max_workers)
        self.limit_blas_threads = limit_blas_threads
        self.allow_serial = allow_serial
        self.max_tasks_per_child: int | None = None
        self.max_memory_per_child: int | None = None

    def with_recycling(
        self,
        *,
        max_tasks_per_child: int | None = None,
        max_memory_per_child: int | str | None = None,
    ) -> Auto:
        """A copy that gives these limits to the process workers, if it chooses processes
        (threads and serial run in your own process, which no limit recycles)."""
        clone = copy.copy(self)
        if max_tasks_per_child is not None:
            clone.max_tasks_per_child = check_workers(max_tasks_per_child, "max_tasks_per_child")
        if max_memory_per_child is not None:
            clone.max_memory_per_child = check_memory(max_memory_per_child)
        return clone

    def default_workers(self) -> int:
        return available_cores()

    def executor(
        self, *, initializer: Initializer = None, initargs: tuple[Any, ...] = ()
    ) -> Executor:
        raise UsageError(
            "strategy='auto' measures a map call to choose how to run it; an Executor needs a "
            "strategy fixed in advance: use strategy='processes' or 'threads', or "
            "gearshift.map(fn, items, strategy='auto')"
        )


@dataclass(frozen=True)
class Decision:
    """What auto decided for one map call, and the sample's items and results to yield first."""

    strategy: Strategy
    choice: Choice
    items: list[Any] = field(default_factory=list)
    result: Future[ChunkResult] | None = None  # long items may still be running (_watch.py)
    remaining: int | None = None


def decide(
    auto: Auto,
    fn: Callable[[Any], Any],
    items: Iterator[Any],
    total: int | None,
    *,
    in_process_sample: bool = True,
) -> Decision:
    """Sample the first items of `items` (advancing it), choose, and build the chosen strategy.

    Without `in_process_sample` (the work needs an initializer or a task timeout, which the
    in-process sample cannot honour) nothing is sampled and the work goes to processes.
    """
    cores = available_cores()
    if total == 0:
        return _build(auto, Choice("serial", 1, 1, 1.0, "no items: nothing to run"), cores)
    if not in_process_sample:
        why = "an initializer or task_timeout is set: processes honour both without a sample"
        return _build(auto, Choice("processes", cores, 1, float("nan"), why), cores)

    def settled(prof: Profile) -> bool:
        """Long CPU-bound items still running look shorter than they are: while the choice is
        serial, what more of their time shows may still make processes pay for their start."""
        left = None if total is None else total - prof.items_sampled
        if prof.cpu_share < WAITING_BOUND_SHARE or (left is not None and left <= 1):
            return True
        return choose(prof, remaining=left).strategy != "serial"

    try:
        sample = profile_sample(fn, items, total=total, max_threads=auto.max_workers, until=settled)
    except ProfileError:  # the input was empty
        return _build(auto, Choice("serial", 1, 1, 1.0, "no items: nothing to run"), cores)
    _refuse_awaitables(sample.outcome)
    remaining = None if total is None else total - len(sample.items)
    decision = _build(auto, choose(sample.profile, remaining=remaining), cores)
    return Decision(decision.strategy, decision.choice, sample.items, sample.outcome, remaining)


def _refuse_awaitables(outcome: Future[ChunkResult]) -> None:
    """A plain function that returns coroutines (`lambda url: fetch(url)`) would yield them
    unawaited: auto tells work for the event loop by `async def`, so say how to run it."""
    if not outcome.done() or outcome.exception() is not None:
        return
    result = outcome.result()
    awaitables = [v for pos, v in enumerate(result.values) if pos not in result.errors]
    if not awaitables or not inspect.isawaitable(awaitables[0]):
        return
    for value in awaitables:
        if inspect.iscoroutine(value):
            value.close()  # never started: closed, so Python does not warn it was never awaited
    raise UsageError(
        f"fn returned {type(awaitables[0]).__name__} objects but is not an async function, "
        "which is how strategy='auto' recognises work for the event loop: pass the async "
        "function itself (gearshift.map(fetch, urls), or a functools.partial of it), or run "
        "this one with strategy='asyncio'"
    )


def _build(auto: Auto, choice: Choice, cores: int) -> Decision:
    """The strategy `choice` names, as wide as it says (within `auto.max_workers`), configured."""
    from gearshift.strategies import Processes, Threads  # the pool loads only when chosen

    if choice.strategy == "serial" and not auto.allow_serial:
        why = f"{choice.why}; not serial (allow_serial=False, as from async code): threads x 1"
        choice = replace(choice, strategy="threads", max_workers=1, why=why)
    cap = auto.max_workers or choice.max_workers
    width = max(1, min(choice.max_workers, cap))
    strategy: Strategy
    if choice.strategy == "processes":
        blas = max(1, cores // width) if auto.limit_blas_threads else None
        strategy = Processes(width, blas_threads=blas).with_recycling(
            max_tasks_per_child=auto.max_tasks_per_child,
            max_memory_per_child=auto.max_memory_per_child,
        )
    elif choice.strategy == "threads" and choice.grow_to:
        strategy = Threads(width, grow_to=min(choice.grow_to, cap))
    else:
        strategy = strategies.resolve(choice.strategy, width)
    return Decision(strategy, choice)


def resolve(strategy: object, max_workers: int | None = None) -> Strategy:
    """A strategy from a name or an instance, "auto" included: `map`'s and `Executor`'s way."""
    if isinstance(strategy, str) and strategy == "auto":
        return Auto(max_workers)
    return strategies.resolve(strategy, max_workers)
