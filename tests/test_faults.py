"""Fault tolerance on real processes and threads: every item gets one outcome, in bounded time."""

from __future__ import annotations

import functools
import importlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import psutil
import pytest

import gearshift
from _running import Running
from gearshift import TaskFailed, TaskTimeout, WorkerDied
from gearshift.strategies.processes._launch import START_METHODS


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
    assert time.monotonic() - start < 15  # not 30: the stuck thread was abandoned
    assert isinstance(got[0], TaskTimeout) and got[0].index == 0
    assert "abandoned" in str(got[0])
    assert got[1:] == [1, 2, 3, 4]


@pytest.mark.parametrize("name", ["processes", "threads", "serial"])
def test_timeouts_are_per_item_inside_chunks(name: str) -> None:
    got = gearshift.map(
        hang_on_zero,
        range(8),
        strategy=name,
        chunksize=8,
        task_timeout=2.0,
        return_exceptions=True,
    )
    assert isinstance(got[0], TaskTimeout) and got[1:] == list(range(1, 8))


def test_threads_replace_an_abandoned_thread_and_keep_full_width() -> None:
    release = threading.Event()  # lets the abandoned thread end with the test
    running = Running(0.3)

    def hang_on_zero_else_count(x: int) -> int:
        if x == 0:
            release.wait(30)
            return x
        return running.sleep(x)

    try:
        got = gearshift.map(
            hang_on_zero_else_count,
            range(9),
            strategy="threads",
            max_workers=2,
            chunksize=1,
            task_timeout=0.5,
            return_exceptions=True,
        )
    finally:
        release.set()
    assert isinstance(got[0], TaskTimeout) and got[1:] == list(range(1, 9))
    # While item 0 hangs only one thread runs the others; after its deadline, two do again.
    assert running.peak == 2


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


def hang_once_or_always(x: int, folder: str) -> int:
    marker = Path(folder, str(x))
    if x == 1 or (x == 2 and not marker.exists()):  # 1 hangs every time, 2 only the first
        marker.write_text("")
        time.sleep(10)
    return x


@pytest.mark.parametrize("name", ["processes", "threads", "serial"])
def test_retries_cover_timeouts_and_count_attempts(name: str, tmp_path: Path) -> None:
    it = gearshift.imap(
        functools.partial(hang_once_or_always, folder=str(tmp_path)),
        range(4),
        strategy=name,
        max_workers=2,
        chunksize=1,
        task_timeout=0.5,
        retries=1,
        return_exceptions=True,
    )
    got = list(it)
    assert isinstance(got[1], TaskTimeout) and got[1].attempts == 2
    assert [got[0], *got[2:]] == [0, 2, 3]
    assert it.statistics().tasks_retried == 2


def die_or_raise(x: int) -> int:
    if x == 1:
        os._exit(1)
    if x == 2:
        raise ValueError("not retried")
    return x


def test_retry_on_can_name_worker_deaths() -> None:
    got = gearshift.map(
        die_or_raise,
        range(4),
        strategy="processes",
        chunksize=1,
        retries=2,
        retry_on=WorkerDied,
        return_exceptions=True,
    )
    assert isinstance(got[1], WorkerDied) and got[1].attempts == 3
    assert isinstance(got[2], TaskFailed) and got[2].attempts == 1
    assert [got[0], got[3]] == [0, 3]


def test_replacement_workers_run_the_initializer(tmp_path: Path) -> None:
    def init(folder: str) -> None:
        Path(folder, str(os.getpid())).write_text("")

    def die_on_odd(x: int) -> int:
        if x % 2:
            os._exit(1)
        return os.getpid()

    got = gearshift.map(
        die_on_odd,
        range(5),
        strategy="processes",
        max_workers=1,
        chunksize=1,
        initializer=init,
        initargs=(str(tmp_path),),
        return_exceptions=True,
    )
    assert [type(g) for g in got[1::2]] == [WorkerDied, WorkerDied]
    pids = {got[1].pid, got[3].pid, *got[0::2]}
    assert len(pids) == 3  # the first worker and its two replacements
    assert {p.name for p in tmp_path.iterdir()} == {str(p) for p in pids}


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
    print(f"printed {x}\n", end="", flush=True)  # one write, not interleaved with another's
    return x


@pytest.mark.parametrize("method", START_METHODS)
def test_worker_logging_reaches_the_parents_handlers(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str], method: str
) -> None:
    strategy = gearshift.Processes(2, start_method=method)
    with caplog.at_level(logging.WARNING):
        assert gearshift.map(log_and_print, [1, 2], strategy=strategy) == [1, 2]
    messages = [r.getMessage() for r in caplog.records if r.name == "gearshift.test.worker"]
    assert sorted(messages) == ["worker saw 1", "worker saw 2"]
    assert {"printed 1", "printed 2"} <= set(capfd.readouterr().out.splitlines())


LAZY_LOGGING_MODULE = """
def log_info(x):
    import logging  # only now: the worker had no reason to import it before

    logging.getLogger("gearshift.test.lazy").info("lazy %s", x)
    return x
"""


@pytest.mark.parametrize("method", START_METHODS)
def test_the_first_record_of_a_task_that_imports_logging_is_forwarded(
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    method: str,
) -> None:
    (tmp_path / "lazy_logging_task.py").write_text(LAZY_LOGGING_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))  # workers get this sys.path
    task = importlib.import_module("lazy_logging_task").log_info  # pickled by reference
    strategy = gearshift.Processes(2, start_method=method)
    with caplog.at_level(logging.INFO, logger="gearshift.test.lazy"):
        assert gearshift.map(task, range(4), strategy=strategy, chunksize=2) == [0, 1, 2, 3]
    messages = [r.getMessage() for r in caplog.records if r.name == "gearshift.test.lazy"]
    assert sorted(messages) == ["lazy 0", "lazy 1", "lazy 2", "lazy 3"]


PRINT_THEN_FAIL_SCRIPT = """
import os, sys, time, gearshift
def task(x):
    print(f"task {x} started\\n", end="")  # one write: workers share the pipe
    if x == 1:
        time.sleep(30)
    if x == 2:
        os._exit(3)
    return x
strategy = gearshift.Processes(2, start_method=sys.argv[1])
got = gearshift.map(task, range(4), strategy=strategy, task_timeout=1, return_exceptions=True)
print([type(g).__name__ for g in got], flush=True)
"""


@pytest.mark.parametrize("method", START_METHODS)
def test_what_a_task_printed_before_it_hung_or_died_is_not_lost(
    tmp_path: Path, method: str
) -> None:
    script = tmp_path / "print_then_fail.py"
    script.write_text(PRINT_THEN_FAIL_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    out = subprocess.run(  # stdout is a pipe, so block-buffered unless workers say otherwise
        [sys.executable, str(script), method],
        capture_output=True,
        text=True,
        timeout=50,
        env=env,
        check=True,
    ).stdout.splitlines()
    assert sorted(out[:-1]) == [f"task {x} started" for x in range(4)]
    assert out[-1] == "['int', 'TaskTimeout', 'WorkerDied', 'int']"


def inner_map(x: int) -> tuple[int, int]:
    it = gearshift.imap(abs, [-x, x], strategy="processes")
    total = sum(it)
    return total, it.statistics().workers_started


def test_nested_map_runs_with_one_inner_worker() -> None:
    got = gearshift.map(inner_map, [1, 2], strategy="processes")
    assert got == [(2, 1), (4, 1)]


@pytest.mark.parametrize("name", ["threads", "serial"])
def test_nested_map_works_in_process_strategies(name: str) -> None:
    def inner(x: int) -> int:
        return sum(gearshift.map(abs, [-x, x], strategy=name, max_workers=2))

    assert gearshift.map(inner, [1, 2, 3], strategy=name, max_workers=2) == [2, 4, 6]


CTRL_C_SCRIPT = """
import os, sys, time, gearshift
SECONDS, RELEASE = float(sys.argv[2]), sys.argv[3]  # globals: they travel with slow
def slow(x):  # until RELEASE exists, for at most SECONDS
    print(f"started {x}\\n", end="", flush=True)  # one write: workers share the pipe
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline and not os.path.exists(RELEASE):
        time.sleep(0.01)
    return x
name = sys.argv[1]
strategy = gearshift.Processes(2, start_method=name) if name in ("forkserver", "spawn") else name
print(os.getpid(), flush=True)
try:
    gearshift.map(slow, range(8), strategy=strategy, max_workers=2, chunksize=1)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


def _is_server(proc: psutil.Process) -> bool:
    try:
        return "_forkserver.py" in " ".join(proc.cmdline())
    except psutil.Error:
        return False


def _start_ctrl_c_script(tmp_path: Path, name: str, seconds: float) -> subprocess.Popen[str]:
    """The script in a session of its own, so that Ctrl-C can go to its whole process group,
    as a terminal sends it; returns once its pid line is read. Its items end when the file
    tmp_path / "release" exists, or after `seconds`."""
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_SCRIPT)
    child = subprocess.Popen(
        [sys.executable, str(script), name, str(seconds), str(tmp_path / "release")],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == str(child.pid)
    return child


@pytest.mark.parametrize("method", START_METHODS)
def test_one_ctrl_c_kills_the_workers_instead_of_waiting_for_them(
    tmp_path: Path, method: str
) -> None:
    child = _start_ctrl_c_script(tmp_path, method, 60)
    assert child.stdout is not None
    try:
        started = {child.stdout.readline().strip() for _ in range(2)}
        assert started == {"started 0", "started 1"}  # both workers are inside a task
        servers = [p for p in psutil.Process(child.pid).children() if _is_server(p)]
        workers = [  # the fork server's children, or the script's own
            p for p in psutil.Process(child.pid).children(recursive=True) if p not in servers
        ]
        assert len(workers) == 2 and len(servers) == (method == "forkserver")
        os.killpg(child.pid, signal.SIGINT)  # one press of Ctrl-C in a terminal
        assert child.wait(20) == 130  # well before the 60-second items could end
        assert child.stdout.read().strip() == "interrupted"
        _, alive = psutil.wait_procs(workers + servers, timeout=10)  # the server exits too
        assert not alive
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


def _line_within(stream: IO[str], seconds: float) -> str:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    return box[0] if box else f"(no line within {seconds} s)"


@pytest.mark.parametrize(("name", "width"), [("threads", 2), ("serial", 1)])
def test_one_ctrl_c_interrupts_in_process_strategies_and_runs_nothing_more(
    tmp_path: Path, name: str, width: int
) -> None:
    child = _start_ctrl_c_script(tmp_path, name, 60)
    assert child.stdout is not None
    try:
        started = {child.stdout.readline().strip() for _ in range(width)}
        assert started == {f"started {x}" for x in range(width)}
        os.killpg(child.pid, signal.SIGINT)
        # raised at once: the running items cannot end before the release file exists
        assert _line_within(child.stdout, 20).strip() == "interrupted"
        (tmp_path / "release").touch()  # threads end their item, then the program exits
        assert child.wait(20) == 130
        assert child.stdout.read() == ""  # the queued items never started
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


EXECUTOR_CTRL_C_SCRIPT = """
import os, sys, time, gearshift
def slow():
    print("started", flush=True)
    time.sleep(60)
print(os.getpid(), flush=True)
try:
    with gearshift.Executor(2, strategy="processes") as ex:
        futures = [ex.submit(slow) for _ in range(4)]
        futures[0].result()
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


def test_one_ctrl_c_inside_an_executor_block_kills_its_workers_instead_of_waiting(
    tmp_path: Path,
) -> None:
    script = tmp_path / "executor_ctrl_c.py"
    script.write_text(EXECUTOR_CTRL_C_SCRIPT)
    child = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == str(child.pid)
        seen = ""
        while seen.count("started") < 2:  # two workers share the pipe: lines may interleave
            line = child.stdout.readline()
            assert line, f"the script ended before both tasks started: {seen!r}"
            seen += line
        os.killpg(child.pid, signal.SIGINT)
        assert child.wait(20) == 130  # not after the tasks: 2 x 60 s
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
        gearshift.map(fail_first, [0] + [60.0] * 6, strategy="processes", chunksize=1)
    assert time.monotonic() - start < 30  # the 60-second tasks were killed, not awaited


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("name", ["threads", "serial"])
def test_keyboard_interrupt_in_a_task_stops_in_process_strategies(
    name: str, exc: type[BaseException]
) -> None:
    def interrupt(x: int) -> int:
        if x == 2:
            raise exc
        return x

    with pytest.raises(exc):
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
