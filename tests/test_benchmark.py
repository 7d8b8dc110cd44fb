"""gearshift.bench() and `gearshift bench`: real runs of tiny functions, checked for structure,
correctness of the comparison and exit codes; never for speed."""

from __future__ import annotations

import json
import math
import struct
import sys
import threading
from pathlib import Path

import pytest

import gearshift
from gearshift import Processes
from gearshift.cli import main
from gearshift.errors import ProfileError, TaskFailed, UsageError
from gearshift.lab._bench import (
    NOISY_SPREAD,
    BenchResult,
    Measurement,
    bench,
    machine,
)


def thread_name(_: object) -> str:
    """Differs between serial (MainThread) and a thread pool: a wrong answer on purpose."""
    return threading.current_thread().name


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def expected_png_size() -> tuple[int, int]:
    from gearshift.cli.charts import DPI, FIGSIZE

    return round(FIGSIZE[0] * DPI), round(FIGSIZE[1] * DPI)


def test_bench_measures_each_strategy_and_width() -> None:
    result = bench(
        math.factorial, range(40), strategies=("serial", "threads"), workers=(2, 1), repeat=2
    )
    assert isinstance(result, BenchResult)
    assert [m.label for m in result.measurements][:3] == ["serial", "threads x1", "threads x2"]
    assert result.serial.speedup == 1.0 and result.serial.workers == 1
    for m in result.measurements:
        assert len(m.seconds) == 2 and all(s > 0 for s in m.seconds)
        assert m.speedup == pytest.approx(result.serial.median / m.median)
    threads2 = result.measurements[2]
    assert threads2.ideal_speedup == min(2, result.machine.cores)
    assert result.items == 40 and result.repeat == 2 and result.warmup


def test_auto_runs_once_and_says_what_it_chose() -> None:
    result = bench(abs, range(8), strategies=("auto",), workers=(1, 2), repeat=1, warmup=False)
    (auto,) = [m for m in result.measurements if m.strategy == "auto"]
    assert auto.label.startswith("auto -> ") and auto.note.startswith("auto chose ")
    assert isinstance(auto.workers, int) and f" x{auto.workers}" in auto.label


def test_auto_runs_that_chose_differently_are_judged_against_the_widest_ideal() -> None:
    from types import SimpleNamespace

    from gearshift.lab._measure import auto_row

    def choice(strategy: str, workers: int) -> SimpleNamespace:
        return SimpleNamespace(strategy=strategy, max_workers=workers, why="measured")

    def ideal(w: int | None) -> float:
        return float(min(w or 2, 2))

    mixed = auto_row((1.0, 1.0), [choice("processes", 2), choice("serial", 1)], 1.5, ideal)
    assert mixed.label == "auto -> processes x2 / serial x1" and mixed.workers is None
    assert mixed.ideal_speedup == 2.0 and mixed.efficiency == 0.75
    same = auto_row((1.0,), [choice("threads", 1)], 1.0, ideal)
    assert same.workers == 1 and same.ideal_speedup == 1.0


def test_bench_result_is_json_with_the_documented_keys() -> None:
    result = bench(
        math.factorial, [5, 6], strategies=("threads",), workers=(1,), repeat=1, warmup=False
    )
    data = json.loads(json.dumps(result.to_dict()))
    assert data["kind"] == "bench"
    assert {
        "function",
        "items",
        "repeat",
        "warmup",
        "machine",
        "measurements",
        "noisy",
        "noisy_threshold",
        "best",
    } <= set(data)
    assert set(data["machine"]) == {
        "cores", "python", "gil", "start_method", "platform", "cpu", "load_before",
    }  # fmt: skip
    assert isinstance(data["busy"], bool)
    row = data["measurements"][0]
    assert {
        "label",
        "strategy",
        "workers",
        "seconds",
        "median",
        "spread",
        "noisy",
        "speedup",
        "efficiency",
        "ideal_speedup",
    } <= set(row)
    assert data["noisy_threshold"] == NOISY_SPREAD


def test_bench_on_processes_returns_equal_results() -> None:
    result = bench(
        math.factorial, range(30), strategies=("processes",), workers=(2,), repeat=1, warmup=False
    )
    assert [m.label for m in result.measurements] == ["serial", "processes x2"]


def test_a_different_answer_is_an_error_not_a_speedup() -> None:
    with pytest.raises(ProfileError, match=r"threads x2 returned .* item 0.*serial returned"):
        bench(thread_name, range(4), strategies=("threads",), workers=(2,), repeat=1)


def test_a_failing_function_names_the_item() -> None:
    with pytest.raises(TaskFailed, match="item 1"):
        bench(math.factorial, [3, -1], strategies=("threads",), workers=(1,), repeat=1)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"repeat": 0}, "repeat"),
        ({"workers": (0,)}, "workers"),
        ({"workers": ()}, "workers"),
        ({"strategies": ("nope",)}, "strategy"),
    ],
)
def test_bad_arguments_are_usage_errors(kwargs: dict[str, object], word: str) -> None:
    with pytest.raises(UsageError, match=word):
        bench(math.factorial, range(3), **kwargs)  # type: ignore[arg-type]


def test_bad_items_and_fn_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="items is empty"):
        bench(math.factorial, [])
    with pytest.raises(UsageError, match="fn must be callable"):
        bench(42, [1])  # type: ignore[arg-type]


def test_spread_noise_and_efficiency() -> None:
    m = Measurement("threads x2", "threads", 2, (1.0, 1.5, 2.0), speedup=2.0, ideal_speedup=2.0)
    assert m.median == 1.5
    assert m.spread == pytest.approx(1.0 / 1.5)
    assert m.noisy
    assert m.efficiency == 1.0
    quiet = Measurement("serial", "serial", 1, (1.0, 1.01), speedup=1.0, ideal_speedup=1.0)
    assert not quiet.noisy


def test_machine_facts() -> None:
    from gearshift.machine import available_cores

    facts = machine()
    assert facts.cores == available_cores()
    assert facts.start_method == Processes().start_method
    assert facts.gil.startswith("enabled") or facts.gil.startswith("disabled")
    assert facts.load_before is not None and facts.load_before >= 0  # Linux has getloadavg
    assert facts.python.endswith(
        ".".join(map(str, sys.version_info[:2])) + "." + str(sys.version_info[2])
    )


def test_a_busy_machine_is_reported_even_when_runs_agree() -> None:
    import io

    from rich.console import Console

    from gearshift.cli.bench import render_bench
    from gearshift.lab._bench import Machine

    def result(load: float) -> BenchResult:
        facts = Machine(2, "CPython 3.11.7", "enabled", "subprocess", "Linux", "x", load)
        rows = (Measurement("serial", "serial", 1, (1.0, 1.01), 1.0, 1.0),)
        return BenchResult("m:f", 4, 2, True, facts, rows)

    for load, busy in ((0.2, False), (3.5, True)):
        assert result(load).machine.busy is busy
        out = io.StringIO()
        render_bench(result(load), Console(file=out, width=200))
        assert ("the machine was busy: load average 3.50 on 2 cores" in out.getvalue()) is busy
        assert f"load average {load:.2f} when the run started" in out.getvalue()


def test_public_names() -> None:
    assert gearshift.bench is bench
    assert gearshift.BenchResult is BenchResult
    assert {"bench", "BenchResult"} <= set(gearshift.__all__)


# --- the command line ------------------------------------------------------------------------

FAST = ["--strategies", "serial,threads", "--workers", "1,2", "--repeat", "1"]


def test_cli_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "math:factorial", "--items", "range(30)", *FAST]) == 0
    out = capsys.readouterr().out
    assert "math:factorial over 30 items" in out
    for text in (
        "serial",
        "threads x1",
        "threads x2",
        "speedup",
        "of ideal",
        "Machine:",
        "Fastest:",
    ):
        assert text in out
    assert "\x1b[" not in out  # no colour codes when stdout is not a terminal


def test_cli_json_is_pure_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "math:factorial", "--items", "[3, 4, 5]", *FAST, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["function"] == "math:factorial"
    assert data["items"] == 3 and data["chart"] is None
    assert [m["label"] for m in data["measurements"]] == ["serial", "threads x1", "threads x2"]


def test_cli_chart_is_a_png_of_the_documented_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = tmp_path / "sub" / "scaling.png"
    argv = ["bench", "math:factorial", "--items", "range(20)", *FAST, "--chart", str(chart)]
    assert main([*argv, "--strategies", "serial,threads,auto"]) == 0  # auto: a star at its width
    assert png_size(chart) == expected_png_size()
    assert f"chart: {chart}" in capsys.readouterr().out.replace("\n", "")


def test_cli_items_file_json_and_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    numbers = tmp_path / "items.json"
    numbers.write_text("[1, 2, 3]")
    assert main(["bench", "math:factorial", "--items-file", str(numbers), *FAST, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["items"] == 3
    words = tmp_path / "words.txt"
    words.write_text("alpha\n\nbeta\n")
    assert main(["bench", "builtins:len", "--items-file", str(words), *FAST, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["items"] == 2


def test_cli_loads_a_function_from_a_file_for_process_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    module = tmp_path / "gearshift_bench_target_a1.py"
    module.write_text("def double(x):\n    return 2 * x\n")
    try:
        argv = [
            "bench",
            f"{module}:double",
            "--items",
            "range(6)",
            "--strategies",
            "serial,processes",
            "--workers",
            "1",
            "--repeat",
            "1",
            "--no-warmup",
            "--json",
        ]
        assert main(argv) == 0
    finally:
        sys.modules.pop("gearshift_bench_target_a1", None)
    labels = [m["label"] for m in json.loads(capsys.readouterr().out)["measurements"]]
    assert labels == ["serial", "processes x1"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["math", "--items", "range(3)"], "MODULE:FUNC"),
        (["no_such_module_xyz:f", "--items", "range(3)"], "cannot import"),
        (["math:no_such_function", "--items", "range(3)"], "has no 'no_such_function'"),
        (["math:pi", "--items", "range(3)"], "not a function"),
        (["math:factorial"], "--items/--items-file"),
        (["math:factorial", "--items", "1/0"], "--items"),
        (["math:factorial", "--items", "[]"], "no items"),
        (["math:factorial", "--items", "range(3)", "--workers", "a,b"], "--workers"),
        (["math:factorial", "--items", "range(3)", "--workers", "0"], "--workers"),
        (["math:factorial", "--items", "range(3)", "--strategies", "nope"], "--strategies"),
        (["math:factorial", "--items", "range(3)", "--repeat", "0"], "--repeat"),
        (["math:factorial", "--items-file", "/nonexistent/items.json"], "--items-file"),
    ],
)
def test_cli_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err


def test_cli_work_that_fails_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "math:factorial", "--items", "[2, -1]", *FAST]) == 1
    assert "item 1" in capsys.readouterr().err
