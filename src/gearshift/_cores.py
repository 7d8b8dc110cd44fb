"""How much CPU this process may really use: affinity mask, cgroup quota, and the GIL's state.

`os.cpu_count()` reports the machine's CPUs, but a container limited to 1.5 CPUs by its cgroup, or a
process pinned to two cores by `taskset`, gains nothing from a worker per machine CPU.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def available_cores() -> int:
    """CPUs this process may use: the affinity mask, lowered to a cgroup CPU quota if one is set.

    A fractional quota rounds up (1.5 CPUs -> 2): the second worker still gets half a CPU.
    """
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:  # macOS, Windows
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_limit(CGROUP_ROOT, _own_cgroups())
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def gil_enabled() -> bool:
    """True unless this is a free-threaded interpreter running with the GIL off (PEP 703)."""
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup path per controller ("" is cgroup v2), from /proc/self/cgroup."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return {}
    paths: dict[str, str] = {}
    for line in lines:
        _, controllers, path = [*line.split(":", 2), "", ""][:3]
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def cgroup_cpu_limit(root: Path, own: dict[str, str]) -> float | None:
    """The tightest CPU quota (in CPUs) of this cgroup and its ancestors, v2 or v1; None if none.

    `root` is where cgroups are mounted; `own` maps a controller to this process's cgroup path.
    Inside a container the path is usually "/", so the files at `root` itself apply.
    """
    limits: list[float] = []
    v2_path = own.get("", "/")
    for directory in _ancestors(root, v2_path):
        limits += _v2_limit(directory / "cpu.max")
    v1_path = own.get("cpu", "/")
    for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        for directory in _ancestors(root / mount, v1_path):
            limits += _v1_limit(directory)
    return min(limits) if limits else None


def _ancestors(mount: Path, path: str) -> list[Path]:
    """`mount/a/b`, `mount/a`, `mount`: a quota on any ancestor limits this cgroup too."""
    parts = [p for p in path.split("/") if p and p != ".."]
    return [mount.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


def _v2_limit(cpu_max: Path) -> list[float]:
    """cgroup v2 `cpu.max` holds "QUOTA PERIOD" in microseconds, or "max PERIOD" for no limit."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return []
    if quota == "max" or float(period) <= 0:
        return []
    return [float(quota) / float(period)]


def _v1_limit(directory: Path) -> list[float]:
    """cgroup v1 keeps the quota and period apart; a quota of -1 means no limit."""
    try:
        quota = float((directory / "cpu.cfs_quota_us").read_text())
        period = float((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return []
    if quota <= 0 or period <= 0:
        return []
    return [quota / period]
