"""_pickling: plain pickle for plain data, cloudpickle for what a fresh worker cannot import."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

from gearshift.strategies.processes._pickling import PROTOCOL, dumps


def test_plain_data_goes_through_the_standard_pickler() -> None:
    items = [1, "two", 3.0, (4, b"5"), {"six": [7]}]
    assert dumps(items) == pickle.dumps(items, protocol=PROTOCOL)


def test_what_plain_pickle_refuses_travels_by_value() -> None:
    def local(x: int) -> int:
        return x + 1

    items = [lambda x: x * 2, local]
    double, plus_one = pickle.loads(dumps(items))
    assert (double(4), plus_one(4)) == (8, 5)


def test_items_of_a_class_defined_in_the_script_reach_the_workers(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import gearshift

            class Point:
                def __init__(self, x, y):
                    self.x, self.y = x, y

            def norm1(p):
                return abs(p.x) + abs(p.y)

            points = [Point(i, -i) for i in range(6)]
            print(gearshift.map(norm1, points, strategy="processes", chunksize=2))
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.strip() == "[0, 2, 4, 6, 8, 10]"
