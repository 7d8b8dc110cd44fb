"""Which HTTP client, and which read size, should gearshift.download() use?

Issue 6 asks for the client and the read size to be chosen by measurement. This is that
measurement: 200 bodies of 256 KiB from the local image server (its own process on 127.0.0.1,
50 ms latency per response), 64 in flight, bodies read and thrown away (no disk), so only the
client's cost shows. One untimed warm-up call each (imports), then interleaved rounds; medians
of wall time and of this process's CPU time (every thread) per download:

    urllib3, 64 threads, read1(N)     one PoolManager; N = 16 KiB, 64 KiB, 256 KiB
    requests, 64 threads              one Session with a 64-connection adapter
    aiohttp, one loop                 one ClientSession, TCPConnector(limit=64)
    httpx AsyncClient, one loop       Limits(max_connections=64)

    .venv/bin/python bench/download_client.py [--files 200] [--size 262144] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from download import _serve  # the image server in its own process

WIDTH = 64


def urllib3_threads(read: int) -> Callable[[list[str]], int]:
    def run(urls: list[str]) -> int:
        import urllib3

        with urllib3.PoolManager(maxsize=WIDTH) as pool:

            def one(url: str) -> int:
                resp = pool.request("GET", url, preload_content=False, retries=False)
                n = 0
                while chunk := resp.read1(read):
                    n += len(chunk)
                resp.release_conn()
                return n

            with ThreadPoolExecutor(WIDTH) as threads:
                return sum(threads.map(one, urls))

    return run


def requests_threads(urls: list[str]) -> int:
    import requests

    with requests.Session() as session:
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=WIDTH)
        session.mount("http://", adapter)

        def one(url: str) -> int:
            with session.get(url, stream=True, timeout=30) as r:
                return sum(len(c) for c in r.iter_content(256 * 1024))

        with ThreadPoolExecutor(WIDTH) as threads:
            return sum(threads.map(one, urls))


def aiohttp_loop(urls: list[str]) -> int:
    import aiohttp

    async def main() -> int:
        connector = aiohttp.TCPConnector(limit=WIDTH)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(url: str) -> int:
                async with session.get(url) as r:
                    return sum([len(c) async for c in r.content.iter_chunked(256 * 1024)])

            return sum(await asyncio.gather(*(one(url) for url in urls)))

    return asyncio.run(main())


def httpx_async(urls: list[str]) -> int:
    import httpx

    async def main() -> int:
        limits = httpx.Limits(max_connections=WIDTH)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:

            async def one(url: str) -> int:
                async with client.stream("GET", url) as r:
                    return sum([len(c) async for c in r.aiter_raw(256 * 1024)])

            return sum(await asyncio.gather(*(one(url) for url in urls)))

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size", type=int, default=256 * 1024)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are compared (3)")
    args = parser.parse_args()
    contenders: dict[str, Callable[[list[str]], int]] = {
        "urllib3, 64 threads, read1(16 KiB)": urllib3_threads(16 * 1024),
        "urllib3, 64 threads, read1(64 KiB)": urllib3_threads(64 * 1024),
        "urllib3, 64 threads, read1(256 KiB)": urllib3_threads(256 * 1024),
        "requests, 64 threads": requests_threads,
        "aiohttp, one loop": aiohttp_loop,
        "httpx AsyncClient, one loop": httpx_async,
    }
    server, urls = _serve(args.files, args.size, args.latency)
    wall: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    try:
        for run in contenders.values():  # untimed: imports, first connections
            run(urls[:8])
        for _ in range(args.repeat):  # interleaved, so a busy moment hits every contender
            for name, run in contenders.items():
                t0, c0 = time.perf_counter(), time.process_time()
                got = run(urls)
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
                assert got == len(urls) * args.size, (name, got)
    finally:
        server.terminate()
        server.wait()
    print(f"{args.files} x {args.size // 1024} KiB, {WIDTH} in flight, {args.latency * 1000:g} ms")
    print(f"{'client':38} {'wall s':>7} {'CPU ms/download':>16}   every round (wall)")
    for name in contenders:
        per = statistics.median(cpu[name]) / args.files * 1000
        every = " ".join(f"{t:.3f}" for t in wall[name])
        print(f"{name:38} {statistics.median(wall[name]):7.3f} {per:16.2f}   {every}")


if __name__ == "__main__":
    main()
