"""`gearshift profile`: measure MODULE:FUNC on a sample of its items, say what auto would choose.

Prints the choice with its reason, the measurements, and each strategy's predicted speedup; with
`--json`, one object: every `Profile` field at the top level (`cpu_seconds_per_item`,
`wait_seconds_per_item`, `payload_bytes_in`, `payload_bytes_out`... which `gearshift plan-lambda
--profile` reads) plus `choice`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from gearshift.auto import Choice, Profile, Sample

EXIT_OK = 0


def run_profile_command(args: argparse.Namespace) -> int:
    """Load the target and items, profile a sample, choose, then print a report or JSON."""
    from gearshift.auto import choose, profile_sample
    from gearshift.cli._target import load_function, load_items

    fn = load_function(args.target)
    items = load_items(args.items, args.items_file)
    sample = profile_sample(fn, items, size=args.sample)
    prof = sample.profile
    choice = choose(prof)
    if sample.result.errors:
        print(_errors_line(sample), file=sys.stderr)
    if args.json:
        print(json.dumps(report_dict(args.target, prof, choice), indent=2))
        return EXIT_OK
    from gearshift.cli.bench import stdout_console

    render(prof, choice, stdout_console())
    return EXIT_OK


def report_dict(target: str, prof: Profile, choice: Choice) -> dict[str, Any]:
    """The JSON report: the profile's fields at the top level, the choice under "choice"."""
    return {"target": target, **prof.to_dict(), "choice": choice.to_dict()}


def render(prof: Profile, choice: Choice, console: Console) -> None:
    """The choice and why, the measurements, and every strategy's predicted speedup."""
    from rich.table import Table

    console.print(f"[bold]{choice.strategy}[/bold]: {choice.why}", soft_wrap=True)
    console.print()
    console.print(str(prof), soft_wrap=True)
    console.print()
    table = Table(title="predicted speedup over serial", title_justify="left")
    table.add_column("strategy")
    table.add_column("workers", justify="right")
    table.add_column("chunksize", justify="right")
    table.add_column("predicted", justify="right")
    table.add_column("note")
    for option in choice.options:
        chosen = option.strategy == choice.strategy
        table.add_row(
            f"[bold]{option.strategy}[/bold]" if chosen else option.strategy,
            str(option.max_workers),
            str(option.chunksize),
            "-" if option.blocked else f"{option.predicted:.2f}x",
            option.blocked or ("chosen" if chosen else ""),
        )
    console.print(table)


def _errors_line(sample: Sample) -> str:
    errors = sample.result.errors
    first = min(errors)
    exc = errors[first]
    return (
        f"gearshift: warning: {len(errors)} of {len(sample.items)} sampled items raised "
        f"(first: item {first}, {type(exc).__name__}: {exc}); the measurements include them"
    )
