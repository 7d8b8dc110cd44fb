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


# Subcommands register here, in the order `gearshift --help` lists them.
_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = []
