"""`gearshift profile MODULE:FUNC`: the report, the JSON plan-lambda reads, and usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gearshift.cli import main

WORK = """
import time

def crunch(n):
    total = 0
    for i in range(n):
        total += i
    return total

def nap(seconds):
    time.sleep(seconds)
    return seconds
"""


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "gs_profile_work.py"
    path.write_text(WORK)
    return path


def test_prints_the_choice_the_measurements_and_each_strategys_prediction(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["profile", f"{work}:nap", "--items", "[0.02] * 50"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("threads: waiting-bound:")
    assert "profile of nap:" in out
    assert "predicted speedup over serial" in out
    for strategy in ("serial", "threads", "processes"):
        assert strategy in out


def test_json_has_the_profile_at_the_top_and_the_choice(
    work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = tmp_path / "items.txt"
    items.write_text("\n".join(["20000"] * 30) + "\n")
    code = main(["profile", f"{work}:crunch", "--items-file", str(items), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["target"] == f"{work}:crunch"
    assert data["items_total"] == 30
    assert data["payload_bytes_in"] < 100  # ints, read as JSON values, not strings
    for key in ("cpu_seconds_per_item", "wait_seconds_per_item", "payload_bytes_out"):
        assert isinstance(data[key], float)
    assert data["choice"]["strategy"] in {"serial", "threads", "processes"}
    assert {o["strategy"] for o in data["choice"]["options"]} == {"serial", "threads", "processes"}


def test_sampled_items_that_raise_are_warned_about(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["profile", f"{work}:crunch", "--items", "[100, 'x', 100]", "--sample", "3"])
    err = capsys.readouterr().err
    assert code == 0
    assert "1 of 3 sampled items raised (first: item 1, TypeError" in err


def test_usage_errors_exit_2_and_name_the_argument(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["profile", f"{work}:nope", "--items", "range(3)"]) == 2
    assert "MODULE:FUNC" in capsys.readouterr().err
    assert main(["profile", f"{work}:nap"]) == 2
    assert "--items" in capsys.readouterr().err
    assert main(["profile", f"{work}:nap", "--items", "[0.01]", "--sample", "0"]) == 2
    assert "sample must be a whole number" in capsys.readouterr().err
