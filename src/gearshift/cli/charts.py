"""All of gearshift's charts, written as PNG files.

matplotlib is imported inside each function (with the non-interactive Agg backend), so importing
this module costs nothing and no chart ever needs a display. Every figure is FIGSIZE inches at DPI
dots per inch: a PNG of FIGSIZE x DPI pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gearshift.lab import BenchResult, DemoResult, Experiment, Measurement
    from gearshift.serverless import LambdaLayout, LambdaPlan

FIGSIZE = (8.0, 5.0)  # inches
DPI = 100


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    """Lay the figure out and write it as a PNG at `path`."""
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=DPI, format="png")
    return out


def plot_lambda_plan(plan: LambdaPlan, path: str | Path) -> Path:
    """Cost vs makespan of every valid Lambda layout, the Pareto frontier drawn as a line."""
    from gearshift.serverless import family

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    try:
        valid = [x for x in plan.layouts if x.valid]
        for name, colour in (
            ("1 Lambda x k processes", "tab:orange"),
            ("n Lambdas x 1 process", "tab:green"),
            ("m Lambdas x k processes", "tab:blue"),
        ):
            xs = [x for x in valid if family(x) == name and not x.on_frontier]
            ax.scatter(*_xy(xs), s=14, alpha=0.45, color=colour, label=name)
        ax.plot(*_xy(plan.frontier), "-o", color="black", ms=4, lw=1.5, label="Pareto frontier")
        if plan.recommended is not None:
            ax.scatter(*_xy([plan.recommended]), s=220, marker="*", color="crimson", zorder=5,
                       label=f"recommended: {plan.recommended.label}")  # fmt: skip
        costs = [x.cost_usd for x in valid]
        ax.set_xscale("log")
        if costs and max(costs) > 10 * min(costs):
            ax.set_yscale("log")
        wait = f" + {plan.task_wait_seconds:g} s wait" if plan.task_wait_seconds else ""
        ax.set_title(
            f"AWS Lambda layouts for {plan.tasks:,} tasks of {plan.task_cpu_seconds:g} s CPU{wait}"
            f" ({plan.arch})"
        )
        ax.set_xlabel("Makespan (seconds, log scale)")
        ax.set_ylabel("Cost (USD)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        return _save(fig, path)
    finally:
        plt.close(fig)


def _xy(layouts: tuple[LambdaLayout, ...] | list[LambdaLayout]) -> tuple[list[float], list[float]]:
    return [x.makespan_seconds for x in layouts], [x.cost_usd for x in layouts]


def plot_demo(result: DemoResult, path: str | Path) -> Path:
    """Median time per configuration with fastest..slowest whiskers, one panel per experiment,
    the machine's ideal as a dashed line."""
    plt = _pyplot()
    panels = max(1, len(result.experiments))
    fig, axes = plt.subplots(panels, 1, figsize=FIGSIZE, dpi=DPI, squeeze=False)
    try:
        for ax, exp in zip(axes[:, 0], result.experiments, strict=False):
            _demo_panel(ax, exp)
        m = result.machine
        fig.suptitle(
            f"The source's two experiments on {m.cores} cores ({m.python}): median of "
            f"{result.repeat} run{'s' * (result.repeat > 1)}, whiskers fastest..slowest",
            fontsize=10,
        )
        return _save(fig, path)
    finally:
        plt.close(fig)


def _demo_panel(ax: Any, exp: Experiment) -> None:
    rows = list(reversed(exp.measurements))  # serial on top
    medians = [m.median for m in rows]
    low = [m.median - min(m.seconds) for m in rows]
    high = [max(m.seconds) - m.median for m in rows]
    colours = [_COLOURS.get(m.strategy, "tab:gray") for m in rows]
    ys = range(len(rows))
    ax.barh(ys, medians, xerr=[low, high], color=colours, capsize=3, height=0.6)
    ax.set_yticks(list(ys), [_short(m) for m in rows], fontsize=8)
    ax.axvline(exp.ideal_seconds, color="black", ls="--", lw=1)
    for y, m in zip(ys, rows, strict=True):
        ax.text(m.median + (high[y] if high[y] else 0), y, f"  {m.speedup:.2f}x",
                va="center", fontsize=8)  # fmt: skip
    ax.set_xlim(0, max(max(m.seconds) for m in rows) * 1.18)
    ax.set_title(
        f"{exp.title}. Dashed: the ideal here, {exp.ideal_seconds:.2f} s; labels: speedup",
        fontsize=9,
        loc="left",
    )
    ax.set_xlabel("seconds (shorter is better)", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(True, axis="x", alpha=0.3)


_COLOURS = {
    "serial": "tab:gray",
    "threads": "tab:blue",
    "threading+queue.Queue": "tab:cyan",
    "multiprocessing.Process": "tab:olive",
    "processes": "tab:orange",
    "auto": "tab:green",
}


def _short(m: Measurement) -> str:
    """A chart-sized label: `5 threads + queue (source)` for the long table label."""
    w = m.workers
    return {
        "serial": "serial",
        "threads": f"{w} threads (gearshift)",
        "threading+queue.Queue": f"{w} threads + queue (source)",
        "multiprocessing.Process": f"{w} mp.Process (source)",
        "processes": f"{w} processes (gearshift)",
    }.get(m.strategy, m.label)


def plot_bench(result: BenchResult, path: str | Path) -> Path:
    """Speedup vs workers per strategy, with fastest..slowest error bars, the ideal for CPU-bound
    work (min(workers, cores)), serial as a horizontal line and auto as a star at its width."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    try:
        base, cores = result.serial.median, result.machine.cores
        widths = sorted({m.workers for m in result.measurements if m.workers} | {1})
        ax.plot(widths, [min(w, cores, result.items) for w in widths], "--", color="black",
                lw=1.2, label=f"ideal for CPU-bound work: min(workers, {cores} cores)")  # fmt: skip
        ax.plot(widths, [min(w, result.items) for w in widths], ":", color="gray", lw=1,
                label="linear: work that waits (I/O) can go past the cores")  # fmt: skip
        ax.axhline(1.0, color=_COLOURS["serial"], lw=1, label="serial (1.00x)")
        for name in dict.fromkeys(m.strategy for m in result.measurements):
            rows = [m for m in result.measurements if m.strategy == name]
            colour = _COLOURS.get(name)
            if name == "auto" and rows[0].workers is None:  # no choice recorded: a level
                ax.axhline(rows[0].speedup, color=colour, ls="-.", lw=1.5,
                           label=f"{rows[0].label} ({rows[0].speedup:.2f}x)")  # fmt: skip
            elif name != "serial":  # auto: one star at the width it chose
                xs = [m.workers for m in rows]
                ys = [m.speedup for m in rows]
                err = [[m.speedup - base / max(m.seconds) for m in rows],
                       [base / min(m.seconds) - m.speedup for m in rows]]  # fmt: skip
                star = {"fmt": "*", "ms": 14, "label": f"{rows[0].label} ({rows[0].speedup:.2f}x)"}
                style = star if name == "auto" else {"fmt": "-o", "label": name}
                ax.errorbar(xs, ys, yerr=err, color=colour, capsize=3, zorder=3, **style)
        ax.set_xscale("log", base=2)
        ax.set_xticks(widths, [str(w) for w in widths])
        ax.set_ylim(bottom=0)
        ax.set_title(
            f"{result.function} over {result.items:,} items: speedup vs workers\n"
            f"{cores} cores, {result.machine.python}, GIL {result.machine.gil.split(' ')[0]}; "
            f"median of {result.repeat}, bars fastest..slowest",
            fontsize=10,
        )
        ax.set_xlabel("workers (threads or processes)")
        ax.set_ylabel("speedup vs serial (higher is better)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
        return _save(fig, path)
    finally:
        plt.close(fig)
