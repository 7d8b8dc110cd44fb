"""max_memory_per_child on real processes, and deaths the kernel's OOM killer caused, named so.

Workers run `_growing.grow`, which keeps what each call allocates, as a leak would. Each worker
reports its own resident memory (psutil) right after each item, when it is highest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import mmap
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import gearshift
from _growing import MiB, grow, grow_1_mib, keep_mapped, record_runs_in, runs
from _namespaces import run_without_dev_shm
from gearshift import UsageError, WorkerDied
from gearshift.machine import CGROUP_ROOT, cgroup_paths, oom_kill_counter, oom_kills
from gearshift.strategies.processes._capped import rss_reader, run_capped
from gearshift.units import parse_size

START_METHODS = gearshift.strategies.processes.START_METHODS
LIMIT = 200 * 10**6  # "200MB"
ITEM = 20 * MiB  # what one call of `grow` keeps
SLACK = 2 * MiB  # what else an item may leave resident: its result, the allocator's rounding


def check_recycled(results: list[tuple[int, int, int]], limit: int, item: int) -> None:
    """No worker ran an item once over `limit`, and none went past it by more than one item."""
    by_worker: dict[int, list[int]] = defaultdict(list)
    for _, pid, rss in results:
        by_worker[pid].append(rss)
    for readings in by_worker.values():
        *before_last, last = sorted(readings)
        assert all(rss <= limit for rss in before_last), (limit, sorted(readings))
        assert last <= limit + item + SLACK, (limit, sorted(readings))


@pytest.mark.parametrize("method", START_METHODS)
def test_workers_over_the_limit_retire_and_each_item_runs_once(tmp_path: Path, method: str) -> None:
    log = str(tmp_path / "runs")
    it = gearshift.imap(
        grow,
        range(60),
        strategy=gearshift.Processes(2, start_method=method),
        max_memory_per_child="200MB",
        chunksize=4,  # workers pass the limit inside a chunk: its rest goes to the others
        initializer=record_runs_in,
        initargs=(log,),
    )
    results = list(it)
    assert [x for x, _, _ in results] == list(range(60))
    assert runs(log) == list(range(60))  # none lost, none run twice
    check_recycled(results, LIMIT, ITEM)
    stats = it.statistics()
    # 60 x 20 MiB in workers that each hold at most ~200 MB: at least 5 of them retired
    assert stats.workers_recycled >= 5, stats
    assert stats.workers_lost == 0 and stats.tasks_failed == 0
    assert stats.workers_started - stats.workers_recycled <= 2  # the ones still at work
    starts = Path(f"{log}.starts").read_text().split()
    assert len(starts) == stats.workers_started  # each fresh worker ran the initializer
    assert {pid for _, pid, _ in results} <= {int(pid) for pid in starts}


@pytest.mark.parametrize("task_timeout", [None, 30.0])
def test_work_queued_behind_a_retiring_worker_runs_elsewhere(
    tmp_path: Path, task_timeout: float | None
) -> None:
    """Short items go one per message and one ahead to busy workers; per-item reports with a
    task_timeout: either way what a retiring worker holds unrun is given to another, once."""
    log = str(tmp_path / "runs")
    limit = 48 * MiB  # about 35 items of 1 MiB over a fresh worker
    it = gearshift.imap(
        grow_1_mib,
        range(300),
        strategy=gearshift.Processes(2),
        max_memory_per_child="48MiB",
        chunksize=1,
        task_timeout=task_timeout,
        initializer=record_runs_in,
        initargs=(log,),
    )
    results = list(it)
    assert [x for x, _, _ in results] == list(range(300))
    assert runs(log) == list(range(300))
    check_recycled(results, limit, MiB)
    assert it.statistics().workers_recycled >= 4


def test_executor_calls_recycle_workers_by_memory() -> None:
    with gearshift.Executor(1, max_memory_per_child=100 * 10**6) as ex:
        results = [f.result(timeout=30) for f in [ex.submit(grow, i) for i in range(12)]]
    stats = ex.statistics()  # final once the pool has shut down
    assert [x for x, _, _ in results] == list(range(12))
    check_recycled(results, 100 * 10**6, ITEM)
    assert stats.workers_recycled >= 2 and stats.workers_lost == 0


def test_async_code_recycles_workers_by_memory_too() -> None:
    async def main() -> tuple[list[tuple[int, int, int]], int]:
        results = gearshift.aimap(
            grow, range(12), strategy="processes", max_workers=1, max_memory_per_child="100MB"
        )
        async with results:
            got = [x async for x in results]
        return got, results.statistics().workers_recycled

    results, recycled = asyncio.run(main())
    assert [x for x, _, _ in results] == list(range(12))
    check_recycled(results, 100 * 10**6, ITEM)
    assert recycled >= 2


SCRIPT = """
import json, os, sys
import gearshift

kept = []

def grow(x):  # defined in __main__, as in a user's script: it travels by value
    kept.append(b"x" * (20 * 2**20))
    with open("/proc/self/statm") as statm:
        return x, os.getpid(), int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

method = sys.argv[1] if len(sys.argv) > 1 else None
it = gearshift.imap(grow, range(60), strategy=gearshift.Processes(2, start_method=method),
                    max_memory_per_child="200MB")
results = list(it)
print(json.dumps({"results": results, "recycled": it.statistics().workers_recycled,
                  "dev_shm": os.path.exists("/dev/shm")}))
"""


@pytest.mark.parametrize("how", [*START_METHODS, "without /dev/shm"])
def test_a_function_in_a_scripts_main_is_recycled_too(tmp_path: Path, how: str) -> None:
    script = tmp_path / "leaky.py"
    script.write_text(textwrap.dedent(SCRIPT))
    if how == "without /dev/shm":
        done = run_without_dev_shm([sys.executable, str(script)])
    else:
        command = [sys.executable, str(script), how]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    results = [tuple(r) for r in report["results"]]
    assert [x for x, _, _ in results] == list(range(60))
    check_recycled(results, LIMIT, ITEM)
    assert report["recycled"] >= 5
    assert report["dev_shm"] is (how != "without /dev/shm")


def test_max_tasks_per_child_retirements_count_as_recycles() -> None:
    with gearshift.Executor(1, max_tasks_per_child=2) as ex:
        pids = [ex.submit(os.getpid).result(timeout=30) for _ in range(6)]
    stats = ex.statistics()  # final once the pool has shut down
    assert len(set(pids)) == 3 and stats.workers_recycled == 3  # the third retired too


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2GB", 2 * 10**9),
        ("512 mb", 512 * 10**6),
        ("1.5GiB", 3 * 2**29),
        ("64MiB", 64 * MiB),
        (" 300000000 ", 300_000_000),
        (2e9, 2 * 10**9),
        (3 * 10**9, 3 * 10**9),
    ],
)
def test_limits_read_as_bytes_or_sizes(given: object, expected: int) -> None:
    assert gearshift.Processes(max_memory_per_child=given).max_memory_per_child == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("2G", "a size such as '2GB'"),
        ("lots", "a size such as '2GB'"),
        ("-1GB", "a size such as '2GB'"),
        (True, "a size such as '2GB'"),
        (float("inf"), "a size such as '2GB'"),
        ([1], "a size such as '2GB'"),
        (512, "under 1 MiB"),
        ("100kB", "under 1 MiB"),
    ],
)
def test_bad_limits_are_usage_errors_that_name_the_argument(given: object, says: str) -> None:
    with pytest.raises(UsageError, match="max_memory_per_child") as raised:
        gearshift.Processes(max_memory_per_child=given)  # type: ignore[arg-type]
    assert says in str(raised.value)
    with pytest.raises(UsageError, match="max_memory_per_child"):
        gearshift.map(abs, [1], strategy="processes", max_memory_per_child=given)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a size"):
        parse_size(str(given) + "x")


def test_strategies_without_worker_processes_refuse_a_limit() -> None:
    with pytest.raises(UsageError, match="max_memory_per_child recycles worker processes"):
        gearshift.map(abs, [1], strategy="threads", max_memory_per_child="1GB")
    with pytest.raises(UsageError, match="strategy 'serial' has none"):
        gearshift.Executor(strategy="serial", max_memory_per_child="1GB")


def test_the_limit_reaches_the_pool_from_every_door() -> None:
    configured = gearshift.Processes(max_memory_per_child="1GB", max_tasks_per_child=7)
    with gearshift.Executor(strategy=configured) as ex:  # the strategy's own limits are kept
        assert ex.strategy.max_memory_per_child == 10**9  # type: ignore[attr-defined]
        assert ex.strategy.max_tasks_per_child == 7  # type: ignore[attr-defined]
    with gearshift.Executor(strategy=configured, max_memory_per_child="2GB") as ex:
        assert ex.strategy.max_memory_per_child == 2 * 10**9  # type: ignore[attr-defined]
    assert configured.max_memory_per_child == 10**9  # the caller's instance is left as it was
    # auto sets no limit itself; one given applies when it runs processes (an initializer: it does)
    it = gearshift.imap(abs, [-1, -2], initializer=int, max_memory_per_child="1.5GB")
    assert list(it) == [1, 2]
    assert it.strategy.max_memory_per_child == 1_500_000_000  # type: ignore[attr-defined]
    plain = gearshift.imap(abs, [-1, -2], initializer=int)
    assert list(plain) == [1, 2]
    assert plain.strategy.max_memory_per_child is None  # type: ignore[attr-defined]


def test_the_workers_rss_reader_reads_resident_memory() -> None:
    rss = rss_reader()
    assert abs(rss() - psutil.Process().memory_info().rss) < 4 * MiB
    before = rss()
    # pages of a fresh mapping: a bytes object of this size could reuse freed heap memory that is
    # still resident (seen on 3.10, late in the suite), and then nothing grows
    block = mmap.mmap(-1, 64 * MiB)
    for page in range(0, len(block), mmap.PAGESIZE):
        block[page] = 1
    assert rss() - before >= 60 * MiB
    block.close()


def test_run_capped_stops_after_the_item_that_passes_the_limit() -> None:
    def keep(x: int) -> int:
        if x == 2:
            raise ValueError("two")
        keep_mapped(8)
        return x

    rss = rss_reader()
    limit = rss() + 28 * MiB  # 8 MiB items: 24 MiB after the fourth is under, 32 after the fifth
    values, seconds, errors, over = run_capped(keep, range(10), rss, limit)
    assert over and values == [0, 1, None, 3, 4] and list(errors) == [2] and seconds > 0
    assert run_capped(abs, [-1, -2], rss, rss() + 100 * MiB)[::3] == ([1, 2], False)


PROFILE_SCRIPT = """
import gearshift
from _growing import grow
prof = gearshift.profile(grow, range(12), sample=10)  # 5 run alone, 4 of them measured
print(prof.rss_growth_per_item, gearshift.profile(abs, range(100)).rss_growth_per_item)
print(prof)
"""


def test_profile_reports_how_much_an_item_grows_memory() -> None:
    """In a fresh process, as `gearshift profile` runs: memory this one freed before could be
    reused by the sample, and hide its growth."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    command = [sys.executable, "-c", PROFILE_SCRIPT]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=True)
    first, *report = done.stdout.splitlines()
    growth, tiny = map(float, first.split())
    assert ITEM - SLACK <= growth <= ITEM + SLACK, done.stdout
    assert tiny < MiB / 10, done.stdout
    assert any(line.startswith("  memory: resident memory grew 2") for line in report), report


# ---- the kernel's OOM killer ------------------------------------------------------------------
def test_this_process_has_an_oom_kill_counter_where_cgroups_count_memory() -> None:
    counter = oom_kill_counter()
    if counter is None:
        pytest.skip("no memory cgroup here (no cgroup v2 memory.events, no v1 memory controller)")
    assert counter.name in ("memory.events", "memory.oom_control")
    assert isinstance(oom_kills(counter), int)


def test_the_deepest_cgroup_v2_memory_events_counts(tmp_path: Path) -> None:
    """cgroup v2's memory.events as the kernel writes it, in a tree laid out like /sys/fs/cgroup."""
    own = cgroup_paths().get("", "/")
    leaf = tmp_path.joinpath(*[part for part in own.split("/") if part])
    leaf.mkdir(parents=True, exist_ok=True)
    if cgroup_paths().get("memory"):  # a v1 memory cgroup also here: ours must win
        (tmp_path / "memory").mkdir()
        (tmp_path / "memory" / "memory.oom_control").write_text("oom_kill 9\n")
    assert oom_kill_counter(root=tmp_path) in (None, tmp_path / "memory" / "memory.oom_control")
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n")
    events = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n"
    (leaf / "memory.events").write_text(events)
    assert oom_kill_counter(root=tmp_path) == leaf / "memory.events"
    assert oom_kills(leaf / "memory.events") == 2
    assert oom_kills(tmp_path / "no such file") is None


@contextlib.contextmanager
def memory_cgroup(limit: int) -> Iterator[Path]:
    """A child of this process's memory cgroup (v1, or v2 where it can hold a limit) allowed
    `limit` bytes and no swap; removed afterwards. Skips the test where none can be made."""
    paths, name = cgroup_paths(), f"gearshift-test-{uuid.uuid4().hex[:8]}"
    v1 = CGROUP_ROOT.joinpath("memory", *paths.get("memory", "/").split("/")[1:], name)
    v2 = CGROUP_ROOT.joinpath(*paths.get("", "/").split("/")[1:], name)
    made = None
    for group, files in ((v1, ["memory.limit_in_bytes"]), (v2, ["memory.max", "memory.swap.max"])):
        try:
            group.mkdir()
        except OSError:
            continue
        made = group
        try:
            for file in files:
                (group / file).write_text("0" if file.endswith("swap.max") else str(limit))
            with contextlib.suppress(OSError):  # v1 with swap accounting: no swap either
                (group / "memory.memsw.limit_in_bytes").write_text(str(limit))
            break
        except OSError:
            group.rmdir()
            made = None
    if made is None:
        pytest.skip("cannot make a memory cgroup with a limit here: needs root, or a delegated one")
    try:
        yield made
    finally:
        deadline = time.monotonic() + 10
        while True:  # its processes have exited; the kernel may take a moment to let it go
            try:
                made.rmdir()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


OOM_SCRIPT = """
import json, os, signal, sys
with open(os.path.join(sys.argv[1], "cgroup.procs"), "w") as procs:
    procs.write(str(os.getpid()))  # before the pool: its workers (and fork server) join too
import gearshift

def task(x):
    if x == 1:  # more than the cgroup allows: the kernel's OOM killer ends this worker
        kept = []
        while True:
            kept.append(b"x" * (10 * 2**20))
    if x == 3:  # a SIGKILL from someone else
        os.kill(os.getpid(), signal.SIGKILL)
    return x

out = gearshift.map(task, range(5), strategy=gearshift.Processes(1, start_method=sys.argv[2]),
                    chunksize=1, return_exceptions=True)
print(json.dumps([[type(o).__name__, str(o)] for o in out]))
"""


@pytest.mark.parametrize("method", START_METHODS)
def test_a_worker_the_oom_killer_ends_is_said_to_be(tmp_path: Path, method: str) -> None:
    script = tmp_path / "oom.py"
    script.write_text(textwrap.dedent(OOM_SCRIPT))
    with memory_cgroup(250 * MiB) as group:
        done = subprocess.run(
            [sys.executable, str(script), str(group), method],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert [kind for kind, _ in out] == ["int", "WorkerDied", "int", "WorkerDied", "int"]
    oom, plain = out[1][1], out[3][1]
    assert "item 1 (1) killed its worker" in oom and "SIGKILL" in oom
    assert "killed by the kernel's out-of-memory killer" in oom
    assert "item 3 (3) killed its worker" in plain and plain.endswith("SIGKILL)")
    assert "out-of-memory" not in plain  # the kill the cgroup counted was item 1's


def test_a_plain_sigkill_is_not_blamed_on_the_oom_killer() -> None:
    def die(_: int) -> int:
        os.kill(os.getpid(), 9)
        return 0

    (error,) = gearshift.map(die, [0], strategy="processes", return_exceptions=True)
    assert isinstance(error, WorkerDied) and error.signal_name == "SIGKILL"
    assert "out-of-memory" not in str(error)
