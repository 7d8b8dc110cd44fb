"""How fast is gearshift.download() against what people write instead?

200 files of 256 KiB from the local image server (a separate process on 127.0.0.1, 50 ms latency
per response), side by side in interleaved rounds (medians compared; serial runs once); every
contender writes the files to its own directory:

    gearshift.download(urls, dir)            threads over one urllib3 pool, width auto; .part,
                                             fsync and rename per file
    serial requests                          one requests.Session, one file after another
    ThreadPoolExecutor() + requests.get      the default width: min(32, cores + 4)
    aiohttp, 64 connections                  asyncio.gather over one ClientSession

Target (issue 6): gearshift within 1.25x of the best peer and >= 3x faster than the default-width
ThreadPoolExecutor. The ideal is the latency bound at 64 connections: ceil(200 / 64) x 50 ms.

    .venv/bin/python bench/download.py [--files 200] [--size 262144] [--latency 0.05] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gearshift

READ = 64 * 1024


def serial_requests(urls: list[str], dest: Path) -> None:
    import requests

    with requests.Session() as session:
        for url in urls:
            _save_requests(session.get(url, stream=True, timeout=30), url, dest)


def threadpool_requests(urls: list[str], dest: Path) -> None:
    import requests

    def one(url: str) -> None:
        _save_requests(requests.get(url, stream=True, timeout=30), url, dest)

    with ThreadPoolExecutor() as pool:  # the default width, as most code leaves it
        list(pool.map(one, urls))


def _save_requests(resp: object, url: str, dest: Path) -> None:
    with resp as r:  # type: ignore[attr-defined]
        r.raise_for_status()
        with open(dest / url.rsplit("/", 1)[-1], "wb") as f:
            for block in r.iter_content(READ):
                f.write(block)


def aiohttp_64(urls: list[str], dest: Path) -> None:
    import aiohttp

    async def main() -> None:
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(url: str) -> None:
                async with session.get(url) as r:
                    r.raise_for_status()
                    with open(dest / url.rsplit("/", 1)[-1], "wb") as f:
                        async for block in r.content.iter_chunked(READ):
                            f.write(block)

            await asyncio.gather(*(one(url) for url in urls))

    asyncio.run(main())


def gearshift_download(urls: list[str], dest: Path) -> None:
    results = gearshift.download(urls, dest)
    failed = [r for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} downloads failed, first: {failed[0].error}")


def _serve(files: int, size: int, latency: float) -> tuple[subprocess.Popen[str], list[str]]:
    """The image server in its own process, so its CPU does not share a GIL with the clients."""
    cmd = [sys.executable, "-m", "gearshift", "serve-images", "--json", "--count", str(files)]
    cmd += ["--size-bytes", str(size), "--latency", str(latency)]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    return server, json.loads(server.stdout.readline())["urls"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size", type=int, default=256 * 1024)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are compared (3)")
    args = parser.parse_args()
    contenders: dict[str, Callable[[list[str], Path], None]] = {
        "gearshift.download (auto)": gearshift_download,
        "aiohttp, 64 connections": aiohttp_64,
        "ThreadPoolExecutor() + requests": threadpool_requests,
        "serial requests.Session": serial_requests,
    }
    server, urls = _serve(args.files, args.size, args.latency)
    root = Path(tempfile.mkdtemp(prefix="gearshift-bench-"))
    runs: dict[str, list[float]] = {name: [] for name in contenders}
    try:
        for round_ in range(args.repeat):  # interleaved, so a busy moment hits every contender
            for name, run in contenders.items():
                if name.startswith("serial") and round_:
                    continue  # 50x slower than the rest: one round says enough
                dest = root / f"{round_}-{len(runs[name])}-{name.split()[0]}"
                dest.mkdir()
                t0 = time.perf_counter()
                run(urls, dest)
                runs[name].append(time.perf_counter() - t0)
                sizes = {p.stat().st_size for p in dest.iterdir()}
                assert len(list(dest.iterdir())) == args.files and sizes == {args.size}, name
                shutil.rmtree(dest)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(root, ignore_errors=True)
    seconds = {name: statistics.median(times) for name, times in runs.items()}
    ideal = math.ceil(args.files / 64) * args.latency
    mine = seconds["gearshift.download (auto)"]
    print(f"{args.files} files x {args.size // 1024} KiB, {args.latency * 1000:g} ms latency each")
    print(f"{'contender':34} {'median s':>8} {'vs gearshift':>13}   every round")
    for name, s in seconds.items():
        every = " ".join(f"{t:.3f}" for t in runs[name])
        print(f"{name:34} {s:8.3f} {s / mine:12.2f}x   {every}")
    print(f"{'ideal (64 in flight, latency)':34} {ideal:8.3f} {ideal / mine:12.2f}x")
    best_peer = min(s for name, s in seconds.items() if not name.startswith("gearshift"))
    tpe = seconds["ThreadPoolExecutor() + requests"]
    print(f"gearshift / best peer: {mine / best_peer:.2f}x (target <= 1.25x)")
    print(f"ThreadPoolExecutor() / gearshift: {tpe / mine:.2f}x (target >= 3x)")


if __name__ == "__main__":
    main()
