"""The process strategy's own promises: real worker deaths, pickling failures, no /dev/shm."""

from __future__ import annotations

import importlib
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import BrokenExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import psutil
import pytest

import gearshift
from _namespaces import run_without_dev_shm
from gearshift import TaskFailed, TaskTimeout, UsageError, WorkerDied
from gearshift.errors import RemoteError, WorkerStartFailed
from gearshift.strategies.processes import _launch, _losses
from gearshift.strategies.processes._launch import START_METHODS, default_start_method
from gearshift.strategies.processes._pool import ProcessPool


def exit_on_five(x: int) -> int:
    if x == 5:
        os._exit(3)
    return x


def kill_self_on_two(x: int) -> int:
    if x == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def sleep_on_one(x: int) -> int:
    if x == 1:
        time.sleep(60)
    return x


def test_worker_death_fails_only_the_item_that_killed_it() -> None:
    it = gearshift.imap(exit_on_five, range(20), strategy="processes", return_exceptions=True)
    got = list(it)
    error = got[5]
    assert isinstance(error, WorkerDied) and error.index == 5 and error.exitcode == 3
    assert got[:5] + got[6:] == [x for x in range(20) if x != 5]
    stats = it.statistics()
    assert stats.workers_lost >= 1 and stats.tasks_failed == 1


def test_killed_worker_is_named_by_its_signal() -> None:
    got = gearshift.map(kill_self_on_two, range(4), strategy="processes", return_exceptions=True)
    assert isinstance(got[2], WorkerDied)
    assert got[2].signal_name == "SIGKILL" and "SIGKILL" in str(got[2])
    assert got[2].pid is not None and not psutil.pid_exists(got[2].pid)


def test_pool_survives_deaths_and_keeps_working() -> None:
    with gearshift.Executor(2, strategy="processes") as ex:
        dead = ex.submit(exit_on_five, 5)
        with pytest.raises(WorkerDied):
            dead.result(timeout=30)
        assert ex.submit(exit_on_five, 4).result(timeout=30) == 4


def test_task_timeout_kills_only_the_stuck_worker() -> None:
    start = time.monotonic()
    it = gearshift.imap(
        sleep_on_one, range(6), strategy="processes", task_timeout=1.0, return_exceptions=True
    )
    got = list(it)
    assert time.monotonic() - start < 20
    assert isinstance(got[1], TaskTimeout) and isinstance(got[1], TimeoutError)
    assert got[1].index == 1 and got[1].timeout == 1.0
    assert [g for i, g in enumerate(got) if i != 1] == [0, 2, 3, 4, 5]
    assert it.statistics().workers_lost == 1  # killed, and a replacement ran the rest


SLOW_IMPORT_MODULE = """
import os, time
if os.environ.get("GEARSHIFT_WORKER"):  # in a worker: a heavy import (torch, on a busy machine)
    time.sleep({seconds})
def identity(x):
    return x
"""


def _slow_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seconds: float) -> Any:
    """A function whose module takes `seconds` to import in each new worker (not here)."""
    name = f"slow_import_{int(seconds * 1000)}"
    (tmp_path / f"{name}.py").write_text(SLOW_IMPORT_MODULE.format(seconds=seconds))
    monkeypatch.syspath_prepend(str(tmp_path))  # workers get this sys.path
    return importlib.import_module(name).identity


def test_importing_fns_module_in_a_worker_is_not_the_items_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = _slow_module(tmp_path, monkeypatch, 1.0)
    got = gearshift.map(identity, range(4), strategy="processes", task_timeout=0.3)
    assert got == [0, 1, 2, 3]


def test_a_module_that_never_finishes_importing_still_times_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_losses, "LOAD_SECONDS", 1.0)
    identity = _slow_module(tmp_path, monkeypatch, 60)
    start = time.monotonic()
    got = gearshift.map(
        identity, [7], strategy="processes", task_timeout=0.3, return_exceptions=True
    )
    assert time.monotonic() - start < 20
    assert isinstance(got[0], TaskTimeout) and "to load fn" in str(got[0])


def test_unpicklable_item_fails_only_that_item() -> None:
    items: list[object] = [1, threading.Lock(), 3]
    got = gearshift.map(lambda x: x, items, strategy="processes", return_exceptions=True)
    assert got[0] == 1 and got[2] == 3
    assert isinstance(got[1], TaskFailed) and "could not be pickled" in str(got[1])


def test_unpicklable_result_fails_only_that_item() -> None:
    def make(x: int) -> object:
        return threading.Lock() if x == 1 else x

    got = gearshift.map(make, range(3), strategy="processes", return_exceptions=True)
    assert got[0] == 0 and got[2] == 2
    assert isinstance(got[1], TaskFailed) and "could not be pickled" in str(got[1])


class BreaksUnpickling:
    """Pickles, but unpickling it raises (or exits, with `how=SystemExit`)."""

    def __init__(self, how: type[BaseException] = pickle.UnpicklingError) -> None:
        self.how = how

    def __reduce__(self) -> object:
        return _raise, (self.how,)


def _raise(how: type[BaseException]) -> None:
    raise how(1)


@pytest.mark.parametrize("how", [pickle.UnpicklingError, SystemExit])
def test_a_result_that_cannot_be_unpickled_fails_only_its_item(how: type) -> None:
    """In a chunk run as one message: its items are re-run one by one, only the culprit fails;
    before, the dispatcher thread died of it and every pending item failed."""

    def make(x: int) -> object:
        return BreaksUnpickling(how) if x == 2 else x

    it = gearshift.imap(make, range(6), strategy="processes", chunksize=6, return_exceptions=True)
    got = list(it)
    assert [got[i] for i in (0, 1, 3, 4, 5)] == [0, 1, 3, 4, 5]
    assert isinstance(got[2], TaskFailed)
    assert isinstance(got[2].__cause__, gearshift.UnpicklingFailed)
    assert isinstance(got[2].__cause__.__cause__, how)
    assert it.statistics().workers_lost == 0


def test_a_call_that_cannot_be_unpickled_in_the_worker_fails_only_that_call() -> None:
    with gearshift.Executor(1) as pool:
        bad = pool.submit(id, BreaksUnpickling())
        with pytest.raises(gearshift.UnpicklingFailed, match=r"the call id\(.*\) could not be"):
            bad.result()
        assert pool.submit(abs, -3).result() == 3


def test_unpicklable_function_is_a_usage_error() -> None:
    lock = threading.Lock()

    def uses_lock(x: int) -> int:
        with lock:
            return x

    with pytest.raises(UsageError, match="could not be pickled"):
        gearshift.map(uses_lock, [1], strategy="processes")


class Unpicklable(Exception):
    def __init__(self, handle: object) -> None:
        super().__init__("with a handle")
        self.handle = handle

    def __reduce__(self) -> object:
        raise TypeError("no pickling")


@pytest.mark.parametrize(
    ("make", "type_name", "message"),
    [
        (lambda: Unpicklable(threading.Lock()), "Unpicklable", "with a handle"),
        (lambda: ValueError("bad", threading.Lock()), "builtins.ValueError", "bad"),
    ],
    ids=["reduce-raises", "unpicklable-args"],
)
def test_unpicklable_exception_arrives_as_its_type_and_message(
    make: Callable[[], BaseException], type_name: str, message: str
) -> None:
    def raise_it(_: int) -> None:
        raise make()

    with pytest.raises(TaskFailed) as info:
        gearshift.map(raise_it, [1], strategy="processes")
    cause = info.value.__cause__
    assert isinstance(cause, RemoteError) and type_name in cause.type_name
    assert message in cause.message
    assert "raise_it" in str(cause.__cause__)  # the traceback text still travels


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt()])
def test_base_exceptions_in_tasks_fail_the_item_not_the_pool(exc: BaseException) -> None:
    def raise_it(x: int) -> int:
        if x == 1:
            raise exc
        return x

    it = gearshift.imap(raise_it, range(3), strategy="processes", return_exceptions=True)
    got = list(it)
    assert got[0] == 0 and got[2] == 2 and isinstance(got[1], TaskFailed)
    assert type(got[1].__cause__) is type(exc)
    assert it.statistics().workers_lost == 0  # the worker lived on


def test_script_without_main_guard_runs(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import gearshift
            print("top level ran")
            def triple(x):
                return 3 * x
            print(gearshift.map(triple, range(4), strategy="processes"))
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.splitlines() == ["top level ran", "[0, 3, 6, 9]"]  # __main__ is not re-run


def pool_processes(pid: int) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """The workers under process `pid`, and its fork server (none with start_method="spawn")."""
    servers = [p for p in psutil.Process(pid).children() if _is_server(p)]
    workers = [p for p in psutil.Process(pid).children(recursive=True) if p not in servers]
    return workers, servers


def _is_server(proc: psutil.Process) -> bool:
    try:
        return "_forkserver.py" in " ".join(proc.cmdline())
    except psutil.Error:
        return False


@pytest.mark.parametrize("method", START_METHODS)
def test_workers_exit_when_the_parent_is_killed(tmp_path: Path, method: str) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import time, gearshift
            def sit():
                print("started\\n", end="", flush=True)  # one write: workers share the pipe
                time.sleep(60)
            strategy = gearshift.Processes(start_method={method!r})
            with gearshift.Executor(2, strategy=strategy) as ex:
                futures = [ex.submit(sit) for _ in range(2)]
                time.sleep(60)
            """
        )
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        assert [parent.stdout.readline().strip() for _ in range(2)] == ["started"] * 2
        workers, servers = pool_processes(parent.pid)
        assert len(workers) == 2 and len(servers) == (method == "forkserver")
        parent.kill()
        parent.wait(10)
        _, alive = psutil.wait_procs(workers + servers, timeout=20)  # not 60: they saw it
        assert not alive
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


def exit_at_once() -> None:
    os._exit(3)


def wait_forever() -> None:
    threading.Event().wait()


@pytest.mark.parametrize("method", START_METHODS)
def test_an_initializer_that_hangs_fails_the_pool_instead_of_hanging_it(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_losses, "START_SECONDS", 2.0)  # read by this process's dispatcher
    strategy = gearshift.Processes(2, start_method=method)
    with pytest.raises(WorkerStartFailed, match="not ready 2 s after it started") as info:
        gearshift.map(abs, range(10), strategy=strategy, initializer=wait_forever)
    assert "initializer has not returned" in str(info.value)
    pool = gearshift.Executor(1, strategy=strategy, initializer=wait_forever)
    with pool, pytest.raises(BrokenProcessPool, match="not ready"):
        pool.submit(abs, -1).result(timeout=60)


@pytest.mark.parametrize("method", START_METHODS)
def test_a_worker_that_dies_while_starting_fails_the_pool_clearly(method: str) -> None:
    strategy = gearshift.Processes(2, start_method=method)
    it = gearshift.imap(abs, range(10), strategy=strategy, initializer=exit_at_once)
    with pytest.raises(WorkerStartFailed, match="exited while starting") as info:
        list(it)
    assert isinstance(info.value, BrokenExecutor) and "exit code 3" in str(info.value)
    assert it.statistics().workers_started <= 2  # it was not respawned


def test_an_interpreter_that_cannot_start_fails_the_pool_clearly(tmp_path: Path) -> None:
    pool = ProcessPool(1, env={"PYTHONHOME": str(tmp_path)}, start_method="spawn")
    try:
        future = pool.submit(abs, -1)
        with pytest.raises(WorkerStartFailed, match="cannot start"):
            future.result(timeout=30)
        with pytest.raises(WorkerStartFailed):
            pool.submit(abs, -1)
        assert pool.statistics().workers_started == 1
    finally:
        pool.shutdown()


def test_start_method_is_checked() -> None:
    with pytest.raises(UsageError, match="start_method"):
        gearshift.Processes(start_method="fork")


forkserver_only = pytest.mark.skipif(
    default_start_method() != "forkserver", reason="the fork server needs Linux pidfds"
)


@forkserver_only
def test_a_killed_fork_server_is_replaced() -> None:
    assert gearshift.map(abs, [-1], strategy="processes") == [1]
    server = _launch._server
    assert server is not None
    server.popen.kill()
    server.popen.wait()
    assert gearshift.map(abs, [-1, -2], strategy="processes") == [1, 2]
    assert _launch._server is not server


@forkserver_only
def test_a_forked_child_starts_its_own_fork_server() -> None:
    assert gearshift.map(abs, [-1], strategy="processes") == [1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, Python >= 3.12
        pid = os.fork()
    if pid == 0:  # the child: the parent's server is not its own
        code = 1
        try:
            code = 0 if gearshift.map(abs, [-1, -2], strategy="processes") == [1, 2] else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert gearshift.map(abs, [-3], strategy="processes") == [3]  # ours still works


NO_SHM_SCRIPT = """
import os, multiprocessing
assert not os.path.exists("/dev/shm")
try:
    multiprocessing.Pool(2)
    print("Pool: works")
except OSError as exc:
    print("Pool: fails", type(exc).__name__)
import gearshift
print("gearshift:", gearshift.map(abs, [-1, -2, 3], strategy="processes"))
import numpy as np
from gearshift.strategies.processes import START_METHODS
def arrived(a):  # read-only: it came zero-copy, in a memfd
    return a.flags.writeable, float(a.sum()), a * 2
for method in START_METHODS:
    pool = gearshift.Processes(2, start_method=method)
    got = gearshift.map(arrived, [np.ones(1 << 20)] * 2, strategy=pool)
    assert all(np.array_equal(doubled, np.full(1 << 20, 2.0)) for _, _, doubled in got)
    print(f"zero-copy {method}:", [(writable, total) for writable, total, _ in got])
"""


def test_runs_without_dev_shm_where_multiprocessing_pool_fails(tmp_path: Path) -> None:
    script = tmp_path / "no_shm.py"
    script.write_text(NO_SHM_SCRIPT)
    result = run_without_dev_shm([sys.executable, str(script)])
    assert result.returncode == 0, result.stderr
    assert "Pool: fails" in result.stdout
    assert "gearshift: [1, 2, 3]" in result.stdout
    for method in START_METHODS:  # big arrays travel in memfds, which need no /dev/shm either
        assert f"zero-copy {method}: [(False, 1048576.0), (False, 1048576.0)]" in result.stdout
