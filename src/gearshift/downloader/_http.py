"""The HTTP client of gearshift.download: one urllib3 PoolManager shared by every worker thread.

TLS is verified (certifi's roots when installed, else the system store). Redirects are followed
here, not by urllib3, so every redirect's connection is given back and only http(s) targets are
followed. Each connection registers itself once connected, so `abort()` can cut reads blocked in
other threads (Ctrl-C) and `close()` can close them all.

urllib3 with threads was picked by measurement (bench/download_client.py): at 64 connections it
keeps up with aiohttp here, with blocking file writes and fsync that need no executor.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

from gearshift.downloader._retry import Failure
from gearshift.downloader._values import Settings
from gearshift.errors import StrategyUnavailable

__all__ = ["Client", "content_range", "int_header", "validator"]

# identity: the file's own bytes, never a compressed transfer of them (decode_content=False)
_HEADERS = {"User-Agent": "gearshift", "Accept-Encoding": "identity"}


class Client:
    """GET with redirects over one pool; `abort()` and `close()` reach every connection."""

    def __init__(self, settings: Settings) -> None:
        urllib3 = _urllib3()
        self.max_redirects = settings.max_redirects
        self.stop = threading.Event()
        self._conns: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()
        tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED"}  # the system store unless certifi
        if settings.insecure:
            tls = {"cert_reqs": "CERT_NONE"}
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # we warned once
        else:
            with contextlib.suppress(ImportError):
                import certifi

                tls["ca_certs"] = certifi.where()
        self._pool = urllib3.PoolManager(
            num_pools=64,
            maxsize=settings.per_host,
            timeout=urllib3.Timeout(connect=settings.connect_timeout, read=settings.read_timeout),
            **tls,
        )
        self._pool.pool_classes_by_scheme = _tracking_pools(self._track)

    def get(self, url: str, headers: dict[str, str]) -> Any:
        """The response after following at most `max_redirects` redirects, or a Failure.

        Followed here, not by urllib3, so a redirect's connection is always given back, and a
        redirect to anything but http(s) is refused. Range/If-Range travel on; we send no cookie
        or credential that a redirect to another host could leak.
        """
        for _ in range(self.max_redirects + 1):
            resp = self._pool.request(
                "GET",
                url,
                headers={**_HEADERS, **headers},  # a pool's own headers apply only when none are
                preload_content=False,
                decode_content=False,
                redirect=False,
                retries=False,  # errors come up as they are: gearshift does the retrying
            )
            location = resp.get_redirect_location()
            if not location:
                return resp
            _let_go(resp)
            url = urljoin(url, location)
            if urlsplit(url).scheme not in ("http", "https"):
                why = f"redirected to {url!r}: only http and https redirects are followed"
                return Failure(why, resp.status)
        n = self.max_redirects
        return Failure(f"too many redirects (more than max_redirects={n})", resp.status)

    def abort(self) -> None:
        """Stop every transfer now: set the flag, and cut every socket (blocked reads return)."""
        self.stop.set()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            sock = getattr(conn, "sock", None)  # None once closed
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):  # the raw shutdown, under TLS too
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def _track(self, conn: Any) -> None:
        with self._lock:
            self._conns.add(conn)
        if self.stop.is_set():  # connected just after abort() looked
            self.abort()

    def close(self) -> None:
        """Close every connection (PoolManager.clear() leaves that to the garbage collector)."""
        self._pool.clear()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()


def _urllib3() -> Any:
    try:
        import urllib3
    except ImportError as exc:
        raise StrategyUnavailable(
            "gearshift.download needs urllib3: pip install 'gearshift[download]'"
        ) from exc
    return urllib3


def _let_go(resp: Any) -> None:
    """Give a response's connection back: drained if its body is small, else closed."""
    length = int_header(resp.headers.get("Content-Length"))
    if length is not None and length <= 65536:
        resp.drain_conn()
    else:
        resp.close()
    resp.release_conn()


def int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """(first byte, last byte, complete length) from `bytes 100-199/200`; `bytes */200` has no
    first or last byte; missing or unreadable parts are None."""
    if not value or not value.startswith("bytes "):
        return None, None, None
    span, _, total = value[6:].partition("/")
    first, _, last = span.partition("-")
    return int_header(first), int_header(last), int_header(total)


def validator(headers: Any) -> str | None:
    """A strong ETag, else Last-Modified: what If-Range accepts (weak ETags never match)."""
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return str(etag)
    modified = headers.get("Last-Modified")
    return str(modified) if modified else None


def _tracking_pools(track: Callable[[Any], None]) -> dict[str, Any]:
    """urllib3 pool classes whose connections report themselves to `track` once connected."""
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Plain(HTTPConnection):
        def connect(self) -> None:
            super().connect()
            track(self)

    class Tls(HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            track(self)

    class PlainPool(HTTPConnectionPool):
        ConnectionCls = Plain

    class TlsPool(HTTPSConnectionPool):
        ConnectionCls = Tls

    return {"http": PlainPool, "https": TlsPool}
