"""The terms of the Lambda model: AWS's limits and prices, a task's profile, a layout, a plan.

Every constant names its source; `_model` computes layouts from them, `_pick` chooses one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

Arch = Literal["x86_64", "arm64"]

# Constants. Sources read 2026-11-25 from stored copies of the pages (no live internet here).
# AWS Lambda developer guide, "Configure Lambda function memory": 128..10,240 MB in 1 MB steps; "at
# 1,769 MB, a function has the equivalent of one vCPU (one vCPU-second of credits per second)".
MEMORY_MIN_MB, MEMORY_MAX_MB, MB_PER_VCPU = 128, 10_240, 1_769
# Visible vCPUs (what os.cpu_count() reports) by memory: measured by github.com/rwnx/lambda-cpuinfo
# (2 up to 3,008 MB, then 3/4/5/6). The credits (M / 1,769) are the binding limit at every size; the
# commonly quoted ladder "1 vCPU per 1,769 MB" gives the same share. Entries: (up to MB, vCPUs).
VCPU_STEPS: tuple[tuple[int, int], ...] = (
    (3_008, 2),
    (5_307, 3),
    (7_076, 4),
    (8_845, 5),
    (10_240, 6),
)
# Lambda quotas page and Invoke API reference: 900 s (15 min) per invocation; 6 MB synchronous
# request and response payload (taken here as 6 MiB = 6,291,456 bytes); 1,000 concurrent
# executions per account and Region by default.
MAX_INVOCATION_SECONDS = 900.0
MAX_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024
DEFAULT_CONCURRENCY = 1_000
# Lambda developer guide, "Lambda scaling behavior": per function, 1,000 new execution environments
# every 10 seconds.
SCALING_STEP, SCALING_PERIOD_SECONDS = 1_000, 10.0
# AWS blog "AWS Lambda standardizes billing for INIT phase": INIT billed for every function from
# 2025-08-01. 0.25 s is an assumed cold start of a small Python package, not a measurement.
DEFAULT_INIT_SECONDS = 0.25
# An estimate (ours) of one Python worker process's resident memory: k processes need k x this.
PROCESS_BASELINE_MB = 64
DEFAULT_MEMORIES_MB: tuple[int, ...] = (
    *(128, 256, 512, 1024, 1769, 2048, 3008),
    *(3538, 5307, 7076, 8845, 10240),
)


@dataclass(frozen=True)
class LambdaPrices:
    """Prices in USD. Defaults: aws.amazon.com/lambda/pricing, us-east-1, first volume tier.

    Figures as published since 2020 (arm64 since 2021), recalled and checked on 2026-11-25 against
    third-party copies of the page (cloudchipr.com 2024, a 2026 Lambda cost note): not read live.
    """

    x86_64_gb_second: float = 0.0000166667
    arm64_gb_second: float = 0.0000133334
    request: float = 0.20 / 1_000_000

    def gb_second(self, arch: Arch) -> float:
        return self.arm64_gb_second if arch == "arm64" else self.x86_64_gb_second


class TaskProfile(Protocol):
    """What plan_lambda needs from a measured profile (gearshift.profile() gives one).

    `payload_bytes_in` / `payload_bytes_out`, when the object has them, supply the payloads too.
    """

    @property
    def cpu_seconds_per_item(self) -> float: ...

    @property
    def wait_seconds_per_item(self) -> float: ...


@dataclass(frozen=True)
class LambdaLayout:
    """One way to run the job: `lambdas` invocations of `processes` workers at `memory_mb` each."""

    lambdas: int
    processes: int
    memory_mb: int
    cpu_share: float  # vCPUs' worth of credits
    tasks_per_lambda: int  # the busiest Lambda's
    lambda_seconds: float  # the busiest Lambda's handler time, init excluded
    waves: int
    makespan_seconds: float
    gb_seconds: float  # billed
    cost_usd: float
    violations: tuple[str, ...] = ()
    on_frontier: bool = False

    @property
    def valid(self) -> bool:
        return not self.violations

    @property
    def label(self) -> str:
        p = "process" if self.processes == 1 else "processes"
        return f"{self.lambdas:,} x {self.processes} {p} at {self.memory_mb:,} MB"


@dataclass(frozen=True)
class LambdaPlan:
    """Every layout (fastest first), the Pareto frontier of (makespan, cost), and the pick."""

    tasks: int
    task_cpu_seconds: float
    task_wait_seconds: float
    arch: Arch
    concurrency: int
    init_seconds: float
    prices: LambdaPrices
    layouts: tuple[LambdaLayout, ...]
    frontier: tuple[LambdaLayout, ...]
    recommended: LambdaLayout | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready values (tuples become lists when dumped)."""
        return asdict(self)


def visible_vcpus(memory_mb: int) -> int:
    """vCPUs a Lambda of `memory_mb` sees (VCPU_STEPS)."""
    return next(v for top, v in VCPU_STEPS if memory_mb <= top)


def cpu_share(memory_mb: int) -> float:
    """vCPUs' worth of CPU time per second a Lambda of `memory_mb` may use."""
    return min(visible_vcpus(memory_mb), memory_mb / MB_PER_VCPU)


def ceil_ms(seconds: float) -> int:
    """Milliseconds billed for `seconds` (rounded up; float noise below 1 ns ignored)."""
    return math.ceil(round(seconds * 1000, 6))


def lambda_seconds(tasks: int, processes: int, share: float, cpu: float, wait: float) -> float:
    """Handler time of one Lambda running `tasks` on `processes` workers in rounds."""
    full, rest = divmod(tasks, processes)

    def round_seconds(busy: int) -> float:
        return (cpu / min(1.0, share / busy) if cpu else 0.0) + wait

    return full * round_seconds(processes) + (round_seconds(rest) if rest else 0.0)
