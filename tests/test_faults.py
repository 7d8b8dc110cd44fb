"""Fault tolerance on real processes and threads: every item gets one outcome, in bounded time."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

import gearshift
from gearshift import TaskFailed, TaskTimeout, WorkerDied


def hang_on_zero(x: int) -> int:
    if x == 0:
        time.sleep(30)
    time.sleep(0.05)
    return x


@pytest.mark.parametrize("name", ["threads", "serial"])
def test_unkillable_strategies_report_timeouts_and_go_on(name: str) -> None:
    start = time.monotonic()
    got = gearshift.map(
        hang_on_zero,
        range(5),
        strategy=name,
        max_workers=2,
        task_timeout=0.5,
        return_exceptions=True,
        chunksize=1,
    )
    assert time.monotonic() - start < 5  # not 30: the stuck thread was abandoned
    assert isinstance(got[0], TaskTimeout) and got[0].index == 0
    assert "abandoned" in str(got[0])
    assert got[1:] == [1, 2, 3, 4]


def test_timeouts_are_per_item_inside_chunks() -> None:
    got = gearshift.map(
        hang_on_zero,
        range(8),
        strategy="processes",
        chunksize=8,
        task_timeout=2.0,
        return_exceptions=True,
    )
    assert isinstance(got[0], TaskTimeout) and got[1:] == list(range(1, 8))


def segfault(x: int) -> int:
    if x == 1:
        import ctypes

        ctypes.string_at(0)  # reads address 0: SIGSEGV
    return x


def test_segfault_is_reported_with_its_signal() -> None:
    got = gearshift.map(segfault, range(3), strategy="processes", return_exceptions=True)
    assert isinstance(got[1], WorkerDied) and got[1].signal_name == "SIGSEGV"
    assert got[0] == 0 and got[2] == 2


def test_death_in_a_chunk_isolates_the_poison_item_and_reruns_the_rest() -> None:
    def die_on_seven(x: int) -> int:
        if x == 7:
            os._exit(1)
        return x

    it = gearshift.imap(
        die_on_seven, range(40), strategy="processes", chunksize=10, return_exceptions=True
    )
    got = list(it)
    assert [i for i, g in enumerate(got) if isinstance(g, WorkerDied)] == [7]
    assert [g for g in got if not isinstance(g, WorkerDied)] == [x for x in range(40) if x != 7]
    assert it.statistics().tasks_failed == 1


def test_retries_cover_worker_deaths(tmp_path: Path) -> None:
    marker = tmp_path / "died-once"

    def die_once(x: int) -> int:
        if x == 1 and not marker.exists():
            marker.write_text("")
            os._exit(9)
        return x

    it = gearshift.imap(die_once, range(3), strategy="processes", retries=1)
    assert list(it) == [0, 1, 2]
    assert it.statistics().tasks_retried == 1


def test_max_tasks_per_child_recycles_workers_and_reruns_the_initializer(tmp_path: Path) -> None:
    def init(folder: str) -> None:
        Path(folder, str(os.getpid())).write_text("")

    with gearshift.Executor(
        1, strategy="processes", max_tasks_per_child=2, initializer=init, initargs=(str(tmp_path),)
    ) as ex:
        pids = [ex.submit(os.getpid).result(timeout=30) for _ in range(6)]
        stats = ex.statistics()
    assert len(set(pids)) == 3
    assert {p.name for p in tmp_path.iterdir()} == {str(p) for p in set(pids)}
    assert stats.workers_started == 3 and stats.workers_lost == 0


def test_max_tasks_per_child_splits_chunks() -> None:
    it = gearshift.imap(
        lambda _: os.getpid(),
        range(9),
        strategy=gearshift.Processes(1, max_tasks_per_child=3),
        chunksize=9,
    )
    assert len(set(it)) == 3


def test_a_200_mb_result_arrives_whole() -> None:
    got = gearshift.map(lambda n: b"x" * n, [200 * 1024 * 1024], strategy="processes")
    assert len(got[0]) == 200 * 1024 * 1024


def close_streams(x: int) -> int:
    if x == 0:
        sys.stdout.close()
    if x == 1:
        os.close(0)
        os.close(1)
    return x


def test_tasks_that_close_stdin_and_stdout_do_not_hang_the_pool() -> None:
    assert gearshift.map(close_streams, range(4), strategy="processes", chunksize=1) == [0, 1, 2, 3]


def fork_and_return(x: int) -> int:
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
    return x


def test_a_task_that_forks_does_not_confuse_the_pool() -> None:
    assert gearshift.map(fork_and_return, range(4), strategy="processes") == [0, 1, 2, 3]


def log_and_print(x: int) -> int:
    logging.getLogger("gearshift.test.worker").warning("worker saw %s", x)
    print(f"printed {x}", flush=True)
    return x


def test_worker_logging_reaches_the_parents_handlers(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.WARNING):
        assert gearshift.map(log_and_print, [1, 2], strategy="processes") == [1, 2]
    messages = [r.getMessage() for r in caplog.records if r.name == "gearshift.test.worker"]
    assert sorted(messages) == ["worker saw 1", "worker saw 2"]
    assert {"printed 1", "printed 2"} <= set(capfd.readouterr().out.splitlines())


def inner_map(x: int) -> tuple[int, int]:
    it = gearshift.imap(abs, [-x, x], strategy="processes")
    total = sum(it)
    return total, it.statistics().workers_started


def test_nested_map_runs_with_one_inner_worker() -> None:
    got = gearshift.map(inner_map, [1, 2], strategy="processes")
    assert got == [(2, 1), (4, 1)]


CTRL_C_SCRIPT = """
import os, sys, time, gearshift
def slow(x):
    time.sleep(60)
    return x
print(os.getpid(), flush=True)
try:
    gearshift.map(slow, range(8), strategy="processes", chunksize=1)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


def _is_server(proc: psutil.Process) -> bool:
    try:
        return "_forkserver.py" in " ".join(proc.cmdline())
    except psutil.Error:
        return False


def test_one_ctrl_c_stops_everything_within_two_seconds(tmp_path: Path) -> None:
    script = tmp_path / "ctrl_c.py"
    script.write_text(textwrap.dedent(CTRL_C_SCRIPT))
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        child.stdout.readline()
        deadline = time.monotonic() + 20
        workers: list[psutil.Process] = []
        servers: list[psutil.Process] = []
        while len(workers) < 2 and time.monotonic() < deadline:
            servers = [p for p in psutil.Process(child.pid).children() if _is_server(p)]
            workers = [  # the fork server's children, or the script's own
                p for p in psutil.Process(child.pid).children(recursive=True) if p not in servers
            ]
            time.sleep(0.05)
        assert len(workers) == 2
        time.sleep(0.3)  # let them start their tasks
        start = time.monotonic()
        child.send_signal(signal.SIGINT)
        assert child.wait(10) == 130
        assert time.monotonic() - start < 2.0
        assert child.stdout.read().strip() == "interrupted"
        _, alive = psutil.wait_procs(workers + servers, timeout=2)  # the server exits too
        assert not alive
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


def test_failure_cancels_the_rest_promptly() -> None:
    def fail_first(x: float) -> float:
        if x == 0:
            raise RuntimeError("boom")
        time.sleep(x)
        return x

    start = time.monotonic()
    with pytest.raises(TaskFailed):
        gearshift.map(fail_first, [0] + [10.0] * 6, strategy="processes", chunksize=1)
    assert time.monotonic() - start < 5  # the 10-second tasks were killed, not awaited


@pytest.mark.parametrize("name", ["threads", "serial"])
def test_keyboard_interrupt_in_a_task_stops_in_process_strategies(name: str) -> None:
    def interrupt(x: int) -> int:
        if x == 2:
            raise KeyboardInterrupt
        return x

    with pytest.raises(KeyboardInterrupt):
        gearshift.map(interrupt, range(5), strategy=name, return_exceptions=True)


def test_keyboard_interrupt_in_a_task_with_a_timeout_is_not_a_timeout() -> None:
    def interrupt(x: int) -> int:
        if x == 1:
            raise KeyboardInterrupt
        return x

    with pytest.raises(KeyboardInterrupt):
        gearshift.map(interrupt, range(3), strategy="threads", task_timeout=5)


def test_timeouts_start_when_the_worker_is_ready_not_while_it_starts() -> None:
    def slow_init() -> None:
        time.sleep(1.5)  # a slow start (imports, a loaded machine) is not the task's time

    got = gearshift.map(
        abs, [-1, -2, -3], strategy="processes", task_timeout=0.5, initializer=slow_init
    )
    assert got == [1, 2, 3]
