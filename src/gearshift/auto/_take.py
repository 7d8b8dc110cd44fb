"""Taking the next n items of the input without copying them, when a list or tuple is under it.

`list(islice(it, n))` costs ~8 ns an item, and every big list made costs its pages too (on this
2-core VM a fresh 200,000-item list took 1-3 ms of page faults): on x*x, whose call costs ~50 ns,
that is most of what auto may spend. A list's or tuple's iterator says what it walks and where
it is (`__reduce__`, as pickle uses it) and can be moved on (`__setstate__`), so a take is a
view of the caller's own sequence (`Span`), and the caller's iterator ends up exactly past it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice, pairwise
from typing import Any, overload

_WALKERS: tuple[type, ...] = (type(iter([])), type(iter(())))


class Span(Sequence[Any]):
    """Items start..stop of a list or tuple, read in place: a run reads them in C."""

    def __init__(self, walked: Sequence[Any], start: int, stop: int) -> None:
        self.walked, self.start, self.stop = walked, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __eq__(self, other: object) -> bool:  # as a list of the same items
        if isinstance(other, Span | list | tuple):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(list(self))

    def __iter__(self) -> Iterator[Any]:
        walker = iter(self.walked)
        walker.__setstate__(self.start)  # type: ignore[attr-defined]
        if self.stop >= len(self.walked):  # to the end: no islice between (~5 ns an item)
            return walker
        return islice(walker, len(self))

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return list(self.walked[self.start : self.stop][index])
        if not -len(self) <= index < len(self):
            raise IndexError("Span index out of range")
        return self.walked[self.start + index % len(self)]


class Taker(Iterator[Any]):
    """The caller's iterator, with `take(n)`: the next n items (fewer at its end)."""

    def __init__(self, iterator: Iterator[Any]) -> None:
        self.iterator = iterator
        self._walks = type(iterator) in _WALKERS

    def __next__(self) -> Any:
        return next(self.iterator)

    def take(self, n: int) -> Sequence[Any]:
        if not self._walks:
            return list(islice(self.iterator, n))
        reduced: Any = self.iterator.__reduce__()  # (iter, (walked,), position), or no position
        if len(reduced) < 3:  # exhausted
            return []
        walked, start = reduced[1][0], reduced[2]
        stop = min(start + n, len(walked))
        self.iterator.__setstate__(stop)  # type: ignore[attr-defined]
        return Span(walked, start, stop)


def joined_items(parts: list[Sequence[Any]]) -> Sequence[Any]:
    """The parts as one sequence: one Span if they are adjacent spans of one sequence."""
    spans = [p for p in parts if isinstance(p, Span)]
    if parts and len(spans) == len(parts):
        adjacent = all(a.stop == b.start and a.walked is b.walked for a, b in pairwise(spans))
        if adjacent:
            return Span(spans[0].walked, spans[0].start, spans[-1].stop)
    items: list[Any] = []
    for part in parts:
        items += part
    return items
