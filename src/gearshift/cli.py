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

    from gearshift.imageserver import ImageServer

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
        urls = server.urls
        if args.json:
            print(json.dumps({"base_url": server.base_url, "urls": urls}), flush=True)
        else:
            cap = f"{args.bandwidth:g} bytes/s" if args.bandwidth else "no cap"
            print(
                f"serving {args.count} PNG images of {args.size_bytes} bytes at {server.base_url}"
            )
            print(f"latency {args.latency:g} s, bandwidth {cap}; Ctrl-C stops")
            print("\n".join(urls[:10] + ([f"... to {urls[-1]}"] if len(urls) > 10 else [])))
            sys.stdout.flush()
        try:
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
    from gearshift.serverless_report import run_plan_lambda

    return run_plan_lambda(args)


# Subcommands register here, in the order `gearshift --help` lists them.
_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_serve_images,
    _add_plan_lambda,
]
