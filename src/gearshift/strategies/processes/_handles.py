"""The process pool's bookkeeping: jobs, the pieces they are cut into, and worker handles.

A job is one submission (a chunk of items, or one call) with the future that receives it; a
piece is a contiguous run of a job's positions as sent to one worker; a worker handle is the
worker process (a `_launch.Proc`), the pool's end of its socket, and the pieces it holds.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing.process
import os
import pickle
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from gearshift.errors import TaskErrorT, call_repr, item_error
from gearshift.strategies.processes._channel import Channel, Spare
from gearshift.strategies.processes._launch import Proc, start_worker
from gearshift.strategies.processes._received import IDLE_SECONDS
from gearshift.strategies.processes.worker import STOP
from gearshift.values import ChunkResult


@dataclass(frozen=True)
class Call:
    """`fn(*args, **kwargs)` as a one-argument callable, for `submit`."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def __call__(self, _: object) -> Any:
        return self.fn(*self.args, **self.kwargs)

    def __repr__(self) -> str:
        return call_repr(self.fn, self.args, self.kwargs)


@dataclass(eq=False)
class Job:
    """One submission: a chunk of items (or one call) and the future that receives its results."""

    future: Future[Any]
    fn_key: int | None  # None: a call, sent whole every time and never cached by a worker
    fn_bytes: bytes  # a call's big buffers (its arguments') apart, in fn_buffers
    items: list[Any]
    first_index: int | None  # None: a plain `submit` call, resolved with the value itself
    task_timeout: float | None
    label: str = ""  # a call's `fn(args)`, which names it in errors
    fn_buffers: list[Any] = field(default_factory=list)  # PickleBuffers of fn_bytes, apart
    result: ChunkResult = field(init=False)
    left: int = field(init=False)
    started: bool = False

    def __post_init__(self) -> None:
        n = len(self.items)
        self.result = ChunkResult([None] * n, 0.0, {})
        self.left = n

    def error_for(self, pos: int, cls: type[TaskErrorT], why: str, **kw: Any) -> TaskErrorT:
        if self.first_index is None:  # a call from submit: it has no index, its call names it
            return cls(f"the call {self.label} {why}", index=0, item=self.label, **kw)
        return item_error(cls, self.first_index + pos, self.items[pos], why, **kw)


@dataclass(eq=False)
class Piece:
    """A contiguous run of one job's positions, as sent to one worker."""

    job: Job
    start: int
    stop: int
    isolated: bool = False  # re-run alone after a death: a death now is this item's
    done: int = 0  # positions reported so far
    item_started: float = 0.0
    loading: bool = False  # its worker is loading a function new to it (importing its module)
    blob: bytes | None = None  # the pickled items, made once
    buffers: list[Any] = field(default_factory=list)  # their big buffers (PickleBuffers), apart

    @property
    def nbytes(self) -> int:
        """What sending it writes: its pickle and its buffers apart."""
        apart = sum(memoryview(buffer).nbytes for buffer in self.buffers)
        return len(self.blob or b"") + apart

    @property
    def exact(self) -> bool:  # results arrive per item, so the running item is known
        return self.isolated or self.job.task_timeout is not None


@dataclass(eq=False)
class WorkerHandle:
    proc: Proc
    conn: Channel
    budget: int | None  # items it may still run (max_tasks_per_child); 0: it retires (or has)
    started: float = field(default_factory=time.monotonic)  # when it was started
    ready: bool = False  # started and initialized: from now on its items' deadlines run
    pieces: deque[Piece] = field(default_factory=deque)
    fn_keys: dict[int, None] = field(default_factory=dict)
    fd: int = field(init=False)  # the socket's descriptor, known even once it is closed

    def __post_init__(self) -> None:
        self.fd = self.conn.fileno()

    @property
    def retiring(self) -> bool:
        return self.budget == 0


def log_levels() -> dict[str, int]:
    """The levels the pool's loggers are set to, so workers send only records that count."""
    levels = {"": logging.getLogger().getEffectiveLevel()}
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and logger.level:
            levels[name] = logger.level
    return levels


def worker_sys_path() -> list[str]:
    """This process's sys.path for a worker, plus where gearshift lives (its errors travel)."""
    root = os.path.abspath(__file__)  # .../ROOT/gearshift/strategies/processes/_handles.py
    for _ in range(4):
        root = os.path.dirname(root)
    return list(sys.path) if root in sys.path else [*sys.path, root]


def start(
    method: str,
    initializer: bytes | None,
    budget: int | None,
    extra_env: dict[str, str],
    by_value: bool,
    max_rss: int | None = None,
    zero_copy: tuple[int, str] | None = None,
    spares: Spares | None = None,
) -> WorkerHandle:
    """Start a worker and queue its init message (it reads it once it runs). `by_value`: the
    work is pickled by value (cloudpickle: the fork server preloads it). `max_rss`: the
    resident bytes past which it retires after an item (max_memory_per_child). `zero_copy`:
    the size from which buffers travel apart, and the name of the memfds that carry them."""
    by_value = by_value or b"cloudpickle" in (initializer or b"")
    proc, conn = start_worker(method, extra_env, ("cloudpickle",) if by_value else ())
    if zero_copy is not None:
        conn.spares, conn.name = spares, zero_copy[1]
    authkey = bytes(multiprocessing.process.current_process().authkey)  # for manager proxies
    init = ("init", worker_sys_path(), initializer, log_levels(), authkey, max_rss, zero_copy)
    conn.send(pickle.dumps(init))
    return WorkerHandle(proc, conn, budget)


def retire(worker: WorkerHandle) -> list[Piece]:
    """Recycle a worker: it is told to exit (and reaped once it has; the dispatcher starts a
    fresh one while work waits). Returns what it held unrun, as fresh pieces in order."""
    worker.budget = 0
    unrun = [
        Piece(p.job, p.start + p.done, p.stop, p.isolated)
        for p in worker.pieces
        if p.start + p.done < p.stop
    ]
    worker.pieces.clear()
    with contextlib.suppress(OSError):
        worker.conn.send(STOP)
    return unrun


def fail(pieces: Sequence[Piece], exc: BaseException | None) -> None:
    """Cancel (exc None) or fail the futures of these pieces' jobs."""
    for piece in pieces:
        future = piece.job.future
        if exc is None:
            future.cancel()
        elif not future.done():
            future.set_exception(exc)


def kill(worker: WorkerHandle) -> None:
    worker.proc.kill()


class Spares:
    """Memfds the workers gave back, kept to be refilled (the dispatcher's alone)."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.files: list[Spare] = []
        self.busy = 0.0  # when the pool last had work

    def take(self, mapped: list[int]) -> Spare | None:
        """A spare, one whose inode is in `mapped` (the worker maps it still) if any."""
        for at, spare in enumerate(self.files):
            if spare.inode in mapped:
                return self.files.pop(at)
        return self.files.pop() if self.files else None

    def give(self, spare: Spare) -> None:
        if len(self.files) < self.keep:
            self.files.append(spare)
        else:
            spare.close()

    def idle(self, idle: bool) -> None:
        """Free them once the pool has had no work for IDLE_SECONDS: a spare holds its pages."""
        now = time.monotonic()
        if not idle:
            self.busy = now
        elif now - self.busy >= IDLE_SECONDS:
            self.clear()

    def clear(self) -> None:
        while self.files:
            self.files.pop().close()
