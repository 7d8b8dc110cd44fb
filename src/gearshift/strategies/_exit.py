"""Python's exit waits for the calls executors were given, as it does for a ThreadPoolExecutor's.

    executor.__init__ ─► finish_at_exit(executor) ─► (weakly) remembered
    threading's exit hooks ─► ours: `exiting`; each remembered executor's `finish_at_exit()`
        ─► then the standard pools' hook (registered earlier, run later)

For executors whose threads or cluster Python would otherwise abandon at exit (gh-83386).
"""

from __future__ import annotations

import concurrent.futures.thread  # noqa: F401  its exit hook first, so that ours runs before it
import os
import threading
import weakref
from typing import Protocol


class Finishes(Protocol):
    def finish_at_exit(self) -> None:
        """Refuse new calls and wait for the submitted ones (unless given up on)."""


_live: weakref.WeakSet[Finishes] = weakref.WeakSet()
exiting = False  # set once Python's exit has begun: "cannot schedule new futures after ..."


def finish_at_exit(executor: Finishes) -> None:
    """Have Python's exit wait for `executor`'s submitted calls."""
    _live.add(executor)


def refused() -> str:
    """What a closed executor says to a submit, as the standard pools say it."""
    after = "interpreter shutdown" if exiting else "shutdown"
    return f"cannot schedule new futures after {after}"


def _at_exit() -> None:
    global exiting
    exiting = True
    for executor in list(_live):
        executor.finish_at_exit()


threading._register_atexit(_at_exit)  # type: ignore[attr-defined]
os.register_at_fork(after_in_child=_live.clear)  # a forked child has none of their threads
