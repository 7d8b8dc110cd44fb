"""profile(): extreme, unambiguous workloads measured for real, and the choice each one gets.

The workloads run in this process (threads for the scaling phase), so call counts are exact.
Nothing asserts speed; thresholds only separate workloads that differ by an order of magnitude.
How CPU-bound work reads (its CPU share, 2-thread speedup, cost beside shipping) depends on the
machine's load as well: those tests are `measures`, run by `make bench`, not `make test`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from _running import Running
from gearshift import ProfileError, UsageError
from gearshift.auto._chooser import SCALES_ON_THREADS, choose
from gearshift.auto._profiler import Profile, profile, profile_sample
from gearshift.auto._shipping import SHIP_SECONDS
from gearshift.machine import available_cores, cgroup_cpu_limit, gil_enabled

# CPU-bound work reads near 1.0; under load (CI's VMs read 0.72) less of what load takes is
# measurable, so the tests ask for what separates it from waiting (near 0), as the chooser does.
CPU_BOUND = 0.6
BUFFER = bytes(8 << 20)  # 8 MB, built once: items are small ints, cheap to ship


def spin(n: int) -> int:
    """Pure Python: holds the GIL the whole time (~20 ms for n = 400_000)."""
    total = 0
    for i in range(n):
        total += i
    return total


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def hash_rounds(rounds: int) -> str:
    """C code that releases the GIL: sha256 over 8 MB, `rounds` times."""
    digest = ""
    for _ in range(rounds):
        digest = hashlib.sha256(BUFFER).hexdigest()
    return digest


def square(x: int) -> int:
    return x * x


def sort_list(values: list[int]) -> list[int]:
    return sorted(values)


async def fetch(x: int) -> int:
    await asyncio.sleep(0.01)
    return x


@pytest.mark.measures
def test_pure_python_loop_holds_the_gil_and_goes_to_processes() -> None:
    prof = profile(spin, [400_000] * 60)
    assert prof.cpu_share > CPU_BOUND, str(prof)
    assert prof.holds_gil, str(prof)  # the canary says so: no 2-thread phase needed
    assert prof.thread_speedup is None
    choice = choose(prof)
    assert choice.strategy == "processes", choice.why
    assert choice.max_workers == available_cores()
    assert "holding the GIL" in choice.why


def test_sleeping_goes_to_wide_threads() -> None:
    prof = profile(nap, [0.05] * 200)
    assert prof.cpu_share < 0.2
    assert prof.wall_seconds_per_item >= 0.05
    # the wave: the width the run would use, all at once, and it kept scaling there
    assert prof.scaling_threads >= 8
    assert prof.items_sampled > prof.scaling_threads
    assert prof.thread_speedup is not None and prof.thread_speedup > 4
    choice = choose(prof)
    assert choice.strategy == "threads", choice.why
    assert choice.max_workers >= 8
    assert choice.why.startswith("waiting-bound:")
    assert f"{prof.scaling_threads} threads ran" in choice.why


def test_the_wave_runs_at_most_max_threads_at_once_and_leaves_most_items_or_all() -> None:
    running = Running(0.01)
    sample = profile_sample(running.sleep, iter(range(500)), max_threads=3)
    assert running.peak == 3
    assert sample.profile.scaling_threads == 3
    running.peak = 0
    many = profile_sample(running.sleep, range(200))
    assert len(many.items) <= 101  # 1 or 2 alone, then at most half of the rest
    assert running.peak > 3
    few = profile_sample(running.sleep, range(40))
    assert len(few.items) == 40  # the rest fits in one wave: the wave is the run


@pytest.mark.measures
def test_a_waiting_first_item_does_not_make_cpu_work_look_waiting() -> None:
    def lazy(n: int) -> int:  # the first call waits for a (pretend) download, then all compute
        if n == 0:
            time.sleep(0.1)
            return 0
        return spin(n)

    prof = profile(lazy, [0] + [400_000] * 60)
    assert prof.cpu_share > CPU_BOUND, str(prof)
    assert prof.scaling_threads == 2
    assert choose(prof).strategy == "processes"


@pytest.mark.measures
def test_hashing_big_buffers_releases_the_gil_and_goes_to_threads() -> None:
    prof = profile(hash_rounds, [4] * 40)
    assert prof.cpu_share > CPU_BOUND, str(prof)
    assert prof.thread_speedup is not None and prof.thread_speedup > SCALES_ON_THREADS, str(prof)
    choice = choose(prof)
    assert choice.strategy == "threads", choice.why
    assert "releasing the GIL" in choice.why


@pytest.mark.measures
def test_one_slow_measured_item_does_not_make_short_gil_bound_items_look_parallel() -> None:
    # a warm-up, one ~70 ms item (say, a garbage collection), then ~1 ms items: sized by the
    # slow one, phase 2 would give each thread one short item, done before the other wakes up
    prof = profile(spin, [20_000, 1_500_000] + [20_000] * 3000)
    assert prof.thread_speedup is None or prof.thread_speedup < SCALES_ON_THREADS, str(prof)
    assert choose(prof).strategy == "processes"


@pytest.mark.measures
def test_tiny_items_stay_serial() -> None:
    prof = profile(square, range(100_000))
    assert prof.seconds_per_item < 1e-4
    assert prof.ship_ratio > 0.1, str(prof)  # pickling an int costs about what squaring it does
    assert choose(prof).strategy == "serial"


def test_sorting_a_big_list_shipped_per_item_is_not_sent_to_processes() -> None:
    values = list(range(200_000))
    prof = profile(sort_list, [values] * 30)
    assert prof.payload_bytes_in > 500_000
    assert prof.payload_bytes_out > 500_000
    assert prof.ship_ratio > 1  # pickling 200,000 ints twice costs more than sorting them
    assert choose(prof).strategy != "processes"


class Dear:
    """An item that takes longer to pickle than the profiler's whole shipping budget."""

    pickled = 0

    def __getstate__(self) -> dict[str, int]:
        Dear.pickled += 1
        end = time.thread_time() + SHIP_SECONDS * 1.5  # CPU: shipping is timed on its clock
        while time.thread_time() < end:
            pass
        return {}


def test_items_dearer_to_pickle_than_the_shipping_budget_are_measured_once() -> None:
    Dear.pickled = 0
    prof = profile(ident, [Dear() for _ in range(6)], sample=3)
    assert prof.ship_seconds_in >= SHIP_SECONDS  # no ZeroDivisionError on the way
    assert Dear.pickled == 2  # argument and result, timed alone; not again in a batch


def ident(x: object) -> object:
    return x


def test_coroutine_functions_are_measured_and_go_to_asyncio() -> None:
    prof = profile(fetch, range(10))
    assert prof.coroutine
    assert prof.wall_seconds_per_item >= 0.01
    assert prof.thread_speedup is None
    assert choose(prof).strategy == "asyncio"


def test_coroutine_function_inside_a_running_loop_is_a_usage_error() -> None:
    async def main() -> None:
        with pytest.raises(UsageError, match=r"asyncio\.to_thread"):
            profile(fetch, range(3))

    asyncio.run(main())


def test_sampled_items_run_once_and_the_iterator_goes_on_after_them() -> None:
    calls: list[int] = []
    lock = threading.Lock()

    def record(x: int) -> int:
        with lock:
            calls.append(x)
        spin(20_000)
        return x * 10

    items = iter(range(10_000))
    sample = profile_sample(record, items)
    n = len(sample.items)
    assert 4 <= n < 10_000
    assert sample.items == list(range(n))
    assert sorted(calls) == sample.items  # each sampled item ran exactly once
    assert sample.result.values == [x * 10 for x in range(n)]
    assert sample.result.seconds > 0
    assert next(items) == n  # the iterator was advanced exactly past the sample
    assert not sample.exhausted
    assert sample.profile.items_total is None


def test_a_short_input_is_sampled_whole() -> None:
    sample = profile_sample(square, [1, 2, 3])
    assert sample.items == [1, 2, 3]
    assert sample.result.values == [1, 4, 9]
    assert sample.exhausted
    assert sample.profile.items_total == 3


def test_errors_are_kept_per_item_and_counted() -> None:
    def picky(x: int) -> int:
        if x % 3 == 0:
            raise ValueError(f"no {x}")
        return x

    sample = profile_sample(picky, range(9), size=9)
    assert sorted(sample.result.errors) == [0, 3, 6]
    assert str(sample.result.errors[3]) == "no 3"
    assert sample.profile.errors == 3
    assert "3 raised" in str(sample.profile)


def test_a_fixed_sample_size_is_honoured() -> None:
    sample = profile_sample(square, range(1000), size=10)
    assert len(sample.items) == 10
    assert sample.profile.items_sampled == 10


def test_unpicklable_results_are_reported_and_keep_work_off_processes() -> None:
    def locked(n: int) -> threading.Lock:
        spin(n)
        return threading.Lock()

    prof = profile(locked, [400_000] * 30)
    assert prof.unpicklable is not None
    assert prof.unpicklable.startswith("a result (item 0): TypeError")
    assert "cannot travel" in str(prof)
    assert choose(prof).strategy != "processes"


def test_bad_arguments_are_usage_errors_and_no_items_a_profile_error() -> None:
    with pytest.raises(UsageError, match="fn must be callable"):
        profile(42, range(3))  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="sample must be a whole number"):
        profile(square, range(3), sample=0)
    with pytest.raises(UsageError, match="items must be iterable"):
        profile(square, 42)  # type: ignore[arg-type]
    with pytest.raises(ProfileError, match="at least one item"):
        profile(square, [])


def test_str_explains_with_the_measured_numbers() -> None:
    prof = profile(spin, [100_000] * 40, sample=10)  # a fixed size: not what a busy box allows
    text = str(prof)
    assert f"{prof.items_sampled} of 40 items sampled" in text
    assert f"{prof.cpu_share:.0%} of its time on CPU" in text
    assert f"{prof.cores} cores available" in text
    assert f"threads: {prof.scaling_description()}" in text
    free = profile(hash_rounds, [2] * 40)  # GIL-free: measured on 2 threads
    assert free.thread_speedup is not None
    assert f"2 threads ran {free.thread_speedup:.1f}x" in str(free)


def test_to_dict_has_the_keys_plan_lambda_reads() -> None:
    prof = profile(nap, [0.001] * 20)
    data = json.loads(json.dumps(prof.to_dict()))
    for key in (
        "cpu_seconds_per_item",
        "wait_seconds_per_item",
        "payload_bytes_in",
        "payload_bytes_out",
    ):
        assert isinstance(data[key], float), key
    assert data["wait_seconds_per_item"] > 0
    assert isinstance(prof, Profile)


def test_available_cores_is_within_the_machine() -> None:
    cores = available_cores()
    assert 1 <= cores <= (os.cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        assert cores <= len(os.sched_getaffinity(0))


def test_gil_enabled_matches_the_interpreter() -> None:
    check = getattr(sys, "_is_gil_enabled", None)
    assert gil_enabled() is (True if check is None else bool(check()))


def test_cgroup_v2_quota_of_this_cgroup_and_its_ancestors(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path, {"": "/"}) is None
    (tmp_path / "job" / "step").mkdir(parents=True)
    (tmp_path / "job" / "cpu.max").write_text("150000 100000\n")
    (tmp_path / "job" / "step" / "cpu.max").write_text("400000 100000\n")
    assert cgroup_cpu_limit(tmp_path, {"": "/job/step"}) == 1.5  # the parent is tighter


def test_cgroup_v1_quota_and_no_quota(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(tmp_path, {}) is None
    cpu = tmp_path / "cpu,cpuacct"
    cpu.mkdir()
    (cpu / "cpu.cfs_quota_us").write_text("-1\n")
    (cpu / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_limit(tmp_path, {"cpu": "/"}) is None
    (cpu / "cpu.cfs_quota_us").write_text("50000\n")
    assert cgroup_cpu_limit(tmp_path, {"cpu": "/"}) == 0.5
