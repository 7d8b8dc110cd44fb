"""Big numpy arrays to process workers: zero-copy against threads, joblib and the standard pool.

    python bench/arrays.py [--arrays 8] [--mb 100] [--repeats 3] [--threshold]

8 float64 arrays of 100 MB, 2 workers (one per core here), side by side in one run:
  (a) f(a) = float(np.sqrt(a).sum()): numpy releases the GIL, so threads are the yardstick:
      serial, threads, gearshift processes (memfds, zero-copy), the same with zero_copy_bytes=None
      (the socket), ProcessPoolExecutor (pickles through a pipe), joblib (loky, auto-memmap of
      arrays over 1 MB into /dev/shm);
  (b) a pure-Python loop over a slice of each array: holds the GIL, so processes must pay;
  and what strategy="auto" picks for each, priced by profile() as the pool really ships.
Every pool is started and has run once before it is timed (warm); medians of --repeats.
The pool's memfds are freed after 0.5 s idle, so "gearshift processes" runs cold, after the
others; "... again at once" is the same pool right after it, reusing its memfds (warm).
Memory: the peak of parent + workers above their idle footprint (RssAnon of each, plus the
growth of the system's Shmem, which holds every memfd and /dev/shm page once, mapped or not),
against the arrays' size (1.00x: the arrays alone), sampled in untimed passes: on (a), where
np.sqrt makes an array-sized temporary in each running task, and on a.sum(), which makes none
(what shipping alone costs).
--threshold: the zero_copy_bytes sweep the default was tuned by (per-item trip, on vs off).
--copies: what one 100 MB buffer costs to put into a memfd and to read from it, each way the
pool could (_channel.write, _received.attach chose by it).
"""

from __future__ import annotations

import argparse
import mmap
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # so workers find _workloads

import _workloads
import numpy as np
import psutil
from joblib import Parallel, delayed
from joblib.externals.loky import reusable_executor

import gearshift
from gearshift.strategies.processes._pool import ProcessPool

WORKERS = 2
MB = 1_000_000
Runner = Callable[[Callable[[Any], Any], list[Any]], list[Any]]


class _Kept(gearshift.Processes):
    """Processes whose every map runs on one already-started pool (warm, as loky's is)."""

    def __init__(self, zero_copy_bytes: int | None) -> None:
        super().__init__(WORKERS, zero_copy_bytes=zero_copy_bytes)
        self.pool = ProcessPool(WORKERS, zero_copy_bytes=zero_copy_bytes)
        self.pool.shutdown = lambda *_, **__: None  # type: ignore[method-assign]

    def executor(self, **_: Any) -> Executor:
        return self.pool

    def close(self) -> None:
        ProcessPool.shutdown(self.pool)


@contextmanager
def runners() -> Iterator[dict[str, Runner]]:
    zero, socket = _Kept(gearshift.Processes().zero_copy_bytes), _Kept(None)
    ppe = ProcessPoolExecutor(WORKERS)
    parallel = Parallel(n_jobs=WORKERS)  # max_nbytes="1M", mmap_mode="r": its defaults
    contenders: dict[str, Runner] = {
        "serial": lambda fn, items: [fn(x) for x in items],
        "threads": lambda fn, items: gearshift.map(fn, items, strategy="threads", max_workers=2),
        "gearshift processes": lambda fn, items: gearshift.map(fn, items, strategy=zero),
        "... again at once": lambda fn, items: gearshift.map(fn, items, strategy=zero),
        "... through the socket": lambda fn, items: gearshift.map(fn, items, strategy=socket),
        "ProcessPoolExecutor": lambda fn, items: list(ppe.map(fn, items)),
        "joblib": lambda fn, items: parallel(delayed(fn)(x) for x in items),
    }
    try:
        warm = [np.ones(MB // 8) for _ in range(2 * WORKERS)]  # numpy imported in every worker
        for run in contenders.values():
            run(_workloads.sqrt_sum, warm)
        yield contenders
    finally:
        zero.close()
        socket.close()
        ppe.shutdown()
        executor = reusable_executor._executor
        if executor is not None:
            executor.shutdown(wait=True)


class PeakMemory:
    """Samples parent + workers every few ms: the peak of (RssAnon summed) + (Shmem's growth)."""

    def __init__(self) -> None:
        self.base = self._now()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def extra(self) -> int:
        return self.peak - self.base

    def _watch(self) -> None:
        while not self._stop.wait(0.003):
            self.peak = max(self.peak, self._now())

    @staticmethod
    def _now() -> int:
        me = psutil.Process()
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            total += _kb(f"/proc/{proc.pid}/status", "RssAnon:")
        return 1024 * (total + _kb("/proc/meminfo", "Shmem:"))


def _kb(path: str, field: str) -> int:
    try:
        with open(path) as lines:
            for line in lines:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:  # a process that just exited
        pass
    return 0


def measure(contenders: dict[str, Runner], fn: Any, items: list[Any], repeats: int) -> dict:
    """Median seconds per contender; contenders take turns within each repeat (drift is shared)."""
    expected = [fn(x) for x in items]
    times: dict[str, list[float]] = {name: [] for name in contenders}
    loads = []
    for _ in range(repeats):
        loads.append(os.getloadavg()[0])
        for name, run in contenders.items():
            start = time.perf_counter()
            got = run(fn, items)
            times[name].append(time.perf_counter() - start)
            if got != expected:
                raise SystemExit(f"{name}: result differs from serial's")
    print(f"\n  load average before each repeat: {', '.join(f'{x:.1f}' for x in loads)}")
    return {name: statistics.median(runs) for name, runs in times.items()}


def peaks(contenders: dict[str, Runner], fn: Any, items: list[Any]) -> dict[str, float]:
    """Peak memory above the idle processes, per contender, against the items' size (1.00x:
    the items alone), in an untimed pass (sampling costs CPU)."""
    data = sum(a.nbytes for a in items)
    ratios = {}
    for name, run in contenders.items():
        with PeakMemory() as memory:
            run(fn, items)
        ratios[name] = (data + memory.extra) / data
    return ratios


def report(title: str, rows: dict[str, float], base: str, memory: dict[str, float]) -> None:
    print(f"\n{title}")
    print(f"  {'contender':<24}{'median s':>9}{'vs serial':>11}{'vs ' + base:>13}{'peak mem':>10}")
    for name, seconds in rows.items():
        print(
            f"  {name:<24}{seconds:>9.3f}{rows['serial'] / seconds:>10.2f}x"
            f"{seconds / rows[base]:>12.2f}x" + (f"{memory[name]:>9.2f}x" if name in memory else "")
        )


def check(label: str, ok: bool, detail: str) -> bool:
    print(f"{'PASS' if ok else 'FAIL'}  {label}: {detail}")
    return ok


def auto_choice(fn: Any, items: list[Any]) -> str:
    it = gearshift.imap(fn, items, strategy="auto")
    list(it)
    choice = it.choice
    return "?" if choice is None else f"{choice.strategy} -- {choice.why}"


def threshold_sweep() -> None:
    """Per-item trip of an array of each size with zero-copy on and off (warm pools)."""
    print("\nzero_copy_bytes sweep: ms per item, nbytes(a) over 64 arrays, 2 workers")
    print(f"  {'array':>10}{'memfd':>9}{'socket':>9}{'socket/memfd':>14}")
    zero, socket = _Kept(1), _Kept(None)
    try:
        for size in [16_384, 65_536, 131_072, 262_144, 524_288, 1 << 20, 4 << 20, 16 << 20]:
            items = [np.ones(size // 8) for _ in range(64)]
            best = {}
            for name, strategy in (("memfd", zero), ("socket", socket)):
                runs = []
                for _ in range(5):
                    start = time.perf_counter()
                    gearshift.map(_workloads.nbytes, items, strategy=strategy, chunksize=1)
                    runs.append(time.perf_counter() - start)
                best[name] = statistics.median(runs) / len(items) * 1000
            ratio = best["socket"] / best["memfd"]
            print(f"  {size:>10,}{best['memfd']:>9.3f}{best['socket']:>9.3f}{ratio:>13.2f}x")
    finally:
        zero.close()
        socket.close()


def copies(size: int = 100 * MB) -> None:
    """Milliseconds (median of 7) to fill a memfd with an array, and to read it back mapped."""
    a = np.random.default_rng(0).random(size // 8)
    raw = memoryview(a).cast("B")
    populate = mmap.MAP_SHARED | mmap.MAP_POPULATE

    def fill(fd: int) -> None:
        done = 0
        while done < size:
            done += os.pwrite(fd, raw[done:], done)

    def new(map_flags: int | None) -> None:
        fd = os.memfd_create("bench")
        os.ftruncate(fd, size)
        if map_flags is None:
            fill(fd)
        else:
            with mmap.mmap(fd, size, map_flags) as area:
                area[:] = raw
        os.close(fd)

    fd = os.memfd_create("bench")
    os.ftruncate(fd, size)
    fill(fd)
    kept = mmap.mmap(fd, size, mmap.MAP_SHARED)
    kept[:] = raw
    view = np.frombuffer(mmap.mmap(fd, size, mmap.MAP_SHARED, prot=mmap.PROT_READ))

    def remap(map_flags: int) -> None:
        with mmap.mmap(fd, size, map_flags) as area:
            area[:] = raw

    def read(map_flags: int) -> None:
        area = mmap.mmap(fd, size, map_flags, prot=mmap.PROT_READ)
        _workloads.sqrt_sum(np.frombuffer(area))

    cases: dict[str, Callable[[], object]] = {
        "new memfd: pwrite": lambda: new(None),
        "new memfd: mmap + copy": lambda: new(mmap.MAP_SHARED),
        "refill: pwrite": lambda: fill(fd),
        "refill: new mapping + copy": lambda: remap(mmap.MAP_SHARED),
        "refill: new mapping, MAP_POPULATE, + copy": lambda: remap(populate),
        "refill: through a mapping kept": lambda: kept.__setitem__(slice(None), raw),
        "sqrt-sum, new mapping": lambda: read(mmap.MAP_SHARED),
        "sqrt-sum, new mapping, MAP_POPULATE": lambda: read(populate),
        "sqrt-sum, a mapping kept": lambda: _workloads.sqrt_sum(view),
        "sqrt-sum, private memory": lambda: _workloads.sqrt_sum(a),
    }
    print(f"\n{size // MB} MB into and out of a memfd, ms (median of 7):")
    for name, case in cases.items():
        runs = []
        for _ in range(7):
            start = time.perf_counter()
            case()
            runs.append(time.perf_counter() - start)
        print(f"  {name:<44}{statistics.median(runs) * 1000:>7.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arrays", type=int, default=8)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threshold", action="store_true", help="the zero_copy_bytes sweep")
    parser.add_argument("--copies", action="store_true", help="a memfd's copies, each way")
    args = parser.parse_args()
    _workloads.compile_gearshift()
    print(f"{_workloads.machine()}; {WORKERS} workers; {time.strftime('%Y-%m-%d %H:%M')}")
    if args.threshold:
        threshold_sweep()
        return 0
    if args.copies:
        copies()
        return 0
    rng = np.random.default_rng(0)
    arrays = [rng.random(args.mb * MB // 8) for _ in range(args.arrays)]
    with runners() as contenders:
        a = measure(contenders, _workloads.sqrt_sum, arrays, args.repeats)
        memory = peaks(contenders, _workloads.sqrt_sum, arrays)
        report(f"(a) sqrt-sum of {args.arrays} x {args.mb} MB arrays", a, "threads", memory)
        alone = peaks(contenders, _workloads.array_sum, arrays)
        print(
            "  peak mem, shipping alone (a.sum(): no temporary): "
            + ", ".join(f"{name} {ratio:.2f}x" for name, ratio in alone.items())
        )
        gil = {name: contenders[name] for name in ("serial", "threads", "gearshift processes")}
        b = measure(gil, _workloads.py_slice_sum, arrays, max(1, args.repeats - 1))
        report("(b) a pure-Python loop over a slice of each", b, "serial", {})
    print("\nauto's choice, priced as the pool ships:")
    print(f"  (a) {auto_choice(_workloads.sqrt_sum, arrays)}")
    print(f"  (b) {auto_choice(_workloads.py_slice_sum, arrays)}")
    load = os.getloadavg()[0]
    print(f"\nload average {load:.1f} at the end" + (" (contended)" if load > 1.5 else ""))
    ours, threads, jl = a["gearshift processes"], a["threads"], a["joblib"]
    warm = a["... again at once"]
    results = [
        check(
            "(a) processes within 2x of threads",
            ours <= 2 * threads,
            f"{ours / threads:.2f}x (warm: {warm / threads:.2f}x)",
        ),
        check(
            "(a) processes >= 3x faster than joblib",
            jl >= 3 * ours,
            f"{jl / ours:.1f}x (warm: {jl / warm:.1f}x)",
        ),
        check(
            "(a) peak memory <= 1.3x the arrays' size, numpy's temporaries included",
            memory["gearshift processes"] <= 1.3,
            f"{memory['gearshift processes']:.2f}x (threads, which ship nothing: "
            f"{memory['threads']:.2f}x)",
        ),
        check(
            "(a) peak memory <= 1.3x the arrays' size, shipping alone",
            alone["gearshift processes"] <= 1.3,
            f"{alone['gearshift processes']:.2f}x",
        ),
        check(
            "(b) processes >= 1.8x serial on 2 cores",
            b["serial"] >= 1.8 * b["gearshift processes"],
            f"{b['serial'] / b['gearshift processes']:.2f}x",
        ),
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
