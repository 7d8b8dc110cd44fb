"""_pickling: plain pickle for plain data, cloudpickle for what a fresh worker cannot import."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

from gearshift.strategies.processes._pickling import PROTOCOL, dumps, dumps_apart


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


# ---- which buffers travel apart (apart.split), as the pool and its workers pickle ------------
def test_big_buffers_go_apart_small_ones_and_plain_data_stay_in_band() -> None:
    import array

    small, big = bytearray(100), array.array("d", range(200_000))  # 1.6 MB
    items = [small, ("label", bytes(2_000_000)), {"key": bytearray(3_000_000)}, memoryview(big)]
    data, buffers = dumps_apart(items, 1_000_000)
    assert sorted(memoryview(b).nbytes for b in buffers) == [1_600_000, 2_000_000, 3_000_000]
    got = pickle.loads(data, buffers=buffers)
    assert got[0] == small and type(got[0]) is bytearray
    assert got[1] == ("label", bytes(2_000_000)) and type(got[1][1]) is bytes
    assert type(got[2]["key"]) is bytearray and len(got[2]["key"]) == 3_000_000
    assert got[3] == big.tobytes()  # a memoryview arrives as bytes, as cloudpickle sends it
    assert dumps_apart([1, "two"], 10) == (dumps([1, "two"]), [])  # nothing apart: same bytes
    assert dumps_apart(items[:2], None)[1] == []  # zero-copy off


def test_memoryviews_arrive_as_bytes_whatever_their_size() -> None:
    for size in (3, 2_000_000):
        data, buffers = dumps_apart([memoryview(b"x" * size)], 1_000_000)
        assert len(buffers) == (size > 1_000_000)
        assert pickle.loads(data, buffers=buffers) == [b"x" * size]
