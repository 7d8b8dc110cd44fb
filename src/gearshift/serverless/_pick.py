"""Which Lambda layout to pick: the Pareto frontier of (makespan, cost) and a recommendation.

The frontier holds every valid layout that no other valid layout beats on both time and cost
(exact ties keep the first in the order makespan, cost, lambdas, processes, memory). Without a
deadline or budget the pick is the cheapest layout within `within` of the fastest makespan: the
fastest layout is usually many tiny Lambdas, and a few percent of time often buys a lower bill.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

from gearshift import units

if TYPE_CHECKING:
    from gearshift.serverless._layout import LambdaLayout


def _key(x: LambdaLayout, cost_first: bool = False) -> tuple[float, ...]:
    time, cost = round(x.makespan_seconds, 6), round(x.cost_usd, 12)
    ties = (x.lambdas, x.processes, x.memory_mb)
    return (cost, time, *ties) if cost_first else (time, cost, *ties)


def mark_frontier(layouts: list[LambdaLayout]) -> tuple[list[LambdaLayout], list[LambdaLayout]]:
    """Sort fastest first; a valid layout is on the frontier if cheaper than every faster one."""
    out, frontier, best = [], [], math.inf
    for x in sorted(layouts, key=_key):
        if x.valid and round(x.cost_usd, 12) < best:
            best = round(x.cost_usd, 12)
            x = replace(x, on_frontier=True)
            frontier.append(x)
        out.append(x)
    return out, frontier


def recommend(
    layouts: list[LambdaLayout], within: float, deadline: float | None, budget: float | None
) -> tuple[LambdaLayout | None, str]:
    """The layout to use and one sentence saying why (None when every layout breaks a limit)."""
    valid = [x for x in layouts if x.valid]
    if not valid:
        first = min(layouts, key=lambda x: (len(x.violations), _key(x)))
        return None, (
            f"No layout fits Lambda's limits (the closest, {first.label}, breaks "
            f"{'; '.join(first.violations)}): split the work into smaller tasks."
        )
    fastest, cheapest = valid[0], min(valid, key=lambda x: _key(x, True))
    if deadline is None and budget is None:
        limit = fastest.makespan_seconds * (1 + within)
        fits, cost_first = [x for x in valid if x.makespan_seconds <= limit], True
        why = (
            f"the cheapest layout within {within:.0%} of the fastest makespan"
            f" ({units.seconds(fastest.makespan_seconds)})"
        )
    else:
        wanted = " and ".join(
            ([f"finishes within {units.seconds(deadline)}"] if deadline is not None else [])
            + ([f"costs at most {units.usd(budget)}"] if budget is not None else [])
        )
        fits = [
            x for x in valid
            if (deadline is None or x.makespan_seconds <= deadline)
            and (budget is None or x.cost_usd <= budget)
        ]  # fmt: skip
        cost_first = deadline is not None
        why = f"the {'cheapest' if cost_first else 'fastest'} layout that {wanted}"
        if not fits:  # fall back to what comes closest: the fastest (deadline) or the cheapest
            pick, closest = (fastest, "fastest") if cost_first else (cheapest, "cheapest")
            return pick, f"No layout {wanted}; the {closest} is {_describe(pick)}."
    pick = min(fits, key=lambda x: _key(x, cost_first))
    reason = f"{_describe(pick)}: {why}"
    if round(cheapest.cost_usd, 12) < round(pick.cost_usd, 12):
        reason += f"; the cheapest, {_describe(cheapest)}, is slower"
    if pick.waves > 1:
        reason += f"; it runs in {pick.waves} waves: raise the account concurrency to go faster"
    return pick, reason + "."


def _describe(x: LambdaLayout) -> str:
    return f"{x.label} ({units.seconds(x.makespan_seconds)}, {units.usd(x.cost_usd)})"


def family(x: LambdaLayout) -> str:
    """Which of the source's three shapes the layout has."""
    if x.lambdas == 1:
        return "1 Lambda x k processes"
    return "n Lambdas x 1 process" if x.processes == 1 else "m Lambdas x k processes"
