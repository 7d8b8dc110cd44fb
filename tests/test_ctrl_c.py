"""Ctrl-C during a map: held while the pool's bookkeeping runs, never lost when a worker thread
is the one the kernel gives it to, and Python's own handler back once the map ends."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from queue import SimpleQueue

import pytest

import gearshift
from gearshift.strategies import CtrlCGuard, CtrlCHeld, get_interruptibly

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def handler_during(strategy: str) -> object:
    return gearshift.map(lambda _: signal.getsignal(signal.SIGINT), [0], strategy=strategy)[0]


def test_the_default_handler_is_back_after_a_map_and_a_programs_own_is_left_alone() -> None:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert handler_during("serial") is not signal.default_int_handler  # ours, while it runs
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    it = gearshift.imap(abs, range(-5, 5), strategy="threads")
    next(it)
    it.close()  # left early
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    def own(signum: int, frame: object) -> None:
        pass

    previous = signal.signal(signal.SIGINT, own)
    try:
        assert handler_during("serial") is own
        assert signal.getsignal(signal.SIGINT) is own
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_press_while_held_is_raised_on_leaving_and_at_once_outside() -> None:
    with CtrlCGuard():
        reached = []
        with pytest.raises(KeyboardInterrupt), CtrlCHeld():
            signal.raise_signal(signal.SIGINT)
            reached.append("the bookkeeping ended")
        assert reached == ["the bookkeeping ended"]
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # not held: as Python's own handler does
        with pytest.raises(KeyboardInterrupt), CtrlCHeld(hold=False):  # user's items: never held
            signal.raise_signal(signal.SIGINT)
            reached.append("not here")
    assert reached == ["the bookkeeping ended"]


def test_a_press_a_worker_thread_received_stops_the_main_threads_wait() -> None:
    queue: SimpleQueue[str] = SimpleQueue()
    fallback = threading.Timer(20, queue.put, ["the wait was never interrupted"])
    fallback.start()
    threading.Timer(0.2, lambda: signal.pthread_kill(threading.get_ident(), signal.SIGINT)).start()
    try:
        with pytest.raises(KeyboardInterrupt):
            get_interruptibly(queue)
    finally:
        fallback.cancel()


SCRIPT = """
import os, signal, sys, threading, time, gearshift
RELEASE = sys.argv[2]
def slow(x):  # item 0 is given the press (its thread's), as the kernel may do; both wait
    print(f"started {x}\\n", end="", flush=True)
    if x == 0:
        time.sleep(0.2)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not os.path.exists(RELEASE):
        time.sleep(0.01)
    return x
try:
    gearshift.map(slow, range(8), strategy=sys.argv[1], max_workers=2, chunksize=1)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


@pytest.mark.parametrize("strategy", ["threads", "auto"])
def test_ctrl_c_a_worker_thread_received_interrupts_the_map(tmp_path: Path, strategy: str) -> None:
    script, release = tmp_path / "script.py", tmp_path / "release"
    script.write_text(textwrap.dedent(SCRIPT))
    child = subprocess.Popen(
        [sys.executable, str(script), strategy, str(release)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    lines: SimpleQueue[str] = SimpleQueue()
    threading.Thread(target=lambda: [lines.put(line) for line in child.stdout], daemon=True).start()
    try:
        seen = [lines.get(timeout=30)]  # items would wait 60 s without the press
        while seen[-1] != "interrupted\n":  # auto's sample starts waiting items beside it
            seen.append(lines.get(timeout=30))
        assert strategy == "auto" or sorted(seen[:-1]) == ["started 0\n", "started 1\n"], seen
        release.touch()  # the running items end, then the program exits
        assert child.wait(30) == 130
    finally:
        release.touch()
        child.kill()
        child.wait()
        child.stdout.close()
