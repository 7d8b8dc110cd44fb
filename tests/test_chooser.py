"""choose(): each rule on hand-built profiles, the predictions, chunk sizes and the explanations."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

import pytest

from gearshift.auto._chooser import (
    CONVOY_SWITCHES,
    MAX_THREADS,
    MIN_SPEEDUP,
    PROCESS_ITEM_SECONDS,
    PROCESS_START_SECONDS,
    SATURATED,
    SCALES_ON_THREADS,
    Choice,
    choose,
)
from gearshift.auto._profiler import Profile
from gearshift.chunking import CHUNKS_PER_WORKER_LEFT, MAX_CHUNK, TARGET_CHUNK_SECONDS


def make(**changes: Any) -> Profile:
    """A CPU-bound, GIL-holding profile with cheap payloads on 2 cores, changed as asked."""
    base = Profile(
        function="work",
        items_sampled=10,
        items_total=1000,
        wall_seconds_per_item=0.02,
        cpu_seconds_per_item=0.0195,
        preempted_seconds_per_item=0.0,
        thread_speedup=1.0,
        payload_bytes_in=20,
        payload_bytes_out=20,
        ship_seconds_in=10e-6,
        ship_seconds_out=10e-6,
        unpicklable=None,
        variation=0.05,
        cores=2,
        gil_enabled=True,
        coroutine=False,
        errors=0,
        sample_seconds=0.2,
    )
    return dataclasses.replace(base, **changes)


def test_gil_holding_cpu_work_with_small_payloads_goes_to_processes_on_every_core() -> None:
    choice = choose(make())
    assert (choice.strategy, choice.max_workers) == ("processes", 2)
    assert 1.5 < choice.predicted <= 2.0
    assert choice.why.startswith("CPU-bound: 98% of its time on CPU (20.0 ms per item)")
    assert "holding the GIL (2 threads ran 1.0x)" in choice.why
    assert "shipping an item costs 0.1% of its compute" in choice.why
    assert choice.why.endswith(
        f"-> processes x 2, chunksize {choice.chunksize}, predicted {choice.predicted:.1f}x"
    )


def test_waiting_bound_work_goes_to_threads_as_wide_as_the_wait_allows() -> None:
    sleepy = choose(make(wall_seconds_per_item=0.05, cpu_seconds_per_item=50e-6))
    assert (sleepy.strategy, sleepy.max_workers) == ("threads", MAX_THREADS)
    assert sleepy.why.startswith("waiting-bound: 0% of its time on CPU (50.0 ms per item")
    assert f"threads x {MAX_THREADS} (cores x (1 + wait/CPU), at most {MAX_THREADS})" in sleepy.why
    # 20% CPU: 2 cores x (1 + 4) = 10 threads keep both cores busy
    mixed = choose(make(wall_seconds_per_item=0.01, cpu_seconds_per_item=0.002))
    assert (mixed.strategy, mixed.max_workers) == ("threads", 10)
    assert 4 < mixed.predicted <= 5  # 1 / CPU share: the CPU part holds the GIL


def test_waiting_bound_threads_start_at_the_wait_ratio_and_may_grow_to_the_cap() -> None:
    mixed = choose(make(wall_seconds_per_item=0.01, cpu_seconds_per_item=0.002))
    assert (mixed.max_workers, mixed.grow_to) == (10, MAX_THREADS)
    rule = f"cores x (1 + wait/CPU), doubled while throughput rises, up to {MAX_THREADS}"
    assert f"threads x 10 ({rule})" in mixed.why
    assert mixed.to_dict()["grow_to"] == MAX_THREADS
    assert (
        choose(make(wall_seconds_per_item=0.01, cpu_seconds_per_item=0.002), remaining=30).grow_to
        == 30
    )
    # Already at the cap, or the sample's wave saw throughput stop rising: nothing to grow.
    assert choose(make(wall_seconds_per_item=0.05, cpu_seconds_per_item=50e-6)).grow_to is None
    waiting = make(wall_seconds_per_item=0.002, cpu_seconds_per_item=1e-4, scaling_threads=16)
    assert choose(dataclasses.replace(waiting, thread_speedup=12.0)).grow_to == MAX_THREADS
    assert choose(dataclasses.replace(waiting, thread_speedup=3.0)).grow_to is None
    # CPU-bound work on threads (GIL-free C code) runs one per core and does not grow.
    assert choose(make(thread_speedup=1.95)).grow_to is None


def test_the_wave_caps_the_prediction_once_it_saturated() -> None:
    waiting = make(wall_seconds_per_item=0.002, cpu_seconds_per_item=1e-4, scaling_threads=16)
    rising = choose(dataclasses.replace(waiting, thread_speedup=12.0))
    assert (rising.strategy, rising.max_workers) == ("threads", 40)  # 2 x (1 + 1.9 / 0.1)
    assert "16 threads ran 12.0x" in rising.why
    assert rising.predicted > 15  # up to 1 / CPU share: 20x
    flat = choose(dataclasses.replace(waiting, thread_speedup=3.0))  # a server that takes 3
    assert (flat.strategy, flat.max_workers) == ("threads", 40)
    assert flat.predicted == pytest.approx(3.0, rel=0.02)
    assert SATURATED * 16 > 3.0
    stuck = choose(dataclasses.replace(waiting, thread_speedup=1.1))  # one lock for all
    assert stuck.strategy == "serial"
    assert "(threads 1.1x, processes " in stuck.why
    assert stuck.predictions["processes"] < MIN_SPEEDUP  # processes start, then as slow


def test_waiting_work_whose_cpu_holds_the_gil_for_a_switch_interval_gets_every_thread() -> None:
    switch = sys.getswitchinterval()
    # waits 3x its CPU: 2 x (1 + 3) = 8 threads, unless the CPU stretches convoy the I/O
    short = make(wall_seconds_per_item=0.4 * switch * 4, cpu_seconds_per_item=0.4 * switch)
    assert choose(short).max_workers == 8
    long = make(wall_seconds_per_item=2 * switch * 4, cpu_seconds_per_item=2 * switch)
    convoyed = choose(long)
    assert (convoyed.strategy, convoyed.max_workers) == ("threads", MAX_THREADS)
    assert f"threads x {MAX_THREADS} ({MAX_THREADS}: its CPU holds the GIL" in convoyed.why
    assert CONVOY_SWITCHES <= 2
    assert choose(dataclasses.replace(long, gil_enabled=False)).max_workers == 8


def test_threads_are_never_wider_than_the_items_left() -> None:
    choice = choose(make(wall_seconds_per_item=0.05, cpu_seconds_per_item=50e-6), remaining=7)
    assert (choice.strategy, choice.max_workers) == ("threads", 7)


def test_cpu_work_that_scales_on_threads_goes_to_threads_per_core() -> None:
    choice = choose(make(thread_speedup=1.95))
    assert (choice.strategy, choice.max_workers) == ("threads", 2)
    assert "releasing the GIL (2 threads ran 1.9x)" in choice.why  # 1.95 shown as 1.9x
    assert choice.predictions["threads"] > choice.predictions["processes"]
    just_below = choose(make(thread_speedup=SCALES_ON_THREADS - 0.01))
    assert just_below.strategy == "processes"


def test_free_threaded_interpreter_with_the_gil_off_runs_cpu_work_on_threads() -> None:
    choice = choose(make(gil_enabled=False, thread_speedup=None))
    assert choice.strategy == "threads"
    assert "the GIL is off (free-threaded interpreter)" in choice.why


def test_unmeasured_thread_scaling_is_assumed_to_hold_the_gil() -> None:
    choice = choose(make(thread_speedup=None))
    assert choice.strategy == "processes"
    assert "assumed to hold the GIL" in choice.why


def test_payload_that_costs_more_to_ship_than_to_compute_is_not_sent_to_processes() -> None:
    heavy = make(wall_seconds_per_item=0.003, cpu_seconds_per_item=0.003, ship_seconds_in=0.008)
    heavy = dataclasses.replace(heavy, ship_seconds_out=0.008, payload_bytes_in=900_000)
    choice = choose(heavy)
    assert choice.strategy == "serial"
    assert choice.predictions["processes"] < 1
    assert "shipping an item costs 533% of its compute" in choice.why
    assert f"-> serial: not worth it below {MIN_SPEEDUP}x (threads 1.0x, processes" in choice.why


def test_tiny_items_are_bounded_by_what_the_parent_does_per_item() -> None:
    # 1.5 M items of 0.24 us that pickle cheaply: 2 workers could take them, but the parent
    # hands out one item per ~PROCESS_ITEM_SECONDS (bench/auto.py, tiny x*x: 0.7x on processes)
    tiny = make(
        items_total=1_500_000,
        wall_seconds_per_item=0.24e-6,
        cpu_seconds_per_item=0.24e-6,
        thread_speedup=None,
        ship_seconds_in=0.03e-6,
        ship_seconds_out=0.03e-6,
    )
    choice = choose(tiny)
    assert choice.strategy == "serial"
    assert choice.predictions["processes"] < 0.24e-6 / PROCESS_ITEM_SECONDS


def test_heavy_payload_on_gil_free_work_still_goes_to_threads() -> None:
    choice = choose(make(thread_speedup=2.0, ship_seconds_in=0.05, ship_seconds_out=0.05))
    assert choice.strategy == "threads"


def test_items_too_cheap_to_ship_anywhere_stay_serial() -> None:
    choice = choose(make(wall_seconds_per_item=2e-7, cpu_seconds_per_item=2e-7, items_total=10**5))
    assert choice.strategy == "serial"
    assert choice.predictions["processes"] < 0.1
    assert choice.chunksize == MAX_CHUNK


def test_too_little_work_in_all_stays_serial_and_says_so() -> None:
    choice = choose(make(wall_seconds_per_item=0.005, cpu_seconds_per_item=0.005, items_total=5))
    assert PROCESS_START_SECONDS > 5 * 0.005
    assert choice.strategy == "serial"
    assert "all 5 items take 25.0 ms" in choice.why


def test_one_core_gives_processes_nothing_to_gain() -> None:
    choice = choose(make(cores=1))
    assert choice.strategy == "serial"
    assert choice.predictions["processes"] < 1


def test_unpicklable_work_is_never_sent_to_processes() -> None:
    choice = choose(make(unpicklable="a result (item 0): TypeError: cannot pickle '_thread.lock'"))
    assert choice.strategy == "serial"
    blocked = {o.strategy: o.blocked for o in choice.options}
    assert blocked["processes"].startswith("cannot pickle a result (item 0)")
    assert "processes cannot pickle a result" in choice.why


def test_unpicklable_waiting_work_still_runs_on_threads() -> None:
    choice = choose(
        make(wall_seconds_per_item=0.05, cpu_seconds_per_item=1e-4, unpicklable="the function")
    )
    assert choice.strategy == "threads"


def test_coroutine_functions_go_to_asyncio() -> None:
    choice = choose(make(coroutine=True, wall_seconds_per_item=0.01, cpu_seconds_per_item=1e-4))
    assert choice.strategy == "asyncio"
    assert choice.max_workers == 200  # 2 cores x (1 + 9.9 ms wait / 0.1 ms CPU)
    assert choice.why.startswith("coroutine function: 1% of its time on CPU")
    blocked = {o.strategy: o.blocked for o in choice.options}
    assert blocked["threads"] == blocked["processes"] == "a coroutine function needs an event loop"


def test_one_item_left_is_not_split() -> None:
    choice = choose(make(), remaining=1)
    assert choice.strategy == "serial"
    assert choice.why == "1 item left -> serial: nothing to split"
    assert choose(make(), remaining=0).why == "0 items left -> serial: nothing to split"


def test_allowed_limits_the_strategies_to_pick_from() -> None:
    choice = choose(make(), allowed={"serial", "threads"})
    assert choice.strategy == "serial"
    assert "processes" not in choice.predictions
    assert "the best strategy for it is not allowed here" not in choice.why
    waiting = make(wall_seconds_per_item=0.05, cpu_seconds_per_item=1e-4)
    assert choose(waiting, allowed={"processes"}).strategy == "processes"


def test_chunks_hold_about_the_target_seconds_of_work_and_leave_each_worker_several() -> None:
    small = make(wall_seconds_per_item=1e-4, cpu_seconds_per_item=1e-4, items_total=None)
    assert choose(small).chunksize == round(TARGET_CHUNK_SECONDS / 1e-4)
    known = dataclasses.replace(small, items_total=400)  # 2 workers, each several chunks
    processes = {o.strategy: o for o in choose(known).options}["processes"]
    assert processes.chunksize == 400 // (2 * CHUNKS_PER_WORKER_LEFT)
    uneven = dataclasses.replace(small, variation=2.0)
    assert choose(uneven).chunksize == round(TARGET_CHUNK_SECONDS / 1e-4) // 2


def test_unknown_length_predicts_the_steady_state() -> None:
    choice = choose(make(items_total=None))
    # 2 workers, each item costs its time plus shipping plus a chunk's share of overhead
    assert choice.predicted == pytest.approx(2 * 0.0195 / (0.0195 + 20e-6 + 150e-6 / 2), rel=1e-2)


def test_remaining_overrides_the_profiles_total() -> None:
    many = choose(make(items_total=None), remaining=10**6)
    some = choose(make(items_total=None), remaining=20)
    assert many.predicted > some.predicted  # starting the workers weighs on 20 items
    few = choose(make(items_total=None), remaining=2)
    assert few.strategy == "serial"
    assert "all 2 items take 40.0 ms" in few.why


def test_choice_is_frozen_and_serializable() -> None:
    choice = choose(make())
    with pytest.raises(dataclasses.FrozenInstanceError):
        choice.strategy = "threads"  # type: ignore[misc]
    data = json.loads(json.dumps(choice.to_dict()))
    assert data["strategy"] == "processes"
    assert [o["strategy"] for o in data["options"]] == ["serial", "threads", "processes"]
    assert str(choice) == choice.why
    assert isinstance(choice, Choice)
