"""Run a command as inside AWS Lambda: in a private mount namespace where /dev/shm does not exist.

Lambda gives functions no /dev/shm, so POSIX semaphores — and with them `multiprocessing.Pool`,
`Queue` and `ProcessPoolExecutor` — fail there. `unshare --mount` (root only) makes a namespace
whose /dev is a fresh tmpfs holding only null, zero, random and urandom, bound from the real /dev.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

HIDE_SHM = (
    "set -e; d=$(mktemp -d); mount --rbind /dev $d; mount -t tmpfs tmpfs /dev; "
    "for n in null zero urandom random; do touch /dev/$n; mount --bind $d/$n /dev/$n; done; "
    'exec "$@"'
)


def run_without_dev_shm(
    command: list[str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `command` with no /dev/shm; skips the calling test where that is not permitted."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare to make a mount namespace without /dev/shm")
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare --mount is not permitted here: {probe.stderr.decode().strip()}")
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", HIDE_SHM, "sh", *command],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
