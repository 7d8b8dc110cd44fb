"""The moving parts of one download() call: worker threads, retries, Ctrl-C.

    HostQueue ─► worker threads (Width: fixed or auto): take ─► Fetcher.fetch
        ├─ Failure worth a retry ─► back to the HostQueue after its backoff
        ├─ Failure, final ─────────────────────────────────────────────────┐
        └─ Received (body in NAME.part; connection and host slot given back) │
              ─► Fetcher.commit: fsync, rename ──────────────────────────────┴─► results
    The main thread collects one DownloadResult per URL and grows the width. On Ctrl-C it closes
    the queue, cuts live sockets, joins the workers, and re-raises.

The worker commits its own file. Handing fsyncs to a separate pool of 16 threads measured slower
(bench/download.py setup, 8 interleaved rounds: 0.80 s against 0.66 s): concurrent fsyncs queue
on the file system's journal either way, and the extra threads only add GIL hand-offs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
import time
from pathlib import Path
from typing import TypeAlias

from gearshift.downloader._fetch import Fetcher, Job, Received
from gearshift.downloader._filenames import NameBook
from gearshift.downloader._partfile import sync_dir
from gearshift.downloader._progress import DownloadProgress
from gearshift.downloader._queue import AUTO_MAX, HostQueue, Meter, Width
from gearshift.downloader._retry import Failure, backoff_delay
from gearshift.downloader._values import DownloadResult, Settings
from gearshift.errors import DownloadError

__all__ = ["Policy", "run"]

_JOIN_SECONDS = 5.0  # after Ctrl-C; a worker still connecting ends within its connect timeout
_Results: TypeAlias = "queue.SimpleQueue[tuple[int, DownloadResult]]"


@dataclasses.dataclass(frozen=True)
class Policy:
    retries: int
    backoff: float
    max_wait: float


@dataclasses.dataclass
class _Run:
    """What every worker and commit shares."""

    fetcher: Fetcher
    work: HostQueue
    results: _Results
    policy: Policy


def run(
    jobs: list[Job],
    settings: Settings,
    names: NameBook,
    policy: Policy,
    workers: int | None,
    progress: bool,
) -> dict[int, DownloadResult]:
    """Download every job; its DownloadResult by job index. Raises KeyboardInterrupt on Ctrl-C."""
    meter = Meter()
    fetcher = Fetcher(settings, names, meter.add_bytes)
    hosts = len({job.host for job in jobs})
    limit = min(len(jobs), AUTO_MAX if workers is None else workers, hosts * settings.per_host)
    width = Width(workers, limit, meter)
    ctx = _Run(fetcher, HostQueue(jobs, settings.per_host), queue.SimpleQueue(), policy)
    threads: list[threading.Thread] = []
    bar = _progress(len(jobs), meter) if progress else None
    out: dict[int, DownloadResult] = {}
    try:
        _grow(threads, width.current, ctx)
        for _ in jobs:
            index, result = _next_result(ctx, threads)
            out[index] = result
            meter.file_done(result.ok)
            if bar is not None:
                bar.update()
            _grow(threads, width.observe(), ctx)
    except BaseException:
        fetcher.client.abort()  # Ctrl-C: stop reading now; .part files stay for a later resume
        raise
    finally:
        ctx.work.close()
        deadline = time.monotonic() + _JOIN_SECONDS
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        fetcher.client.close()
        if bar is not None:
            bar.close()
        sync_dir(settings.dest)
    return out


def _grow(threads: list[threading.Thread], n: int, ctx: _Run) -> None:
    while len(threads) < n:
        t = threading.Thread(
            target=_worker,
            args=(ctx,),
            name=f"gearshift-download-{len(threads)}",
            daemon=True,  # joined in run(); daemon only so a stuck socket cannot block exit
        )
        t.start()
        threads.append(t)


def _worker(ctx: _Run) -> None:
    """Take jobs until none is left: fetch, then retry, commit or report the outcome."""
    while (job := ctx.work.take()) is not None:
        if job.started is None:
            job.started = time.monotonic()
        try:
            outcome = ctx.fetcher.fetch(job)
        except BaseException as exc:  # a bug must cost one URL, never the whole run
            outcome = Failure(f"internal error: {type(exc).__name__}: {exc}", cause=exc)
        if _worth_retrying(ctx, job, outcome):
            assert isinstance(outcome, Failure)
            p = ctx.policy
            wait = backoff_delay(job.attempts, p.backoff, p.max_wait, outcome.wait)
            ctx.work.done(job, retry_in=wait)
            continue
        ctx.work.done(job)  # the connection is back in the pool: the host slot is free
        _report(ctx, job, _commit(ctx, outcome) if isinstance(outcome, Received) else outcome)


def _worth_retrying(ctx: _Run, job: Job, outcome: Received | Failure) -> bool:
    if not isinstance(outcome, Failure) or not outcome.retry or ctx.fetcher.stop.is_set():
        return False
    return job.attempts <= ctx.policy.retries


def _commit(ctx: _Run, got: Received) -> Path | Failure:
    try:
        return ctx.fetcher.commit(got)
    except Exception as exc:  # a full disk, a permission: this URL fails, the run goes on
        return Failure(f"cannot save {got.part.name}: {type(exc).__name__}: {exc}", cause=exc)


def _report(ctx: _Run, job: Job, outcome: Path | Failure) -> None:
    seconds = time.monotonic() - (job.started or time.monotonic())
    ctx.results.put((job.index, _result(job, outcome, seconds, ctx.policy)))


def _result(job: Job, outcome: Path | Failure, seconds: float, policy: Policy) -> DownloadResult:
    if not isinstance(outcome, Failure):
        return DownloadResult(
            job.url, outcome, "done", job.bytes, job.attempts, seconds, None, job.http_status
        )
    tries = f"{job.attempts} attempt{'s' if job.attempts > 1 else ''}"
    if outcome.retry:
        tries += f", retries={policy.retries} exhausted" if policy.retries else ", retries=0"
    error = DownloadError(
        f"{job.url}: {outcome.reason} ({tries})", url=job.url, status=outcome.status
    )
    error.__cause__ = outcome.cause
    return DownloadResult(
        job.url, None, "failed", job.bytes, job.attempts, seconds, error, outcome.status
    )


def _next_result(ctx: _Run, threads: list[threading.Thread]) -> tuple[int, DownloadResult]:
    """The next finished download; raises rather than waiting forever if nothing is left running."""
    while True:
        with contextlib.suppress(queue.Empty):
            return ctx.results.get(timeout=1.0)
        if not any(t.is_alive() for t in threads) and ctx.results.empty():
            raise RuntimeError("gearshift.download: every worker exited with downloads unfinished")


def _progress(total: int, meter: Meter) -> DownloadProgress:
    return DownloadProgress(total, meter)
