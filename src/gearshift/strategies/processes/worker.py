"""The worker side of gearshift's process pool: runs chunks sent over one duplex socket.

Loaded by file path (see `_launch`), not as a module of the gearshift package, so a worker starts
without importing gearshift, concurrent.futures, logging or typing: only what a task needs is
imported, when it needs it. It talks to its pool over the socket inherited as file descriptor FD,
with multiprocessing.connection's framing (a 4-byte length, or -1 and an 8-byte length):

    pool ── ("init", sys_path, initializer, log_levels) ─────────►  worker
         ── ("run", fn_key, fn_bytes | None, items_blob, report_each) ►
         ◄─ ("ready",) ───────────────────────────────────────────   initialized
         ◄─ ("started",) ─────────────────────────────────────────   a new fn loaded (timed runs)
         ◄─ ("done", values, seconds, errors, final) ─────────────   per item or per chunk
         ◄─ ("init_failed", error) / ("fail", error) ─────────────   the initializer / a chunk
         ◄─ ("log", record) ──────────────────────────────────────   a logging record, any time
         ── ("stop",) ────────────────────────────────────────────►  flush and exit 0 at once

`seconds` is the compute time of the whole message (one timer per chunk, not per item). A reader
thread drains the socket into a local queue, so the pool never blocks sending, and ends the
process the moment the socket closes: a worker cannot outlive its pool, even mid-task.
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
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any

FN_CACHE_SIZE = 8  # functions a worker keeps unpickled, oldest evicted first
STOP = pickle.dumps(("stop",), protocol=5)
READY = pickle.dumps(("ready",), protocol=5)
STARTED = pickle.dumps(("started",), protocol=5)
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


class _Logs:
    """Sends this worker's log records to the pool, whose own handlers then emit them.

    Installed the moment a task's code imports logging (an import hook waits for it), so
    workers never pay for logging they do not use, and not even a task's first record is lost.
    """

    def __init__(self, channel: Channel, levels: dict[str, int]) -> None:
        self.channel, self.levels, self.on = channel, levels, False

    def install(self) -> None:
        if self.on:
            return
        if "logging" not in sys.modules:
            if not any(isinstance(f, _AfterImport) for f in sys.meta_path):
                sys.meta_path.insert(0, _AfterImport("logging", self._forward))
            return
        self._forward(sys.modules["logging"])

    def _forward(self, logging: ModuleType) -> None:
        if self.on:
            return
        self.on = True
        channel = self.channel

        class Forward(logging.Handler):  # type: ignore[name-defined,misc]
            def emit(self, record: Any) -> None:  # as QueueHandler.prepare does
                try:
                    message = self.format(record)
                    record = logging.makeLogRecord(record.__dict__)
                    record.message = record.msg = message
                    record.args = record.exc_info = record.exc_text = record.stack_info = None
                    channel.send(dumps(("log", record)))
                except Exception:  # a record that cannot travel is lost, not the task
                    pass

        logging.getLogger().handlers = [Forward()]
        for name, level in self.levels.items():
            logging.getLogger(name or None).setLevel(level)


class _AfterImport:
    """A meta path finder that calls `then(module)` right after `name` is first imported (its
    real loader runs as usual). It stays in sys.meta_path, inert: removing it could make another
    thread's import, iterating that list, skip a finder."""

    def __init__(self, name: str, then: Callable[[ModuleType], None]) -> None:
        self.name, self.then, self.done = name, then, False

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if fullname != self.name or self.done:
            return None
        self.done = True
        for finder in sys.meta_path:
            find = None if finder is self else getattr(finder, "find_spec", None)
            spec: ModuleSpec | None = None if find is None else find(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _ThenLoader(spec.loader, self.then)  # type: ignore[assignment]
                return spec
        return None


class _ThenLoader:
    """The real loader, then `then(module)`; everything else is the real loader's."""

    def __init__(self, loader: Any, then: Callable[[ModuleType], None]) -> None:
        self.loader, self.then = loader, then

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        try:  # noqa: SIM105 - workers do not import contextlib
            self.then(module)
        except Exception:  # not forwarded: records go where logging sends them by default
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


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
    _, sys_path, initializer, log_levels = pickle.loads(inbox.get())
    sys.path[:] = sys_path
    logs = _Logs(channel, log_levels)
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
            values, seconds, raised = run_items(fn, group)
            if os.getpid() != pid:  # the task forked and this is the child: never talk to the pool
                os._exit(0)
            _flush()
            logs.install()
            channel.send(encode_done(values, seconds, raised, n == len(groups)))


def main(argv: list[str]) -> None:
    """Entry point (see `_launch.BOOT`): FD, the worker's end of its socket."""
    serve(int(argv[0]))
