"""What arguments and results cost to ship to a process: pickled bytes, dumps+loads seconds.

profile() measures it on the sample's items and results as process workers get them, or says
why they cannot go: pickled by the standard pickler (cloudpickle where it must), their big
buffers (numpy arrays) written into a memfd and mapped (`processes.trip`, at the default
zero_copy_bytes): for a 100 MB array that is a memory copy, not three of them and a pipe.
"""

from __future__ import annotations

import pickle
import statistics
import time
from collections.abc import Callable
from typing import Any

from gearshift.auto._sampling import Record
from gearshift.strategies.processes import ZERO_COPY_BYTES, dumps, trip

# Tuned by bench/auto.py: enough items to see what payloads cost, little time spent seeing it.
SHIP_ITEMS = 8  # sampled items (and results) pickled, spread over the sample
SHIP_SECONDS = 0.02  # ... stopping once pickling took this long
SHIP_BATCH = 1000  # at most, timed together (a chunk of tiny items is this size or more)
# Objects that took this long each were timed well enough alone: a pickle call's own cost (some
# us) is noise there, and timing them again in a batch cost a 10 MB list's sample ~60 ms.
SHIP_ALONE_SECONDS = 1e-4


def ship_cost(fn: Callable[[Any], Any], pairs: list[tuple[Any, Record | None]]) -> dict[str, Any]:
    """Mean pickled bytes and dumps+loads seconds of arguments and results (of the items that
    ended), as process workers get them, or why they cannot travel."""
    import cloudpickle

    sizes: dict[str, list[float]] = {"in": [], "out": []}
    times: dict[str, list[float]] = {"in": [], "out": []}
    shipped: dict[str, list[Any]] = {"in": [], "out": []}
    unpicklable = None
    step = max(1, len(pairs) // SHIP_ITEMS)
    spent = 0.0
    try:
        cloudpickle.dumps(fn)
    except Exception as exc:
        unpicklable = f"the function: {type(exc).__name__}: {exc}"
    for index in range(0, len(pairs), step):
        item, record = pairs[index]
        targets = [("in", item)]
        if record is not None and record.error is None:  # it ended, with a result
            targets.append(("out", record.value))
        for direction, obj in targets:
            try:  # arguments go in memfds the pool refills; results, in new ones
                size, seconds = trip(obj, ZERO_COPY_BYTES, refilled=direction == "in")
            except Exception as exc:
                what = "an argument" if direction == "in" else "a result"
                unpicklable = unpicklable or f"{what} (item {index}): {type(exc).__name__}: {exc}"
                continue
            times[direction].append(seconds)
            spent += seconds
            sizes[direction].append(size)
            shipped[direction].append(obj)
        if spent >= SHIP_SECONDS:
            break
    # Cheap objects are timed together, as many as SHIP_SECONDS allows: one call's own cost
    # would otherwise swamp theirs (and the timer's resolution, theirs)
    each = spent / max(1, len(shipped["in"]) + len(shipped["out"]))
    batch = max(1, min(SHIP_BATCH, int(SHIP_SECONDS / max(each, 1e-9))))  # 1: dear objects
    many = pairs[:: max(1, len(pairs) // batch)]
    everything = {
        "in": [item for item, _ in many],
        "out": [r.value for _, r in many if r is not None and r.error is None],
    }

    def per_object(way: str) -> float:
        if _mean(times[way]) >= SHIP_ALONE_SECONDS:  # dear objects: timed alone already
            return _mean(times[way])
        return _per_object(everything[way], shipped[way])

    return {
        "payload_bytes_in": _mean(sizes["in"]),
        "payload_bytes_out": _mean(sizes["out"]),
        "ship_seconds_in": per_object("in"),
        "ship_seconds_out": per_object("out"),
        "unpicklable": unpicklable,
    }


def _per_object(objects: list[Any], picklable: list[Any]) -> float:
    """dumps+loads seconds an object adds to a chunk that carries it (of `objects`, or of
    `picklable` if some of them cannot travel).

    Objects travel in chunks, pickled as _pickling.dumps does: a pickle call's own cost (some
    us, 10x an int's x*x) is paid per chunk, which the chooser counts as PROCESS_CHUNK_SECONDS.
    Timed alone, tiny items looked 50x too dear to ship (bench/auto.py, tiny x*x: serial
    chosen, 1.95x slower than processes). Best of 3 when quick: timer noise.
    """

    def seconds(batch: list[Any]) -> float:
        start = time.perf_counter()
        pickle.loads(dumps(batch))
        return time.perf_counter() - start

    try:
        together = seconds(objects)
    except Exception:  # an object ship_cost did not try: fall back to those it did
        objects = picklable
        together = seconds(objects)
    if not objects:
        return 0.0
    if together < 1e-3:
        together = min(together, seconds(objects), seconds(objects))
    alone = min(seconds([]) for _ in range(3))
    return max(0.0, together - alone) / len(objects)


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0
