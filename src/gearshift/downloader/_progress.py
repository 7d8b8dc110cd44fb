"""download()'s progress bar on stderr: files done of total, bytes, MB/s (rich, imported here)."""

from __future__ import annotations

import time
from typing import Any

from gearshift.downloader._queue import Meter
from gearshift.units import size


class DownloadProgress:
    """A rich progress bar on stderr: files done of total, bytes, MB/s (rich imported only here)."""

    def __init__(self, total: int, meter: Meter) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            TimeElapsedColumn,
        )
        from rich.text import Text

        class Traffic(ProgressColumn):  # read live at each refresh, not only when a file ends
            def render(self, task: Any) -> Text:
                return Text(traffic())

        def traffic() -> str:
            elapsed = max(time.monotonic() - meter.started, 1e-6)
            failed = f", {meter.failed} failed" if meter.failed else ""
            return f"{size(meter.bytes)}  {meter.bytes / 1e6 / elapsed:.1f} MB/s{failed}"

        self._meter = meter
        self._bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            Traffic(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self._task = self._bar.add_task("download", total=total)
        self._bar.start()

    def update(self) -> None:
        self._bar.update(self._task, completed=self._meter.files)

    def close(self) -> None:
        self.update()
        self._bar.stop()
