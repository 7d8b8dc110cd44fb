"""Whether the kernel's out-of-memory killer ended a worker, where the kernel tells.

The OOM killer ends a process with SIGKILL, which alone looks like any other kill. But the kernel
counts each OOM kill in the victim's memory cgroup (v2 `memory.events`, v1 `memory.oom_control`:
"oom_kill N") before it sends the signal. So a worker that died of SIGKILL while its cgroup's count
grew past the kills already explained was, in all likelihood, the OOM killer's: each grown count
explains one death. Without such a file (macOS, no cgroups) a death stays just "SIGKILL". An OOM
kill of another process in the same cgroup at the same moment could be taken for the worker's.
"""

from __future__ import annotations

import signal
from pathlib import Path

from gearshift.machine import oom_kill_counter, oom_kills

OOM_KILLED = (
    ": killed by the kernel's out-of-memory killer (its memory cgroup counted the kill), as the "
    "machine or container had too little memory left: run fewer workers or give them more "
    "memory; max_memory_per_child recycles workers whose memory grows"
)


class OomLedger:
    """The OOM kills counted in each worker's cgroup, and how many of them deaths explained."""

    def __init__(self) -> None:
        self.known: dict[Path, int] = {}  # counter file -> kills counted at start, or explained

    def watch(self, pid: int) -> Path | None:
        """The counter of a worker that has just started (None: the kernel will not tell)."""
        counter = oom_kill_counter(pid)
        if counter is not None and counter not in self.known:
            count = oom_kills(counter)
            if count is None:
                return None
            self.known[counter] = count
        return counter

    def blame(self, counter: Path | None, exitcode: int | None) -> str:
        """OOM_KILLED if the worker that ended with `exitcode` was the OOM killer's, else ""."""
        if counter is None or exitcode != -signal.SIGKILL:
            return ""
        count = oom_kills(counter)
        if count is None or count <= self.known[counter]:
            return ""
        self.known[counter] += 1
        return OOM_KILLED
