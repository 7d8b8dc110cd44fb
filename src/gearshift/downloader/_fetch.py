"""One attempt at one URL: GET over a shared urllib3 pool, stream to `NAME.part`, fsync, rename.

    Fetcher.fetch(job) ─► resume offset (.part + its ETag/Last-Modified) ─► GET [Range, If-Range]
        ─► 200/206: stream to NAME.part (sha256, max_bytes, Content-Length checked) ─► Received
        ─► otherwise a Failure that says whether a retry may help and how long to wait
    Fetcher.commit(received) ─► fsync ─► sha256 check ─► claim a free final name ─► os.replace:
        a final name only ever holds a whole, durable file

The HTTP side (pool, TLS, redirects, cutting sockets on Ctrl-C) is _http.Client.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from collections.abc import Callable, Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any

from gearshift.downloader._filenames import NameBook, name_from_disposition, with_extension
from gearshift.downloader._http import Client, content_range, int_header, validator
from gearshift.downloader._partfile import hash_into, meta_path, read_meta, write_meta
from gearshift.downloader._retry import Failure, classify_network_error, retry_after
from gearshift.downloader._values import Settings

__all__ = ["Fetcher", "Job"]

# bench/download_client.py, 64 x 256 KiB in flight: read1(256 KiB) cost 1.1 ms of CPU per file,
# 64 KiB 1.2 ms, 16 KiB 1.9 ms (medians of 5 rounds, load 4-5)
CHUNK = 256 * 1024
# Bodies up to this size note their resume validator only when a transfer breaks (one file write
# fewer per download); larger ones note it first, so even a crash leaves them resumable.
EAGER_META_BYTES = 1024 * 1024


@dataclasses.dataclass
class Job:
    """One URL's state across its attempts; one worker holds it at a time."""

    index: int
    url: str
    host: str
    planned: str  # the name claimed for the URL; the partial file is `planned + ".part"`
    attempts: int = 0
    bytes: int = 0
    http_status: int | None = None
    validator: str | None = None  # the ETag or Last-Modified of the bytes in the .part file
    final_name: str | None = None
    started: float | None = None  # time.monotonic() of the first attempt


@dataclasses.dataclass(frozen=True)
class Received:
    """A body complete in NAME.part, not yet durable: `Fetcher.commit` fsyncs and renames it."""

    job: Job
    part: Path
    hasher: Any  # the running sha256 when a manifest is checked, else None


class Fetcher:
    """Moves one URL's bytes to disk per `fetch`; one connection pool shared by every thread."""

    def __init__(
        self, settings: Settings, names: NameBook, on_bytes: Callable[[int], None]
    ) -> None:
        self.settings, self.names, self.on_bytes = settings, names, on_bytes
        self.client = Client(settings)
        self.stop = self.client.stop

    def fetch(self, job: Job) -> Received | Failure:
        """One attempt: the body received whole into its .part file, or why not."""
        job.attempts += 1
        part = self.settings.dest / (job.planned + ".part")
        offset = self._resume_offset(job, part)
        headers = {}
        if offset and job.validator:
            headers = {"Range": f"bytes={offset}-", "If-Range": job.validator}
        try:
            resp = self.client.get(job.url, headers)
        except Exception as exc:
            return classify_network_error(exc, self.settings)
        if isinstance(resp, Failure):
            return resp
        try:
            if self.stop.is_set():  # before touching a .part another run may resume
                return Failure("interrupted", resp.status)
            return self._receive(job, resp, part, offset)
        except Exception as exc:
            return classify_network_error(exc, self.settings)
        finally:
            if not resp.closed:
                resp.close()  # a body not read to its end: the connection cannot be reused
            resp.release_conn()

    def _resume_offset(self, job: Job, part: Path) -> int:
        try:
            size = part.stat().st_size
        except FileNotFoundError:
            return 0
        if job.validator is None:  # a .part left by an earlier run names its validator beside it
            job.validator = read_meta(part, job.url)
        return size if job.validator and size else 0

    def commit(self, got: Received) -> Path | Failure:
        """Make the .part durable (fsync), check its sha256, rename it: the final path."""
        fd = os.open(got.part, os.O_RDWR)  # fsync reaches the file's data from any descriptor
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return self._finish(got.job, got.part, got.hasher)

    def _receive(self, job: Job, resp: Any, part: Path, offset: int) -> Received | Failure:
        status = job.http_status = resp.status
        now = validator(resp.headers)
        if status in (206, 416) and offset and now is not None and now != job.validator:
            # a server that ignores If-Range: these are bytes of another version of the file
            why = f"the server resumed a changed file ({now}, the .part holds {job.validator})"
            return self._discard(job, part, why, retry=True, wait=0.0)
        if status == 416 and offset:  # asked past the end: complete already, or stale
            if content_range(resp.headers.get("Content-Range")) == (None, None, offset):
                job.bytes = offset
                return Received(job, part, None)
            return self._discard(job, part, "the server refused to resume", retry=True, wait=0.0)
        if status == 206:  # must be exactly the rest of the file we asked for
            first, last, total = content_range(resp.headers.get("Content-Range"))
            if first != offset or (last is not None and total is not None and last + 1 != total):
                why = f"the server sent bytes {first}-{last} of {total}; asked from {offset} on"
                return self._discard(job, part, why, retry=True, wait=0.0)
        if status not in (200, 206):
            phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
            retry = status == 429 or status >= 500
            wait = retry_after(resp.headers.get("Retry-After"))
            return Failure(f"HTTP {status} {phrase}".rstrip(), status, retry, wait)
        length = int_header(resp.headers.get("Content-Length"))
        if status == 200:
            offset = 0
            job.validator = validator(resp.headers)
            eager = length is None or length > EAGER_META_BYTES  # resumable even after a crash
            write_meta(part, job.url, job.validator if eager else None)  # None: drop a stale one
        job.final_name = with_extension(
            name_from_disposition(resp.headers.get("Content-Disposition")) or job.planned,
            resp.headers.get("Content-Type"),
        )
        limit = self.settings.max_bytes
        if limit is not None and length is not None and offset + length > limit:
            why = f"is {offset + length} bytes, over max_bytes={limit}"
            return self._discard(job, part, why, retry=False)
        result: Received | Failure | None = None
        try:
            result = self._stream(job, resp, part, offset, length)
            return result
        finally:
            if not isinstance(result, Received) and job.validator and part.exists():
                with contextlib.suppress(OSError):  # so that a later run can resume
                    write_meta(part, job.url, job.validator)

    def _stream(
        self, job: Job, resp: Any, part: Path, offset: int, length: int | None
    ) -> Received | Failure:
        hasher = hashlib.sha256() if self.settings.sha256 is not None else None
        limit = self.settings.max_bytes
        with open(part, "r+b" if offset else "wb") as f:
            if offset:
                f.truncate(offset)
                if hasher is not None:
                    hash_into(hasher, f, offset)
                f.seek(offset)
            job.bytes = offset
            while chunk := resp.read1(CHUNK):
                if self.stop.is_set():
                    return Failure("interrupted", job.http_status, retry=False)
                f.write(chunk)
                if hasher is not None:
                    hasher.update(chunk)
                job.bytes += len(chunk)
                self.on_bytes(len(chunk))
                if limit is not None and job.bytes > limit:
                    f.close()
                    return self._discard(job, part, f"grew over max_bytes={limit}", retry=False)
            if length is not None and job.bytes != offset + length:
                got = f"{job.bytes - offset} of {length} bytes"
                return Failure(f"body truncated: got {got} (Content-Length)", job.http_status, True)
        return Received(job, part, hasher)

    def _finish(self, job: Job, part: Path, hasher: Any) -> Path | Failure:
        if self.settings.sha256 is not None:
            if hasher is None:
                hasher = hashlib.sha256()
                with open(part, "rb") as f:
                    hash_into(hasher, f, None)
            name = job.final_name or job.planned
            want = _expected(self.settings.sha256, job.url, name, job.planned)
            if want is None:
                why = f"the sha256 manifest lists neither the URL nor {name!r}"
                return self._discard(job, part, why, retry=False)
            if hasher.hexdigest() != want:
                why = f"sha256 mismatch: got {hasher.hexdigest()}, the manifest says {want}"
                return self._discard(job, part, why, retry=False)
        name = job.final_name or job.planned
        final = self.settings.dest / name
        if name != job.planned or final.exists():  # a name not claimed yet, or taken meanwhile
            final = self.names.claim(name)
        os.replace(part, final)
        meta_path(part).unlink(missing_ok=True)
        return final

    def _discard(
        self, job: Job, part: Path, reason: str, retry: bool, wait: float | None = None
    ) -> Failure:
        """Delete the partial file (its bytes are useless) and report `reason`."""
        part.unlink(missing_ok=True)
        meta_path(part).unlink(missing_ok=True)
        job.validator = None
        return Failure(reason, job.http_status, retry, wait)


def _expected(manifest: Mapping[str, str], url: str, *names: str) -> str | None:
    for key in (url, *names):
        if key in manifest:
            return manifest[key].lower()
    return None
