"""`gearshift demo`: run both experiments, print a table and plain sentences per experiment, and
write the chart (PNG) and the raw results (JSON) into the output directory."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from gearshift.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from gearshift.lab import DemoResult, Experiment, Machine, Measurement

EXIT_OK = 0


def run_demo_command(args: argparse.Namespace) -> int:
    """Measure, then write demo.json and the chart, then print the tables (or JSON)."""
    from gearshift.cli.bench import progress_reporter, stdout_console
    from gearshift.lab import DEMO_N, SOURCE_N, run_demo

    if args.repeat < 1:
        raise UsageError(f"--repeat: got {args.repeat}; give a whole number >= 1, such as 3")
    n = args.n if args.n is not None else SOURCE_N if args.full else DEMO_N
    if n < 1:
        raise UsageError(f"--n: got {n}; give a whole number >= 1, such as 10000000")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = f"cannot create {out} ({exc.strerror})"
        raise UsageError(f"--out: {why}; pass a writable directory") from None
    with progress_reporter() as report:
        given = {"latency": args.latency, "size_bytes": args.size_bytes}
        result = run_demo(
            n=n,
            repeat=args.repeat,
            cpu=not args.io_only,
            io=not args.cpu_only,
            urls=args.url,
            progress=report,
            **{name: value for name, value in given.items() if value is not None},
        )
    chart = _chart(result, args.chart or str(out / "demo.png"), explicit=bool(args.chart))
    data = {**result.to_dict(), "chart": chart, "results": str(out / "demo.json")}
    (out / "demo.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    console = stdout_console()
    render_demo(result, console)
    console.print(f"Raw results: {out / 'demo.json'}" + (f"; chart: {chart}" if chart else ""))
    return EXIT_OK


def _chart(result: DemoResult, path: str, *, explicit: bool) -> str | None:
    """Draw the chart; without matplotlib, a note (or a usage error when --chart asked for it)."""
    import sys

    from gearshift.cli.bench import draw_chart

    def plot(p: str) -> Path:
        from gearshift.cli.charts import plot_demo

        return plot_demo(result, p)

    try:
        return draw_chart(plot, path)
    except UsageError:
        if explicit:
            raise
        print("gearshift: no chart: pip install 'gearshift[plot]' to draw one", file=sys.stderr)
        return None


def render_demo(result: DemoResult, console: Console) -> None:
    """Per experiment: its table, then a few sentences with the measured numbers."""
    from gearshift.cli.bench import (
        busy_warning,
        machine_line,
        measurement_table,
        noise_warnings,
    )

    for exp in result.experiments:
        runs = f"median of {result.repeat} run{'s' * (result.repeat > 1)}"
        console.print(
            measurement_table(
                f"{exp.title} — {runs}",
                exp.measurements,
                caption=f"ideal: {exp.ideal}",
                ideal_seconds=exp.ideal_seconds,
            )
        )
        story = explain_cpu(exp, result.machine) if exp.name == "cpu" else explain_io(exp)
        for sentence in story:
            console.print(sentence)
        noise_warnings(exp.measurements, console)
        console.print()
    console.print(machine_line(result.machine), style="dim")
    busy_warning(result.machine, console)


def explain_cpu(exp: Experiment, machine: Machine) -> list[str]:
    """Plain sentences on the CPU experiment: the GIL, parallelism, and this machine's ceiling."""
    serial, threads = exp.row("serial"), exp.row("threads")
    mp, mine, auto = exp.row("multiprocessing.Process"), exp.row("processes"), exp.row("auto")
    assert serial is not None and threads is not None and mp is not None and mine is not None
    tasks, cores = exp.params["tasks"], machine.cores
    ceiling = serial.median / exp.ideal_seconds
    best = max(mp.efficiency, mine.efficiency)
    lines = [
        f"Serial: {serial.median:.2f} s for {tasks} sums, one after another. "
        + _threads_on_cpu(threads, machine),
        f"Processes: {mp.median:.2f} s ({mp.speedup:.2f}x) with multiprocessing.Process as in "
        f"the source, {mine.median:.2f} s ({mine.speedup:.2f}x) with gearshift. Each process "
        "has its own interpreter and its own GIL, so the sums ran at the same time: parallelism.",
    ]
    if cores < tasks:
        lines.append(
            f"Why not {tasks}x? This machine has {cores} core{'s' * (cores > 1)}: {tasks} "
            f"processes share them, so the best possible is {ceiling:g}x ({exp.ideal_seconds:.2f} "
            f's). The source\'s "nearly five times faster" needs five idle cores. '
            + _reached("The best process row", best, "the ceiling")
            + (
                f"; the rest went to starting {tasks} interpreters and sending them the work."
                if best <= 1
                else "."
            )
        )
    else:
        lines.append(
            f"With {cores} cores, each of the {tasks} processes can have its own: the ceiling "
            f"is {ceiling:g}x ({exp.ideal_seconds:.2f} s). "
            + _reached("The best process row", best, "it")
            + ("; the rest is start-up." if best <= 1 else ".")
        )
    if auto is not None:
        lines.append(_auto_sentence(auto, "the ceiling"))
    return lines


def explain_io(exp: Experiment) -> list[str]:
    """Plain sentences on the I/O experiment: waiting overlaps on threads, one core suffices."""
    serial, queued = exp.row("serial"), exp.row("threading+queue.Queue")
    threads, procs, auto = exp.row("threads"), exp.row("processes"), exp.row("auto")
    assert serial is not None and queued is not None and threads is not None and procs is not None
    count = len(exp.params["urls"])
    latency = exp.params.get("latency")
    wait = f" (the server waits {latency:g} s before each answer)" if latency else ""
    lines = [
        f"Serial: {serial.median:.2f} s for {count} downloads, one after another. The program "
        f"mostly waits for the network{wait}; the CPU is idle.",
        f"Threads: {queued.median:.2f} s ({queued.speedup:.1f}x) with a queue of {count} worker "
        f"threads as in the source, {threads.median:.2f} s ({threads.speedup:.1f}x) with "
        "gearshift's threads. A thread waiting on a socket releases the GIL, so the waits "
        "overlap: concurrency, on one core. No parallelism is needed.",
        f"The ideal is one download's time with all of them in flight: {exp.ideal_seconds:.2f} s "
        "(the slowest single download). "
        + _reached("Threads", max(queued.efficiency, threads.efficiency), "it")
        + ".",
        f"Processes overlap the waits too ({procs.median:.2f} s, {procs.speedup:.1f}x) but first "
        f"start {count} interpreters: for waiting, threads are the cheaper tool.",
    ]
    if auto is not None:
        lines.append(_auto_sentence(auto, "the ideal"))
    return lines


def _threads_on_cpu(threads: Measurement, machine: Machine) -> str:
    """Threads summing: the GIL serialises them (a speedup above 1.1x is then a slowed serial)."""
    measured = f"Threads: {threads.median:.2f} s ({threads.speedup:.2f}x)"
    if "enabled" not in machine.gil:
        return f"{measured}: this Python runs without the GIL, so threads computed in parallel."
    noise = (
        f" The {threads.speedup:.2f}x measured here is other programs slowing the serial runs, "
        "not parallelism."
    )
    return (
        f"{measured}. The GIL lets one thread at a time run Python code, so the threads took "
        "turns: concurrency (interleaving), not parallelism. Threads do not speed up pure-Python "
        "computation." + (noise if threads.speedup > 1.1 else "")
    )


def _reached(who: str, efficiency: float, ideal: str) -> str:
    """`who reached 80% of ideal`; above 100% (a slowed baseline, not a faster program), says so."""
    if efficiency <= 1:
        return f"{who} reached {efficiency:.0%} of {ideal}"
    return (
        f"{who} measured {efficiency:.0%} of {ideal}, more than this machine allows: other "
        "programs slowed the serial runs more than the others, so the speedups overstate. Run "
        "again on a quiet machine"
    )


def _auto_sentence(auto: Measurement, ideal: str) -> str:
    """What auto chose, in its own words, and what that cost: sampling counts in its time."""
    chose = f"{auto.note.rstrip('.')}." if auto.note else "auto chose its own way."
    return (
        f"auto measures a sample of the work first, then decides. {chose[0].upper()}{chose[1:]} "
        f"It took {auto.median:.2f} s ({auto.speedup:.2f}x, {auto.efficiency:.0%} of {ideal}), "
        "sample included."
    )
