"""plan_lambda(): what one AWS Lambda with k processes vs many Lambdas costs, and how long it takes.

A pure model (no cloud calls, no heavy imports). For every layout — m Lambdas x k processes at
M MB — it computes the makespan, the bill and the limits the layout breaks, then the Pareto frontier
of (makespan, cost) and a recommendation with its reason. How one layout is computed:

    CPU share   s = min(visible vCPUs at M, M / 1,769 MB)
    a task      cpu / min(1, s / j) + wait       j = processes busy at that moment (<= k)
    a Lambda    init + its tasks in rounds of k (the last round may hold fewer)
    the job     ramp + init + waves x busiest Lambda, waves = ceil(m / concurrency)
    the bill    per invocation: init and handler each rounded up to 1 ms, x M/1,024 GB x price
                per GB-s, + m requests x request price; the free tier is ignored
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gearshift.errors import UsageError
from gearshift.serverless._layout import (
    DEFAULT_CONCURRENCY,
    DEFAULT_INIT_SECONDS,
    DEFAULT_MEMORIES_MB,
    MAX_INVOCATION_SECONDS,
    MAX_SYNC_PAYLOAD_BYTES,
    MEMORY_MAX_MB,
    MEMORY_MIN_MB,
    PROCESS_BASELINE_MB,
    SCALING_PERIOD_SECONDS,
    SCALING_STEP,
    Arch,
    LambdaLayout,
    LambdaPlan,
    LambdaPrices,
    TaskProfile,
    ceil_ms,
    cpu_share,
    lambda_seconds,
    visible_vcpus,
)
from gearshift.serverless._pick import mark_frontier, recommend


def plan_lambda(
    tasks: int,
    task_cpu_seconds: float | None = None,
    task_wait_seconds: float | None = None,
    *,
    profile: TaskProfile | None = None,
    payload_in_bytes: int | None = None,
    payload_out_bytes: int | None = None,
    arch: Arch = "x86_64",
    memories_mb: Sequence[int] = DEFAULT_MEMORIES_MB,
    lambdas: Sequence[int] | None = None,
    processes: Sequence[int] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    init_seconds: float = DEFAULT_INIT_SECONDS,
    prices: LambdaPrices | None = None,
    within: float = 0.10,
    deadline_seconds: float | None = None,
    budget_usd: float | None = None,
) -> LambdaPlan:
    """Model `tasks` tasks of `task_cpu_seconds` CPU + `task_wait_seconds` waiting, on Lambda.

    Per-task seconds come from the arguments, else from `profile`. `payload_*_bytes` are per task
    (default: the profile's `payload_bytes_in` / `payload_bytes_out` when it has them, else 0).
    `lambdas` / `processes` replace the default grid (Lambdas: 1, 2, 5, 10, ... up to `tasks`;
    processes: 1..visible vCPUs, plus 8..64 when tasks wait). The pick is the cheapest valid layout
    within `within` (10%) of the fastest makespan; with `deadline_seconds` the cheapest that meets
    it; with `budget_usd` the fastest that fits it; with both, the cheapest that meets both.
    """
    cpu = _seconds(task_cpu_seconds, profile, "cpu")
    wait = _seconds(task_wait_seconds, profile, "wait")
    pay_in = _payload(payload_in_bytes, profile, "in")
    pay_out = _payload(payload_out_bytes, profile, "out")
    job = _Job(tasks, cpu, wait, pay_in, pay_out, arch, concurrency,
               init_seconds, prices or LambdaPrices())  # fmt: skip
    _check(job, memories_mb, lambdas, processes, within, deadline_seconds, budget_usd)
    layouts, frontier = mark_frontier(
        [_evaluate(job, m, k, mem) for m, k, mem in _grid(job, memories_mb, lambdas, processes)]
    )
    pick, reason = recommend(layouts, within, deadline_seconds, budget_usd)
    return LambdaPlan(
        tasks, cpu, wait, arch, concurrency, job.init, job.prices,
        tuple(layouts), tuple(frontier), pick, reason,
    )  # fmt: skip


@dataclass(frozen=True)
class _Job:
    tasks: int
    cpu: float
    wait: float
    payload_in: int
    payload_out: int
    arch: Arch
    concurrency: int
    init: float
    prices: LambdaPrices


def _evaluate(job: _Job, m: int, k: int, mem: int) -> LambdaLayout:
    share = cpu_share(mem)
    q, big = divmod(job.tasks, m)  # `big` Lambdas run q + 1 tasks, the other m - big run q
    most = q + (big > 0)
    busiest = lambda_seconds(most, k, share, job.cpu, job.wait)
    others = lambda_seconds(q, k, share, job.cpu, job.wait) if q else 0.0
    slots = min(m, job.concurrency)  # environments created; later waves reuse them warm
    waves = -(-m // slots)
    ramp = (slots - 1) // SCALING_STEP * SCALING_PERIOD_SECONDS
    billed_ms = big * ceil_ms(busiest) + (m - big) * ceil_ms(others) + slots * ceil_ms(job.init)
    gb_seconds = billed_ms / 1000 * mem / 1024
    cost = gb_seconds * job.prices.gb_second(job.arch) + m * job.prices.request
    broken = []
    if busiest > MAX_INVOCATION_SECONDS:
        broken.append(f"timeout: {busiest:,.1f} s > {MAX_INVOCATION_SECONDS:.0f} s per invocation")
    for way, size in (("in", job.payload_in), ("out", job.payload_out)):
        if most * size > MAX_SYNC_PAYLOAD_BYTES:
            broken.append(
                f"payload {way}: {most:,} tasks x {size:,} B > {MAX_SYNC_PAYLOAD_BYTES:,} B"
            )
    if k * PROCESS_BASELINE_MB > mem:
        broken.append(f"memory: {k} processes x ~{PROCESS_BASELINE_MB} MB > {mem:,} MB")
    return LambdaLayout(
        m, k, mem, share, most, busiest, waves, ramp + job.init + waves * busiest,
        gb_seconds, cost, tuple(broken),
    )  # fmt: skip


def _grid(
    job: _Job,
    memories: Sequence[int],
    lambdas: Sequence[int] | None,
    processes: Sequence[int] | None,
) -> list[tuple[int, int, int]]:
    """(lambdas, processes, memory) triples; the default grid skips idle processes."""
    ladder = {n * 10**e for e in range(len(str(job.tasks))) for n in (1, 2, 5)}
    ms = sorted(lambdas or {n for n in (*ladder, job.tasks, job.concurrency) if n <= job.tasks})
    out = []
    for mem in sorted(set(memories)):
        ks = processes or [*range(1, visible_vcpus(mem) + 1)] + [
            k for k in (8, 16, 32, 64) if job.wait and k * PROCESS_BASELINE_MB <= mem
        ]
        for m in ms:
            most = -(-job.tasks // m)
            out += [(m, k, mem) for k in sorted(set(ks)) if processes or k <= most]
    return out


def _seconds(given: float | None, profile: TaskProfile | None, what: str) -> float:
    if given is not None:
        return given
    if profile is not None:
        try:
            return float(getattr(profile, f"{what}_seconds_per_item"))
        except (AttributeError, TypeError, ValueError):
            raise UsageError(
                f"profile: needs a number {what}_seconds_per_item; got {profile!r}"
            ) from None
    if what == "wait":
        return 0.0
    raise UsageError("task_cpu_seconds: missing; pass task_cpu_seconds=SECONDS or profile=PROFILE")


def _payload(given: int | None, profile: TaskProfile | None, way: str) -> int:
    """Bytes per task: as given, else the profile's measured mean rounded up, else 0."""
    if given is not None:
        return given
    got = getattr(profile, f"payload_bytes_{way}", None)
    if isinstance(got, (int, float)) and not isinstance(got, bool) and 0 <= got < math.inf:
        return math.ceil(got)
    return 0


def _check(
    job: _Job,
    memories: Sequence[int],
    lambdas: Sequence[int] | None,
    processes: Sequence[int] | None,
    within: float,
    deadline: float | None,
    budget: float | None,
) -> None:
    def need(ok: bool, arg: str, fix: str) -> None:
        if not ok:
            raise UsageError(f"{arg}: {fix}")

    def count(x: object, low: int = 0, high: float = math.inf) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and low <= x <= high

    def amount(x: object) -> bool:
        return isinstance(x, (int, float)) and math.isfinite(x) and x >= 0

    need(count(job.tasks, 1), "tasks", f"got {job.tasks!r}; pass a whole number >= 1")
    for arg, x in (("task_cpu_seconds", job.cpu), ("task_wait_seconds", job.wait)):
        need(amount(x), arg, f"got {x!r}; pass seconds per task, a finite number >= 0")
    need(job.cpu + job.wait > 0, "task_cpu_seconds", "a task must take some time; pass > 0")
    need(job.arch in ("x86_64", "arm64"), "arch", f"got {job.arch!r}; pass 'x86_64' or 'arm64'")
    need(
        bool(memories) and all(count(m, MEMORY_MIN_MB, MEMORY_MAX_MB) for m in memories),
        "memories_mb",
        f"got {memories!r}; pass whole MB from {MEMORY_MIN_MB} to {MEMORY_MAX_MB:,}",
    )
    need(count(job.concurrency, 1), "concurrency", "pass your account's limit, >= 1 (default 1000)")
    for arg, y in (("payload_in_bytes", job.payload_in), ("payload_out_bytes", job.payload_out)):
        need(count(y), arg, f"got {y!r}; pass bytes per task, a whole number >= 0")
    need(amount(job.init), "init_seconds", f"got {job.init!r}; pass cold-start seconds >= 0")
    need(amount(within), "within", f"got {within!r}; pass a fraction >= 0, e.g. 0.1 for 10%")
    for arg, ns, top, span in (
        ("lambdas", lambdas, job.tasks, f"from 1 to tasks ({job.tasks:,})"),
        ("processes", processes, math.inf, ">= 1"),
    ):
        ok = ns is None or (bool(ns) and all(count(n, 1, top) for n in ns))
        need(ok, arg, f"got {ns!r}; pass whole numbers {span}, or None")
    for arg, z in (("deadline_seconds", deadline), ("budget_usd", budget)):
        need(z is None or (amount(z) and z > 0), arg, f"got {z!r}; pass a number > 0 or None")
