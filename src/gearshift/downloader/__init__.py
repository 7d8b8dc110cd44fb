"""download(): many URLs to files, concurrently, retried; never a partial file under a final name.

download(urls, dest) ─► every URL and option checked ─► a safe name per URL ─► worker threads
    (a width that grows while throughput rises) ─► GET, stream to NAME.part, retry what may
    succeed ─► fsync, rename ─► one DownloadResult per URL, in input order
"""

from __future__ import annotations

from gearshift.downloader._download import download
from gearshift.downloader._values import DownloadResult

__all__ = ["DownloadResult", "download"]
