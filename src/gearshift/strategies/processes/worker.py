"""The worker side of gearshift's process pool: runs chunks sent over one duplex socket.

Loaded by file path (see `_launch`), not as a module of the gearshift package, so a worker starts
without importing gearshift, concurrent.futures, logging or typing: only what a task needs is
imported, when it needs it. It talks to its pool over the socket inherited as file descriptor FD,
with multiprocessing.connection's framing (a 4-byte length, or -1 and an 8-byte length):

    pool ── ("init", sys_path, initializer, log_levels, authkey, max_rss) ►  worker
         ── ("run", fn_key | None, fn_bytes | None, items, report_each) ──►
         ◄─ ("ready",) ───────────────────────────────────────────────   initialized
         ◄─ ("started",) ─────────────────────────────────────────────   a new fn loaded (timed)
         ◄─ ("done", n, final) + ("done", values, seconds, errors) ───   per item or per chunk
         ◄─ ("init_failed",) + error / ("fail", what) + error ────────   initializer / a chunk
         ◄─ ("log",) + record ────────────────────────────────────────   a log record, any time
         ◄─ ("over",) ────────────────────────────────────────────────   past max_rss after an item
         ── ("stop",) ────────────────────────────────────────────────►  flush and exit 0

What the worker sends is a head, plain values that always unpickle, then in the same frame a
body pickled apart: a body the pool cannot unpickle (a class missing there, a `__reduce__` that
raises) fails only the n items the head names. `seconds` is the compute time of the whole
message (one timer per chunk, not per item). A call from `submit` comes with fn_key None and is
not cached: its arguments are freed once it has run. A reader thread drains the socket into a
local queue, so the pool never blocks sending, and ends the process the moment the socket
closes: a worker cannot outlive its pool, even mid-task. With `max_rss` (max_memory_per_child,
bytes) it reads its resident memory after each item; once over, it reports what it ran, sends
"over", runs nothing more and waits for "stop": the pool gives what it had not run to others.
"""

from __future__ import annotations

import _pickle as pickle  # the C pickler alone: pickle.py would import re and more
import _signal  # type: ignore[import-not-found]  # signal.py would import enum
import os
import sys
import threading
from _queue import SimpleQueue
from struct import Struct
from time import perf_counter

TYPE_CHECKING = False  # typing itself is not imported: a worker pays for what it uses
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import ModuleType
    from typing import Any

    Keep = Callable[[BaseException], bool]  # which exceptions fail only their item

FN_CACHE_SIZE = 8  # functions a worker keeps unpickled, oldest evicted first
STOP = pickle.dumps(("stop",), protocol=5)
READY = pickle.dumps(("ready",), protocol=5)
STARTED = pickle.dumps(("started",), protocol=5)
LOG, INIT_FAILED = pickle.dumps(("log",), protocol=5), pickle.dumps(("init_failed",), protocol=5)
OVER = pickle.dumps(("over",), protocol=5)
_SIZE, _BIG = Struct("!i"), Struct("!Q")


class Channel:
    """Length-prefixed messages over a socket's file descriptor; `send` is thread-safe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lock = threading.Lock()

    def recv(self) -> bytearray:
        (size,) = _SIZE.unpack(self._exactly(4))
        if size == -1:
            (size,) = _BIG.unpack(self._exactly(8))
        return self._exactly(size)

    def _exactly(self, n: int) -> bytearray:
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            read = os.readv(self.fd, [view[got:]])
            if not read:
                raise EOFError
            got += read
        return buf

    def send(self, head: bytes, body: bytes = b"") -> None:
        """One message: `head`, then `body` (see the module docstring)."""
        n = len(head) + len(body)
        header = _SIZE.pack(n) if n <= 0x7FFFFFFF else _SIZE.pack(-1) + _BIG.pack(n)
        with self.lock:
            if n <= 65536:
                self._write(header + head + body)
            else:  # no copy of a big result
                self._write(header + head)
                self._write(body)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]


def _read(channel: Channel, inbox: SimpleQueue[bytearray]) -> None:
    """Move messages from the socket to `inbox`; exit the process when the pool goes away."""
    try:
        while True:
            inbox.put(channel.recv())
    except (EOFError, OSError):
        os._exit(0)


def dumps(obj: object) -> bytes:
    """Pickle with the standard library; cloudpickle (imported only then) for what it cannot."""
    try:
        return pickle.dumps(obj, protocol=5)
    except Exception:
        import cloudpickle

        return bytes(cloudpickle.dumps(obj))


def portable(exc: BaseException) -> tuple[BaseException, str]:
    """The exception (or a `RemoteError` standing in for one that cannot be pickled) and its
    formatted traceback: how every remote side (process worker, Dask, Lithops) sends an error."""
    import traceback

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        pickle.loads(dumps(exc))
    except Exception:
        from gearshift.errors import RemoteError

        exc = RemoteError(f"{type(exc).__module__}.{type(exc).__qualname__}", str(exc))
    return exc, text


def encode_done(
    values: list[Any], seconds: object, raised: dict[int, BaseException], *more: object
) -> bytes:
    """("done", values, seconds, errors, *more) pickled; a value that cannot be pickled becomes
    that item's error, not a lost chunk: a `PicklingFailed` saying so, or what its `__reduce__`
    raised if that was no Exception (sys.exit()), as in the standard pool."""
    errors = {pos: portable(exc) for pos, exc in raised.items()}
    try:
        return dumps(("done", values, seconds, errors, *more))
    except BaseException:  # found item by item below
        pass
    values = list(values)
    for pos, value in enumerate(values):
        try:
            dumps(value)
        except BaseException as exc:
            values[pos] = None
            errors[pos] = portable(_not_picklable(exc) if isinstance(exc, Exception) else exc)
    return dumps(("done", values, seconds, errors, *more))


def _not_picklable(exc: Exception) -> BaseException:
    from gearshift.errors import PicklingFailed

    problem = PicklingFailed(
        f"the result could not be pickled to send it back ({type(exc).__name__}: {exc}): "
        "return data that pickle can carry, or use strategy='threads'"
    )
    problem.__cause__ = exc
    return problem


def run_items(
    fn: Callable[[Any], Any], items: Sequence[Any], keep: Keep | None = None
) -> tuple[list[Any], float, dict[int, BaseException]]:
    """Run `fn` on each item, one timer for all; an exception is that item's error if `keep` is
    None (here even SystemExit is) or `keep(exc)`, else it propagates. The items run in C
    (`list.extend(map(...))`, which keeps what it appended when `fn` raises): no Python line of
    ours runs per item, so a tiny item costs what it costs in `list(map(fn, items))`. PEP 479's
    wart applies: a StopIteration from `fn` reads to `map` as its end, so that item's error says
    so (its traceback is lost)."""
    values: list[Any] = []
    errors: dict[int, BaseException] = {}
    mapped = map(fn, items)
    start = perf_counter()
    while True:
        try:
            values.extend(mapped)
        except BaseException as exc:
            if keep is not None and not keep(exc):
                raise
            errors[len(values)] = exc
            values.append(None)
            continue
        if len(values) >= len(items):
            return values, perf_counter() - start, errors
        errors[len(values)] = RuntimeError(_STOP_ITERATION)
        values.append(None)


_STOP_ITERATION = (
    "fn raised StopIteration, which ends the loop that runs items, so its traceback is lost: "
    "raise another exception in fn (e.g. catch StopIteration around next() and raise ValueError)"
)


def beside(filename: str) -> ModuleType:
    """A standard-library-only file beside this one (`_hooks.py`, `_capped.py`), loaded by path
    as this one is, once per process (a fork server loads them before it forks)."""
    module = _beside.get(filename)
    if module is None:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), filename)
        module = _beside[filename] = type(sys)(f"gearshift_worker_{filename[1:-3]}")
        module.__file__ = path
        with open(path, "rb") as source:
            exec(compile(source.read(), path, "exec"), module.__dict__)
    return module


_beside: dict[str, ModuleType] = {}


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a task may have closed it
            pass


def _line_buffered() -> None:
    """Each line a task prints leaves at once: a task that then hangs or dies loses none."""
    try:  # noqa: SIM105 - workers do not import contextlib
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    except (AttributeError, OSError, ValueError):  # replaced or closed: leave it be
        pass


def serve(fd: int) -> None:
    """Run chunks from the pool until told to stop; never returns."""
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)  # Ctrl-C is the pool owner's to handle
    _line_buffered()
    channel = Channel(fd)
    inbox: SimpleQueue[bytearray] = SimpleQueue()
    threading.Thread(target=_read, args=(channel, inbox), daemon=True).start()
    _, sys_path, initializer, log_levels, authkey, max_rss = pickle.loads(inbox.get())
    cap = None if max_rss is None else (beside("_capped.py").rss_reader(), max_rss)
    sys.path[:] = sys_path
    # The pool's multiprocessing authkey, so that manager proxies passed to tasks can connect.
    hooks = beside("_hooks.py")
    hooks.after_import("multiprocessing.process", lambda mp: _set_authkey(mp, authkey))
    logs = hooks.Logs(lambda record: channel.send(LOG, dumps(record)), log_levels)
    logs.install()
    if initializer is not None:
        try:
            init, initargs = pickle.loads(initializer)
            logs.install()
            init(*initargs)
        except BaseException as exc:
            channel.send(INIT_FAILED, dumps(portable(exc)))
            _flush()
            os._exit(1)
    channel.send(READY)  # task deadlines start now, not while the interpreter was starting
    fns: dict[int, Callable[[Any], Any]] = {}
    while True:
        if _run(channel, inbox.get(), fns, logs, cap):  # past max_memory_per_child
            channel.send(OVER)  # the pool gives what was sent meanwhile to a fresh worker
            while inbox.get() != STOP:
                pass
            _flush()
            os._exit(0)


def _run(
    channel: Channel,
    message: bytearray,
    fns: dict[int, Any],
    logs: Any,
    cap: tuple[Callable[[], int], int] | None,
) -> bool:
    """Run one chunk and send its outcomes, or stop; True once this worker is over its memory
    `cap` (it then ran nothing after the item that took it over). Only this call's frame refers
    to a call's arguments and results, so they are freed (proxies released) once it returns."""
    if message == STOP:
        _flush()
        os._exit(0)  # nothing to tear down: skip the interpreter's slow exit
    what = "fn"
    try:
        _, fn_key, fn_bytes, blob, report_each = pickle.loads(message)
        fn = fns[fn_key] if fn_bytes is None else pickle.loads(fn_bytes)
        if fn_key is not None and fn_bytes is not None:  # a call (no key) is not kept
            if len(fns) >= FN_CACHE_SIZE:  # the pool mirrors this eviction exactly
                fns.pop(next(iter(fns)))
            fns[fn_key] = fn
        what = "the items"
        items = pickle.loads(blob)
    except BaseException as exc:  # fn's module cannot be imported here, a sys.exit()...
        channel.send(dumps(("fail", what)), dumps(portable(exc)))
        return False
    if report_each and fn_bytes is not None:  # importing fn's module is not the item's time
        channel.send(STARTED)
    logs.install()
    pid = os.getpid()
    groups = [[item] for item in items] if report_each else [items]
    for n, group in enumerate(groups, 1):
        over = False
        if cap is None:
            values, seconds, raised = run_items(fn, group)
        else:
            values, seconds, raised, over = beside("_capped.py").run_capped(fn, group, *cap)
        if os.getpid() != pid:  # the task forked and this is the child: never talk to the pool
            os._exit(0)
        _flush()
        logs.install()
        head = dumps(("done", len(values), n == len(groups) or over))
        channel.send(head, encode_done(values, seconds, raised))
        if over:
            return True
    return False


def _set_authkey(mp_process: ModuleType, authkey: bytes) -> None:
    mp_process.current_process().authkey = authkey


def main(argv: list[str]) -> None:
    """Entry point (see `_launch.BOOT`): FD, the worker's end of its socket."""
    serve(int(argv[0]))
