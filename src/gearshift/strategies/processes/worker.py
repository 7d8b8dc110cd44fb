"""The worker side of gearshift's process pool: runs chunks sent over one duplex socket.

Loaded by file path (see `_launch`), not as a module of the gearshift package, so a worker starts
without importing gearshift, concurrent.futures, logging or typing: only what a task needs is
imported, when it needs it. It talks to its pool over the socket inherited as file descriptor FD,
in frames whose big buffers travel beside them in memfds (`_channel`):

    pool ── ("init", sys_path, initializer, log_levels, authkey, max_rss, zero_copy) ► worker
         ── ("run", fn_key | None, fn_bytes | None, items, report_each) + buffers ──►
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
not cached: its arguments are freed once it has run. Buffers of `zero_copy`'s threshold or more
(numpy arrays, big bytes: `_apart`) travel out of band, both ways: a worker's inputs are
read-only views of a memfd it gives back with the run's last reply once nothing maps it. A
reader thread drains the socket into a local queue, so the pool never blocks sending, and ends
the process the moment the socket closes: a worker cannot outlive its pool, even mid-task. With
`max_rss` (max_memory_per_child, bytes) it reads its resident memory after each item; once over,
it reports what it ran, sends "over", runs nothing more and waits for "stop": the pool gives
what it had not run to others.
"""

from __future__ import annotations

import _pickle as pickle  # the C pickler alone: pickle.py would import re and more
import _signal  # type: ignore[import-not-found]  # signal.py would import enum
import os
import sys
from time import perf_counter

TYPE_CHECKING = False  # typing itself is not imported: a worker pays for what it uses
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pickle import PickleBuffer
    from types import ModuleType
    from typing import Any

    from gearshift.strategies.processes._channel import Channel
    from gearshift.strategies.processes._received import Message

    Pack = Callable[[object], tuple[bytes, list[PickleBuffer]]]  # pickles, big buffers apart
    Keep = Callable[[BaseException], bool]  # which exceptions fail only their item

FN_CACHE_SIZE = 8  # functions a worker keeps unpickled, oldest evicted first
STOP = pickle.dumps(("stop",), protocol=5)
READY = pickle.dumps(("ready",), protocol=5)
STARTED = pickle.dumps(("started",), protocol=5)
LOG, INIT_FAILED = pickle.dumps(("log",), protocol=5), pickle.dumps(("init_failed",), protocol=5)
OVER = pickle.dumps(("over",), protocol=5)


def dumps(obj: object, big: Callable[[PickleBuffer], bool] | None = None) -> bytes:
    """Pickle with the standard library; cloudpickle (imported only then) for what it cannot.
    `big` (an `_apart.Apart`) keeps big buffers out of band."""
    try:
        return pickle.dumps(obj, protocol=5, buffer_callback=big)
    except Exception:
        import cloudpickle

        getattr(big, "buffers", []).clear()  # what the failed attempt kept
        return bytes(cloudpickle.dumps(obj, protocol=5, buffer_callback=big))


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


def encode_done(values: list[Any], seconds: object, raised: dict[int, BaseException]) -> bytes:
    """("done", values, seconds, errors) pickled; a value that cannot be pickled becomes
    that item's error, not a lost chunk: a `PicklingFailed` saying so, or what its `__reduce__`
    raised if that was no Exception (sys.exit()), as in the standard pool."""
    return pack_done(_whole, values, seconds, raised)[0]


def pack_done(
    pack: Pack, values: list[Any], seconds: object, raised: dict[int, BaseException]
) -> tuple[bytes, list[PickleBuffer]]:
    """`encode_done`, pickled by `pack` (big buffers apart: `_apart.split`)."""
    errors = {pos: portable(exc) for pos, exc in raised.items()}
    try:
        return pack(("done", values, seconds, errors))
    except BaseException:  # found item by item below
        pass
    values = list(values)
    for pos, value in enumerate(values):
        try:
            pack(value)
        except BaseException as exc:
            values[pos] = None
            errors[pos] = portable(_not_picklable(exc) if isinstance(exc, Exception) else exc)
    return pack(("done", values, seconds, errors))


def _whole(obj: object) -> tuple[bytes, list[PickleBuffer]]:
    return dumps(obj), []


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
    received = beside("_received.py")
    kept = received.Kept()
    channel = beside("_channel.py").Channel(fd, kept)
    inbox = received.Inbox(channel.recv, kept)
    init = pickle.loads(inbox.get()[0])
    _, sys_path, initializer, log_levels, authkey, max_rss, zero_copy = init
    cap = None if max_rss is None else (beside("_capped.py").rss_reader(), max_rss)
    pack = _whole if zero_copy is None else _apart(zero_copy[0])
    if zero_copy is not None:  # big bodies apart too: the pool's reader never waits on them
        channel.name, channel.big_body = zero_copy[1], beside("_channel.py").BIG_BODY
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
        if _run(channel, inbox.get, fns, logs, cap, pack):  # past max_rss
            channel.send(OVER)  # the pool gives what was sent meanwhile to a fresh worker
            while inbox.get()[0] != STOP:
                pass
            _flush()
            os._exit(0)


def _apart(threshold: int) -> Pack:
    split = beside("_apart.py").split
    return lambda obj: split(dumps, obj, threshold)


def _run(
    channel: Channel,
    take: Callable[[], Message],
    fns: dict[int, Any],
    logs: Any,
    cap: tuple[Callable[[], int], int] | None,
    pack: Pack,
) -> bool:
    """Run one chunk and send its outcomes, or stop; True once this worker is over its memory
    `cap` (it then ran nothing after the item that took it over). Only this call's frame refers
    to a call's arguments and results, so they are freed (proxies released) once it returns;
    by the last reply nothing of its own maps the memfd of its inputs, which goes back then.
    It takes the message itself: an argument stays referenced by the caller's stack on 3.10."""
    head, _, buffers, lease = take()
    if head == STOP:
        _flush()
        os._exit(0)  # nothing to tear down: skip the interpreter's slow exit
    what, apart, given = "fn", buffers is not None, iter(buffers or ())
    del buffers
    try:
        _, fn_key, fn_bytes, blob, report_each = pickle.loads(head)
        fn = fns[fn_key] if fn_bytes is None else pickle.loads(fn_bytes, buffers=given)
        if fn_key is not None and fn_bytes is not None:  # a call (no key) is not kept
            if len(fns) >= FN_CACHE_SIZE:  # the pool mirrors this eviction exactly
                fns.pop(next(iter(fns)))
            fns[fn_key] = fn
        what = "the items"
        items = pickle.loads(blob, buffers=given)
    except BaseException as exc:  # fn's module cannot be imported here, a sys.exit()...
        del given
        channel.send(dumps(("fail", what)), dumps(portable(exc)), lease=lease)
        return False
    del given
    if report_each and fn_bytes is not None:  # importing fn's module is not the item's time
        channel.send(STARTED)
    logs.install()
    pid = os.getpid()
    groups = [[item] for item in items] if report_each else [items]
    del items
    groups.reverse()
    while True:
        group = groups.pop()
        if cap is None:
            values, seconds, raised = run_items(fn, group)
            over = False
        else:
            values, seconds, raised, over = beside("_capped.py").run_capped(fn, group, *cap)
        if os.getpid() != pid:  # the task forked and this is the child: never talk to the pool
            os._exit(0)
        _flush()
        logs.install()
        final = over or not groups
        del group
        if final:
            del fn, groups  # a call's arguments: its inputs' memfd can go back with this reply
        if apart:  # a task that wrote into its inputs is told why it could not
            beside("_received.py").explain(raised)
        body, out = pack_done(pack, values, seconds, raised)
        n = len(values)
        for error in raised.values():  # its frames would hold items until a garbage collection
            error.__traceback__ = None
        del values, raised
        channel.send(dumps(("done", n, final)), body, out, lease if final else None)
        if final:
            return over


def _set_authkey(mp_process: ModuleType, authkey: bytes) -> None:
    mp_process.current_process().authkey = authkey


def main(argv: list[str]) -> None:
    """Entry point (see `_launch.BOOT`): FD, the worker's end of its socket."""
    serve(int(argv[0]))
