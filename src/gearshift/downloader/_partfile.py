"""The on-disk side of a download: `NAME.part`, the note that lets a later run resume it, fsyncs.

`NAME.part.meta` holds the URL and the validator (ETag or Last-Modified) of the bytes in
`NAME.part`; a later run resumes only when both match, so it never glues two versions together.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["hash_into", "meta_path", "read_meta", "sync_dir", "write_meta"]

READ_SIZE = 256 * 1024


def meta_path(part: Path) -> Path:
    return part.with_name(part.name + ".meta")


def write_meta(part: Path, url: str, validator: str | None) -> None:
    if validator is None:
        meta_path(part).unlink(missing_ok=True)
    else:
        meta_path(part).write_text(json.dumps({"url": url, "validator": validator}))


def read_meta(part: Path, url: str) -> str | None:
    try:
        meta = json.loads(meta_path(part).read_text())
    except (OSError, ValueError):
        return None
    ok = (
        isinstance(meta, dict) and meta.get("url") == url and isinstance(meta.get("validator"), str)
    )
    return str(meta["validator"]) if ok else None


def hash_into(hasher: Any, f: Any, size: int | None) -> None:
    f.seek(0)
    left = size
    while left is None or left > 0:
        block = f.read(READ_SIZE if left is None else min(READ_SIZE, left))
        if not block:
            break
        hasher.update(block)
        left = None if left is None else left - len(block)


def sync_dir(path: Path) -> None:
    """fsync the directory, so the renames survive a power cut (POSIX; a no-op elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
