"""The tasks the demos time, written the source's way but safe: the sum of 0..n, one
`multiprocessing.Process` per task, one download, and worker threads on a `queue.Queue`.

They live in a module of their own so that process workers can import them by name.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from gearshift.errors import DownloadError, WorkerDied, item_error

TASKS = 5  # the source's NUMBER_OF_PROCESSES, NUMBER_OF_THREADS, NUMBER_OF_ITERATIONS and images
DOWNLOAD_TIMEOUT = 30.0  # seconds a download may take in all before it fails
_BLOCK = 64 * 1024
Job = tuple[int, str, str]  # (index, url, directory to write into)


def sum_all_numbers(n: int) -> int:
    """The source's CPU task: the sum of 0..n, in pure Python (it holds the GIL throughout)."""
    return sum(range(n + 1))


def _sum_into(n: int, conn: Connection) -> None:
    conn.send(sum_all_numbers(n))
    conn.close()


def sum_with_processes(n: int, tasks: int = TASKS) -> list[int]:
    """The source's way: one `multiprocessing.Process` per sum, all started, then all joined.

    Unlike the source, each sum comes back through a pipe (to be checked), the start method is
    "spawn" (fresh interpreters, safe with threads, as on macOS and Windows), and a child that dies
    becomes `WorkerDied` instead of a silent gap.
    """
    ctx = multiprocessing.get_context("spawn")
    jobs: list[tuple[Any, Connection]] = []
    try:
        for _ in range(tasks):
            reader, writer = ctx.Pipe(duplex=False)
            process = ctx.Process(target=_sum_into, args=(n, writer), daemon=True)
            jobs.append((process, reader))
            process.start()
            writer.close()  # the child holds the only writer: its death reads as EOF
        sums = []
        for index, (process, reader) in enumerate(jobs):
            try:
                sums.append(reader.recv())
            except EOFError:
                process.join(5)
                why = f"lost its process (pid {process.pid}, exit code {process.exitcode})"
                raise item_error(
                    WorkerDied, index, n, why, pid=process.pid, exitcode=process.exitcode
                ) from None
        return sums
    finally:
        for process, reader in jobs:
            reader.close()
            if process.is_alive() and process.exitcode is None:
                process.join(5)
            if process.is_alive():
                process.terminate()
                process.join()
            process.close()


def fetch(job: Job) -> tuple[int, str]:
    """Download one URL into `directory`; returns (bytes, sha256). Picklable: processes use it."""
    index, url, directory = job
    name = urllib.parse.urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] or "download"
    path = f"{directory}/{index}-{''.join(c if c.isalnum() or c in '.-_' else '_' for c in name)}"
    digest, size = hashlib.sha256(), 0
    deadline = time.monotonic() + DOWNLOAD_TIMEOUT
    try:  # https: urllib verifies the certificate and the host name by default
        with (
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response,
            open(path, "wb") as out,
        ):
            while block := response.read(_BLOCK):
                out.write(block)
                digest.update(block)
                size += len(block)
                if time.monotonic() > deadline:
                    why = f"still downloading after {DOWNLOAD_TIMEOUT:g} s; gave up"
                    raise DownloadError(f"{url}: {why}", url=url)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise DownloadError(
            f"{url}: HTTP {exc.code} {exc.reason}", url=url, status=exc.code
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"{url}: {reason}; check the URL and the network", url=url) from exc
    return size, digest.hexdigest()


def download_with_thread_queue(jobs: Sequence[Job], threads: int = TASKS) -> list[tuple[int, str]]:
    """The source's way: worker threads take URLs from a `queue.Queue` until it is empty.

    Unlike the source, each worker stops at a sentinel (no daemon threads left behind), every
    download has a deadline, and a failed download is raised here instead of hanging `q.join()`.
    """
    work: queue.Queue[Job | None] = queue.Queue()
    for job in jobs:
        work.put(job)
    for _ in range(threads):
        work.put(None)  # one stop sign per worker
    results: dict[int, tuple[int, str]] = {}
    errors: dict[int, Exception] = {}

    def worker() -> None:
        while (job := work.get()) is not None:
            try:
                results[job[0]] = fetch(job)
            except Exception as exc:
                errors[job[0]] = exc

    workers = [threading.Thread(target=worker, name=f"demo-download-{i}") for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()  # bounded: every fetch ends within DOWNLOAD_TIMEOUT
    if errors:
        raise errors[min(errors)]
    return [results[job[0]] for job in jobs]
