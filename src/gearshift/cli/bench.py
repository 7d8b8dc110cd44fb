"""`gearshift bench`: measure a function on every strategy, as a table, JSON or a scaling chart.

Also the pieces `gearshift demo` shares: the consoles (colour only on a terminal), the table of
measurements, the machine line, the noise warnings, and drawing a chart with a helpful error.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from gearshift import units
from gearshift.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from gearshift.lab import BenchResult, Machine, Measurement

EXIT_OK = 0


def run_bench_command(args: argparse.Namespace) -> int:
    """Load MODULE:FUNC and its items, bench them, then print a table or JSON; draw --chart."""
    from gearshift.cli._target import load_function, load_items
    from gearshift.lab import bench

    fn = load_function(args.target)
    items = load_items(args.items, args.items_file)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    workers = _ints(args.workers, "--workers")
    if not strategies:
        raise UsageError("--strategies: empty; give names such as serial,threads,processes,auto")
    try:
        with progress_reporter() as report:
            result = bench(
                fn,
                items,
                strategies=strategies,
                workers=workers,
                repeat=args.repeat,
                warmup=not args.no_warmup,
                progress=report,
            )
    except UsageError as exc:
        raise UsageError(f"{_flag(str(exc))}{exc}") from None
    result = _with_name(result, args.target)
    chart = draw_chart(lambda p: _plot_bench(result, p), args.chart) if args.chart else None
    if args.json:
        print(json.dumps({**result.to_dict(), "chart": chart}, indent=2))
        return EXIT_OK
    console = stdout_console()
    render_bench(result, console)
    if chart:
        console.print(f"chart: {chart}")
    return EXIT_OK


def _plot_bench(result: BenchResult, path: str) -> Path:
    from gearshift.cli.charts import plot_bench

    return plot_bench(result, path)


def _with_name(result: BenchResult, name: str) -> BenchResult:
    import dataclasses

    return dataclasses.replace(result, function=name)


def _flag(message: str) -> str:
    """The option a bench() UsageError is about, so the message names what the user typed."""
    for word, flag in (
        ("repeat", "--repeat"),
        ("workers", "--workers"),
        ("strategy", "--strategies"),
    ):
        if message.startswith(word):
            return f"{flag}: "
    return ""


def render_bench(result: BenchResult, console: Console) -> None:
    """The table, the machine's facts, then one sentence on the best configuration."""
    ideal = f"ideal: min(workers, {result.machine.cores} cores) x serial's speed"
    table = measurement_table(
        f"{result.function} over {result.items:,} items — median of {result.repeat} run"
        f"{'s' * (result.repeat > 1)}{', after a warm-up' if result.warmup else ''}",
        result.measurements,
        caption=ideal,
    )
    console.print(table)
    console.print(machine_line(result.machine), style="dim")
    for m in result.measurements:
        if m.note:
            console.print(m.note)
    best = result.best
    console.print(
        f"Fastest: {best.label}, {units.seconds(best.median)} ({best.speedup:.2f}x serial, "
        f"{best.efficiency:.0%} of its ideal)."
    )
    noise_warnings(result.measurements, console)
    busy_warning(result.machine, console)


def measurement_table(
    title: str, rows: Sequence[Measurement], *, caption: str, ideal_seconds: float | None = None
) -> Table:
    """One row per configuration: median, spread, speedup vs serial, efficiency vs the ideal."""
    from rich.table import Table

    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    table.add_column("configuration")
    for name in ("workers", "median", "spread", "speedup", "of ideal"):
        table.add_column(name, justify="right")
    for m in rows:
        colour = "green" if m.efficiency >= 0.8 else "yellow" if m.efficiency >= 0.5 else "red"
        table.add_row(
            m.label,
            "auto" if m.workers is None else str(m.workers),
            units.seconds(m.median),
            f"{m.spread:.0%}" + (" noisy" if m.noisy else ""),
            f"{m.speedup:.2f}x",
            f"[{colour}]{m.efficiency:.0%}[/]",
        )
    if ideal_seconds is not None:
        base = rows[0].median
        table.add_row(
            "ideal for this machine",
            "",
            units.seconds(ideal_seconds),
            "",
            f"{base / ideal_seconds:.2f}x",
            "100%",
            style="dim",
        )
    return table


def machine_line(machine: Machine) -> str:
    load = "unknown" if machine.load_before is None else f"{machine.load_before:.2f}"
    return (
        f"Machine: {machine.cores} cores available ({machine.cpu}), {machine.python}, "
        f"GIL {machine.gil}, {machine.platform}; gearshift's processes start as "
        f"{machine.start_method}; load average {load} when the run started. "
        "Spread: (slowest run - fastest run) / median."
    )


def busy_warning(machine: Machine, console: Console) -> None:
    """Warn when other programs were running as the measurement began (the load average)."""
    if machine.busy:
        console.print(
            f"warning: the machine was busy: load average {machine.load_before:.2f} on "
            f"{machine.cores} cores when the run started. Other programs took CPU time from "
            "every row alike, which the spread cannot show; run again on a quiet machine.",
            style="yellow",
        )


def noise_warnings(rows: Sequence[Measurement], console: Console) -> None:
    """One warning naming every configuration whose runs disagreed by more than NOISY_SPREAD."""
    from gearshift.lab import NOISY_SPREAD

    noisy = [f"{m.label} {m.spread:.0%}" for m in rows if m.noisy]
    if noisy:
        console.print(
            f"warning: noisy runs (spread over {NOISY_SPREAD:.0%}): {', '.join(noisy)}. The "
            "machine was busy, so differences smaller than that are noise: close other "
            "programs, or raise --repeat.",
            style="yellow",
        )


def stdout_console() -> Console:
    """A console on stdout: colours only on a terminal; wide enough for a file or a pipe."""
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 120)
    return console


@contextmanager
def progress_reporter() -> Iterator[Callable[[str], None] | None]:
    """A spinner on stderr naming the run in progress, on a terminal only; else nothing."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    with console.status("measuring") as status:
        yield lambda note: status.update(f"measuring {note}")


def draw_chart(plot: Callable[[str], Path], path: str) -> str:
    """Draw with `plot(path)`; UsageError naming --chart if matplotlib is missing or no write."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return str(plot(path))
    except ImportError:
        raise UsageError("--chart: needs matplotlib; pip install 'gearshift[plot]'") from None
    except OSError as exc:
        raise UsageError(f"--chart: cannot write {path} ({exc}); pass a writable path") from None


def _ints(text: str, flag: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"{flag}: got {text!r}; pass whole numbers separated by commas") from None
