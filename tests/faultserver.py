"""A scripted HTTP/1.1 server on 127.0.0.1 for downloader tests: every path plays a list of replies.

    FaultServer({"/a": [Reply(status=500), Reply(body=b"ok")]})   request k of /a gets reply k
                                                                  (the last one repeats)
Faults a reply can script: a delay before the status line, a body cut after N bytes (closed, or
reset with RST), Range/If-Range against its ETag or Last-Modified, Retry-After, a redirect.
`hits(path)` lists each request's headers; `peak_in_flight` shows the concurrency reached;
`connections` counts the TCP connections accepted (pooling reuses them).
Leaving the block fails (AssertionError) if the client still holds an idle connection open.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import socket
import struct
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line
    send: int | None = None  # send only this many body bytes, though Content-Length says all...
    reset: bool = False  # ...then reset the connection (RST) instead of closing it (FIN)
    ranges: bool = False  # answer `Range: bytes=N-` with 206 when If-Range matches a validator
    if_range: bool = True  # False: a server that ignores If-Range (206 even for a stale copy)
    length: bool = True  # send Content-Length (else the body ends when the connection closes)
    pace: float = 0.0  # seconds between 16 KiB slices of the body


class FaultServer:
    def __init__(self, routes: Mapping[str, Reply | list[Reply]]) -> None:
        self.routes = {p: r if isinstance(r, list) else [r] for p, r in routes.items()}
        self._hits: dict[str, list[dict[str, str]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.in_flight = self.peak_in_flight = 0
        self.body_bytes_sent = 0
        self.connections = 0
        self._conns: set[socket.socket] = set()
        self._httpd = _Server(self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,))

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()  # wakes scripted delays; what stays open now is the client's doing
        deadline = time.monotonic() + 2.0
        while self.open_connections() and time.monotonic() < deadline:
            time.sleep(0.01)
        left_open = self.open_connections()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._httpd.shutdown()
        self._thread.join()
        self._httpd.server_close()
        if left_open and e is None:
            raise AssertionError(f"the client left {left_open} idle connection(s) open")

    def open_connections(self) -> int:
        with self._lock:
            return len(self._conns)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{path}"

    def hits(self, path: str) -> list[dict[str, str]]:
        with self._lock:
            return list(self._hits.get(path, []))

    def _next_reply(self, path: str, headers: dict[str, str]) -> Reply | None:
        with self._lock:
            seen = self._hits.setdefault(path, [])
            seen.append(headers)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        replies = self.routes.get(path)
        return replies[min(len(seen), len(replies)) - 1] if replies else None


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handler threads
    request_queue_size = 128

    def __init__(self, owner: FaultServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.owner._lock:
            self.owner._conns.add(request)
            self.owner.connections += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.owner._lock:
            self.owner._conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hang up mid-body on purpose in these tests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        reply = owner._next_reply(path, dict(self.headers.items()))
        try:
            if reply is None:
                self._plain(404, b"no such path\n")
            else:
                self._play(owner, reply)
        finally:
            with owner._lock:
                owner.in_flight -= 1

    def _plain(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _play(self, owner: FaultServer, reply: Reply) -> None:
        if reply.delay and owner._stop.wait(reply.delay):
            self.close_connection = True
            return
        status, body, headers = reply.status, reply.body, dict(reply.headers)
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if_range = self.headers.get("If-Range")
        validators = (headers.get("ETag"), headers.get("Last-Modified"))
        fresh = if_range is None or not reply.if_range or if_range in validators
        if reply.ranges and m and fresh:
            start = int(m[1])
            if start >= len(body):
                headers["Content-Range"] = f"bytes */{len(body)}"
                status, body = 416, b""
            else:
                headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
                status, body = 206, body[start:]
        self.send_response(status)
        if reply.length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.close_connection = True
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self._body(owner, reply, body)

    def _body(self, owner: FaultServer, reply: Reply, body: bytes) -> None:
        data = body if reply.send is None else body[: reply.send]
        step = 16384 if reply.pace else max(1, len(data))
        for i in range(0, len(data), step):
            if reply.pace and i and owner._stop.wait(reply.pace):
                break
            with contextlib.suppress(OSError):
                self.wfile.write(data[i : i + step])
            with owner._lock:
                owner.body_bytes_sent += len(data[i : i + step])
        if reply.send is not None:
            self.close_connection = True
            if reply.reset:
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                time.sleep(0.01)  # let the bytes leave before the reset discards them
                self.connection.close()
