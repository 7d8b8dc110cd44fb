"""Ctrl-C held while a pool's own bookkeeping runs in the main thread, then raised at once.

A KeyboardInterrupt raised inside `ThreadPoolExecutor.submit` can leave its locks half released:
the press surfaced as `RuntimeError: release unlocked lock` (3-5 of 40 presses on 3.13) and the
caller of map never saw a KeyboardInterrupt. While a map call runs in the main thread and Python's
default handler is installed, one handler of ours replaces it: outside `CtrlCHeld` it raises
KeyboardInterrupt as the default does; inside, it notes the press, raised on leaving.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from queue import Empty, SimpleQueue
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")
WAKE_SECONDS = 0.1  # how late a Ctrl-C that a worker thread received may reach the main thread


class _State:
    users = 0  # map calls of the main thread running with the handler installed
    holding = 0  # how deep the main thread is in a pool's bookkeeping
    pressed = False


def _on_ctrl_c(signum: int, frame: FrameType | None) -> None:
    if not _State.holding:
        raise KeyboardInterrupt  # as Python's default handler does
    _State.pressed = True


def _in_main_thread() -> bool:
    return threading.get_ident() == threading.main_thread().ident


class CtrlCGuard:
    """`with CtrlCGuard():` around a map call: our handler is installed while it runs (in the main
    thread, and only in place of Python's default one, which it puts back)."""

    def __enter__(self) -> None:
        self.took = _in_main_thread() and (
            _State.users > 0 or signal.getsignal(signal.SIGINT) is signal.default_int_handler
        )
        if self.took:
            if _State.users == 0:
                signal.signal(signal.SIGINT, _on_ctrl_c)
            _State.users += 1

    def __exit__(self, *exc_info: Any) -> None:
        if self.took:
            _State.users -= 1
            if _State.users == 0 and signal.getsignal(signal.SIGINT) is _on_ctrl_c:
                with contextlib.suppress(ValueError):  # a generator closed by another thread
                    signal.signal(signal.SIGINT, signal.default_int_handler)


class CtrlCHeld:
    """`with CtrlCHeld():` a press inside is raised as KeyboardInterrupt on leaving (`hold=False`
    holds nothing: for code that runs the user's items, which Ctrl-C must stop)."""

    def __init__(self, hold: bool = True) -> None:
        self.held = hold and _State.users > 0 and _in_main_thread()

    def __enter__(self) -> None:
        if self.held:
            _State.holding += 1

    def __exit__(self, *exc_info: Any) -> None:
        if self.held:
            _State.holding -= 1
            if not _State.holding and _State.pressed:
                _State.pressed = False
                raise KeyboardInterrupt


def get_interruptibly(queue: SimpleQueue[T]) -> T:
    """`queue.get()`, waking every 0.1 s: the kernel may deliver Ctrl-C to a worker thread, and
    then only the main thread's next bytecode runs the handler; a wait that never woke would
    keep the press until some work ended (measured: 1-2 of 40 presses, 60-second items)."""
    while True:
        try:
            return queue.get(timeout=WAKE_SECONDS)
        except Empty:
            pass
