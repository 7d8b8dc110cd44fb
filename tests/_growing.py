"""Work whose memory only grows, as a leaking C extension or a cache that is never trimmed.

Workers import this module to run `grow`, so it imports little: what a worker holds before its
first item stays small and steady.
"""

from __future__ import annotations

import mmap
import os

import psutil

MiB = 2**20
KEPT: list[bytes] = []  # what every call leaves behind, for the worker's lifetime
MAPPED: list[mmap.mmap] = []  # what `keep_mapped` keeps
RUNS: str | None = None  # a file each call appends "item pid" to (set by `record_runs_in`)


def record_runs_in(path: str) -> None:
    """An initializer: calls append to `path`, and each worker that starts to `path`.starts."""
    global RUNS
    RUNS = path
    _append(f"{path}.starts", f"{os.getpid()}\n")


def grow(x: int, mib: int = 20) -> tuple[int, int, int]:
    """Keep `mib` MiB (really resident: bytes written) and return (x, pid, RSS right after)."""
    KEPT.append(b"x" * (mib * MiB))
    if RUNS is not None:
        _append(RUNS, f"{x} {os.getpid()}\n")
    return x, os.getpid(), psutil.Process(os.getpid()).memory_info().rss


def grow_1_mib(x: int) -> tuple[int, int, int]:
    return grow(x, 1)


def keep_mapped(mib: int) -> None:
    """Keep `mib` MiB of fresh pages, each written: resident growth of exactly that much, even in
    a process whose allocator holds freed memory it could have reused."""
    block = mmap.mmap(-1, mib * MiB)
    for offset in range(0, mib * MiB, mmap.PAGESIZE):
        block[offset] = 1
    MAPPED.append(block)


def _append(path: str, line: str) -> None:
    """One write to a file opened for appending: lines from many processes never interleave."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def runs(path: str) -> list[int]:
    """The items that ran, as recorded in `path`, sorted: each once if none ran twice."""
    with open(path) as lines:
        return sorted(int(line.split()[0]) for line in lines)
