"""Safe local file names for downloads: from the URL or `Content-Disposition`, never outside `dest`.

A server or a URL chooses only the last path component of a name, cleaned of separators, control
characters and leading dots, so no name can climb out of the download directory or hide itself.
Names are unique within a run and never replace a file already on disk.
"""

from __future__ import annotations

import mimetypes
import os
import re
import threading
from collections.abc import Callable
from email.message import Message
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["NameBook", "name_from_disposition", "name_from_url", "safe_name", "with_extension"]

_MAX_NAME_BYTES = 200  # under the usual 255-byte limit, leaving room for "-123.part"
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')  # separators, controls, and what Windows forbids
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {
    f"{p}{i}" for p in ("com", "lpt") for i in range(10)
}
# mimetypes' first pick for some common types is odd (".jpe"; ".bat" for text/plain on some hosts).
_PREFERRED_EXT = {
    "image/jpeg": ".jpg",
    "text/plain": ".txt",
    "text/html": ".html",
    "application/octet-stream": "",
}


def safe_name(raw: str, fallback: str = "download") -> str:
    """The last component of `raw`, with unsafe characters replaced, short enough for any disk."""
    name = re.split(r"[/\\]", raw)[-1]
    name = _UNSAFE.sub("_", name).strip().lstrip(".").rstrip(". ")
    if not name or name.split(".")[0].lower() in _WINDOWS_RESERVED:
        name = f"{fallback}{'_' + name if name else ''}"
    while len(name.encode()) > _MAX_NAME_BYTES:  # keep the extension, shorten the stem
        stem, ext = os.path.splitext(name)
        name = stem[:-1] + ext if len(stem) > 1 else name[: _MAX_NAME_BYTES // 4]
    return name


def name_from_url(url: str) -> str:
    """`photo.png` for `https://host/a/photo.png?x=1`; `index` when the path ends in a slash."""
    path = unquote(urlsplit(url).path)
    return safe_name(path.rsplit("/", 1)[-1], fallback="index")


def name_from_disposition(header: str | None) -> str | None:
    """The file name a `Content-Disposition` header proposes (RFC 6266, `filename*` first)."""
    if not header:
        return None
    msg = Message()
    msg["content-disposition"] = header
    try:
        raw = msg.get_filename()
    except (ValueError, LookupError):  # a malformed or unknown charset in filename*
        return None
    return safe_name(raw) if raw else None


def with_extension(name: str, content_type: str | None) -> str:
    """`name` plus an extension guessed from `content_type` when `name` has none."""
    if os.path.splitext(name)[1] or not content_type:
        return name
    kind = content_type.split(";", 1)[0].strip().lower()
    ext = _PREFERRED_EXT.get(kind)
    if ext is None:
        ext = mimetypes.guess_extension(kind) or ""
    return safe_name(name + ext)


def _numbered(name: str, n: int) -> str:
    stem, ext = os.path.splitext(name)
    return f"{stem}-{n}{ext}" if n else name


class NameBook:
    """Hands out names unique within `dest` for this run: `a.png`, `a-1.png`, `a-2.png`, ...

    Names compare case-insensitively, because macOS and Windows disks do. Claimed names are unique
    among this run's claims and the files already in `dest`: a download never replaces a file.
    Planned names are unique among the inputs only: the names an earlier run gave the same list.
    """

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self._planned: set[str] = set()
        self._claimed: set[str] = set()
        self._lock = threading.Lock()

    def plan(self, name: str) -> str:
        """`name`, numbered if an earlier input planned it; files on disk do not count."""
        with self._lock:
            return _first_free(name, lambda c: c.casefold() in self._planned, self._planned)

    def claim(self, name: str) -> Path:
        """A path in `dest` that no file and no earlier claim uses; reserved for this run."""

        def taken(candidate: str) -> bool:
            return candidate.casefold() in self._claimed or (self.dest / candidate).exists()

        with self._lock:
            return self.dest / _first_free(name, taken, self._claimed)


def _first_free(name: str, taken: Callable[[str], bool], book: set[str]) -> str:
    n = 0
    while taken(_numbered(name, n)):
        n += 1
    book.add(_numbered(name, n).casefold())
    return _numbered(name, n)
