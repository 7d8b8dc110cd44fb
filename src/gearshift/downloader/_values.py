"""The values of one download() call: its settings (checked by `download()` first) and results."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from gearshift.errors import DownloadError


@dataclasses.dataclass(frozen=True)
class Settings:
    """The knobs of one download() call that the transfer needs."""

    dest: Path
    per_host: int
    connect_timeout: float
    read_timeout: float
    max_redirects: int
    max_bytes: int | None
    sha256: Mapping[str, str] | None
    insecure: bool


Status = Literal["done", "failed", "skipped"]


@dataclasses.dataclass(frozen=True)
class DownloadResult:
    """What happened to one URL. `path` is a complete file when status is "done" (or "skipped")."""

    url: str
    path: Path | None
    status: Status
    bytes: int  # the file's size; for a failure, the bytes received before giving up
    attempts: int
    seconds: float
    error: DownloadError | None = None  # why it failed: .url, .status (HTTP), the message
    http_status: int | None = None  # the last HTTP status received, if any

    @property
    def ok(self) -> bool:
        return self.status != "failed"
