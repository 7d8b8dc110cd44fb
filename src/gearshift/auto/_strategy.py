"""Auto: not a way to run work but a decision, made per map call by measuring a sample of it."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any

from gearshift import strategies
from gearshift.auto._batch import cores as machine_cores
from gearshift.auto._chooser import PROCESS_START_SECONDS, WAITING_BOUND_SHARE, Choice, choose
from gearshift.auto._memory import Hint, observed, recall, remember
from gearshift.auto._profiler import Profile, profile_sample
from gearshift.errors import ProfileError, UsageError
from gearshift.strategies import ChunkExecutor, Initializer, RecyclesWorkers, Strategy
from gearshift.units import seconds
from gearshift.values import ChunkResult


class Auto(RecyclesWorkers):
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

    def default_workers(self) -> int:
        return machine_cores()  # available_cores(), read at most once a second

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
    items: Sequence[Any] = field(default_factory=list)
    result: Future[ChunkResult] | None = None  # long items may still be running (_watch.py)
    remaining: int | None = None
    executor: Executor | None = None  # the pool the sample started, for the run to go on with


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
    cores = machine_cores()
    if total == 0:
        return _build(auto, Choice("serial", 1, 1, 1.0, "no items: nothing to run"), cores)
    if not in_process_sample:
        why = "an initializer or task_timeout is set: processes honour both without a sample"
        return _build(auto, Choice("processes", cores, 1, float("nan"), why), cores)

    hint = recall(fn, total, cores)
    if hint is not None and total is not None and (auto.max_workers or 2) >= 2:
        return _remembered(auto, fn, items, total, hint, cores)

    def left(prof: Profile) -> int | None:
        return None if total is None else total - prof.items_sampled

    def settled(prof: Profile) -> bool:
        """Long CPU-bound items still running look shorter than they are: while the choice is
        serial, what more of their time shows may still make processes pay for their start."""
        rest = left(prof)
        if prof.cpu_share < WAITING_BOUND_SHARE or (rest is not None and rest <= 1):
            return True
        return choose(prof, remaining=rest).strategy != "serial"

    try:
        sample = profile_sample(
            fn,
            items,
            total=total,
            max_threads=auto.max_workers,
            until=settled,
            choose=lambda prof: choose(prof, remaining=left(prof)).strategy,
        )
    except ProfileError:  # the input was empty
        return _build(auto, Choice("serial", 1, 1, 1.0, "no items: nothing to run"), cores)
    _refuse_awaitables(sample.outcome)
    remaining = None if total is None else total - len(sample.items)
    choice = choose(sample.profile, remaining=remaining)
    if remaining == 0 and len(sample.items) > 1:  # the sample was the run: say what it found
        whole = choose(sample.profile, remaining=len(sample.items))
        choice = replace(
            choice, why=f"all {len(sample.items)} items ran in the sample: {whole.why}"
        )
    remember(fn, sample.profile, choice)
    decision = _build(auto, choice, cores)
    return Decision(decision.strategy, decision.choice, sample.items, sample.outcome, remaining)


def _refuse_awaitables(outcome: Future[ChunkResult]) -> None:
    """A plain function that returns coroutines (`lambda url: fetch(url)`) would yield them
    unawaited: auto tells work for the event loop by `async def`, so say how to run it."""
    if not outcome.done() or outcome.exception() is not None:
        return
    result = outcome.result()
    first = next((v for pos, v in enumerate(result.values) if pos not in result.errors), None)
    if not inspect.isawaitable(first):  # one look: the sample may have run every item
        return
    for value in result.values:
        if inspect.iscoroutine(value):
            value.close()  # never started: closed, so Python does not warn it was never awaited
    raise UsageError(
        f"fn returned {type(first).__name__} objects but is not an async function, "
        "which is how strategy='auto' recognises work for the event loop: pass the async "
        "function itself (gearshift.map(fetch, urls), or a functools.partial of it), or run "
        "this one with strategy='asyncio'"
    )


def _remembered(
    auto: Auto, fn: Callable[[Any], Any], items: Iterator[Any], total: int, hint: Hint, cores: int
) -> Decision:
    """A remembered function's few long items (_memory.py): all of them at once in processes,
    one each, from the start; the sample is the run, inside the pool."""
    batch = list(islice(items, total))
    width = max(1, min(len(batch), auto.max_workers or len(batch)))
    work = len(batch) * hint.seconds
    predicted = work / (PROCESS_START_SECONDS + work * hint.cpu_share / min(cores, width))
    why = (
        f"remembered from the last call of {getattr(fn, '__qualname__', fn)}: "
        f"{seconds(hint.seconds)} per item, CPU-bound, holding the GIL -> processes x {width}, "
        f"one item each, all at once, predicted {predicted:.1f}x"
    )
    choice = Choice("processes", width, 1, round(predicted, 2), why)
    strategy = _build(auto, choice, cores).strategy
    pool = strategy.executor()
    assert isinstance(pool, ChunkExecutor)
    futures = [
        pool.submit_chunk(fn, [x], first_index=i, task_timeout=None) for i, x in enumerate(batch)
    ]
    outcome: Future[ChunkResult] = Future()
    pending, lock = [len(futures)], threading.Lock()

    def landed(_: Future[ChunkResult]) -> None:
        with lock:
            pending[0] -= 1
            if pending[0]:
                return
        try:
            parts = [future.result() for future in futures]
        except BaseException as exc:  # the pool broke: every item gets that error
            outcome.set_exception(exc)
            return
        result = ChunkResult([part.values[0] for part in parts], sum(p.seconds for p in parts))
        result.errors = {i: part.errors[0] for i, part in enumerate(parts) if 0 in part.errors}
        observed(fn, result.seconds, len(parts))
        outcome.set_result(result)

    for future in futures:
        future.add_done_callback(landed)
    return Decision(strategy, choice, batch, outcome, 0, pool)


def _build(auto: Auto, choice: Choice, cores: int) -> Decision:
    """The strategy `choice` names, as wide as it says (within `auto.max_workers`), configured."""
    if choice.strategy == "serial" and not auto.allow_serial:
        why = f"{choice.why}; not serial (allow_serial=False, as from async code): threads x 1"
        choice = replace(choice, strategy="threads", max_workers=1, why=why)
    cap = auto.max_workers or choice.max_workers
    width = max(1, min(choice.max_workers, cap))
    strategy: Strategy
    if choice.strategy == "processes":  # the pool (~0.1 s of imports) loads only when chosen
        blas = max(1, cores // width) if auto.limit_blas_threads else None
        strategy = strategies.Processes(width, blas_threads=blas).with_recycling(
            max_tasks_per_child=auto.max_tasks_per_child,
            max_memory_per_child=auto.max_memory_per_child,
        )
    elif choice.strategy == "threads" and choice.grow_to:
        strategy = strategies.Threads(width, grow_to=min(choice.grow_to, cap))
    else:
        strategy = strategies.resolve(choice.strategy, width)
    return Decision(strategy, choice)


def resolve(strategy: object, max_workers: int | None = None) -> Strategy:
    """A strategy from a name or an instance, "auto" included: `map`'s and `Executor`'s way."""
    if isinstance(strategy, str) and strategy == "auto":
        return Auto(max_workers)
    return strategies.resolve(strategy, max_workers)
