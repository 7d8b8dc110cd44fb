"""The bounded window `imap` runs on: one set of semantics over every strategy, on `submit_chunk`.

    items ──(lazy, in chunks)──► window of in-flight chunks ──► strategy's executor
      ▲ pulled only when the window has room          │
      └──────────── results in order, or as completed ◄┘  (failed items retried, errors named)

Memory stays bounded: at most `2 x workers` chunks run at once and, in order, at most
`4 x workers` chunks wait to be yielded. Chunk sizes adapt to measured durations (`chunking`).
strategy="auto" samples the first items and chooses (`gearshift.auto.decide`) before the rest run.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from itertools import chain, islice
from queue import SimpleQueue
from time import perf_counter
from typing import Any

from gearshift._progress import Progress
from gearshift.auto import Auto, Choice, decide
from gearshift.chunking import ChunkSizer
from gearshift.errors import TaskError, TaskFailed, UsageError, breaks_pool, item_error
from gearshift.strategies import CtrlCGuard, CtrlCHeld, Ramp, Strategy, get_interruptibly
from gearshift.values import ChunkResult, Statistics

IN_FLIGHT_PER_WORKER = 2  # chunks submitted per worker: one running, one ready behind it
AHEAD_PER_WORKER = 4  # ordered mode: chunks finished or running ahead of the next to yield
_WAKE: Future[ChunkResult] = Future()  # put by `interrupt` to wake the window


@dataclass
class Options:
    chunksize: int | None
    ordered: bool
    task_timeout: float | None
    retries: int
    retry_on: tuple[type[BaseException], ...]
    return_exceptions: bool
    progress: bool
    initializer: Callable[..., object] | None
    initargs: tuple[Any, ...]


@dataclass(eq=False)
class _Chunk:
    """A contiguous slice of the input; `open` counts items without a final outcome yet."""

    start: int
    items: Sequence[Any]
    values: list[Any] = field(default_factory=list)
    attempts: dict[int, int] = field(default_factory=dict)
    open: int = 0

    def __post_init__(self) -> None:  # `values` is filled in by _absorb: the results' own list
        self.open = len(self.items)


class MapIterator(Iterator[Any]):
    """The iterator `imap` returns; `statistics()` tells what happened so far."""

    def __init__(
        self,
        fn: Callable[[Any], Any],
        items: Iterator[Any],
        total: int | None,
        strategy: Strategy,
        options: Options,
    ) -> None:
        self._fn, self._items, self._total = fn, items, total
        self._strategy, self._opts = strategy, options
        self._sizer = ChunkSizer(
            options.chunksize, strategy.workers, total, target=strategy.target_chunk_seconds
        )
        self._executor: Executor | None = None
        self._ramp: Ramp | None = None  # a thread pool's width, grown while throughput rises
        self.choice: Choice | None = None  # what strategy="auto" chose, and why
        self._counts = dict.fromkeys(
            ["tasks_submitted", "tasks_done", "tasks_failed", "tasks_retried"], 0
        )
        self._gen = self._generate()
        self._flat = chain.from_iterable(self._gen)  # chunks' values, flattened in C
        self._completed: SimpleQueue[Future[ChunkResult]] = SimpleQueue()  # cheaper than wait()
        self._interrupt: BaseException | None = None  # raised where the window waits

    def __iter__(self) -> Iterator[Any]:
        return self._flat

    def __next__(self) -> Any:
        return next(self._flat)

    def close(self) -> None:
        """Stop early: cancel what is queued, stop the workers."""
        self._gen.close()

    def batches(self) -> Iterator[list[Any]]:
        """The results a chunk at a time, as lists (`gearshift.aimap` posts each to its loop)."""
        return self._gen

    def interrupt(self, error: BaseException) -> None:
        """Stop from another thread, as Ctrl-C stops `map`: the iterating thread raises `error`
        where it next waits for a chunk (at once if it waits now), and the workers stop."""
        self._interrupt = error
        self._completed.put(_WAKE)

    @property
    def strategy(self) -> Strategy:
        """The strategy running the work (after auto has chosen, the chosen one)."""
        return self._strategy

    def statistics(self) -> Statistics:
        pool = getattr(self._executor, "statistics", None)
        workers = pool() if pool is not None else Statistics()
        return Statistics(
            workers_started=workers.workers_started,
            workers_lost=workers.workers_lost,
            workers_recycled=workers.workers_recycled,
            chunksize=self._sizer.size,
            width=self._ramp.width if self._ramp else self._strategy.workers,
            **self._counts,
        )

    def _generate(self) -> Generator[list[Any], None, None]:
        opts = self._opts
        primed = self._decide() if isinstance(self._strategy, Auto) else None
        if self._interrupt is not None:  # during auto's sample: start no workers
            raise self._interrupt
        if self._executor is None:  # auto's sample may have started the pool already
            self._executor = self._strategy.executor(
                initializer=opts.initializer, initargs=opts.initargs
            )
        progress, finished = Progress(self._total, opts.progress), False
        try:
            with CtrlCGuard():
                yield from self._drive(self._executor, progress, primed)
            finished = True
        finally:
            progress.close()
            if finished:
                self._executor.shutdown(wait=True)
            else:
                self._strategy.abort(self._executor)

    def _decide(self) -> tuple[_Chunk, Future[ChunkResult]] | None:
        """strategy="auto": sample, choose, and return the sample as a chunk already done."""
        assert isinstance(self._strategy, Auto)
        opts = self._opts
        sampled = opts.initializer is None and opts.task_timeout is None
        decision = decide(
            self._strategy, self._fn, self._items, self._total, in_process_sample=sampled
        )
        self.choice, self._strategy = decision.choice, decision.strategy
        self._executor = decision.executor
        self._counts["tasks_submitted"] += len(decision.items)
        self._sizer = ChunkSizer(
            opts.chunksize,
            self._strategy.workers,
            decision.remaining,
            start=decision.choice.chunksize,
            target=self._strategy.target_chunk_seconds,
        )
        if decision.result is None:
            return None
        return _Chunk(0, decision.items), decision.result

    def _drive(
        self,
        executor: Executor,
        progress: Progress,
        primed: tuple[_Chunk, Future[ChunkResult]] | None,
    ) -> Iterator[list[Any]]:
        """Yields lists of results: a chunk's values in order, or those final as completed."""
        opts, workers = self._opts, self._strategy.workers
        ramp = self._ramp = self._strategy.ramp(executor)
        # future -> its chunk, the positions it runs, the ramp's epoch and the time it was sent
        pending: dict[Future[ChunkResult], tuple[_Chunk, Sequence[int], int, float]] = {}
        retry: deque[tuple[_Chunk, int]] = deque()
        waiting: deque[_Chunk] = deque()  # ordered mode: chunks not yet yielded, in input order
        completed = self._completed

        def track(
            future: Future[ChunkResult], chunk: _Chunk, at: Sequence[int], judged: bool = True
        ) -> None:  # judged: its items' times tell the ramp how well its width did
            epoch = ramp.epoch if ramp and judged else -1
            pending[future] = (chunk, at, epoch, perf_counter())
            future.add_done_callback(completed.put)

        next_index, exhausted = 0, False
        if primed is not None:  # auto's sample: its results enter as a chunk (long items running)
            chunk, measured = primed
            next_index = len(chunk.items)
            track(measured, chunk, range(next_index), judged=False)
            if opts.ordered:
                waiting.append(chunk)
        while True:
            width = ramp.width if ramp else workers
            while retry and len(pending) < IN_FLIGHT_PER_WORKER * width:
                chunk, pos = retry.popleft()
                track(self._submit(executor, chunk, [pos]), chunk, [pos])
            while (
                not exhausted
                and len(pending) < IN_FLIGHT_PER_WORKER * width
                and len(waiting) < AHEAD_PER_WORKER * width
            ):
                size = self._sizer.next()
                batch = list(islice(self._items, size))
                exhausted = len(batch) < size
                if not batch:
                    break
                chunk = _Chunk(next_index, batch)
                next_index += len(batch)
                positions: Sequence[int] = range(len(batch))  # a range: no per-item cost
                track(self._submit(executor, chunk, positions), chunk, positions)
                if opts.ordered:
                    waiting.append(chunk)
            while waiting and not waiting[0].open:
                yield waiting.popleft().values
            if not pending:
                if exhausted and not retry and not waiting:
                    return
                continue
            done = [get_interruptibly(completed)]  # until a chunk completes, or Ctrl-C
            while not completed.empty():
                done.append(completed.get_nowait())
            if self._interrupt is not None:
                raise self._interrupt
            for future in done:
                chunk, positions, epoch, sent = pending.pop(future)
                finals = self._absorb(chunk, positions, future, retry)
                if ramp is not None:  # it widens the pool while throughput rises
                    ramp.record(epoch, len(positions), perf_counter() - sent)
                progress.advance(len(finals))
                if not opts.ordered:
                    yield [chunk.values[pos] for pos in finals]

    def _submit(
        self, executor: Executor, chunk: _Chunk, positions: Sequence[int]
    ) -> Future[ChunkResult]:
        items = (
            chunk.items
            if len(positions) == len(chunk.items)
            else [chunk.items[p] for p in positions]
        )
        self._counts["tasks_submitted"] += len(items)
        try:  # Ctrl-C waits for the pool's bookkeeping to end (not for items: serial runs them)
            with CtrlCHeld(hold=not self._strategy.submit_runs_items):
                return self._strategy.submit_chunk(
                    executor,
                    self._fn,
                    items,
                    first_index=chunk.start + positions[0],
                    task_timeout=self._opts.task_timeout,
                )
        except Exception as exc:
            if self._strategy.needs_pickling and "pickl" in f"{type(exc).__name__} {exc}".lower():
                raise UsageError(
                    f"fn {getattr(self._fn, '__name__', self._fn)!r} could not be pickled for "
                    f"strategy {self._strategy.name!r} ({type(exc).__name__}: {exc}): define it at "
                    "module level, or use strategy='threads'"
                ) from exc
            raise

    def _absorb(
        self,
        chunk: _Chunk,
        positions: Sequence[int],
        future: Future[ChunkResult],
        retry: deque[tuple[_Chunk, int]],
    ) -> Sequence[int]:
        """Take a finished chunk's results; returns the positions whose outcome is now final."""
        try:
            result = future.result()
        except Exception as exc:  # the chunk as a whole failed: every item gets that error
            if breaks_pool(exc):  # no item's fault: the pool cannot run anything any more
                raise
            n = len(positions)
            result = ChunkResult([None] * n, 0.0, dict.fromkeys(range(n), exc))
        self._sizer.observe(len(positions), result.seconds)
        if not result.errors and len(positions) == len(chunk.items):  # the fast path
            chunk.values, chunk.open = result.values, 0
            self._counts["tasks_done"] += len(positions)
            return positions
        finals = []
        if len(chunk.values) != len(chunk.items):  # the first results with errors or retries
            chunk.values = [None] * len(chunk.items)
        for offset, pos in enumerate(positions):
            error = result.errors.get(offset)
            if error is None:
                chunk.values[pos] = result.values[offset]
            else:
                attempts = chunk.attempts.get(pos, 1)
                if attempts <= self._opts.retries and isinstance(error, self._opts.retry_on):
                    chunk.attempts[pos] = attempts + 1
                    self._counts["tasks_retried"] += 1
                    retry.append((chunk, pos))
                    continue
                task_error = _task_error(error, chunk.start + pos, chunk.items[pos], attempts)
                self._counts["tasks_failed"] += 1
                if not self._opts.return_exceptions:
                    raise task_error
                chunk.values[pos] = task_error
            chunk.open -= 1
            self._counts["tasks_done"] += 1
            finals.append(pos)
        return finals


def _task_error(error: BaseException, index: int, item: Any, attempts: int) -> TaskError:
    """The error that names the item: the pool's own `TaskError`, or `TaskFailed` from `error`."""
    task_error = error if isinstance(error, TaskError) else None
    if task_error is None:
        notes = "".join(f"\n{note}" for note in getattr(error, "__notes__", ()))
        why = f"raised {type(error).__name__}: {error}{notes}"
        task_error = item_error(TaskFailed, index, item, why)
        task_error.__cause__ = error
    task_error.attempts = attempts
    return task_error
