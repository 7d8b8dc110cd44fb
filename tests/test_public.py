"""The public surface: what `gearshift` exports, and that importing it stays cheap."""

from __future__ import annotations

import ast
import subprocess
import sys

import gearshift


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert gearshift.__all__ == sorted(gearshift.__all__)
    for name in gearshift.__all__:
        assert getattr(gearshift, name) is not None, name


# The public API, exactly (httpx's habit): a name added or removed is a decision, made here.
PUBLIC = [
    "Asyncio",
    "Auto",
    "BenchResult",
    "Choice",
    "Dask",
    "DownloadError",
    "DownloadResult",
    "Executor",
    "GearshiftError",
    "ImageServer",
    "InitializerFailed",
    "LambdaPlan",
    "Lithops",
    "PicklingFailed",
    "Processes",
    "Profile",
    "ProfileError",
    "Serial",
    "Statistics",
    "Strategy",
    "StrategyUnavailable",
    "TaskError",
    "TaskFailed",
    "TaskTimeout",
    "Threads",
    "UnpicklingFailed",
    "UsageError",
    "WorkerDied",
    "WorkerStartFailed",
    "__version__",
    "aimap",
    "amap",
    "bench",
    "choose",
    "download",
    "imap",
    "map",
    "plan_lambda",
    "profile",
]


def test_the_public_api_is_exactly_this() -> None:
    assert gearshift.__all__ == PUBLIC
    assert sorted(gearshift.__dir__()) == sorted(PUBLIC)


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        gearshift.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def loaded_after(code: str, modules: set[str]) -> list[str]:
    """Which of `modules` a fresh interpreter has imported after running `code`."""
    check = f"import sys; {code}; print(sorted({sorted(modules)!r} & sys.modules.keys()))"
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    return list(ast.literal_eval(out.stdout))


def test_import_does_not_pull_heavy_modules() -> None:
    heavy = {"rich", "matplotlib", "cloudpickle", "numpy", "distributed", "aiohttp", "urllib3"}
    assert loaded_after("import gearshift", heavy | {"psutil", "asyncio"}) == []


def test_error_tree() -> None:
    assert issubclass(gearshift.UsageError, ValueError)
    assert issubclass(gearshift.TaskTimeout, TimeoutError)
    for cls in (gearshift.TaskFailed, gearshift.TaskTimeout, gearshift.WorkerDied):
        assert issubclass(cls, gearshift.TaskError)
        assert issubclass(cls, gearshift.GearshiftError)


def test_errors_are_also_what_the_standard_pools_raise() -> None:
    from concurrent.futures import BrokenExecutor
    from concurrent.futures.process import BrokenProcessPool
    from pickle import PicklingError, UnpicklingError

    assert issubclass(gearshift.WorkerDied, BrokenProcessPool)
    assert issubclass(gearshift.UnpicklingFailed, BrokenProcessPool)
    assert issubclass(gearshift.UnpicklingFailed, UnpicklingError)
    assert issubclass(gearshift.PicklingFailed, PicklingError)
    assert issubclass(gearshift.PicklingFailed, TypeError)  # what pickle raises for a lock
    assert issubclass(gearshift.WorkerStartFailed, BrokenProcessPool)
    assert issubclass(gearshift.InitializerFailed, BrokenExecutor)
    for cls in (gearshift.WorkerDied, gearshift.UnpicklingFailed, gearshift.PicklingFailed):
        assert issubclass(cls, gearshift.GearshiftError)


def test_errors_made_on_first_use_are_one_class_that_pickles() -> None:
    import pickle

    from gearshift import errors

    error = errors.item_error(errors.WorkerDied, 3, "x", "died", pid=7, exitcode=-9)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is gearshift.WorkerDied is errors.WorkerDied
    assert (again.index, again.pid, again.signal_name) == (3, 7, "SIGKILL")
    assert repr(gearshift.WorkerDied) == "<class 'gearshift.errors.WorkerDied'>"


def test_a_serial_map_does_not_load_the_process_pool() -> None:
    """Each strategy's dependencies load when it runs: serial work pays for no pool."""
    code = "import gearshift; gearshift.map(abs, range(10), strategy='serial')"
    pool = {"cloudpickle", "subprocess", "gearshift.strategies.processes._pool"}
    assert loaded_after(code, pool) == []
