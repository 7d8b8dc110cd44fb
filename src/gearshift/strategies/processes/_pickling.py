"""How items travel to process workers: plain pickle when it can carry them, else cloudpickle;
buffers of `zero_copy_bytes` or more apart, in memfds (`_channel`).

cloudpickle runs a Python hook per object (~0.3 us an int, 100x the C pickler), so plain
pickle goes first. It is not used when it fails (lambdas, local classes) or when the bytes name
`__main__`: the workers never import the caller's script, so what lives there must travel by
value, which only cloudpickle does. The workers pickle their results the same way (worker.py,
which imports nothing of gearshift).
"""

from __future__ import annotations

import mmap
import os
import pickle
import time
from typing import Any

from gearshift.strategies.processes._apart import Apart, split
from gearshift.strategies.processes._channel import ZERO_COPY, write
from gearshift.strategies.processes._received import attach, views

PROTOCOL = 5
# Buffers (numpy arrays, big bytes) of this many bytes or more travel zero-copy: below it, the
# memfd's fixed costs exceed the copies they save. Tuned by bench/arrays.py --threshold.
ZERO_COPY_BYTES = 1 << 18
PAGE = mmap.PAGESIZE


def dumps(obj: Any, big: Apart | None = None) -> bytes:
    """`obj` pickled so that a fresh worker interpreter can load it; `big` keeps big buffers
    out of band (`_apart.split`)."""
    try:
        data = pickle.dumps(obj, protocol=PROTOCOL, buffer_callback=big)
    except Exception:
        data = b"__main__"  # whatever it was, cloudpickle decides
    if b"__main__" not in data:
        return data
    import cloudpickle

    if big is not None:
        big.buffers.clear()
    return bytes(cloudpickle.dumps(obj, protocol=PROTOCOL, buffer_callback=big))


def by_value(obj: Any, big: Apart | None = None) -> bytes:
    """`obj` pickled by cloudpickle (a call from `submit`: its function may live anywhere)."""
    import cloudpickle

    return bytes(cloudpickle.dumps(obj, protocol=PROTOCOL, buffer_callback=big))


def dumps_apart(obj: Any, threshold: int | None) -> tuple[bytes, list[pickle.PickleBuffer]]:
    """`dumps(obj)`, its buffers of `threshold` bytes or more apart (None: all in band)."""
    return split(dumps, obj, threshold)


def zero_copy(threshold: int | None) -> tuple[int, str] | None:
    """The size from which buffers travel in memfds, and their name; None where they cannot
    (no memfd_create: not Linux, or a sandbox that forbids it) or `threshold` is None."""
    global _works
    if threshold is None or not ZERO_COPY:
        return None
    if _works is None:
        try:
            os.close(os.memfd_create("gearshift-probe", os.MFD_CLOEXEC))
            _works = True
        except OSError:
            _works = False
    return (threshold, f"gearshift-{os.getpid()}") if _works else None


_works: bool | None = None


def trip(obj: Any, threshold: int | None, refilled: bool = True) -> tuple[int, float]:
    """What `obj` costs to ship to or from a worker as the pool ships it: its pickled bytes
    (buffers included), and the seconds to pickle it, copy its big buffers into a memfd, map
    them, unpickle it and touch each page of them once (a first touch costs a fault).
    `refilled`: the memfd's pages exist and are mapped already, as in those the pool refills
    (arguments); else the writer allocates them (results: a worker makes a memfd for each).
    Seconds of this thread's CPU: waits for the GIL (held by the sample's items) or for a busy
    core are no cost of shipping, and made it read up to 10x high on a loaded machine."""
    zero = zero_copy(threshold)
    start = time.thread_time()
    data, buffers = dumps_apart(obj, None if zero is None else zero[0])
    if not buffers:
        pickle.loads(data)
        return len(data), time.thread_time() - start
    seconds = time.thread_time() - start
    size = sum(memoryview(buffer).nbytes for buffer in buffers)
    spare = None
    if refilled:  # not timed: a spare the pool refills exists, mapped, its pages allocated
        spare = write(buffers, "gearshift-trip", None, mapped=True)[0]
        write(buffers, "gearshift-trip", spare, mapped=True)  # maps it
    start = time.thread_time()
    spare, spans = write(buffers, "gearshift-trip", spare, mapped=refilled)
    try:
        area = attach(spare.fd, max(offset + n for offset, n in spans), writable=not refilled)
        mapped = views(area, spans, writable=not refilled)
        pickle.loads(data, buffers=mapped)
        for view in mapped:
            view[::PAGE].tobytes()
        seconds += time.thread_time() - start
    finally:
        spare.close()
    return len(data) + size, seconds
