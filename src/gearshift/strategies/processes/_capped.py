"""How a process worker keeps under max_memory_per_child: its resident memory after each item.

Standard library only, loaded by path by `worker` (`worker.beside`), as `worker` itself is.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any


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
