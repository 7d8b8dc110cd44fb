"""What this machine gives a process: the CPUs it may use, the GIL's state, what load takes, and
how much memory it holds (and whether the kernel's OOM killer ended one).

Cores: `os.cpu_count()` reports the machine's CPUs, but a container limited to 1.5 CPUs by its
cgroup, or a process pinned to two cores by `taskset`, gains nothing from a worker per machine CPU.

Load: two kinds of lost time look like waiting but are load (Linux; 0 elsewhere): a runnable thread
queued while other processes hold the CPUs (the thread's schedstat), and, in a virtual machine,
time the hypervisor gave this machine's CPUs to other guests ("steal" in /proc/stat), which
stretches a running thread's wall time without adding to its CPU time.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
MAX_STEAL = 0.9  # of a CPU's time; beyond it the estimate would divide by almost nothing
# Steal is averaged over at least this long: /proc/stat counts it in ticks (10 ms of a CPU at
# USER_HZ 100), and one tick landing in a 1 ms window read as 90% steal, which made 1.5 M tiny
# items look like 0% CPU (waiting-bound).
STEAL_WINDOW = 0.1


def available_cores() -> int:
    """CPUs this process may use: the affinity mask, lowered to a cgroup CPU quota if one is set.

    A fractional quota rounds up (1.5 CPUs -> 2): the second worker still gets half a CPU.
    """
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:  # macOS, Windows
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_limit(CGROUP_ROOT, cgroup_paths())
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def gil_enabled() -> bool:
    """True unless this is a free-threaded interpreter running with the GIL off (PEP 703)."""
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


def cgroup_paths(pid: int | str = "self") -> dict[str, str]:
    """A process's cgroup path per controller ("" is cgroup v2), from /proc/PID/cgroup."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
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


def oom_kill_counter(pid: int | str = "self", root: Path = CGROUP_ROOT) -> Path | None:
    """The file that counts the kernel's OOM kills in a process's memory cgroup, or None: cgroup
    v2 `memory.events` or v1 `memory.oom_control`, each with a line "oom_kill N" (Linux >= 4.13).

    The kernel counts a kill before it sends the SIGKILL, so a count grown across a death is
    the OOM killer's. A container may see its own cgroup as the root: the deepest existing file
    of the cgroup and its ancestors is taken.
    """
    paths = cgroup_paths(pid)
    if not paths:
        return None
    files = [d / "memory.events" for d in _ancestors(root, paths.get("", "/"))]
    files += [
        d / "memory.oom_control" for d in _ancestors(root / "memory", paths.get("memory", "/"))
    ]
    return next((file for file in files if oom_kills(file) is not None), None)


def oom_kills(counter: Path) -> int | None:
    """The OOM kills an `oom_kill_counter` file has counted; None if it cannot be read."""
    try:
        lines = counter.read_text().splitlines()
    except OSError:
        return None
    counts = [line.split()[1] for line in lines if line.startswith("oom_kill ")]
    return int(counts[0]) if counts and counts[0].isdigit() else None


def resident_bytes() -> int | None:
    """This process's resident memory in bytes: now (/proc/self/statm, Linux) or its peak so far
    (getrusage elsewhere: it never falls); None where neither exists. `Mark` reads it; the
    process worker has its own reader (`rss_reader`), as it cannot import gearshift."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, else KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit


def runqueue_seconds(native_id: int | None = None) -> float:
    """Seconds a thread (default: this one) has waited, runnable, for a CPU others held (Linux).

    0.0 elsewhere, and for a thread that has ended.
    """
    tid = threading.get_native_id() if native_id is None else native_id
    try:
        with open(f"/proc/self/task/{tid}/schedstat", "rb") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


def steal_seconds() -> float:
    """Seconds per CPU the hypervisor gave this machine's CPUs to others (Linux); else 0.0."""
    try:
        with open("/proc/stat", "rb") as stat:
            fields = stat.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK") / (os.cpu_count() or 1)
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


class Mark:
    """A moment of the calling thread: wall clock, its run-queue waits, the machine's steal,
    the process's resident memory."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.runqueue = runqueue_seconds()
        self.steal = steal_seconds()
        self.rss = resident_bytes()

    def rss_growth(self) -> int | None:
        """Bytes the process's resident memory grew since the mark; None where it is unknown."""
        now = resident_bytes()
        return None if now is None or self.rss is None else now - self.rss

    def queued(self) -> float:
        """Seconds since the mark this thread sat runnable while others held the CPUs."""
        return max(0.0, runqueue_seconds() - self.runqueue)

    def stolen(self, busy: float) -> float:
        """Seconds since the mark that `busy` CPU seconds of this thread lost to steal."""
        elapsed = time.perf_counter() - self.wall
        return lost_to_steal(busy, elapsed, steal_seconds() - self.steal)


def lost_to_steal(busy: float, elapsed: float, steal: float) -> float:
    """Seconds that `busy` CPU seconds lost to `steal` seconds per CPU within `elapsed` seconds.

    A running thread loses the share f of steal on its CPU: its CPU time covers 1 - f of the
    wall time it ran, so it lost busy x f / (1 - f); never more than its time off CPU. The share
    is averaged over at least STEAL_WINDOW.
    """
    share = steal / max(elapsed, STEAL_WINDOW)
    share = min(MAX_STEAL, max(0.0, share))
    return min(busy * share / (1.0 - share), max(0.0, elapsed - busy))
