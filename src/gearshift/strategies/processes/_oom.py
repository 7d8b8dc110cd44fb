"""Whether the kernel's out-of-memory killer ended a worker, where the kernel tells.

The OOM killer ends a process with SIGKILL, which alone looks like any other kill. But the kernel
counts each OOM kill in the victim's memory cgroup (v2 `memory.events`, v1 `memory.oom_control`:
"oom_kill N") before it sends the signal. So a worker that died of SIGKILL while its cgroup's count
grew past the kills already explained was, in all likelihood, the OOM killer's: each grown count
explains one death. Without such a file (macOS, no cgroups) a death stays just "SIGKILL". An OOM
kill of another process in the same cgroup at the same moment could be taken for the worker's.
The counter is looked up once per pool, from its first worker: the others are its siblings,
started by the same parent (the pool or its fork server), so they share its cgroup.
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
    """The OOM kills counted in the workers' memory cgroup, and how many deaths they explained."""

    def __init__(self) -> None:
        self.counter: Path | None = None  # None: the kernel will not tell
        self.known = 0  # kills counted when the first worker started, plus those explained
        self.looked = False

    def watch(self, pid: int) -> None:
        """A worker has started: the first one's cgroup gives the counter, and the count now."""
        if self.looked:
            return
        self.looked = True
        self.counter = oom_kill_counter(pid)
        count = None if self.counter is None else oom_kills(self.counter)
        self.counter, self.known = (None, 0) if count is None else (self.counter, count)

    def blame(self, exitcode: int | None) -> str:
        """OOM_KILLED if a worker that ended with `exitcode` was the OOM killer's, else ""."""
        if self.counter is None or exitcode != -signal.SIGKILL:
            return ""
        count = oom_kills(self.counter)
        if count is None or count <= self.known:
            return ""
        self.known += 1
        return OOM_KILLED
