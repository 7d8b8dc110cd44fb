"""Asyncio: coroutine functions on an event loop, `max_workers` of them in flight at once.

    gearshift.map(async_fn, items, strategy="asyncio")  ─► LoopExecutor with its own loop in a
        helper thread (`_loop_executor`); from async code, `gearshift.aimap` uses your loop

Chunks run their coroutines one after another inside one slot; `gearshift.map` keeps 2 x
`max_workers` chunks in flight and sizes them to ~20 ms, so I/O-bound coroutines travel one per
chunk and `max_workers` of them overlap. Plain functions are accepted too (in threads).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any

from gearshift.strategies._loop_executor import LoopExecutor
from gearshift.strategies.base import Initializer, Strategy

# In-flight coroutines when max_workers is not given: aiohttp's default connection limit
# (TCPConnector(limit=100)); bench/async.py measures the cost of the bound against gather.
DEFAULT_IN_FLIGHT = 100


class Asyncio(Strategy):
    """An event loop in a helper thread runs coroutine functions; `max_workers` = in flight.

    From async code use `gearshift.amap` / `gearshift.aimap`, which run on your own loop.
    """

    name = "asyncio"
    needs_pickling = False
    runs_coroutines = True

    def default_workers(self) -> int:
        return DEFAULT_IN_FLIGHT

    def executor(
        self, *, initializer: Initializer = None, initargs: tuple[Any, ...] = ()
    ) -> Executor:
        return LoopExecutor(self.workers, None, initializer, initargs)


class OnLoop(Asyncio):
    """The asyncio strategy on a loop already running in another thread: the caller's, for
    `gearshift.aimap` (whose helper thread drives the window while the loop runs the chunks)."""

    def __init__(self, max_workers: int | None, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(max_workers)
        self.loop = loop

    def executor(
        self, *, initializer: Initializer = None, initargs: tuple[Any, ...] = ()
    ) -> LoopExecutor:
        return LoopExecutor(self.workers, self.loop, initializer, initargs)
