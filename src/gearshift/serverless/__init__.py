"""plan_lambda(): one AWS Lambda running k processes, or many Lambdas? Cost and time, modelled.

A pure model (no cloud calls): every layout of m Lambdas x k processes at M MB gets a makespan,
a bill and the limits it breaks; the Pareto frontier of (time, cost) and a recommendation follow.
"""

from __future__ import annotations

from gearshift.serverless._layout import (
    DEFAULT_MEMORIES_MB,
    MB_PER_VCPU,
    MEMORY_MAX_MB,
    LambdaLayout,
    LambdaPlan,
    LambdaPrices,
    TaskProfile,
    cpu_share,
    visible_vcpus,
)
from gearshift.serverless._model import plan_lambda
from gearshift.serverless._pick import family

__all__ = [
    "DEFAULT_MEMORIES_MB",
    "MB_PER_VCPU",
    "MEMORY_MAX_MB",
    "LambdaLayout",
    "LambdaPlan",
    "LambdaPrices",
    "TaskProfile",
    "cpu_share",
    "family",
    "plan_lambda",
    "visible_vcpus",
]
