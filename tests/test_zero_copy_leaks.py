"""Zero-copy leaves nothing behind: no descriptor, mapping or memory, in the pool's process or its
workers, after a run, a worker's death, a timeout kill, Ctrl-C or the death of the pool's process.

Counted for real: /proc/<pid>/fd, /proc/<pid>/maps (memfds are named gearshift-<pool's pid>), RSS.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

import gearshift
from gearshift import TaskTimeout, WorkerDied
from gearshift.strategies.processes import _channel, _received
from gearshift.strategies.processes._launch import START_METHODS

pytestmark = pytest.mark.skipif(not _channel.ZERO_COPY, reason="memfds are Linux's")

MB = 1 << 20
SLACK = 24 * MB  # RSS wanders this much with pickling, threads and the allocator


def arrays(n: int, megabytes: int = 16) -> list[np.ndarray]:
    return [np.full(megabytes * MB // 8, float(i)) for i in range(n)]


def open_fds(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def memfds(pid: int | str = "self", owner: int | None = None) -> int:
    """Mappings and descriptors of gearshift's memfds (of the pool of process `owner`) in `pid`."""
    name = "memfd:gearshift" if owner is None else f"memfd:gearshift-{owner}"
    try:
        with open(f"/proc/{pid}/maps") as maps:
            found = sum(name in line for line in maps)
        fds = os.listdir(f"/proc/{pid}/fd")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0  # it has exited
    for fd in fds:
        with contextlib.suppress(OSError):  # closed meanwhile (the listing's own, for one)
            found += name in os.readlink(f"/proc/{pid}/fd/{fd}")
    return found


def rss(pid: int | None = None) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def settled() -> tuple[int, int]:
    gc.collect()
    return open_fds(), rss()


def double(a: np.ndarray) -> np.ndarray:
    return a * 2


def die_on_one(a: np.ndarray) -> float:
    if a[0] == 1.0:
        os._exit(3)
    return float(a[0])


def hang_on_one(a: np.ndarray) -> float:
    if a[0] == 1.0:
        time.sleep(60)
    return float(a[0])


def mark_and_hang(job: tuple[str, np.ndarray]) -> None:
    Path(job[0], str(os.getpid())).touch()
    time.sleep(60)


def worker_state(_: object = None) -> tuple[int, int, int, int]:
    return os.getpid(), open_fds(), memfds(), rss()


def touch(a: np.ndarray) -> float:
    return float(a.sum())


@pytest.mark.parametrize("method", START_METHODS)
def test_a_run_leaves_nothing_behind(method: str) -> None:
    data = arrays(6)
    pool = gearshift.Processes(2, start_method=method)
    gearshift.map(double, data[:1], strategy=pool)  # warm: the fork server, numpy's imports
    fds, before = settled()
    results = gearshift.map(double, data, strategy=pool)
    assert sum(float(r.sum()) for r in results) == 2 * sum(float(a.sum()) for a in data)
    assert memfds() >= 1 and rss() - before > 48 * MB  # the results, mapped and read
    del results
    assert settled()[0] == fds and memfds() == 0
    assert rss() - before < SLACK


@pytest.mark.parametrize("how", ["death", "timeout", "ctrl-c"])
def test_a_lost_worker_or_an_interrupt_leaves_nothing_behind(how: str, tmp_path: Path) -> None:
    data = arrays(4)
    pool = gearshift.Processes(2)
    gearshift.map(double, data[:1], strategy=pool)
    fds, before = settled()
    before_run = set(psutil.Process().children(recursive=True))  # a fork server, a cluster
    if how == "death":
        got = gearshift.map(die_on_one, data, strategy=pool, return_exceptions=True)
        assert isinstance(got[1], WorkerDied) and got[2:] == [2.0, 3.0]
    elif how == "timeout":
        got = gearshift.map(
            hang_on_one, data, strategy=pool, task_timeout=1.0, return_exceptions=True
        )
        assert isinstance(got[1], TaskTimeout) and got[2:] == [2.0, 3.0]
    else:
        jobs = [(str(tmp_path), a) for a in data]
        main = threading.main_thread().ident
        assert main is not None

        def press_ctrl_c() -> None:
            deadline = time.monotonic() + 30
            while len(os.listdir(tmp_path)) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            signal.pthread_kill(main, signal.SIGINT)

        threading.Thread(target=press_ctrl_c, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            gearshift.map(mark_and_hang, jobs, strategy=pool, chunksize=1)
    assert settled()[0] == fds and memfds() == 0
    assert rss() - before < SLACK
    workers = set(psutil.Process().children(recursive=True)) - before_run
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]


def double_or_die(a: np.ndarray) -> np.ndarray:
    if a[0] == 2.0:
        os._exit(3)  # right after item 1's big result left: drained from the socket, or read
    return a * 2


@pytest.mark.parametrize("chunksize", [1, 3])
def test_big_results_a_dead_worker_left_are_results_and_nothing_leaks(chunksize: int) -> None:
    data = arrays(6)
    pool = gearshift.Processes(1)
    gearshift.map(double, data[:1], strategy=pool)
    fds, before = settled()
    got = gearshift.map(
        double_or_die,
        data,
        strategy=pool,
        chunksize=chunksize,
        task_timeout=60.0,
        return_exceptions=True,
    )  # task_timeout: results per item, so the one before the death was sent
    assert isinstance(got[2], WorkerDied)
    assert [float(g[0]) for i, g in enumerate(got) if i != 2] == [0.0, 2.0, 6.0, 8.0, 10.0]
    del got
    assert settled()[0] == fds and memfds() == 0
    assert rss() - before < SLACK


def test_a_worker_over_max_memory_per_child_leaves_nothing_behind() -> None:
    data = arrays(6)
    pool = gearshift.Processes(1, max_memory_per_child="2MiB")  # over after every item
    gearshift.map(touch, data[:1], strategy=pool)
    fds, before = settled()
    got = gearshift.map(touch, data, strategy=pool, chunksize=3)
    assert got == [float(a.sum()) for a in data]
    assert settled()[0] == fds and memfds() == 0
    assert rss() - before < SLACK


def test_an_idle_pool_and_its_workers_keep_no_memfd_mapping_or_memory() -> None:
    with gearshift.Executor(1, strategy="processes") as ex:
        ex.submit(touch, np.zeros(10)).result(timeout=60)  # numpy imported
        pid, fds, mapped, before = ex.submit(worker_state).result(timeout=60)
        assert mapped == 0
        for a in arrays(3, megabytes=64):  # read whole: every page of each mapping faulted in
            assert ex.submit(touch, a).result(timeout=60) == float(a.sum())
        deadline = time.monotonic() + 10  # idle: the pool frees the memfds it kept to refill
        while memfds() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert memfds() == 0
        time.sleep(2 * _received.IDLE_SECONDS)  # ... and the worker, its mapping of one
        after = ex.submit(worker_state).result(timeout=60)
        assert after[:3] == (pid, fds, 0) and after[3] - before < SLACK


PARENT = """
import os, sys, numpy as np, gearshift
sys.path.insert(0, sys.argv[2])
from test_zero_copy_leaks import mark_and_hang
print(os.getpid(), flush=True)
data = [np.full(4 << 20, float(i)) for i in range(4)]
pool = gearshift.Processes(2, start_method=sys.argv[3])
gearshift.map(mark_and_hang, [(sys.argv[1], a) for a in data], strategy=pool, chunksize=1)
"""


@pytest.mark.parametrize("method", START_METHODS)
def test_the_death_of_the_pools_process_leaves_nothing_behind(tmp_path: Path, method: str) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    marks = tmp_path / "marks"
    marks.mkdir()
    child = subprocess.Popen(
        [sys.executable, str(script), str(marks), str(Path(__file__).parent), method],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        owner = int(child.stdout.readline())
        deadline = time.monotonic() + 60
        while len(os.listdir(marks)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = [psutil.Process(int(pid)) for pid in os.listdir(marks)]
        assert all(memfds(w.pid, owner) >= 1 for w in workers)  # each maps its input
        child.kill()
        child.wait()
        _, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive
        left = [pid for pid in psutil.pids() if memfds(pid, owner)]
        assert not left
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
