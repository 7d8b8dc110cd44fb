"""The worker side of gearshift's process pool: `python -m gearshift.strategies._worker FD`.

A fresh interpreter (your `__main__` is not re-imported) that talks to its pool over one duplex
pipe, inherited as file descriptor FD:

    pool ── ("init", sys_path, initializer, log_levels) ─────────►  worker
         ── ("run", fn_key, fn_bytes | None, items_blob, report_each) ►
         ◄─ ("ready",) ───────────────────────────────────────────   initialized
         ◄─ ("done", values, seconds, errors, final) ─────────────   per item or per chunk
         ◄─ ("fail", error) ──────────────────────────────────────   the chunk could not start
         ◄─ ("log", record) ──────────────────────────────────────   a logging record, any time
         ── ("stop",) ────────────────────────────────────────────►  exit 0

A reader thread drains the pipe into a local queue, so the pool never blocks sending, and ends
the process the moment the pipe closes: a worker cannot outlive its pool, even mid-task.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import pickle
import queue
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import cloudpickle

from gearshift.errors import RemoteError
from gearshift.outcome import ChunkResult, run_chunk

FN_CACHE_SIZE = 8  # functions a worker keeps unpickled, oldest evicted first
STOP = pickle.dumps(("stop",))
READY = pickle.dumps(("ready",))


def _read(conn: Connection, inbox: queue.SimpleQueue[bytes]) -> None:
    """Move messages from the pipe to `inbox`; exit the process when the pool goes away."""
    try:
        while True:
            inbox.put(conn.recv_bytes())
    except (EOFError, OSError):
        os._exit(0)


def _portable_error(exc: BaseException) -> tuple[BaseException, str]:
    """The exception (or a picklable stand-in) and its formatted traceback."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        pickle.loads(cloudpickle.dumps(exc))
    except Exception:
        exc = RemoteError(f"{type(exc).__module__}.{type(exc).__qualname__}", str(exc))
    return exc, text


def _encode(result: ChunkResult, final: bool) -> bytes:
    """Pickle a result; a value that cannot be pickled becomes that item's error, not a crash."""
    errors = {pos: _portable_error(exc) for pos, exc in result.errors.items()}
    try:
        return bytes(cloudpickle.dumps(("done", result.values, result.seconds, errors, final)))
    except Exception:
        pass
    values = list(result.values)
    for pos, value in enumerate(values):
        try:
            cloudpickle.dumps(value)
        except Exception as exc:
            values[pos] = None
            problem = TypeError(f"the result could not be pickled: {type(exc).__name__}: {exc}")
            errors[pos] = _portable_error(problem)
    return bytes(cloudpickle.dumps(("done", values, result.seconds, errors, final)))


class _Sender:
    """Sends on the pipe from any thread: results from the main one, log records from all."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def send(self, payload: bytes) -> None:
        with self.lock:
            self.conn.send_bytes(payload)

    def put_nowait(self, record: logging.LogRecord) -> None:  # the queue of a QueueHandler
        with contextlib.suppress(Exception):  # a record that cannot travel is lost, not the task
            self.send(cloudpickle.dumps(("log", record)))


def _forward_logging(sender: _Sender, levels: dict[str, int]) -> None:
    """Send this worker's log records to the pool, whose own handlers then emit them."""
    root = logging.getLogger()
    root.handlers = [logging.handlers.QueueHandler(sender)]  # type: ignore[arg-type]
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a task may have closed it
            pass


def serve(conn: Connection) -> int:
    """Run chunks from the pool until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the pool owner's to handle
    inbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    threading.Thread(target=_read, args=(conn, inbox), daemon=True).start()
    pid = os.getpid()
    sender = _Sender(conn)
    _, sys_path, initializer, log_levels = pickle.loads(inbox.get())
    sys.path[:] = sys_path
    _forward_logging(sender, log_levels)
    if initializer is not None:
        try:
            init, initargs = cloudpickle.loads(initializer)
            init(*initargs)
        except BaseException as exc:
            sender.send(cloudpickle.dumps(("init_failed", _portable_error(exc))))
            return 1
    sender.send(READY)  # task deadlines start now, not while the interpreter was starting
    fns: dict[int, Callable[[Any], Any]] = {}
    while True:
        message = inbox.get()
        if message == STOP:
            return 0
        try:
            _, fn_key, fn_bytes, blob, report_each = pickle.loads(message)
            items = pickle.loads(blob)
            if fn_bytes is not None:
                if len(fns) >= FN_CACHE_SIZE:  # the pool mirrors this eviction exactly
                    fns.pop(next(iter(fns)))
                fns[fn_key] = cloudpickle.loads(fn_bytes)
            fn = fns[fn_key]
        except Exception as exc:  # e.g. fn's module cannot be imported here
            sender.send(cloudpickle.dumps(("fail", _portable_error(exc))))
            continue
        groups = [[item] for item in items] if report_each else [items]
        for n, group in enumerate(groups, 1):
            result = run_chunk(fn, group, catch=BaseException)
            if os.getpid() != pid:  # the task forked and this is the child: never talk to the pool
                os._exit(0)
            _flush()
            sender.send(_encode(result, final=n == len(groups)))


def main() -> None:
    sys.exit(serve(Connection(int(sys.argv[1]))))


if __name__ == "__main__":
    main()
