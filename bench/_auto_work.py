"""bench/auto.py's workloads, in a module the process workers can import by name.

Each function takes one item and returns something small and deterministic, so every
configuration's results can be compared with serial's. `workloads()` sizes them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

_BLOCK = bytes(range(256)) * (4 << 12)  # 4 MiB, built on import in every process
_TEXT = b"".join(b"gearshift %d compresses this line, more or less\n" % i for i in range(20_000))


def spin(n: int) -> int:
    """Pure Python: holds the GIL the whole time."""
    total = 0
    for i in range(n):
        total += i & 7
    return total


def uneven_spin(n: int) -> int:
    """Pure Python whose items differ up to 8-fold in cost (n encodes the cost)."""
    return spin(n)


def sha256(rounds: int) -> str:
    """hashlib over a 4 MiB buffer: C code that releases the GIL."""
    digest = ""
    for _ in range(rounds):
        digest = hashlib.sha256(_BLOCK).hexdigest()
    return digest


def deflate(level: int) -> int:
    """zlib.compress of ~1 MB of text: C code that releases the GIL."""
    return len(zlib.compress(_TEXT, level))


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def fetch(url: str) -> int:
    """One HTTP GET to the local image server (it waits `latency` before answering)."""
    with urllib.request.urlopen(url, timeout=30) as response:
        return len(response.read())


def fetch_and_parse(url: str) -> int:
    """An HTTP GET, then a pure-Python pass over the body (a stand-in for decoding it)."""
    with urllib.request.urlopen(url, timeout=30) as response:
        body = response.read()
    total = 0
    for byte in body:
        total = (total * 31 + byte) & 0xFFFFFFFF
    return total


def run_true(_: int) -> int:
    """Start a tiny program and wait for it."""
    return subprocess.run(["true"], check=True).returncode


def query(job: tuple[str, int]) -> list[tuple[int, int]]:
    """An aggregate over a table in an SQLite file; sqlite3 releases the GIL while it steps."""
    path, k = job
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT grp, sum(val) FROM t WHERE (id + ?) % 3 = 0 GROUP BY grp ORDER BY grp", (k,)
        ).fetchall()
    db.close()
    return rows


def make_db(path: str, rows: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, grp INTEGER, val INTEGER)")
        db.executemany(
            "INSERT INTO t VALUES (?, ?, ?)", ((i, i % 17, i * 7 % 1000) for i in range(rows))
        )
    db.close()


def parse_json(document: str) -> tuple[int, int]:
    """json.loads of a mid-size document (C code that holds the GIL), then a small summary."""
    records = json.loads(document)["records"]
    return len(records), sum(r["score"] for r in records)


def make_document(records: int, seed: int) -> str:
    return json.dumps(
        {
            "records": [
                {
                    "id": seed * records + i,
                    "name": f"item-{i}",
                    "score": (i * 37 + seed) % 101,
                    "tags": ["a", "b", str(i % 5)],
                    "ok": i % 3 == 0,
                }
                for i in range(records)
            ]
        }
    )


def total(values: list[int]) -> int:
    """Cheap work on a big list: shipping it costs more than summing it."""
    return sum(values)


def big_lists(count: int, length: int) -> list[list[int]]:
    """Distinct lists (a pickled chunk of repeats of one object would ship it only once)."""
    return [list(range(i, i + length)) for i in range(count)]


def head_sum(blob: bytes) -> int:
    """Cheap pure-Python work on a big bytes object: its first 4 kB."""
    return sum(blob[:4096]) + blob[-1]


def big_blobs(count: int, size: int) -> list[bytes]:
    """Distinct bytes objects of `size` bytes each."""
    return [bytes([i % 256]) * size for i in range(count)]


def square(x: int) -> int:
    return x * x


@dataclass
class Workload:
    name: str
    fn: Callable[[Any], Any]
    make: Callable[[], list[Any]]  # the items, built just before the workload runs


def workloads(base_url: str, tmp: str) -> list[Workload]:
    """The workloads, sized on the 2-core machine this was tuned on: CPU-bound ones take ~1.2 s
    serial; waiting-bound ones ~1 s on their best configuration (serial: far longer, cut); the
    few-long-items ones are the size of the demos (`gearshift demo`).
    Items are built per workload, so no workload's data slows another's garbage collection."""
    fast, slow = f"{base_url}/images/0.png", f"{base_url}/images/1.png?latency=0.02&bytes=65536"
    long_get = f"{base_url}/images/1.png?latency=0.3"

    def queries() -> list[Any]:
        db = os.path.join(tmp, "bench.sqlite")
        if not os.path.exists(db):
            make_db(db, 200_000)
        return [(db, k) for k in range(40)]

    def documents() -> list[Any]:
        texts = [make_document(1000, seed) for seed in range(16)]
        return [texts[i % 16] for i in range(1100)]

    def lists() -> list[Any]:  # 3.6 MB each in memory, ~0.5 MB pickled
        distinct = big_lists(64, 100_000)
        return [distinct[i % 64] for i in range(2000)]

    def blobs() -> list[Any]:  # 2 MiB each
        distinct = big_blobs(64, 2 << 20)
        return [distinct[i % 64] for i in range(30_000)]

    uneven = [50_000 * (1 + (i * 7) % 8) for i in range(110)]  # 2.5 ms .. 20 ms
    return [
        Workload("pure Python loop", spin, lambda: [430_000] * 60),
        Workload("uneven pure Python", uneven_spin, lambda: uneven),
        Workload("sha256 4 MiB x4", sha256, lambda: [4] * 110),
        Workload("zlib.compress 1 MB", deflate, lambda: [6] * 210),
        Workload("time.sleep 20 ms", nap, lambda: [0.02] * 3000),
        Workload("HTTP GET 50 ms", fetch, lambda: [fast] * 1000),
        Workload("fetch then parse", fetch_and_parse, lambda: [slow] * 100),
        Workload("subprocess true", run_true, lambda: list(range(1000))),
        Workload("SQLite aggregate", query, queries),
        Workload("json.loads 84 kB", parse_json, documents),
        Workload("big list, cheap sum", total, lists),
        Workload("big bytes, cheap op", head_sum, blobs),
        Workload("tiny x*x", square, lambda: list(range(1_500_000))),
        # Few long items: the run is a handful of item times, so the sample must not cost one.
        Workload("5 x 0.3 s sleep", nap, lambda: [0.3] * 5),
        Workload("5 x 0.3 s HTTP GET", fetch, lambda: [long_get] * 5),
        Workload("5 x 0.5 s pure Python", spin, lambda: [10_000_000] * 5),
        Workload("8 x 0.2 s sha256", sha256, lambda: [70] * 8),
    ]


@contextlib.contextmanager
def image_server() -> Iterator[str]:
    """`gearshift serve-images` in its own process; yields its base URL."""
    command = [sys.executable, "-m", "gearshift", "serve-images", "--json", "--count", "2"]
    command += ["--size-bytes", "16384", "--latency", "0.05"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        yield json.loads(server.stdout.readline())["base_url"]
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()
