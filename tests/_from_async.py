"""`gearshift.map` and `imap`, called from async code: through `amap` and `aimap` on an event loop.

The behaviour suite (test_api.py) runs each test both ways, with the same asserts: `FROM_ASYNC.map`
awaits `amap` in `asyncio.run`; `FROM_ASYNC.imap` steps `aimap`'s iterator on a loop of its own,
which runs while the test waits for the next result (as a task awaiting it would).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import gearshift
from gearshift.aio import AsyncMapIterator


class SteppedAimap(Iterator[Any]):
    """`aimap(fn, items, **options)` as a plain iterator: `next()` runs its loop until a result."""

    def __init__(self, fn: Callable[[Any], Any], items: Any, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()

        async def start() -> AsyncMapIterator:
            return gearshift.aimap(fn, items, **options)  # options are checked here, as imap does

        try:
            self._it = self._loop.run_until_complete(start())
        except BaseException:
            self._loop.close()
            raise

    def __next__(self) -> Any:
        if self._loop.is_closed():
            raise StopIteration
        try:
            return self._loop.run_until_complete(self._it.__anext__())
        except StopAsyncIteration:
            self.close()
            raise StopIteration from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if not self._loop.is_closed():
            try:
                self._loop.run_until_complete(self._it.aclose())
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            finally:
                self._loop.close()

    def statistics(self) -> gearshift.Statistics:
        return self._it.statistics()

    @property
    def choice(self) -> gearshift.Choice | None:
        return self._it.choice


def _amap(fn: Callable[[Any], Any], items: Any, **options: Any) -> list[Any]:
    return asyncio.run(gearshift.amap(fn, items, **options))


FROM_ASYNC = SimpleNamespace(map=_amap, imap=SteppedAimap)
FROM_SYNC = SimpleNamespace(map=gearshift.map, imap=gearshift.imap)
