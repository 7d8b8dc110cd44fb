"""The `gearshift` command: a thin layer over the public API.

Each subcommand is a pair: `_add_NAME(subparsers)` declares its arguments and sets `run=`, a
function `(args) -> int`. Exit codes: 0 success, 1 the work failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from gearshift.errors import GearshiftError, UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gearshift", description="Threads or processes? Measure, decide, run."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code instead of exiting."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    try:
        code: int = args.run(args)
        return code
    except UsageError as exc:
        print(f"gearshift: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GearshiftError as exc:
        print(f"gearshift: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("gearshift: interrupted", file=sys.stderr)
        return 130


def _add_serve_images(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve-images", help="serve deterministic PNG images on 127.0.0.1")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (0)")
    p.add_argument("--count", type=int, default=5, help="images /images/0.png .. N-1 (5)")
    p.add_argument("--size-bytes", type=int, default=256 * 1024, help="bytes per image (262144)")
    p.add_argument("--latency", type=float, default=0.0, help="seconds before each response (0)")
    p.add_argument("--bandwidth", type=float, default=0.0, help="bytes/s per response; 0: no cap")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    p.add_argument("--json", action="store_true", help="print the URLs as one JSON object")
    p.set_defaults(run=_run_serve_images)


def _run_serve_images(args: argparse.Namespace) -> int:
    import json
    import time

    from gearshift.lab import ImageServer

    server = ImageServer(
        count=args.count,
        size_bytes=args.size_bytes,
        latency=args.latency,
        bandwidth=args.bandwidth,
        host=args.host,
        port=args.port,
        allow_remote=args.allow_remote,
        verbose=args.verbose,
    )
    with server:
        try:  # from the first line printed: a Ctrl-C as soon as the URLs show is a clean stop
            urls = server.urls
            if args.json:
                print(json.dumps({"base_url": server.base_url, "urls": urls}), flush=True)
            else:
                cap = f"{args.bandwidth:g} bytes/s" if args.bandwidth else "no cap"
                where = f"{args.size_bytes} bytes at {server.base_url}"
                print(f"serving {args.count} PNG images of {where}")
                print(f"latency {args.latency:g} s, bandwidth {cap}; Ctrl-C stops")
                print("\n".join(urls[:10] + ([f"... to {urls[-1]}"] if len(urls) > 10 else [])))
                sys.stdout.flush()
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("gearshift: image server stopped", file=sys.stderr)
    return EXIT_OK


def _add_plan_lambda(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "plan-lambda", help="one Lambda with k processes or many Lambdas? cost and makespan"
    )
    p.add_argument("--tasks", type=int, required=True, help="number of tasks")
    p.add_argument("--task-cpu-seconds", type=float, help="CPU seconds per task, on one vCPU")
    p.add_argument("--task-wait-seconds", type=float, help="seconds per task spent waiting (0)")
    p.add_argument("--payload-in-bytes", type=int, help="bytes sent per task (0)")
    p.add_argument("--payload-out-bytes", type=int, help="bytes returned per task (0)")
    p.add_argument("--arch", choices=("x86_64", "arm64"), default="x86_64", help="(x86_64)")
    p.add_argument("--memory", metavar="MB,MB", help="memory sizes to try (128 ... 10240)")
    p.add_argument("--lambdas", metavar="N,N", help="Lambda counts to try (1, 2, 5, ... tasks)")
    p.add_argument("--processes", metavar="K,K", help="processes per Lambda to try")
    p.add_argument("--concurrency", type=int, default=1000, help="account concurrency (1000)")
    p.add_argument("--init-seconds", type=float, default=0.25, help="cold start seconds (0.25)")
    p.add_argument("--within", type=float, default=0.10, help="pick the cheapest layout within "
                   "this fraction of the fastest makespan (0.10)")  # fmt: skip
    p.add_argument("--deadline", type=float, help="pick the cheapest layout within SECONDS")
    p.add_argument("--budget", type=float, help="pick the fastest layout costing at most USD")
    p.add_argument("--profile", metavar="FILE.json", help="per-task seconds and payload, as JSON")
    p.add_argument("--all", action="store_true", help="list every layout, not only highlights")
    p.add_argument("--json", action="store_true", help="print the whole plan as JSON")
    p.add_argument("--chart", metavar="PATH.png", help="draw cost vs makespan to this PNG")
    p.set_defaults(run=_run_plan_lambda)


def _run_plan_lambda(args: argparse.Namespace) -> int:
    from gearshift.cli.plan_lambda import run_plan_lambda

    return run_plan_lambda(args)


def _add_download(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("download", help="download URLs concurrently: retried, resumable, atomic")
    p.add_argument("urls", nargs="*", metavar="URL", help="http:// or https:// URLs")
    p.add_argument("-i", "--input", metavar="FILE", help="URLs from FILE, one a line (# comments); "
                   "- reads stdin")  # fmt: skip
    p.add_argument("-o", "--output", metavar="DIR", default=".", help="save into DIR (.)")
    p.add_argument("--workers", type=_download_workers, default="auto",
                   help="threads: N, or auto to grow while throughput rises (auto)")  # fmt: skip
    p.add_argument("--per-host", type=int, default=64, help="most connections to one host (64)")
    p.add_argument("--retries", type=int, default=3, help="extra attempts after errors (3)")
    p.add_argument("--backoff", type=float, default=0.5, help="first retry wait, doubling (0.5 s)")
    p.add_argument(
        "--max-wait", type=float, default=60.0, help="cap on a wait, Retry-After too (60)"
    )
    p.add_argument("--connect-timeout", type=float, default=10.0, help="seconds to connect (10)")
    p.add_argument("--read-timeout", type=float, default=30.0, help="seconds without data (30)")
    p.add_argument("--max-bytes", type=_download_size, help="refuse larger files: N, 512K, 10M, 2G")
    p.add_argument("--sha256", metavar="FILE", help="verify against a sha256sum manifest "
                   "(HEX  NAME-or-URL per line)")  # fmt: skip
    p.add_argument("--max-redirects", type=int, default=10, help="redirects to follow (10)")
    p.add_argument("--insecure", action="store_true", help="do NOT verify TLS certificates")
    p.add_argument("--skip-existing", action="store_true", help="leave files already in DIR alone")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print a JSON report instead of tables")
    p.set_defaults(run=_run_download)


def _run_download(args: argparse.Namespace) -> int:
    from gearshift.cli.download import run_download

    return run_download(args)


def _download_workers(text: str) -> int | str:
    from gearshift.cli.download import parse_workers

    return parse_workers(text)


def _download_size(text: str) -> int:
    from gearshift.cli.download import parse_size

    return parse_size(text)


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="the source's two experiments (sum 0..N; download images)")
    p.add_argument("--full", action="store_true", help="the source's N = 100,000,000")
    p.add_argument("--n", type=int, help="sum 0..N, 5 times (20,000,000; --full 100,000,000)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per row; median shown (3)")
    p.add_argument("--url", nargs="+", action="extend", metavar="URL",
                   help="download these (TLS verified), not from a local image server")  # fmt: skip
    p.add_argument("--latency", type=float, help="local server: seconds per response (0.25)")
    p.add_argument("--size-bytes", type=int, help="local server: bytes per image (524288)")
    only = p.add_mutually_exclusive_group()
    only.add_argument("--cpu-only", action="store_true", help="only the CPU experiment")
    only.add_argument("--io-only", action="store_true", help="only the I/O experiment")
    p.add_argument("--out", default="gearshift-results", help="directory for demo.json and the "
                   "chart (./gearshift-results)")  # fmt: skip
    p.add_argument("--chart", metavar="PATH.png", help="chart path (OUT/demo.png)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from gearshift.cli.demo import run_demo_command

    return run_demo_command(args)


def _add_bench(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bench", help="time MODULE:FUNC on every strategy and worker count")
    p.add_argument("target", metavar="MODULE:FUNC", help="e.g. mypkg.work:crunch, ./work.py:f")
    p.add_argument("--items", metavar="EXPR", help="a Python expression, e.g. 'range(100)'")
    p.add_argument("--items-file", metavar="FILE", help="a JSON array, or one item per line")
    p.add_argument("--strategies", default="serial,threads,processes,auto",
                   help="comma-separated (serial,threads,processes,auto)")  # fmt: skip
    p.add_argument("--workers", default="1,2,4,8", help="worker counts to try (1,2,4,8)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs each; median shown (3)")
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up runs")
    p.add_argument("--chart", metavar="PATH.png", help="draw speedup vs workers to this PNG")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(run=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    from gearshift.cli.bench import run_bench_command

    return run_bench_command(args)


def _add_profile(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("profile", help="measure MODULE:FUNC on a sample; what would auto choose?")
    p.add_argument("target", metavar="MODULE:FUNC", help="e.g. mypkg.work:crunch, ./work.py:f")
    p.add_argument("--items", metavar="EXPR", help="a Python expression, e.g. 'range(100)'")
    p.add_argument("--items-file", metavar="FILE", help="a JSON array, or one JSON value a line")
    p.add_argument("--sample", type=int, help="items to measure (default: adaptive, ~0.1 s)")
    p.add_argument("--json", action="store_true", help="print the profile and choice as JSON")
    p.set_defaults(run=_run_profile)


def _run_profile(args: argparse.Namespace) -> int:
    from gearshift.cli.profile import run_profile_command

    return run_profile_command(args)


# Subcommands register here, in the order `gearshift --help` lists them.
_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_serve_images,
    _add_plan_lambda,
    _add_download,
    _add_demo,
    _add_bench,
    _add_profile,
]
