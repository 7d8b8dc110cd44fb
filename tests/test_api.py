"""The behaviour suite: the same semantics on every strategy (the `strategy` fixture), called from
sync code (`gearshift.map`, `imap`) and from async code (`amap`, `aimap`): the `run` fixture."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest

import gearshift
from _from_async import FROM_ASYNC, FROM_SYNC
from gearshift import TaskFailed, UsageError


@pytest.fixture(params=["map", "amap"])
def run(request: pytest.FixtureRequest) -> Any:
    """`map` and `imap` as called from sync code, or the same calls from async code."""
    return FROM_SYNC if request.param == "map" else FROM_ASYNC


def square(x: int) -> int:
    return x * x


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"three is bad: {x}")
    return x


def fail_on_odd(x: int) -> int:
    if x % 2:
        raise KeyError(x)
    return x


def slow_then_fast(x: float) -> float:
    time.sleep(x)
    return x


class Counting:
    """An iterable that records how far it has been consumed."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.taken = 0

    def __iter__(self) -> Iterator[int]:
        for i in range(self.n):
            self.taken = i + 1
            yield i


def test_results_equal_builtin_map(run: Any, strategy: str) -> None:
    items = list(range(-50, 250))
    assert run.map(square, items, strategy=strategy) == list(map(square, items))


def test_lambdas_and_closures_run(run: Any, strategy: str) -> None:
    offset = 7
    assert run.map(lambda x: x + offset, range(5), strategy=strategy) == [7, 8, 9, 10, 11]


def test_empty_input_gives_empty_list(run: Any, strategy: str) -> None:
    assert run.map(square, [], strategy=strategy) == []
    assert list(run.imap(square, iter(()), strategy=strategy)) == []


def test_unordered_yields_every_result_once(run: Any, strategy: str) -> None:
    items = list(range(300))
    got = list(run.imap(square, items, strategy=strategy, ordered=False))
    assert sorted(got) == [x * x for x in items]


def test_unordered_yields_as_completed(run: Any, strategy: str) -> None:
    if strategy == "serial":
        pytest.skip("serial completes items in input order by definition")
    got = list(
        run.imap(
            slow_then_fast, [1.0, 0.0, 0.0, 0.0], strategy=strategy, ordered=False, chunksize=1
        )
    )
    assert got[-1] == 1.0 and sorted(got) == [0.0, 0.0, 0.0, 1.0]


def test_explicit_chunksize_is_respected(run: Any, strategy: str) -> None:
    it = run.imap(square, range(100), strategy=strategy, chunksize=7)
    assert list(it) == [x * x for x in range(100)]
    assert it.statistics().chunksize == 7


def test_adaptive_chunks_grow_for_cheap_items(run: Any, strategy: str) -> None:
    it = run.imap(square, range(50_000), strategy=strategy)
    assert sum(it) == sum(x * x for x in range(50_000))
    stats = it.statistics()
    assert stats.chunksize > 100  # from 1 item per chunk to many, by measurement
    assert stats.tasks_done == stats.tasks_submitted == 50_000


def test_input_is_consumed_lazily(run: Any, strategy: str) -> None:
    source = Counting(10_000_000)
    it = run.imap(square, source, strategy=strategy, chunksize=10)
    assert source.taken == 0  # nothing runs before the first next()
    first = list(itertools.islice(it, 5))
    assert first == [0, 1, 4, 9, 16]
    assert source.taken < 10_000  # a bounded window, not the whole input
    it.close()


def test_first_failure_raises_task_failed_naming_the_item(run: Any, strategy: str) -> None:
    with pytest.raises(TaskFailed) as info:
        run.map(fail_on_three, range(10), strategy=strategy)
    error = info.value
    assert error.index == 3 and error.item == "3"
    assert isinstance(error.__cause__, ValueError)
    assert "three is bad" in str(error) and "item 3" in str(error)


def test_failure_carries_the_workers_traceback(run: Any, strategy: str) -> None:
    with pytest.raises(TaskFailed) as info:
        run.map(fail_on_three, range(10), strategy=strategy)
    cause = info.value.__cause__
    assert cause is not None
    text = str(cause.__cause__) if cause.__cause__ is not None else ""
    tb = cause.__traceback__
    names = []
    while tb is not None:
        names.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert "fail_on_three" in text or "fail_on_three" in names


def test_return_exceptions_puts_errors_in_place(run: Any, strategy: str) -> None:
    got = run.map(fail_on_three, range(6), strategy=strategy, return_exceptions=True)
    assert got[:3] == [0, 1, 2] and got[4:] == [4, 5]
    assert isinstance(got[3], TaskFailed) and got[3].index == 3


def stop_on_multiples_of_seven(x: int) -> int:
    if x % 7 == 0:
        raise StopIteration(x)  # ends a map() loop: gearshift must not read it as the end
    return x


def test_a_stop_iteration_fails_only_its_item_and_no_result_is_lost(
    run: Any, strategy: str
) -> None:
    out = run.map(stop_on_multiples_of_seven, range(50), strategy=strategy, return_exceptions=True)
    assert len(out) == 50
    for x, value in enumerate(out):
        if x % 7:
            assert value == x
        else:
            assert isinstance(value, TaskFailed) and value.index == x
            assert "StopIteration" in str(value)


def give_up_on_multiples_of_five(x: int) -> int:
    if x % 5 == 0:  # a plain function: nothing cancelled it, it raises this of its own accord
        raise asyncio.CancelledError(f"gave up on {x}")
    return x


@pytest.mark.parametrize("task_timeout", [None, 30.0])
def test_a_cancelled_error_from_a_plain_function_fails_only_its_item(
    run: Any, strategy: str, task_timeout: float | None
) -> None:
    check_a_cancelled_error_fails_only_its_item(run, strategy, task_timeout)


def test_under_auto_too_a_cancelled_error_fails_only_its_item() -> None:
    # auto's sample runs items in this process
    check_a_cancelled_error_fails_only_its_item(FROM_SYNC, "auto", None)


def check_a_cancelled_error_fails_only_its_item(
    run: Any, strategy: str, task_timeout: float | None
) -> None:
    out = run.map(
        give_up_on_multiples_of_five,
        range(12),
        strategy=strategy,
        chunksize=4,
        task_timeout=task_timeout,
        return_exceptions=True,
    )
    assert [v for v in out if not isinstance(v, TaskFailed)] == [x for x in range(12) if x % 5]
    failed = [v for v in out if isinstance(v, TaskFailed)]
    assert [v.index for v in failed] == [0, 5, 10]
    assert all(isinstance(v.__cause__, asyncio.CancelledError) for v in failed)
    assert "gave up on 5" in str(failed[1])
    with pytest.raises(TaskFailed) as info:  # one failure: chunks may end in any order
        run.map(give_up_on_multiples_of_five, range(1, 9), strategy=strategy)
    assert info.value.index == 4 and info.value.item == "5"


def test_many_failures_in_one_chunk_keep_every_position(run: Any, strategy: str) -> None:
    out = run.map(fail_on_odd, range(300), strategy=strategy, return_exceptions=True)
    assert [v for v in out if not isinstance(v, TaskFailed)] == list(range(0, 300, 2))
    assert [v.index for v in out if isinstance(v, TaskFailed)] == list(range(1, 300, 2))


def test_item_repr_is_truncated(run: Any, strategy: str) -> None:
    def boom(_: object) -> None:
        raise RuntimeError("no")

    with pytest.raises(TaskFailed) as info:
        run.map(boom, ["x" * 10_000], strategy=strategy)
    assert len(info.value.item) < 200


def test_retries_rerun_a_failed_item(run: Any, strategy: str, tmp_path: object) -> None:
    import pathlib

    marker = pathlib.Path(str(tmp_path)) / "attempted"

    def flaky(x: int) -> int:
        if x == 2 and not marker.exists():
            marker.write_text("once")
            raise ConnectionError("transient")
        return x

    it = run.imap(flaky, range(5), strategy=strategy, retries=1)
    assert list(it) == [0, 1, 2, 3, 4]
    assert it.statistics().tasks_retried == 1


def test_retries_exhausted_reports_attempts(run: Any, strategy: str) -> None:
    got = run.map(fail_on_three, range(5), strategy=strategy, retries=2, return_exceptions=True)
    assert isinstance(got[3], TaskFailed) and got[3].attempts == 3


def test_retry_on_narrows_what_is_retried(run: Any, strategy: str) -> None:
    it = run.imap(
        fail_on_three,
        range(5),
        strategy=strategy,
        retries=3,
        retry_on=KeyError,
        return_exceptions=True,
    )
    got = list(it)
    assert isinstance(got[3], TaskFailed) and got[3].attempts == 1
    assert it.statistics().tasks_retried == 0


def test_statistics_count_outcomes(run: Any, strategy: str) -> None:
    it = run.imap(fail_on_three, range(10), strategy=strategy, return_exceptions=True)
    list(it)
    stats = it.statistics()
    assert (stats.tasks_submitted, stats.tasks_done, stats.tasks_failed) == (10, 10, 1)


def test_initializer_runs_before_tasks(run: Any, strategy: str) -> None:
    def init(value: int) -> None:
        import builtins

        builtins.gearshift_test_value = value  # type: ignore[attr-defined]

    def read(_: int) -> int:
        import builtins

        return int(builtins.gearshift_test_value)  # type: ignore[attr-defined]

    assert run.map(read, range(3), strategy=strategy, initializer=init, initargs=(42,)) == [
        42,
        42,
        42,
    ]


def test_progress_bar_counts_completed_items(
    run: Any, strategy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run.map(square, (x for x in range(20)), strategy=strategy, progress=True)
    err = capsys.readouterr().err
    assert "20" in err  # completed count shown for an unsized iterable


def test_generator_input_error_propagates(run: Any, strategy: str) -> None:
    def broken() -> Iterator[int]:
        yield 1
        raise OSError("the input itself failed")

    with pytest.raises(OSError, match="input itself"):
        run.map(square, broken(), strategy=strategy)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"max_workers": 0}, "max_workers"),
        ({"max_workers": 1.5}, "max_workers"),
        ({"chunksize": 0}, "chunksize"),
        ({"retries": -1}, "retries"),
        ({"task_timeout": -1}, "task_timeout"),
    ],
)
def test_bad_options_raise_usage_error_naming_them(
    run: Any, strategy: str, kwargs: dict[str, object], argument: str
) -> None:
    with pytest.raises(UsageError, match=argument):
        run.map(square, [1], strategy=strategy, **kwargs)  # type: ignore[arg-type]


def test_bad_fn_items_and_strategy_raise_usage_errors() -> None:
    with pytest.raises(UsageError, match="fn must be callable"):
        gearshift.map(3, [1])  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="items must be iterable"):
        gearshift.map(square, 5)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="strategy must be one of"):
        gearshift.map(square, [1], strategy="gpu")
    assert issubclass(UsageError, ValueError)


def test_coroutine_function_on_a_sync_strategy_is_a_usage_error() -> None:
    async def fetch(x: int) -> int:
        return x

    with pytest.raises(UsageError, match="coroutine function"):
        gearshift.map(fetch, [1], strategy="threads")


def test_strategy_instance_and_width() -> None:
    it = gearshift.imap(square, range(40), strategy=gearshift.Processes(max_workers=1))
    assert list(it) == [x * x for x in range(40)]
    assert it.statistics().workers_started == 1


def test_default_strategy_is_auto_and_says_why() -> None:
    it = gearshift.imap(square, range(4))
    assert list(it) == [0, 1, 4, 9]
    assert it.choice is not None and it.choice.strategy == "serial" and it.choice.why


def test_early_close_stops_the_work() -> None:
    it = gearshift.imap(slow_then_fast, [0.0] + [60.0] * 4, strategy="processes", chunksize=1)
    assert next(it) == 0.0
    start = time.monotonic()
    it.close()
    assert time.monotonic() - start < 30  # the 60-second tasks were killed, not awaited
