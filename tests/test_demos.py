"""The demos: the source's ways (one process per task, a queue of threads) made safe, both
experiments on tiny sizes, the sentences that explain them, and `gearshift demo` end to end."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import socket
import struct
import threading
import urllib.request
from pathlib import Path

import pytest

from _running import new_threads
from gearshift import ImageServer
from gearshift.cli import main
from gearshift.cli.demo import explain_cpu, explain_io
from gearshift.errors import DownloadError, UsageError
from gearshift.lab._bench import Machine, Measurement
from gearshift.lab._demos import DemoResult, Experiment, run_demo
from gearshift.lab.demo_tasks import (
    download_with_thread_queue,
    fetch,
    sum_all_numbers,
    sum_with_processes,
)

TINY = ["--n", "1000", "--repeat", "1", "--latency", "0.01", "--size-bytes", "2048"]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", "not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def expected_png_size() -> tuple[int, int]:
    from gearshift.cli.charts import DPI, FIGSIZE

    return round(FIGSIZE[0] * DPI), round(FIGSIZE[1] * DPI)


def sha256_of(url: str) -> str:
    with urllib.request.urlopen(url) as response:
        return hashlib.sha256(response.read()).hexdigest()


def test_sum_all_numbers_is_the_sources_task() -> None:
    assert sum_all_numbers(100) == 5050
    assert sum_all_numbers(0) == 0


def test_one_process_per_sum_returns_every_sum_and_leaves_no_child() -> None:
    before = set(multiprocessing.active_children())  # other tests' children may still be ending
    assert sum_with_processes(1000, tasks=3) == [500500] * 3
    assert set(multiprocessing.active_children()) <= before


def test_thread_queue_downloads_every_url_and_stops_its_threads(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    with ImageServer(count=3, size_bytes=1024, latency=0.01) as srv:
        jobs = [(i, url, str(tmp_path)) for i, url in enumerate(srv.urls)]
        got = download_with_thread_queue(jobs, threads=2)
        expected = [(1024, sha256_of(url)) for url in srv.urls]
    assert got == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0-0.png", "1-1.png", "2-2.png"]
    assert new_threads(before) == []


def test_thread_queue_raises_a_failed_download_instead_of_hanging(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    with ImageServer(count=2, size_bytes=1024) as srv:
        jobs = [(0, srv.urls[0], str(tmp_path)), (1, f"{srv.base_url}/images/9.png", str(tmp_path))]
        with pytest.raises(DownloadError) as info:
            download_with_thread_queue(jobs, threads=2)
    assert info.value.status == 404 and info.value.url.endswith("/images/9.png")
    assert new_threads(before) == []


def test_fetch_names_the_url_when_nothing_listens(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.png"
    with pytest.raises(DownloadError, match="check the URL") as info:
        fetch((0, url, str(tmp_path)))
    assert info.value.url == url


@pytest.mark.slow  # ~3 s quiet, more on a busy machine: six pools and five spawned processes
def test_both_experiments_on_tiny_sizes() -> None:
    result = run_demo(n=1000, repeat=1, latency=0.01, size_bytes=2048)
    cpu, io = result.experiments
    assert [m.strategy for m in cpu.measurements] == [
        "serial",
        "threads",
        "multiprocessing.Process",
        "processes",
        "auto",
    ]
    assert [m.strategy for m in io.measurements] == [
        "serial",
        "threading+queue.Queue",
        "threads",
        "processes",
        "auto",
    ]
    assert cpu.params["n"] == 1000 and cpu.ideal_seconds > 0
    assert cpu.measurements[1].ideal_speedup == min(result.machine.cores, 5)
    # the latency bound is measured: no download beats the server's latency, serial waits for 5
    assert io.params["latency"] <= io.ideal_seconds < io.measurements[0].median
    for m in io.measurements:
        assert m.ideal_speedup == pytest.approx(io.measurements[0].median / io.ideal_seconds)
    assert io.params["latency"] == 0.01 and len(io.params["urls"]) == 5
    json.dumps(result.to_dict())


def test_demo_rejects_bad_arguments() -> None:
    with pytest.raises(UsageError, match="n must be"):
        run_demo(n=0)
    with pytest.raises(UsageError, match="repeat must be"):
        run_demo(repeat=0)
    with pytest.raises(UsageError, match="not http"):
        run_demo(urls=["ftp://example.com/a.png"], cpu=False)


# --- the sentences, on made-up numbers (no timing involved) ----------------------------------


def facts(cores: int, gil: str = "enabled") -> Machine:
    return Machine(cores, "CPython 3.11.7", gil, "subprocess (fresh interpreter)", "Linux", "x")


def row(strategy: str, median: float, serial: float, ideal: float) -> Measurement:
    return Measurement(strategy, strategy, 5, (median,), serial / median, ideal)


def cpu_result(cores: int) -> Experiment:
    ideal = float(min(cores, 5))
    rows = (
        row("serial", 10.0, 10.0, ideal),
        row("threads", 10.2, 10.0, ideal),
        row("multiprocessing.Process", 5.4, 10.0, ideal),
        row("processes", 5.6, 10.0, ideal),
    )
    return Experiment("cpu", "CPU", "sum", rows, 10.0 / ideal, "serial / 2", {"tasks": 5})


def test_cpu_sentences_explain_the_gil_and_the_core_ceiling() -> None:
    text = " ".join(explain_cpu(cpu_result(2), facts(2)))
    assert "GIL" in text and "concurrency" in text and "parallelism" in text
    assert "Threads: 10.20 s (0.98x)" in text
    assert "5.40 s (1.85x) with multiprocessing.Process" in text
    assert "Why not 5x? This machine has 2 cores" in text and "best possible is 2x" in text
    assert "93% of the ceiling" in text  # 1.85 / 2


def test_cpu_sentences_on_a_big_machine_and_without_the_gil() -> None:
    text = " ".join(explain_cpu(cpu_result(8), facts(8, "disabled (free-threaded build)")))
    assert "Why not" not in text and "ceiling is 5x" in text
    assert "without the GIL" in text


def test_sentences_do_not_explain_a_slowed_serial_as_a_speedup() -> None:
    ideal = 2.0  # 2 cores; a busy machine slowed serial: 3.8x from processes, 1.4x from threads
    rows = (
        row("serial", 21.0, 21.0, ideal),
        row("threads", 15.0, 21.0, ideal),
        row("multiprocessing.Process", 5.6, 21.0, ideal),
        row("processes", 7.9, 21.0, ideal),
    )
    exp = Experiment("cpu", "CPU", "sum", rows, 10.5, "serial / 2", {"tasks": 5})
    text = " ".join(explain_cpu(exp, facts(2)))
    assert "The 1.40x measured here is other programs slowing the serial runs" in text
    assert "measured 188% of the ceiling, more than this machine allows" in text
    assert "the rest went to starting" not in text
    quiet = " ".join(explain_cpu(cpu_result(2), facts(2)))
    assert "other programs" not in quiet and "more than this machine allows" not in quiet


def test_io_sentences_explain_overlapping_waits() -> None:
    ideal = 2.0 / 0.3
    rows = (
        row("serial", 2.0, 2.0, ideal),
        row("threading+queue.Queue", 0.4, 2.0, ideal),
        row("threads", 0.41, 2.0, ideal),
        row("processes", 1.1, 2.0, ideal),
    )
    exp = Experiment("io", "I/O", "dl", rows, 0.3, "bound", {"urls": ["u"] * 5, "latency": 0.25})
    text = " ".join(explain_io(exp))
    assert "waits 0.25 s before each answer" in text
    assert "releases the GIL" in text and "0.40 s (5.0x)" in text
    assert "0.30 s (the slowest single download)" in text and "75% of it" in text


# --- the command line ------------------------------------------------------------------------


def test_cli_cpu_only_prints_table_and_story_and_writes_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", *TINY, "--cpu-only", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for text in (
        "CPU-bound: sum 0..1,000, 5 times",
        "multiprocessing.Process, as in the source",
        "ideal for this machine",
        "The GIL",
        "Machine:",
        "speedup",
    ):
        assert text in out
    assert "I/O-bound" not in out
    data = json.loads((tmp_path / "demo.json").read_text())
    assert [e["name"] for e in data["experiments"]] == ["cpu"]
    assert png_size(tmp_path / "demo.png") == expected_png_size()


def test_cli_io_only_json_against_given_urls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ImageServer(count=2, size_bytes=1024, latency=0.01) as srv:
        argv = [
            "demo",
            "--io-only",
            "--repeat",
            "1",
            "--json",
            "--out",
            str(tmp_path),
            "--chart",
            str(tmp_path / "c.png"),
            "--url",
            *srv.urls,
        ]
        assert main(argv) == 0
        urls = srv.urls
    data = json.loads(capsys.readouterr().out)  # stdout holds nothing but the JSON
    assert data["kind"] == "demo" and data["chart"] == str(tmp_path / "c.png")
    (io,) = data["experiments"]
    assert io["name"] == "io" and io["params"]["urls"] == urls
    assert {"label", "median", "spread", "speedup", "efficiency"} <= set(io["measurements"][0])
    assert json.loads((tmp_path / "demo.json").read_text())["experiments"] == data["experiments"]


def test_cli_exits_1_when_a_download_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ImageServer(count=1, size_bytes=1024) as srv:
        url = f"{srv.base_url}/images/7.png"
        assert (
            main(["demo", "--io-only", "--repeat", "1", "--out", str(tmp_path), "--url", url]) == 1
        )
    assert "DownloadError" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--repeat", "0"], "--repeat"),
        (["--n", "0"], "--n"),
        (["--url", "ftp://example.com/a.png", "--io-only"], "not http"),
        (["--cpu-only", "--io-only"], "not allowed with"),
    ],
)
def test_cli_usage_errors_exit_2(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--out", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_demo_result_json_schema() -> None:
    exp = cpu_result(2)
    data = DemoResult(facts(2), (exp,), 3).to_dict()
    assert data["kind"] == "demo" and data["repeat"] == 3
    (e,) = data["experiments"]
    assert {"name", "title", "workload", "measurements", "ideal_seconds", "ideal", "params"} == set(
        e
    )
