"""Which buffers of a pickle travel apart (out of band, PEP 574), and how to make them.

Protocol 5 hands a pickler's `buffer_callback` each buffer an object offers (numpy arrays do,
and pandas and Arrow objects through them); `Apart` keeps the big ones out of the pickle, for
`_channel` to carry in a memfd. The C pickler offers none for bytes or bytearray and refuses
memoryviews (cloudpickle sends those as bytes): `split` turns the big ones into buffers too
when they are what made a pickle big.

Standard library only: a worker loads this file by path (`worker.beside`), as it loads worker.py.
"""

from __future__ import annotations

from _pickle import PickleBuffer
from itertools import chain

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class Apart:
    """A pickle `buffer_callback`: buffers of `threshold` bytes or more stay out of band, kept in
    `buffers`. A pickler that retries (cloudpickle after pickle) empties `buffers` first."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.buffers: list[PickleBuffer] = []

    def __call__(self, buffer: PickleBuffer) -> bool:
        if memoryview(buffer).nbytes < self.threshold:
            return True  # in band
        self.buffers.append(buffer)
        return False


def split(
    dumps: Callable[[Any, Apart | None], bytes], obj: Any, threshold: int | None
) -> tuple[bytes, list[PickleBuffer]]:
    """`obj` pickled by `dumps`, with its buffers of `threshold` bytes or more apart (None: none).

    The C pickler writes bytes and bytearrays in band whatever their size, and refuses
    memoryviews; so when the pickle came out big without a buffer, or failed, those that `obj`
    is or holds (in tuples, lists and dicts, a few levels deep) are pickled as buffers instead.
    """
    if threshold is None:
        return dumps(obj, None), []
    apart = Apart(threshold)
    try:
        data = dumps(obj, apart)
    except Exception:
        wrapped = _wrap(obj, threshold, 4)
        if wrapped is obj:
            raise
    else:
        if apart.buffers or len(data) < threshold:
            return data, apart.buffers
        wrapped = _wrap(obj, threshold, 4)
        if wrapped is obj:
            return data, apart.buffers
    apart = Apart(threshold)
    return dumps(wrapped, apart), apart.buffers


_RAW = {bytes, bytearray, memoryview}
_SEQUENCES = {tuple, list}
_DEEP = _RAW | _SEQUENCES | {dict}  # what may hold a buffer to pickle apart


def _wrap(obj: Any, threshold: int, depth: int) -> Any:
    """`obj` with its big bytes and bytearrays, and its memoryviews, as `_Raw`; `obj` itself if
    it has none. Types are checked a level at a time in C (set(map(type, ...))): a chunk of
    10,000 small items costs ~1 ms here, not a Python call per item."""
    kind = type(obj)
    if kind in _RAW:
        return _Raw(obj) if kind is memoryview or len(obj) >= threshold else obj
    if not depth or kind not in _DEEP:
        return obj
    parts = obj.values() if kind is dict else obj
    kinds = set(map(type, parts))
    if not kinds & _DEEP:
        return obj
    if kinds <= _SEQUENCES and not set(map(type, chain.from_iterable(parts))) & _DEEP:
        return obj
    if kind is dict:
        values = {key: _wrap(value, threshold, depth - 1) for key, value in obj.items()}
        return obj if all(values[key] is value for key, value in obj.items()) else values
    wrapped = [_wrap(part, threshold, depth - 1) for part in obj]
    return obj if all(a is b for a, b in zip(wrapped, obj, strict=True)) else kind(wrapped)


class _Raw:
    """Pickles a bytes, bytearray or memoryview through a PickleBuffer; rebuilt as bytes or a
    bytearray, copied out of the buffer (a bytes cannot point at a mapping). A memoryview comes
    out as bytes, as cloudpickle, which carries the small ones, sends it."""

    __slots__ = ("obj",)

    def __init__(self, obj: bytes | bytearray | memoryview) -> None:
        self.obj = obj

    def __reduce_ex__(self, protocol: object) -> tuple[Any, ...]:
        obj = self.obj
        if not isinstance(obj, memoryview):
            return type(obj), (PickleBuffer(obj),)
        if not obj.c_contiguous:
            return bytes, (obj.tobytes(),)
        return bytes, (PickleBuffer(obj.cast("B") if obj.format != "B" or obj.ndim != 1 else obj),)
