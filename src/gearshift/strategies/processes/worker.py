"""The worker side of gearshift's process pool: runs chunks sent over one duplex socket.

Loaded by file path (see `_launch`), not as a module of the gearshift package, so a worker starts
without importing gearshift, concurrent.futures, logging or typing: only what a task needs is
imported, when it needs it. It talks to its pool over the socket inherited as file descriptor FD,
with multiprocessing.connection's framing (a 4-byte length, or -1 and an 8-byte length):

    pool ── ("init", sys_path, initializer, log_levels, max_rss) ►  worker
         ── ("run", fn_key, fn_bytes | None, items_blob, report_each) ►
         ◄─ ("ready",) ───────────────────────────────────────────   initialized
         ◄─ ("started",) ─────────────────────────────────────────   a new fn loaded (timed runs)
         ◄─ ("done", values, seconds, errors, final) ─────────────   per item or per chunk
         ◄─ ("init_failed", error) / ("fail", error) ─────────────   the initializer / a chunk
         ◄─ ("log", record) ──────────────────────────────────────   a logging record, any time
         ◄─ ("over",) ────────────────────────────────────────────   past max_rss after an item
         ── ("stop",) ────────────────────────────────────────────►  flush and exit 0 at once

`seconds` is the compute time of the whole message (one timer per chunk, not per item). A reader
thread drains the socket into a local queue, so the pool never blocks sending, and ends the
process the moment the socket closes: a worker cannot outlive its pool, even mid-task.
With `max_rss` (max_memory_per_child, bytes) it reads its resident memory after each item; once
over, it reports what it ran, sends "over", runs nothing more and waits for "stop": the pool
gives what it had not run to other workers. How it forwards log records is in `_worker_logs.py`.
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

FN_CACHE_SIZE = 8  # functions a worker keeps unpickled, oldest evicted first
STOP = pickle.dumps(("stop",), protocol=5)
READY = pickle.dumps(("ready",), protocol=5)
STARTED = pickle.dumps(("started",), protocol=5)
OVER = pickle.dumps(("over",), protocol=5)
_SIZE, _BIG = Struct("!i"), Struct("!Q")


def _beside(filename: str) -> ModuleType:
    """A standard-library-only file beside this one, loaded by path as this one is (`_launch`)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), filename)
    module = type(sys)(f"gearshift_{filename[:-3].lstrip('_')}")
    module.__file__ = path
    with open(path, "rb") as source:
        exec(compile(source.read(), path, "exec"), module.__dict__)
    return module


_LOGS = _beside("_worker_logs.py")  # log forwarding; loaded once in a fork server


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

    def send(self, payload: bytes) -> None:
        n = len(payload)
        header = _SIZE.pack(n) if n <= 0x7FFFFFFF else _SIZE.pack(-1) + _BIG.pack(n)
        with self.lock:
            if n <= 65536:
                self._write(header + payload)
            else:  # no copy of a big result
                self._write(header)
                self._write(payload)

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
    that item's error (a TypeError saying so), not a lost chunk."""
    errors = {pos: portable(exc) for pos, exc in raised.items()}
    try:
        return dumps(("done", values, seconds, errors, *more))
    except Exception:
        pass
    values = list(values)
    for pos, value in enumerate(values):
        try:
            dumps(value)
        except Exception as exc:
            values[pos] = None
            problem = TypeError(f"the result could not be pickled: {type(exc).__name__}: {exc}")
            errors[pos] = portable(problem)
    return dumps(("done", values, seconds, errors, *more))


def run_items(
    fn: Callable[[Any], Any], items: Sequence[Any], catch: type[BaseException] = BaseException
) -> tuple[list[Any], float, dict[int, BaseException]]:
    """Run `fn` on each item, one timer for all; an exception of type `catch` is that item's
    error (here even SystemExit is). The items run in C (`list.extend(map(...))`, which keeps
    what it appended when `fn` raises): no Python line of ours runs per item, so a tiny item
    costs what it costs in `list(map(fn, items))`. PEP 479's wart applies: a StopIteration from
    `fn` reads to `map` as its end, so that item's error says so (its traceback is lost)."""
    values: list[Any] = []
    errors: dict[int, BaseException] = {}
    mapped = map(fn, items)
    start = perf_counter()
    while True:
        try:
            values.extend(mapped)
        except catch as exc:
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


def rss_reader() -> Callable[[], int]:
    """A function returning this process's resident memory in bytes, cheap enough for every item:
    /proc/self/statm through a descriptor kept open (Linux: one pread, bench/memory.py times
    it), else getrusage's peak RSS, which never falls. psutil would cost a worker its import."""
    try:
        fd = os.open("/proc/self/statm", os.O_RDONLY)
    except OSError:
        import resource

        unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, else KiB
        return lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit
    page = os.sysconf("SC_PAGE_SIZE")
    return lambda: int(os.pread(fd, 64, 0).split()[1]) * page


def run_capped(
    fn: Callable[[Any], Any], items: Sequence[Any], rss: Callable[[], int], limit: int
) -> tuple[list[Any], float, dict[int, BaseException], bool]:
    """`run_items`, reading `rss()` after each item (so in a Python loop: only where a limit is
    set); it stops after the first item that leaves this process over `limit` bytes, and then
    says so (True, last)."""
    values: list[Any] = []
    errors: dict[int, BaseException] = {}
    append = values.append
    start = perf_counter()
    for pos, item in enumerate(items):
        try:
            append(fn(item))
        except BaseException as exc:
            append(None)
            errors[pos] = exc
        if rss() > limit:
            return values, perf_counter() - start, errors, True
    return values, perf_counter() - start, errors, False


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
    pid = os.getpid()
    _, sys_path, initializer, log_levels, max_rss = pickle.loads(inbox.get())
    rss = None if max_rss is None else rss_reader()
    sys.path[:] = sys_path
    logs = _LOGS.Logs(lambda record: channel.send(dumps(("log", record))), log_levels)
    logs.install()
    if initializer is not None:
        try:
            init, initargs = pickle.loads(initializer)
            logs.install()
            init(*initargs)
        except BaseException as exc:
            channel.send(dumps(("init_failed", portable(exc))))
            _flush()
            os._exit(1)
    channel.send(READY)  # task deadlines start now, not while the interpreter was starting
    fns: dict[int, Callable[[Any], Any]] = {}
    while True:
        message = inbox.get()
        if message == STOP:
            _flush()
            os._exit(0)  # nothing to tear down: skip the interpreter's slow exit
        try:
            _, fn_key, fn_bytes, blob, report_each = pickle.loads(message)
            items = pickle.loads(blob)
            if fn_bytes is not None:
                if len(fns) >= FN_CACHE_SIZE:  # the pool mirrors this eviction exactly
                    fns.pop(next(iter(fns)))
                fns[fn_key] = pickle.loads(fn_bytes)
            fn = fns[fn_key]
        except Exception as exc:  # e.g. fn's module cannot be imported here
            channel.send(dumps(("fail", portable(exc))))
            continue
        if report_each and fn_bytes is not None:  # importing fn's module is not the item's time
            channel.send(STARTED)
        logs.install()
        groups = [[item] for item in items] if report_each else [items]
        for n, group in enumerate(groups, 1):
            over = False
            if rss is None:
                values, seconds, raised = run_items(fn, group)
            else:
                values, seconds, raised, over = run_capped(fn, group, rss, max_rss)
            if os.getpid() != pid:  # the task forked and this is the child: never talk to the pool
                os._exit(0)
            _flush()
            logs.install()
            channel.send(encode_done(values, seconds, raised, n == len(groups) or over))
            if over:  # past max_memory_per_child: the pool gives what is left to a fresh worker
                channel.send(OVER)
                while inbox.get() != STOP:  # what was sent meanwhile is requeued, not run
                    pass
                _flush()
                os._exit(0)


def main(argv: list[str]) -> None:
    """Entry point (see `_launch.BOOT`): FD, the worker's end of its socket."""
    serve(int(argv[0]))
