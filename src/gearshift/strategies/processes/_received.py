"""What a process receives: the memfds big buffers came in, mapped, and a worker's inbox.

At home (`Home`) a result's memfd is mapped copy-on-write, its descriptor closed: results stay
writable, and the mapping goes with the last object that uses it. In a worker (`Kept`) a memfd
of inputs is mapped read-only (a task sees the pool's memory, as with joblib's memmaps) and
leased (`Lease`): the run's last reply gives the descriptor back once nothing maps it any more,
so that the pool refills the file. The worker keeps its mapping: the refilled pages are the
same, and reading them again costs no page faults. Idle for IDLE_SECONDS, it drops what it kept,
as the pool frees its spares. A reader thread moves messages off the socket into a local queue
(`Inbox`), so the pool never blocks sending, and ends the process the moment the socket closes:
a worker cannot outlive its pool, even mid-task.

Standard library only: a worker loads this file by path (`worker.beside`), as it loads worker.py.
"""

from __future__ import annotations

import mmap
import os
import sys
import threading
from _queue import Empty, SimpleQueue
from _weakref import ref

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

IDLE_SECONDS = 0.5  # a pool's spare memfds, a worker's kept mappings: freed once idle this long
KEEP = 2  # mappings a worker keeps: one per memfd the pool may have sent it (one sent ahead)
# Live mappings at most; past this, received buffers are copied. Before Python 3.13 each mmap
# object keeps a duplicate of its descriptor, and results may stay alive by the thousand.
KEEPS_FD = sys.version_info < (3, 13)
MAX_MAPPED = 256 if KEEPS_FD else 4096
_mapped: set[ref[mmap.mmap]] = set()
READ_ONLY = (
    "gearshift: the task's input arrays (big buffers) are read-only views of memory shared "
    "with the pool's process, as with joblib's memmaps: copy what you write into "
    "(a = a.copy()), or pass gearshift.Processes(zero_copy_bytes=None) to send copies"
)


def attach(fd: int, size: int, writable: bool) -> mmap.mmap | bytearray:
    """The memfd's first `size` bytes, mapped read-only or copy-on-write (writable); copied into
    memory instead past MAX_MAPPED mappings or when mapping fails (no descriptors left)."""
    if len(_mapped) < MAX_MAPPED:
        flags = mmap.MAP_PRIVATE if writable else mmap.MAP_SHARED
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        extra: dict[str, Any] = {} if KEEPS_FD else {"trackfd": False}
        try:
            area = mmap.mmap(fd, size, flags=flags, prot=prot, **extra)
        except OSError:
            pass
        else:
            _mapped.add(ref(area, _mapped.discard))
            return area
    copy, done = bytearray(size), 0
    while done < size:
        got = os.preadv(fd, [memoryview(copy)[done:]], done)
        if not got:
            raise EOFError("a memfd ended before its buffers")
        done += got
    return copy


def views(area: object, spans: Sequence[tuple[int, int]], writable: bool) -> list[memoryview]:
    """The buffers at `spans` in `area` (a mapping or a copy), read-only unless `writable`."""
    view = memoryview(area)  # type: ignore[arg-type]
    view = view if writable else view.toreadonly()
    return [view[start : start + size] for start, size in spans]


class Home:
    """The pool's side: results mapped copy-on-write, never given back."""

    def map(self, fd: int, size: int) -> mmap.mmap | bytearray:
        area = attach(fd, size, True)
        os.close(fd)  # the mapping keeps the file
        return area

    def views(self, area: object, spans: Sequence[tuple[int, int]]) -> list[memoryview]:
        return views(area, spans, True)

    def lease(self, fd: int, area: object) -> None:
        return None


class Kept:
    """A worker's side: inputs mapped read-only, leased; its mappings kept by inode (the reader
    thread maps, the main thread gives back)."""

    def __init__(self) -> None:
        self.areas: dict[int, mmap.mmap] = {}
        self.lock = threading.Lock()

    def map(self, fd: int, size: int) -> mmap.mmap | bytearray:
        """The mapping kept of this memfd if it holds `size` bytes, else a new one, kept."""
        key = os.fstat(fd).st_ino
        with self.lock:
            area: mmap.mmap | bytearray | None = self.areas.pop(key, None)
        if area is None or len(area) < size:
            area = attach(fd, size, False)
        if isinstance(area, mmap.mmap):
            with self.lock:
                while len(self.areas) >= KEEP:
                    del self.areas[next(iter(self.areas))]
                self.areas[key] = area
        return area

    def views(self, area: object, spans: Sequence[tuple[int, int]]) -> list[memoryview]:
        return views(area, spans, False)

    def lease(self, fd: int, area: object) -> Lease:
        return Lease(fd, area, self)

    def forget(self) -> None:
        with self.lock:
            self.areas.clear()


class Lease:
    """A received memfd, held to be given back with the run's last reply."""

    def __init__(self, fd: int, area: object, kept: Kept) -> None:
        self.fd, self.kept = fd, kept
        self.area = area if isinstance(area, mmap.mmap) else None

    def end(self) -> int | None:
        """The descriptor to give back, or None (closed: a mapping in use keeps the file)."""
        area, self.area = self.area, None
        if area is None:
            return self.fd
        with self.kept.lock:
            kept = self.kept.areas
            keys = [key for key in kept if kept[key] is area]
            if sys.getrefcount(area) <= 2 + len(keys):  # this frame's, the call's, kept's
                return self.fd
            for key in keys:
                del kept[key]  # its objects live on: the pool will never refill this file
        os.close(self.fd)
        return None


class Inbox:
    """The messages from the pool, read off the socket by a thread of their own."""

    def __init__(self, recv: Callable[[], Message], kept: Kept) -> None:
        self.kept = kept
        self.queue: SimpleQueue[Message] = SimpleQueue()
        threading.Thread(target=self._read, args=(recv,), daemon=True).start()

    def _read(self, recv: Callable[[], Message]) -> None:
        """Move messages to the queue; exit the process when the pool goes away."""
        try:
            while True:
                self.queue.put(recv())
        except (EOFError, OSError):
            os._exit(0)

    def get(self) -> Message:
        """The next message; idle meanwhile, drop the mappings kept."""
        if self.kept.areas:
            try:
                return self.queue.get(timeout=IDLE_SECONDS)
            except Empty:
                self.kept.forget()
        return self.queue.get()


def explain(raised: dict[int, BaseException]) -> None:
    """Tell a task that wrote into a read-only input why it could not and what to do: a note
    on its error (`add_note`, also where Python < 3.11 lacks it and tracebacks omit notes)."""
    for exc in raised.values():
        if "read-only" in str(exc):
            notes = getattr(exc, "__notes__", None)
            if not isinstance(notes, list):
                notes = exc.__notes__ = []  # type: ignore[attr-defined,misc,unused-ignore]
            notes.append(READ_ONLY)


if TYPE_CHECKING:
    # head, body, the body's buffers (None: it has none), and in a worker the lease on their memfd
    Message = tuple[memoryview, memoryview, list[memoryview] | None, Lease | None]
    Receiver = Home | Kept
