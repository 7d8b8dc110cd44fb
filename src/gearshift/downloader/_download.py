"""download(): many URLs to files, concurrently, retried; never a partial file under a final name.

download(urls, dest) ─► check every URL and option first (UsageError names the bad one)
    ─► a name per URL (_filenames), claimed in input order; skip_existing ─► "skipped"
    ─► _download_run.run: worker threads, retries, the fsync-and-rename commit stage, Ctrl-C
    ─► one DownloadResult per URL, in input order
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from gearshift.downloader._fetch import Job
from gearshift.downloader._filenames import NameBook, name_from_url
from gearshift.downloader._run import Policy, run
from gearshift.downloader._values import DownloadResult, Settings
from gearshift.errors import UsageError

__all__ = ["download"]


def download(
    urls: Iterable[str] | str,
    dest: str | os.PathLike[str] = ".",
    *,
    workers: int | Literal["auto"] = "auto",
    per_host: int = 64,
    retries: int = 3,
    backoff: float = 0.5,
    max_wait: float = 60.0,
    timeout: float | tuple[float, float] = (10.0, 30.0),
    max_bytes: int | None = None,
    sha256: Mapping[str, str] | None = None,
    max_redirects: int = 10,
    insecure: bool = False,
    skip_existing: bool = False,
    progress: bool = False,
) -> list[DownloadResult]:
    """Download every URL into `dest`; one DownloadResult per URL, in input order.

    workers: "auto" (grow while throughput rises) or a fixed number of threads.
    per_host: most connections open to one host at once. retries: extra attempts after connection
    errors, timeouts, truncated bodies, 5xx and 429; waits start at `backoff` seconds and double,
    and neither they nor a server's Retry-After exceed `max_wait`. timeout: seconds to connect and
    between reads, one number or (connect, read). max_bytes: refuse larger bodies. sha256: expected
    hex digests keyed by URL or file name. skip_existing: leave a file already in `dest` alone.
    Failures do not raise: they come back with status "failed" and a DownloadError.
    """
    url_list = _check_urls([urls] if isinstance(urls, str) else list(urls))
    connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    _check("timeout", connect, whole=False, low=0.0, open_low=True)
    _check("timeout", read, whole=False, low=0.0, open_low=True)
    for name, value in {"retries": retries, "max_redirects": max_redirects}.items():
        _check(name, value, whole=True, low=0)
    _check("per_host", per_host, whole=True, low=1)
    _check("backoff", backoff, whole=False, low=0.0)
    _check("max_wait", max_wait, whole=False, low=0.0)
    if max_bytes is not None:
        _check("max_bytes", max_bytes, whole=True, low=0)
    if workers != "auto":
        _check("workers", workers, whole=True, low=1, hint="'auto' or ")
    target = _dest(dest)
    if insecure:
        warnings.warn(
            "insecure=True: TLS certificates are NOT verified; anyone on the network path can "
            "read or replace these downloads",
            stacklevel=2,
        )
    settings = Settings(
        target, per_host, float(connect), float(read), max_redirects, max_bytes,
        _check_sha256(sha256), insecure,
    )  # fmt: skip
    return _run(
        url_list,
        settings,
        Policy(retries, float(backoff), float(max_wait)),
        None if workers == "auto" else int(workers),
        skip_existing=skip_existing,
        progress=progress,
    )


def _run(
    urls: list[str],
    settings: Settings,
    policy: Policy,
    workers: int | None,
    *,
    skip_existing: bool,
    progress: bool,
) -> list[DownloadResult]:
    names = NameBook(settings.dest)
    out: dict[int, DownloadResult] = {}
    jobs = []
    for i, url in enumerate(urls):
        name = name_from_url(url)
        existing = settings.dest / names.plan(name)  # the name this URL got in an earlier run
        if skip_existing and existing.is_file():
            out[i] = DownloadResult(url, existing, "skipped", existing.stat().st_size, 0, 0.0)
        else:  # claimed now, in input order, so a name (and its .part) is the same every run
            jobs.append(Job(i, url, urlsplit(url).netloc.lower(), names.claim(name).name))
    if jobs:
        out.update(run(jobs, settings, names, policy, workers, progress))
    return [out[i] for i in range(len(urls))]


def _check_urls(urls: list[str]) -> list[str]:
    """Every URL must be an http(s) URL with a host: refuse the whole call before any download."""
    for i, url in enumerate(urls):
        try:
            parts = urlsplit(url) if isinstance(url, str) else None
        except ValueError:  # such as an unclosed [ in an IPv6 host
            parts = None
        if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise UsageError(
                f"urls[{i}]={url!r} is not an http:// or https:// URL with a host: "
                "gearshift downloads only http and https (no file://, ftp:// or bare paths)"
            )
    return urls


def _check(
    name: str, value: object, *, whole: bool, low: float, open_low: bool = False, hint: str = ""
) -> None:
    kinds = (int,) if whole else (int, float)
    ok = isinstance(value, kinds) and not isinstance(value, bool)
    if ok and (value < low or (open_low and value == low) or value != value):  # type: ignore[operator]
        ok = False
    if not ok:
        what = "a whole number" if whole else "a number of seconds"
        bound = f"> {low:g}" if open_low else f">= {low:g}"
        raise UsageError(f"{name}={value!r} is invalid: give {hint}{what} {bound}")


def _dest(dest: str | os.PathLike[str]) -> Path:
    path = Path(dest)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise UsageError(f"dest={str(dest)!r} is not a directory: give a directory path") from exc
    return path


def _check_sha256(manifest: Mapping[str, str] | None) -> dict[str, str] | None:
    if manifest is None:
        return None
    for key, digest in manifest.items():
        if not (isinstance(digest, str) and re.fullmatch("[0-9a-fA-F]{64}", digest)):
            raise UsageError(
                f"sha256[{key!r}]={digest!r} is not a SHA-256 digest: give 64 hex digits"
            )
    return {key: digest.lower() for key, digest in manifest.items()}
