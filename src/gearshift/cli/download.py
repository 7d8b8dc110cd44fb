"""The `gearshift download` command's inputs and outputs.

URL lists, sha256 manifests, the progress bar, the summary table and the JSON report; the
downloading itself is `gearshift.download()`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from gearshift import units
from gearshift.downloader import DownloadResult, download
from gearshift.errors import UsageError

__all__ = ["read_sha256_manifest", "read_url_lines", "report", "run_download"]

_SIZE = re.compile(r"(\d+)\s*([KMGT]?)i?B?", re.IGNORECASE)


def run_download(args: argparse.Namespace) -> int:
    """`gearshift download`: 0 when every URL was saved (or skipped), 1 when any failed."""
    urls = list(args.urls)
    if args.input is not None:
        if args.input == "-":
            urls += read_url_lines(sys.stdin, "stdin")
        else:
            with _open(args.input, "-i/--input") as lines:
                urls += read_url_lines(lines, args.input)
    if not urls:
        raise UsageError(
            "no URLs given: pass them as arguments, or -i FILE (one per line, # comments), "
            "or -i - to read them from stdin"
        )
    manifest = read_sha256_manifest(args.sha256) if args.sha256 else None
    if args.insecure:
        print("gearshift: warning: --insecure: TLS certificates are NOT verified", file=sys.stderr)
    started = time.monotonic()
    with warnings.catch_warnings(), _resume_hint():
        warnings.simplefilter("ignore")  # the --insecure warning is printed above, once
        results = download(
            urls,
            args.output,
            workers=args.workers,
            per_host=args.per_host,
            retries=args.retries,
            backoff=args.backoff,
            max_wait=args.max_wait,
            timeout=(args.connect_timeout, args.read_timeout),
            max_bytes=args.max_bytes,
            sha256=manifest,
            max_redirects=args.max_redirects,
            insecure=args.insecure,
            skip_existing=args.skip_existing,
            progress=sys.stderr.isatty() if args.progress is None else args.progress,
        )
    seconds = time.monotonic() - started
    if args.json:
        print(json.dumps(report(results, seconds), indent=2))
    else:
        _print_summary(results, seconds)
    return 1 if any(not r.ok for r in results) else 0


@contextlib.contextmanager
def _resume_hint() -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        print(
            "gearshift download: stopped. Unfinished files stay as NAME.part: run the same "
            "command again to resume them",
            file=sys.stderr,
        )
        raise


def read_url_lines(lines: Iterable[str], source: str) -> list[str]:
    """URLs one per line; blank lines and `#` comments (whole-line or after the URL) skipped."""
    urls = []
    for number, line in enumerate(lines, 1):
        fields = line.split()
        comment = next((k for k, f in enumerate(fields) if f.startswith("#")), len(fields))
        fields = fields[:comment]
        if len(fields) > 1:
            raise UsageError(
                f"{source} line {number} has more than one field ({line.strip()!r}): "
                "give one URL per line; start a comment with #"
            )
        if fields:
            urls.append(fields[0])
    return urls


def read_sha256_manifest(path: str) -> dict[str, str]:
    """`sha256sum` format: `HEX  NAME` per line, NAME a file name or a URL; `#` comments skipped."""
    with _open(path, "--sha256") as f:
        lines = f.readlines()
    manifest = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.fullmatch(r"\s*([0-9a-fA-F]{64})\s+\*?(\S.*?)\s*", line)
        if m is None:
            raise UsageError(
                f"--sha256 {path} line {number} is not 'HEX  NAME' ({line.strip()[:80]!r}): "
                "each line holds a 64-digit SHA-256 and a file name or URL, as sha256sum prints"
            )
        manifest[m[2]] = m[1].lower()
    return manifest


def parse_size(text: str) -> int:
    """`1048576`, `512K`, `10M`, `2G` (binary multiples) as bytes; for --max-bytes."""
    m = _SIZE.fullmatch(text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: give bytes, or 512K, 10M, 2G")
    return int(m[1]) << (10 * " KMGT".index(m[2].upper() or " "))


def parse_workers(text: str) -> int | str:
    if text == "auto":
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r} is not 'auto' or a whole number >= 1")


def report(results: list[DownloadResult], seconds: float) -> dict[str, Any]:
    """The JSON report: totals, then one entry per URL in input order."""
    return {"summary": _totals(results, seconds), "results": [_entry(r) for r in results]}


def _entry(r: DownloadResult) -> dict[str, Any]:
    return {
        "url": r.url,
        "status": r.status,
        "path": str(r.path) if r.path else None,
        "bytes": r.bytes,
        "attempts": r.attempts,
        "seconds": round(r.seconds, 4),
        "http_status": r.http_status,
        "error": str(r.error) if r.error else None,
    }


def _totals(results: list[DownloadResult], seconds: float) -> dict[str, Any]:
    received = sum(r.bytes for r in results if r.status == "done")
    return {
        "done": sum(r.status == "done" for r in results),
        "failed": sum(r.status == "failed" for r in results),
        "skipped": sum(r.status == "skipped" for r in results),
        "retried": sum(r.attempts > 1 for r in results),
        "bytes": received,
        "seconds": round(seconds, 3),
        "mb_per_s": round(received / 1e6 / seconds, 2) if seconds > 0 else None,
    }


def _print_summary(results: list[DownloadResult], seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    t = _totals(results, seconds)
    table = Table(title="gearshift download", title_justify="left")
    for column in ("done", "failed", "retried", "skipped", "bytes", "time", "MB/s"):
        table.add_column(column, justify="right")
    table.add_row(
        *(str(t[k]) for k in ("done", "failed", "retried", "skipped")),
        units.size(t["bytes"]),
        f"{seconds:.2f} s",
        f"{t['mb_per_s']:.1f}" if t["mb_per_s"] is not None else "-",
    )
    out = Console(highlight=False)
    out.print(table)
    failed = [r for r in results if r.status == "failed"]
    if failed:
        problems = Table(title="failures", title_justify="left")
        for column in ("url", "status", "reason"):
            problems.add_column(column, overflow="fold")
        for r in failed:
            reason = str(r.error).removeprefix(f"{r.url}: ")
            problems.add_row(r.url, str(r.http_status or "-"), reason)
        out.print(problems)


def _open(path: str, option: str) -> TextIO:
    try:
        return Path(path).open(encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"{option} {path}: cannot read it ({exc.strerror}): check the path"
        ) from exc
