"""`gearshift plan-lambda`: a LambdaPlan from flags or a profile file, as a table, JSON or chart.

The profile file is a JSON object with `cpu_seconds_per_item` (required), `wait_seconds_per_item`,
`payload_bytes_in` and `payload_bytes_out` (optional); flags given on the command line win.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gearshift import units
from gearshift.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from gearshift.serverless import LambdaLayout, LambdaPlan

PROFILE_KEYS = (
    "cpu_seconds_per_item",
    "wait_seconds_per_item",
    "payload_bytes_in",
    "payload_bytes_out",
)
# plan_lambda's argument names -> the flags that set them, so errors name what the user typed.
_FLAGS = {
    "tasks": "--tasks",
    "task_cpu_seconds": "--task-cpu-seconds",
    "task_wait_seconds": "--task-wait-seconds",
    "payload_in_bytes": "--payload-in-bytes",
    "payload_out_bytes": "--payload-out-bytes",
    "memories_mb": "--memory",
    "lambdas": "--lambdas",
    "processes": "--processes",
    "concurrency": "--concurrency",
    "init_seconds": "--init-seconds",
    "within": "--within",
    "deadline_seconds": "--deadline",
    "budget_usd": "--budget",
}
EXIT_OK, EXIT_FAILED = 0, 1


def run_plan_lambda(args: argparse.Namespace) -> int:
    """Plan, then print a table (or JSON) and draw the chart; 1 when no layout is valid."""
    from gearshift.serverless import DEFAULT_MEMORIES_MB, plan_lambda

    prof = read_profile(args.profile) if args.profile else {}
    cpu = _first(args.task_cpu_seconds, prof.get("cpu_seconds_per_item"))
    if cpu is None:
        raise UsageError(
            "--task-cpu-seconds: missing; pass the CPU seconds of one task, or --profile FILE.json"
        )
    try:
        plan = plan_lambda(
            args.tasks,
            cpu,
            _first(args.task_wait_seconds, prof.get("wait_seconds_per_item"), 0.0),
            payload_in_bytes=_bytes(args.payload_in_bytes, prof.get("payload_bytes_in")),
            payload_out_bytes=_bytes(args.payload_out_bytes, prof.get("payload_bytes_out")),
            arch=args.arch,
            memories_mb=_first(_ints(args.memory, "--memory"), DEFAULT_MEMORIES_MB),
            lambdas=_ints(args.lambdas, "--lambdas"),
            processes=_ints(args.processes, "--processes"),
            concurrency=args.concurrency,
            init_seconds=args.init_seconds,
            within=args.within,
            deadline_seconds=args.deadline,
            budget_usd=args.budget,
        )
    except UsageError as exc:
        name, _, rest = str(exc).partition(":")
        raise UsageError(f"{_FLAGS.get(name, name)}:{rest}") from None
    chart = _draw(plan, args.chart) if args.chart else None
    if args.json:
        print(json.dumps({**plan.to_dict(), "chart": chart}, indent=2))
    else:
        render(plan, _console(), show_all=args.all)
        if chart:
            print(f"chart: {chart}")
    return EXIT_OK if plan.recommended is not None else EXIT_FAILED


def read_profile(path: str) -> dict[str, float]:
    """The PROFILE_KEYS found in a JSON profile file; UsageError (naming --profile) if unusable."""
    fix = f"write a JSON object with {', '.join(PROFILE_KEYS)} (the first is required)"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--profile: cannot read {path} ({exc.strerror}); {fix}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"--profile: {path} is not JSON ({exc}); {fix}") from None
    if not isinstance(data, dict) or "cpu_seconds_per_item" not in data:
        raise UsageError(f"--profile: {path} has no 'cpu_seconds_per_item'; {fix}")
    found = {k: data[k] for k in PROFILE_KEYS if k in data}
    for key, value in found.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"--profile: {path}: {key} is {value!r}, not a number; {fix}")
    return {k: float(v) for k, v in found.items()}


def render(plan: LambdaPlan, console: Console, *, show_all: bool = False) -> None:
    """The layouts as a rich table (frontier and highlights, or all), then the recommendation."""
    from rich.table import Table

    from gearshift.serverless import family

    rows = plan.layouts if show_all else highlights(plan)
    wait = f" + {plan.task_wait_seconds:g} s wait" if plan.task_wait_seconds else ""
    table = Table(
        title=f"{plan.tasks:,} tasks x {plan.task_cpu_seconds:g} s CPU{wait} on AWS Lambda "
        f"({plan.arch}, concurrency {plan.concurrency:,}, cold start {plan.init_seconds:g} s)"
    )
    for name in ("", "shape", "Lambdas", "procs", "MB", "CPU", "tasks/λ", "waves"):
        table.add_column(name, justify="left" if name in ("", "shape") else "right")
    for name in ("makespan", "cost", "limits broken"):
        table.add_column(name, justify="left" if name.startswith("limits") else "right")
    for x in rows:
        mark = "★" if x == plan.recommended else "◆" if x.on_frontier else ""
        table.add_row(
            mark, family(x), f"{x.lambdas:,}", str(x.processes), f"{x.memory_mb:,}",
            f"{x.cpu_share:.2f}", f"{x.tasks_per_lambda:,}", str(x.waves),
            units.seconds(x.makespan_seconds), units.usd(x.cost_usd), "; ".join(x.violations),
            style="bold" if x == plan.recommended else "dim" if not x.valid else None,
        )  # fmt: skip
    console.print(table)
    hidden = len(plan.layouts) - len(rows)
    more = f"; {hidden:,} more layouts not shown (--all shows them)" if hidden else ""
    console.print(f"◆ Pareto frontier (nothing both faster and cheaper)  ★ recommended{more}")
    console.print(("Recommended: " if plan.recommended else "") + plan.reason)
    console.print(
        "Model: task CPU seconds are as measured where you profiled; a Lambda vCPU may be"
        " faster or slower (arm64 and x86_64 differ too). Transfer time and the free tier are"
        " not counted.",
        style="dim",
    )


def highlights(plan: LambdaPlan) -> tuple[LambdaLayout, ...]:
    """The frontier, the pick and each shape's fastest layout (valid or not), fastest first."""
    from gearshift.serverless import family

    keep = {id(x) for x in plan.frontier}
    if plan.recommended is not None:
        keep.add(id(plan.recommended))
    for shape in {family(x) for x in plan.layouts}:
        same = [x for x in plan.layouts if family(x) == shape]
        keep.add(id(next((x for x in same if x.valid), same[0])))
    return tuple(x for x in plan.layouts if id(x) in keep)


def _draw(plan: LambdaPlan, path: str) -> str | None:
    if plan.recommended is None:
        print("gearshift: no chart: no layout fits Lambda's limits", file=sys.stderr)
        return None
    try:
        from gearshift.cli.charts import plot_lambda_plan

        return str(plot_lambda_plan(plan, path))
    except ImportError:
        raise UsageError("--chart: needs matplotlib; pip install 'gearshift[plot]'") from None
    except OSError as exc:
        raise UsageError(
            f"--chart: cannot write {path} ({exc.strerror}); pass a writable path"
        ) from None


def _console() -> Console:
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 140)  # a pipe or a file: do not squeeze the table
    return console


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _bytes(flag: int | None, measured: float | None) -> int:
    """The flag's bytes, else the profile's mean rounded up (as plan_lambda does), else 0."""
    if flag is not None:
        return flag
    return math.ceil(measured) if measured is not None else 0  # < 0: plan_lambda says so


def _ints(text: str | None, flag: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"{flag}: got {text!r}; pass whole numbers separated by commas") from None
