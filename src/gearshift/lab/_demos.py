"""The source's two experiments as measured workloads: sum 0..N five times; download five images.

    run_demo ─► cpu_experiment(n): serial loop | 5 threads | 5 multiprocessing.Process (the
    │           source's way) | gearshift processes x5 | auto     results checked: n(n+1)/2 x 5
    └─────────► io_experiment(urls) from a local ImageServer (or --url): serial | 5 threads on a
                queue.Queue (the source's way) | gearshift threads x5 | processes x5 | auto
      each row: `repeat` timed runs (_measure.time_runs) ─► Measurement ─► Experiment ─► DemoResult

The tasks themselves, written the source's way, are in `demo_tasks`. The I/O rows write to a
temporary directory that is removed afterwards.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from gearshift.api import map as gmap
from gearshift.errors import UsageError
from gearshift.lab._imageserver import ImageServer
from gearshift.lab._measure import (
    Machine,
    Measurement,
    Progress,
    auto_row,
    check_same,
    machine,
    run_auto,
    time_runs,
)
from gearshift.lab.demo_tasks import (
    TASKS,
    Job,
    download_with_thread_queue,
    fetch,
    sum_all_numbers,
    sum_with_processes,
)

# 5 sums take ~2 s on the 2-core reference machine: large enough that starting 5 processes
# (~0.5 s) does not hide the parallel speedup, small enough that the whole demo takes < 1 minute.
DEMO_N = 20_000_000
SOURCE_N = 100_000_000  # the source's N
IMAGE_BYTES = 512 * 1024  # a web-sized photo
LATENCY = 0.25  # seconds before each response starts: a server across an ocean
BANDWIDTH = 4_000_000  # bytes/s per response, so one image takes ~0.13 s to arrive


@dataclass(frozen=True)
class Experiment:
    """One experiment's rows, serial's first, and the ideal time this machine allows."""

    name: str  # "cpu" or "io"
    title: str
    workload: str
    measurements: tuple[Measurement, ...]
    ideal_seconds: float
    ideal: str  # what the ideal is, in words
    params: dict[str, Any] = field(default_factory=dict)

    def row(self, strategy: str) -> Measurement | None:
        return next((m for m in self.measurements if m.strategy == strategy), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "measurements"},
            "measurements": [m.to_dict() for m in self.measurements],
        }


@dataclass(frozen=True)
class DemoResult:
    """Both experiments as measured here, with the machine's facts."""

    machine: Machine
    experiments: tuple[Experiment, ...]
    repeat: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "demo",
            "machine": asdict(self.machine),
            "repeat": self.repeat,
            "experiments": [e.to_dict() for e in self.experiments],
        }


def cpu_experiment(
    n: int,
    *,
    repeat: int,
    warmup: bool = False,
    progress: Progress | None = None,
    facts: Machine | None = None,
) -> Experiment:
    """Sum 0..n five times on each configuration; the ideal is serial / min(cores, 5)."""
    cores = machine().cores if facts is None else facts.cores
    rows = [
        _Row("serial (a for loop, as in the source)", "serial", 1,
             lambda: [sum_all_numbers(n) for _ in range(TASKS)]),
        *_gearshift_rows(sum_all_numbers, lambda: [n] * TASKS, TASKS),
    ]  # fmt: skip
    source_way = f"{TASKS} processes (multiprocessing.Process, as in the source)"
    rows.insert(
        2, _Row(source_way, "multiprocessing.Process", TASKS, lambda: sum_with_processes(n))
    )
    ideal = float(min(cores, TASKS))
    measured = _measure(
        rows, [n * (n + 1) // 2] * TASKS, lambda _: ideal, repeat, warmup, progress, "CPU"
    )
    return Experiment(
        name="cpu",
        title=f"CPU-bound: sum 0..{n:,}, {TASKS} times",
        workload=f"sum(range({n:,} + 1)) x {TASKS}",
        measurements=measured,
        ideal_seconds=measured[0].median / ideal,
        ideal=f"serial / {ideal:g}: {TASKS} sums shared by {cores} core{'s' * (cores > 1)}",
        params={"n": n, "tasks": TASKS, "cores": cores},
    )


def io_experiment(
    urls: Sequence[str],
    *,
    repeat: int,
    warmup: bool = False,
    progress: Progress | None = None,
    params: dict[str, Any] | None = None,
) -> Experiment:
    """Download every URL on each configuration; the ideal is one request at full concurrency."""
    width = len(urls)
    with tempfile.TemporaryDirectory(prefix="gearshift-demo-") as root:
        slowest: list[float] = []  # per serial run: its slowest single download

        def jobs() -> list[Job]:
            return [(i, url, tempfile.mkdtemp(dir=root)) for i, url in enumerate(urls)]

        def serial() -> list[tuple[int, str]]:
            out, times = [], []
            for job in jobs():
                start = time.perf_counter()
                out.append(fetch(job))
                times.append(time.perf_counter() - start)
            slowest.append(max(times))
            return out

        rows = [
            _Row("serial (one after another, as in the source)", "serial", 1, serial),
            _Row(f"{width} threads (queue of workers, as in the source)", "threading+queue.Queue",
                 width, lambda: download_with_thread_queue(jobs(), width)),
            *_gearshift_rows(fetch, jobs, width),
        ]  # fmt: skip

        def ideal(serial_median: float) -> float:
            return serial_median / statistics.median(slowest)

        measured = _measure(rows, None, ideal, repeat, warmup, progress, "I/O")
        shutil.rmtree(root, ignore_errors=True)  # big files go now, not at interpreter exit
    bound = statistics.median(slowest)
    return Experiment(
        name="io",
        title=f"I/O-bound: download {width} image{'s' * (width > 1)}",
        workload=f"{width} HTTP downloads",
        measurements=measured,
        ideal_seconds=bound,
        ideal=f"the latency bound: the slowest single download ({bound:.2f} s), all at once",
        params={"urls": list(urls), **(params or {})},
    )


class _Row(NamedTuple):
    label: str
    strategy: str
    workers: int | None
    run: Callable[[], Any]
    choices: list[Any] | None = None  # auto: what it chose, run by run


def _gearshift_rows(
    fn: Callable[[Any], Any], items: Callable[[], list[Any]], width: int
) -> list[_Row]:
    """gearshift's threads and processes at `width`, one item per task as in the source; auto."""

    def run(strategy: str, w: int) -> Callable[[], Any]:
        return lambda: gmap(fn, items(), strategy=strategy, max_workers=w, chunksize=1)

    choices: list[Any] = []
    return [
        _Row(f"{width} threads (gearshift)", "threads", width, run("threads", width)),
        _Row(f"{width} processes (gearshift)", "processes", width, run("processes", width)),
        _Row("auto", "auto", None, lambda: run_auto(fn, items(), choices), choices),
    ]


def _measure(
    rows: list[_Row],
    expected: list[Any] | None,
    ideal_speedup: Callable[[float], float],
    repeat: int,
    warmup: bool,
    progress: Progress | None,
    kind: str,
) -> tuple[Measurement, ...]:
    """Time each row (serial first); check every result against `expected` or serial's first."""
    reference: list[Any] = list(expected or [])
    out: list[Measurement] = []
    for label, strategy, workers, run, choices in rows:

        def check(result: Any, label: str = label) -> None:
            if not reference:
                reference.extend(result)
            check_same(reference, label)(result)

        times = time_runs(
            run,
            repeat=repeat,
            warmup=warmup,
            check=check,
            progress=progress,
            label=f"{kind} · {label}",
        )
        base = out[0].median if out else statistics.median(times)
        ideal = ideal_speedup(base)
        if choices is not None:
            out.append(auto_row(times, choices[-repeat:], base, ideal))
            continue
        speedup = base / statistics.median(times)
        out.append(Measurement(label, strategy, workers, times, speedup, ideal))
    return tuple(out)


def run_demo(
    *,
    n: int = DEMO_N,
    repeat: int = 3,
    cpu: bool = True,
    io: bool = True,
    urls: Sequence[str] | None = None,
    latency: float = LATENCY,
    size_bytes: int = IMAGE_BYTES,
    bandwidth: float = BANDWIDTH,
    progress: Progress | None = None,
) -> DemoResult:
    """Both experiments (or one): the I/O one against a local ImageServer unless `urls` given."""

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"n must be a whole number >= 1, got {n!r}")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise UsageError(f"repeat must be a whole number >= 1, got {repeat!r}")
    for url in urls or ():
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise UsageError(f"url {url!r} is not http:// or https://: give a web address")
    facts, experiments = machine(), []  # the load average is taken before any work starts
    if cpu:
        experiments.append(cpu_experiment(n, repeat=repeat, progress=progress, facts=facts))
    if io and urls:
        experiments.append(io_experiment(urls, repeat=repeat, progress=progress))
    elif io:
        server = ImageServer(
            count=TASKS, size_bytes=size_bytes, latency=latency, bandwidth=bandwidth
        )
        with server:
            settings = {
                "server": "local ImageServer",
                "latency": latency,
                "size_bytes": size_bytes,
                "bandwidth": bandwidth,
            }
            experiments.append(
                io_experiment(server.urls, repeat=repeat, progress=progress, params=settings)
            )
    return DemoResult(facts, tuple(experiments), repeat)
