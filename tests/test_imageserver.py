"""The local image server, tested through real sockets on 127.0.0.1 with urllib as the client."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from _running import new_threads
from gearshift.cli import main
from gearshift.errors import UsageError
from gearshift.lab import ImageServer, png_image


def fetch(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Any:
    """(status, headers, body) of one request; error statuses are returned, not raised."""
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers, exc.read()


def parse_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Check signature, chunk order and every CRC; return width, height and the chunk types."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, kinds, idat = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        kinds.append(kind)
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, colour, interlace) == (8, 2, 0)  # 8-bit RGB
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    assert pos == len(data)
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    raw = zlib.decompress(idat)
    assert len(raw) == height * (1 + 3 * width)
    assert all(raw[row * (1 + 3 * width)] == 0 for row in range(height))  # filter byte: None
    return width, height, kinds


@pytest.mark.parametrize("size", [128, 1000, 65_537, 256 * 1024])
def test_png_image_is_valid_and_exactly_the_size_asked(size: int) -> None:
    data = png_image(7, size)
    assert len(data) == size
    width, height, _ = parse_png(data)
    if size > 60_000:
        assert width * height * 3 > size * 0.95  # the pixels are the bulk, not the padding
        assert len(zlib.compress(data)) > size * 0.95  # noise: it does not compress to nothing


def test_png_image_rejects_a_size_too_small_for_a_png() -> None:
    with pytest.raises(UsageError, match="size_bytes"):
        png_image(0, 100)


def test_images_are_deterministic_across_servers_and_distinct_by_index() -> None:
    with ImageServer(count=3, size_bytes=50_000) as a, ImageServer(count=3, size_bytes=50_000) as b:
        assert a.base_url != b.base_url
        status, headers_a, body_a = fetch(a.url_for(2))
        _, headers_b, body_b = fetch(b.url_for(2))
        _, _, other = fetch(a.url_for(1))
    assert status == 200 and body_a == body_b and body_a != other
    assert headers_a["Content-Type"] == "image/png"
    assert headers_a["Content-Length"] == "50000" == str(len(body_a))
    assert headers_a["ETag"] == headers_b["ETag"]
    assert headers_a["Last-Modified"] == headers_b["Last-Modified"]
    assert headers_a["Accept-Ranges"] == "bytes"
    parse_png(body_a)


def test_urls_are_stable_and_query_overrides_the_size() -> None:
    with ImageServer(count=2, size_bytes=10_000) as srv:
        assert srv.urls == [f"{srv.base_url}/images/0.png", f"{srv.base_url}/images/1.png"]
        assert srv.base_url.startswith("http://127.0.0.1:")
        status, headers, body = fetch(srv.url_for(1, size_bytes=3000))
    assert status == 200 and len(body) == 3000 == int(headers["Content-Length"])
    assert body == png_image(1, 3000)


def test_latency_delays_each_response() -> None:
    with ImageServer(count=1, size_bytes=1000, latency=0.3) as srv:
        start = time.perf_counter()
        assert fetch(srv.url_for(0))[0] == 200
        assert time.perf_counter() - start >= 0.25


def test_latency_from_the_query_overrides_the_server() -> None:
    with ImageServer(count=1, size_bytes=1000) as srv:
        start = time.perf_counter()
        assert fetch(srv.url_for(0, latency=0.3))[0] == 200
        assert time.perf_counter() - start >= 0.25


def test_bandwidth_caps_each_response() -> None:
    with ImageServer(count=1, size_bytes=64 * 1024, bandwidth=256 * 1024) as srv:
        start = time.perf_counter()
        _, _, body = fetch(srv.url_for(0))
        elapsed = time.perf_counter() - start
    assert len(body) == 64 * 1024
    assert elapsed >= 0.2  # 64 KiB at 256 KiB/s is 0.25 s


def test_range_requests_resume_and_validate() -> None:
    with ImageServer(count=1, size_bytes=20_000) as srv:
        url = srv.url_for(0)
        _, headers, full = fetch(url)
        status, part_headers, part = fetch(url, {"Range": "bytes=1000-"})
        assert (status, part) == (206, full[1000:])
        assert part_headers["Content-Range"] == "bytes 1000-19999/20000"
        assert part_headers["Content-Length"] == "19000"
        assert fetch(url, {"Range": "bytes=0-99"})[2] == full[:100]
        assert fetch(url, {"Range": "bytes=-10"})[2] == full[-10:]
        status, bad_headers, _ = fetch(url, {"Range": "bytes=20000-"})
        assert status == 416 and bad_headers["Content-Range"] == "bytes */20000"
        same = {"Range": "bytes=10-", "If-Range": headers["ETag"]}
        assert fetch(url, same)[:3:2] == (206, full[10:])
        changed = {"Range": "bytes=10-", "If-Range": '"another-version"'}
        assert fetch(url, changed)[:3:2] == (200, full)


def test_head_sends_headers_without_a_body() -> None:
    with ImageServer(count=1, size_bytes=5000) as srv:
        status, headers, body = fetch(srv.url_for(0), method="HEAD")
        assert (status, headers["Content-Length"], body) == (200, "5000", b"")
    assert srv.statistics().bytes_sent == 0  # exact once closed: close() joins the handlers


@pytest.mark.parametrize("path", ["/", "/images/5.png", "/images/x.png", "/images/0.jpg"])
def test_unknown_paths_are_404(path: str) -> None:
    with ImageServer(count=5, size_bytes=1000) as srv:
        status, _, body = fetch(srv.base_url + path)
    assert status == 404 and b"/images/0.png" in body


@pytest.mark.parametrize("query", ["latency=-1", "latency=abc", "bytes=5", "bandwidth=nan"])
def test_bad_query_is_400_naming_the_parameter(query: str) -> None:
    with ImageServer(count=1, size_bytes=1000) as srv:
        status, _, body = fetch(f"{srv.url_for(0)}?{query}")
    assert status == 400 and query.split("=")[0].encode() in body


def test_parallel_requests_overlap_their_latency() -> None:
    with (
        ImageServer(count=20, size_bytes=10_000, latency=0.5) as srv,
        ThreadPoolExecutor(20) as pool,
    ):
        bodies = list(pool.map(lambda url: fetch(url)[2], srv.urls))
    stats = srv.statistics()
    assert [len(b) for b in bodies] == [10_000] * 20
    assert stats.peak_in_flight >= 5 and stats.in_flight == 0  # one at a time would be 1


def test_keep_alive_serves_many_requests_on_one_connection() -> None:
    with ImageServer(count=3, size_bytes=2000) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", int(srv.base_url.rsplit(":", 1)[1]))
        try:
            for i in [0, 1, 2, 0, 1]:
                conn.request("GET", f"/images/{i}.png")
                response = conn.getresponse()
                assert (response.status, len(response.read())) == (200, 2000)
        finally:
            conn.close()
    stats = srv.statistics()
    assert (stats.requests, stats.images, stats.connections) == (5, 5, 1)
    assert stats.bytes_sent == 5 * 2000


def test_exit_closes_the_socket_and_cuts_idle_connections() -> None:
    threads_before = set(threading.enumerate())
    with ImageServer(count=1, size_bytes=1000) as srv:
        port = int(srv.base_url.rsplit(":", 1)[1])
        idle = http.client.HTTPConnection("127.0.0.1", port)
        idle.request("GET", "/images/0.png")
        idle.getresponse().read()
        slow = http.client.HTTPConnection("127.0.0.1", port)
        slow.request("GET", "/images/0.png?latency=30")
        start = time.perf_counter()
    try:
        assert time.perf_counter() - start < 5  # did not wait for the 30 s response
        assert new_threads(threads_before) == []  # every handler thread was joined
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        with pytest.raises(ConnectionResetError):  # or its subclass RemoteDisconnected
            slow.getresponse()
    finally:
        idle.close()
        slow.close()
    with pytest.raises(UsageError, match="not running"):
        srv.base_url  # noqa: B018


def test_a_port_in_use_is_a_usage_error() -> None:
    with ImageServer(count=1, size_bytes=1000) as srv:
        port = int(srv.base_url.rsplit(":", 1)[1])
        with pytest.raises(UsageError, match=f"{port}.*another port"):
            ImageServer(port=port).start()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"count": 0}, "count"),
        ({"size_bytes": 10}, "size_bytes"),
        ({"latency": -0.1}, "latency"),
        ({"latency": float("inf")}, "latency"),
        ({"bandwidth": -5}, "bandwidth"),
        ({"port": 70000}, "port"),
        ({"host": "0.0.0.0"}, "allow_remote"),
        ({"count": 10_000, "size_bytes": 2**20}, "1 GiB"),
    ],
)
def test_bad_arguments_are_usage_errors_naming_them(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(UsageError, match=name):
        ImageServer(**kwargs)


def test_quiet_by_default_and_logs_when_verbose(capfd: pytest.CaptureFixture[str]) -> None:
    with ImageServer(count=1, size_bytes=1000) as srv:
        fetch(srv.url_for(0))
        fetch(srv.base_url + "/missing")
    assert capfd.readouterr().err == ""
    with ImageServer(count=1, size_bytes=1000, verbose=True) as srv:
        fetch(srv.url_for(0))
    assert "GET /images/0.png" in capfd.readouterr().err


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["--latency", "-1"], "latency"),
        (["--count", "0"], "count"),
        (["--size-bytes", "10"], "size_bytes"),
        (["--host", "0.0.0.0"], "--allow-remote"),
    ],
)
def test_cli_bad_arguments_exit_2(
    argv: list[str], name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve-images", *argv]) == 2
    assert name in capsys.readouterr().err


@pytest.mark.parametrize("as_json", [False, True])
def test_cli_serves_until_ctrl_c(as_json: bool) -> None:
    argv = ["serve-images", "--port", "0", "--count", "2", "--size-bytes", "4096"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [sys.executable, "-m", "gearshift", *argv, *(["--json"] if as_json else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            assert proc.stdout is not None
            if as_json:
                urls = json.loads(proc.stdout.readline())["urls"]
            else:
                lines = [proc.stdout.readline() for _ in range(4)]
                urls = [line.strip() for line in lines if line.startswith("http://")]
            assert len(urls) == 2 and urls[1].endswith("/images/1.png")
            status, _, body = fetch(urls[1])
            assert (status, len(body)) == (200, 4096)
            parse_png(body)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
