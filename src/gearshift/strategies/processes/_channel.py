"""Messages between the process pool and a worker: frames on a socket, big buffers beside them.

    frame  [header: sizes, n buffers, flags][n spans][head][body]
    fds    on the header's first byte (SCM_RIGHTS): a memfd holding the n buffers at their spans
           (offset, size), then the memfd a worker gives back, if it gives one

A message is a head, plain values that always unpickle, and a body (see `worker`); the body's
big pickle buffers (`_apart`) travel out of band, zero-copy: written once into an anonymous
`memfd_create` file that the receiver maps -- read-only in a worker (its inputs, like joblib's
memmaps), copy-on-write at home (results stay writable) -- and unmapped when the last object
using them is freed. No file name, no /dev/shm: a process that dies takes its descriptors and
mappings along, and descriptors in flight go with the socket. A worker ends its lease on an input
memfd with the run's last reply, giving the descriptor back if nothing maps it any more; leases
end in the order the runs were sent. The pool refills what comes back through the mapping it
kept of it (`Spare`): a memory copy into pages that exist (bench/arrays.py). A worker's body of
BIG_BODY bytes or more (a long list, say) goes in the memfd too, as one more buffer: the pool's
dispatcher then reads a small frame instead of waiting while a big one trickles through the
socket. Where no memfd can be made, the buffers travel in the frame.

Standard library only, cheap to import: a worker loads this file by path (`worker.beside`).
"""

from __future__ import annotations

import _socket
import mmap
import os
import sys
import threading
from _pickle import PickleBuffer
from _socket import CMSG_SPACE, SCM_RIGHTS, SOL_SOCKET, socket
from struct import Struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, Protocol

    from gearshift.strategies.processes._received import Lease, Message, Receiver

    class Refills(Protocol):  # the pool's memfds to refill (`_handles.Spares`)
        def take(self, mapped: list[int]) -> Spare | None: ...
        def give(self, spare: Spare) -> None: ...


ZERO_COPY = sys.platform == "linux" and hasattr(os, "memfd_create")
_HEADER, _SPAN, _FD = Struct("!QIQIB"), Struct("!QQ"), Struct("i")
INLINE, ENDS_LEASE, GIVES_BACK, BODY_APART = 1, 2, 4, 8  # header flags
BIG_BODY = 1 << 20  # a worker's body this big goes in the memfd too (its buffers' or its own)
ALIGN = 64  # each buffer starts at a multiple of this: aligned for any numpy dtype
MAX_FDS = 8  # descriptors one frame may carry
POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux: map every page now, not a fault each
CLOEXEC = getattr(_socket, "MSG_CMSG_CLOEXEC", 0)  # Linux: descriptors received close on exec
KEPT = 2  # mappings a worker keeps (`_received.KEEP`): the pool refills those files first


class Spare:
    """A memfd the pool wrote (or may refill), with the writable mapping it keeps of it."""

    __slots__ = ("area", "fd", "inode", "size")
    area: mmap.mmap | None

    def __init__(self, fd: int) -> None:
        self.fd, self.area, self.size = fd, None, 0
        self.inode = os.fstat(fd).st_ino

    def close(self) -> None:
        if self.area is not None:
            self.area.close()
            self.area = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def write(
    buffers: Sequence[PickleBuffer], name: str, spare: Spare | None, mapped: bool
) -> tuple[Spare, list[tuple[int, int]]]:
    """A memfd (`spare`, refilled, or a new one) holding `buffers`, and their spans. `mapped`:
    refill a spare through a mapping kept with it, made the first time (the pool does; a copy
    into mapped pages costs half a pwrite), else pwrite, which fills new pages fastest (a
    fresh mapping's page faults cost more than the copy). Timed by bench/arrays.py --copies."""
    spans, end = [], 0
    for buffer in buffers:
        start = -(-end // ALIGN) * ALIGN
        spans.append((start, memoryview(buffer).nbytes))
        end = start + spans[-1][1]
    new = spare is None
    spare = Spare(os.memfd_create(name, os.MFD_CLOEXEC)) if spare is None else spare
    try:
        if spare.size != end:  # a spare shrinks (freeing pages) or grows to fit
            if spare.area is not None:
                spare.area.close()
                spare.area = None
            os.ftruncate(spare.fd, end)
            spare.size = end
        if mapped and spare.area is None and not new:  # its pages exist: map them all at once
            spare.area = mmap.mmap(spare.fd, end, mmap.MAP_SHARED | POPULATE)
        for (start, size), buffer in zip(spans, buffers, strict=True):
            with buffer.raw() as raw:
                if spare.area is not None:
                    spare.area[start : start + size] = raw
                    continue
                done = 0
                while done < size:
                    done += os.pwrite(spare.fd, raw[done:], start + done)
    except BaseException:
        spare.close()
        raise
    return spare, spans


class Channel:
    """One end of a pool-worker socket: whole messages, their big buffers out of band.

    `received` maps what arrives (`_received`: copy-on-write at home, read-only and leased in a
    worker); the pool's end has `spares` to refill.
    """

    def __init__(
        self, fd: int, received: Receiver, spares: Refills | None = None, name: str = "gearshift"
    ) -> None:
        self.sock = socket(fileno=fd)
        self.received, self.spares, self.name = received, spares, name
        self.lock = threading.Lock()
        self._fds: list[int] = []
        self.out: list[Spare] = []  # the pool's memfds a worker holds, in the order sent
        self.there: list[int] = []  # the inodes of the last memfds sent, which it maps still
        self.big_body: int | None = None  # bodies this big go in a memfd (None: in the frame)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()
        while self.out:
            self.out.pop(0).close()

    def send(
        self,
        head: bytes,
        body: bytes = b"",
        buffers: list[PickleBuffer] | None = None,
        lease: Lease | None = None,
    ) -> None:
        """Send one message; `buffers` (emptied once written) beside it, and end `lease`."""
        parts: list[Any] = []
        fds: list[int] = []
        spans, flags, sent = b"", 0, None
        if self.big_body is not None and len(body) >= self.big_body:  # the reader won't wait
            buffers = [] if buffers is None else buffers
            buffers.append(PickleBuffer(body))
            body, flags = b"", BODY_APART
        try:
            if buffers:
                try:
                    spare = None if self.spares is None else self.spares.take(self.there)
                    sent, where = write(buffers, self.name, spare, self.spares is not None)
                    fds.append(sent.fd)
                    spans = b"".join(_SPAN.pack(*span) for span in where)
                except OSError:  # no memfd here now (memory, descriptors): in the frame
                    spans, parts, flags = *_inline(buffers), INLINE
                count = len(buffers)
                buffers.clear()  # written: a lease below may end now
            else:
                count = 0
            if lease is not None:
                flags |= ENDS_LEASE
                given = lease.end()
                if given is not None:
                    fds.append(given)
                    flags |= GIVES_BACK
            start = spans + b"\0" * (-len(spans) % ALIGN if flags & INLINE else 0)
            size = len(start) + sum(len(part) for part in parts) + len(head) + len(body)
            header = _HEADER.pack(size, len(head), len(body), count, flags)
            with self.lock:
                _send_all(self.sock, [header, start, *parts, head, body], fds)
                if sent is not None and self.spares is not None:  # the pool's: refilled later
                    self.out.append(sent)  # the worker keeps its last KEPT mappings: refill those
                    self.there = [*self.there[1 - KEPT :], sent.inode]
        finally:
            for fd in fds:
                os.close(fd)
            if sent is not None:  # its descriptor is closed: what is kept is its mapping
                sent.fd = -1
                if sent not in self.out:
                    sent.close()

    def recv(self) -> Message:
        """The next message. Raises EOFError when the other end has closed."""
        self._fds = []
        try:
            size, head, body, count, flags = _HEADER.unpack(self._exactly(_HEADER.size))
            data = memoryview(self._exactly(size))
            fds, self._fds = self._fds, []
        except BaseException:
            _close(self._fds)
            raise
        apart = 1 if count and not flags & INLINE else 0
        if apart + (1 if flags & GIVES_BACK else 0) != len(fds):
            _close(fds)
            raise EOFError(f"a message came with {len(fds)} descriptors, not as many as it said")
        if flags & ENDS_LEASE:
            self._returned(fds.pop() if flags & GIVES_BACK else None)
        payload = data[size - head - body :]
        message: Message = (payload[:head], payload[head:], None, None)
        if not count:
            return message
        spans = [_SPAN.unpack_from(data, _SPAN.size * i) for i in range(count)]
        end = spans[-1][0] + spans[-1][1]
        if flags & INLINE:
            at = -(-_SPAN.size * count // ALIGN) * ALIGN
            buffers, lease = self.received.views(data[at : at + end], spans), None
        else:
            try:
                area = self.received.map(fds[0], end)
            except BaseException:
                os.close(fds[0])
                raise
            buffers, lease = self.received.views(area, spans), self.received.lease(fds[0], area)
        if flags & BODY_APART:
            return (message[0], buffers.pop(), buffers, lease)
        return (*message[:2], buffers, lease)

    def read_left(self) -> list[Message]:
        """Every whole message left, without blocking: all a dead process wrote is there. A
        message it was cut off writing is dropped, and its descriptors closed."""
        messages = []
        try:
            self.sock.setblocking(False)
            while True:
                messages.append(self.recv())
        except (OSError, EOFError):  # BlockingIOError: all read (a child may hold it open)
            pass
        return messages

    def _returned(self, fd: int | None) -> None:
        """A worker ended its lease on the oldest memfd sent to it, giving back `fd` or not."""
        spare = self.out.pop(0) if self.out else None
        if fd is not None and (spare is None or os.fstat(fd).st_ino != spare.inode):
            if spare is not None:
                spare.close()
            spare = Spare(fd)
        elif spare is not None:
            spare.fd = -1 if fd is None else fd
        if spare is not None:
            if fd is not None and self.spares is not None:
                self.spares.give(spare)
            else:
                spare.close()

    def _exactly(self, n: int) -> bytearray:
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            read, ancillary, _, _ = self.sock.recvmsg_into([view[got:]], _ANCILLARY, CLOEXEC)
            for level, kind, data in ancillary:
                if level == SOL_SOCKET and kind == SCM_RIGHTS:
                    usable = len(data) - len(data) % _FD.size
                    self._fds.extend(memoryview(data)[:usable].cast("i"))
            if not read:
                raise EOFError
            got += read
        return buf


_ANCILLARY = CMSG_SPACE(MAX_FDS * _FD.size)


def _close(fds: list[int]) -> None:
    while fds:
        os.close(fds.pop())


def _inline(buffers: Sequence[PickleBuffer]) -> tuple[bytes, list[Any]]:
    """Spans and parts (padding included) that carry `buffers` in the frame itself."""
    spans, parts, end = [], [], 0
    for buffer in buffers:
        raw = buffer.raw()
        start = -(-end // ALIGN) * ALIGN
        parts += [b"\0" * (start - end), raw]
        spans.append(_SPAN.pack(start, raw.nbytes))
        end = start + raw.nbytes
    return b"".join(spans), parts


def _send_all(sock: socket, parts: Sequence[Any], fds: Sequence[int]) -> None:
    """Write all `parts` (bytes-like), `fds` with the first byte; a blocking socket."""
    pending = [memoryview(part).cast("B") for part in parts if len(part)]
    ancillary = [(SOL_SOCKET, SCM_RIGHTS, b"".join(_FD.pack(fd) for fd in fds))] if fds else []
    while pending:
        sent = sock.sendmsg(pending[:512], ancillary)  # IOV_MAX is 1024
        ancillary = []
        while pending and sent >= pending[0].nbytes:
            sent -= pending[0].nbytes
            pending.pop(0)
        if sent:
            pending[0] = pending[0][sent:]
