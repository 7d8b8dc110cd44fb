"""A local image server: deterministic PNG bytes at stable URLs, with a modelled remote's delays.

Demos and benchmarks download from it instead of the internet, so their numbers are repeatable.

    ImageServer.start ─► png_image() for every image, once ─► ThreadingHTTPServer thread
    GET|HEAD /images/<n>.png[?latency=S&bandwidth=B&bytes=N]   (one thread per connection)
        ─► wait `latency` ─► whole body (200) or one `Range: bytes=` (206)
        ─► written in slices paced to `bandwidth` bytes/s ─► counted in statistics()

Query parameters override the server's latency, bandwidth and size for that one response.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import math
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from gearshift.errors import UsageError
from gearshift.lab._png import MAX_SIZE_BYTES, MIN_SIZE_BYTES, cached_with_etag, with_etag

__all__ = ["ImageServer", "ServerStatistics"]

_MAX_TOTAL_BYTES = 2**30  # every image is generated up front and kept in memory
_LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"  # the bytes never change, so neither does this
_IMAGE_PATH = re.compile(r"/images/(\d{1,9})\.png")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclasses.dataclass(frozen=True)
class ServerStatistics:
    """What the server did so far: a value tests assert on instead of timing."""

    requests: int = 0  # requests answered, any status
    images: int = 0  # 200 and 206 image responses
    bytes_sent: int = 0  # body bytes written
    connections: int = 0  # TCP connections accepted: fewer than requests means keep-alive worked
    in_flight: int = 0  # requests being answered now
    peak_in_flight: int = 0  # most requests answered at the same moment


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"{name}={value!r} is invalid: give a whole number from {low} to {high}")
    return value


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise UsageError(f"{name}={value!r} is invalid: give a number >= 0, such as 0.05")
    return float(value)


def _byte_range(header: str | None, length: int) -> tuple[int, int] | None:
    """(start, stop) of one `bytes=` range, None for the whole body; ValueError if unsatisfiable."""
    m = _RANGE.fullmatch(header.strip()) if header else None
    if m is None or m[1] == m[2] == "" or (m[1] and m[2] and int(m[2]) < int(m[1])):
        return None  # absent, several ranges or malformed: RFC 9110 lets a server ignore it
    if not m[1]:
        if int(m[2]) == 0:
            raise ValueError("empty suffix range")
        return max(0, length - int(m[2])), length
    start, stop = int(m[1]), length if not m[2] else min(length, int(m[2]) + 1)
    if start >= length:
        raise ValueError("range starts past the end")
    return start, stop


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread: nothing outlives it
    request_queue_size = 256  # the default backlog of 5 drops SYNs when 64 clients connect at once

    def __init__(self, owner: ImageServer, address: tuple[str, int]) -> None:
        self.owner = owner
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.owner._track(request, add=True)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.owner._track(request, add=False)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client hanging up is not an error
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Answers one connection's requests; the settings and counters live in the ImageServer."""

    protocol_version = "HTTP/1.1"  # keep-alive: every response carries a Content-Length
    server_version = "gearshift-imageserver"
    disable_nagle_algorithm = True
    timeout = 120  # an idle keep-alive connection gives its thread back after this many seconds
    server: _HTTPServer
    bandwidth = 0.0  # bytes/s for the response being sent; 0: no cap

    def do_GET(self) -> None:
        self._answer()

    do_HEAD = do_GET  # _send() leaves the body out

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.owner.verbose:
            super().log_message(format, *args)

    def _answer(self) -> None:
        owner = self.server.owner
        owner._count(requests=1, in_flight=1)
        try:
            self._respond(owner)
        finally:
            owner._count(in_flight=-1)

    def _respond(self, owner: ImageServer) -> None:
        url = urlsplit(self.path)
        try:
            latency, self.bandwidth, size = owner._options(dict(parse_qsl(url.query)))
        except ValueError as exc:  # UsageError is a ValueError too
            return self._send(400, f"bad query {url.query!r}: {exc}")
        if owner._stop.wait(latency):
            self.close_connection = True  # the server is shutting down
            return None
        m = _IMAGE_PATH.fullmatch(url.path)
        if m is None or int(m[1]) >= owner.count:
            last = f"/images/{owner.count - 1}.png"
            return self._send(404, f"nothing at {url.path}: images are /images/0.png to {last}")
        i = int(m[1])
        data, etag = owner._images[i] if size == owner.size_bytes else cached_with_etag(i, size)
        valid = self.headers.get("If-Range") in (None, etag, _LAST_MODIFIED)
        try:
            span = _byte_range(self.headers.get("Range") if valid else None, len(data))
        except ValueError:
            total = {"Content-Range": f"bytes */{len(data)}"}
            return self._send(416, f"range not satisfiable: {len(data)} bytes in all", total)
        start, stop = span or (0, len(data))
        headers = {"ETag": etag, "Last-Modified": _LAST_MODIFIED, "Accept-Ranges": "bytes"}
        if span:
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
        owner._count(images=1)
        return self._send(206 if span else 200, data[start:stop], headers)

    def _send(self, status: int, content: bytes | str, extra: dict[str, str] | None = None) -> None:
        """Send status, headers and (unless HEAD) the body, paced to `self.bandwidth` bytes/s."""
        data = content.encode() + b"\n" if isinstance(content, str) else content
        kind = "text/plain; charset=utf-8" if isinstance(content, str) else "image/png"
        self.send_response(status)
        fields = {"Content-Type": kind, "Content-Length": str(len(data)), **(extra or {})}
        for name, value in fields.items():
            self.send_header(name, value)
        self.end_headers()
        bw, view, t0 = self.bandwidth, memoryview(data), time.monotonic()
        step = max(1024, min(65536, int(bw / 20))) if bw else max(1, len(data))  # ~20 slices/s
        for sent in range(0, 0 if self.command == "HEAD" else len(data), step):
            piece = view[sent : sent + step]
            due = t0 + (sent + len(piece)) / bw - time.monotonic() if bw else 0.0
            if due > 0 and self.server.owner._stop.wait(due):
                self.close_connection = True  # shutting down: the client sees a short body
                return
            self.wfile.write(piece)
            self.server.owner._count(bytes_sent=len(piece))


class ImageServer:
    """Serve `count` deterministic PNG images of `size_bytes` each, on 127.0.0.1 by default.

    `latency` seconds pass before each response starts; `bandwidth` caps each response's bytes/s.
    Use it as a context manager: it serves from a background thread until the block ends.
    """

    def __init__(
        self,
        *,
        count: int = 5,
        size_bytes: int = 256 * 1024,
        latency: float = 0.0,
        bandwidth: float | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_remote: bool = False,
        verbose: bool = False,
    ) -> None:
        self.count = _check_int("count", count, 1, 100_000)
        self.size_bytes = _check_int("size_bytes", size_bytes, MIN_SIZE_BYTES, MAX_SIZE_BYTES)
        if count * size_bytes > _MAX_TOTAL_BYTES:
            raise UsageError(f"count={count} × size_bytes={size_bytes} is over 1 GiB: serve fewer")
        self.latency = _check_number("latency", latency)
        self.bandwidth = _check_number("bandwidth", bandwidth or 0)  # 0: no cap
        self.port = _check_int("port", port, 0, 65535)
        if not allow_remote and not _is_loopback(host):
            raise UsageError(
                f"host={host!r} is not a loopback address: listen on 127.0.0.1, "
                "or pass allow_remote=True (--allow-remote) to serve other machines"
            )
        self.host, self.verbose = host, verbose
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._stats = ServerStatistics()
        self._conns: set[socket.socket] = set()
        self._images: list[tuple[bytes, str]] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ImageServer:
        """Generate the images, bind, and serve from a background thread. Returns self."""
        if self._httpd is not None:
            return self
        if not self._images:
            self._images = [with_etag(i, self.size_bytes) for i in range(self.count)]
        try:
            self._httpd = _HTTPServer(self, (self.host, self.port))
        except OSError as exc:
            msg = f"cannot listen on {self.host}:{self.port} ({exc}): try another port, or 0"
            raise UsageError(msg) from exc
        self._stop.clear()
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, cut open connections, join every thread and close the socket."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stop.set()  # wakes responses sleeping for latency or bandwidth
        httpd.shutdown()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # wakes handlers waiting on idle keep-alive connections
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        httpd.server_close()  # joins the handler threads

    def __enter__(self) -> ImageServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`, with the port the system picked when port was 0."""
        if self._httpd is None:
            raise UsageError("not running: use `with ImageServer() as srv:` or start()")
        host, port = self._httpd.server_address[:2]
        return f"http://[{host!s}]:{port}" if ":" in str(host) else f"http://{host!s}:{port}"

    @property
    def urls(self) -> list[str]:
        """The URL of every image, in order."""
        return [self.url_for(i) for i in range(self.count)]

    def url_for(
        self,
        index: int,
        *,
        latency: float | None = None,
        bandwidth: float | None = None,
        size_bytes: int | None = None,
    ) -> str:
        """The URL of image `index`; keyword arguments override the server's settings for it."""
        _check_int("index", index, 0, self.count - 1)
        pairs = [("latency", latency), ("bandwidth", bandwidth), ("bytes", size_bytes)]
        query = urlencode([(k, v) for k, v in pairs if v is not None])
        return f"{self.base_url}/images/{index}.png" + (f"?{query}" if query else "")

    def statistics(self) -> ServerStatistics:
        """A frozen snapshot of the counters; exact once closed (a response is counted just
        after its last byte is written, so a client may see the bytes a moment before)."""
        with self._lock:
            return self._stats

    def _options(self, q: dict[str, str]) -> tuple[float, float, int]:
        """Latency, bandwidth and size for one request: the server's unless the query says."""
        size = int(q.get("bytes", self.size_bytes))
        return (
            _check_number("latency", float(q.get("latency", self.latency))),
            _check_number("bandwidth", float(q.get("bandwidth", self.bandwidth))),
            _check_int("bytes", size, MIN_SIZE_BYTES, MAX_SIZE_BYTES),
        )

    def _count(self, **delta: int) -> None:
        with self._lock:
            new = {k: getattr(self._stats, k) + v for k, v in delta.items()}
            self._stats = dataclasses.replace(self._stats, **new)
            if self._stats.in_flight > self._stats.peak_in_flight:
                self._stats = dataclasses.replace(self._stats, peak_in_flight=self._stats.in_flight)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)
        if add:
            self._count(connections=1)
