"""All of gearshift's charts, written as PNG files.

matplotlib is imported inside each function (with the non-interactive Agg backend), so importing
this module costs nothing and no chart ever needs a display. Every figure is FIGSIZE inches at DPI
dots per inch: a PNG of FIGSIZE x DPI pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gearshift.serverless import LambdaLayout, LambdaPlan

FIGSIZE = (8.0, 5.0)  # inches
DPI = 100


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_lambda_plan(plan: LambdaPlan, path: str | Path) -> Path:
    """Cost vs makespan of every valid Lambda layout, the Pareto frontier drawn as a line."""
    from gearshift.serverless_pick import family

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
        fig.tight_layout()
        out = Path(path)
        fig.savefig(out, dpi=DPI, format="png")
        return out
    finally:
        plt.close(fig)


def _xy(layouts: tuple[LambdaLayout, ...] | list[LambdaLayout]) -> tuple[list[float], list[float]]:
    return [x.makespan_seconds for x in layouts], [x.cost_usd for x in layouts]
