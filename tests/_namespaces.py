"""Run a command as inside AWS Lambda: in a private mount namespace where /dev/shm does not exist.

Lambda gives functions no /dev/shm, so POSIX semaphores — and with them `multiprocessing.Pool`,
`Queue` and `ProcessPoolExecutor` — fail there. `unshare --mount` makes a namespace whose /dev is
a fresh tmpfs holding only null, zero, random and urandom, bound from the real /dev. As root that
needs nothing more; as another user (a CI runner) `--user --map-root-user` adds a user namespace,
where the kernel allows unprivileged ones. The host's /dev/shm is never touched.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

import pytest

HIDE_SHM = (
    "set -e; d=$(mktemp -d); mount --rbind /dev $d; mount -t tmpfs tmpfs /dev; "
    "for n in null zero urandom random; do touch /dev/$n; mount --bind $d/$n /dev/$n; done; "
    'exec "$@"'
)
AS_ROOT = ["unshare", "--mount"]
AS_USER = ["unshare", "--user", "--map-root-user", "--mount"]


@functools.cache
def _unshare() -> tuple[list[str] | None, str]:
    """The unshare command that can hide /dev/shm here, or None and why not."""
    if shutil.which("unshare") is None:
        return None, "needs util-linux's unshare to make a mount namespace without /dev/shm"
    why = []
    for prefix in [AS_ROOT, AS_USER] if os.geteuid() == 0 else [AS_USER]:
        probe = subprocess.run(
            [*prefix, "sh", "-c", HIDE_SHM, "sh", "test", "!", "-e", "/dev/shm"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if probe.returncode == 0:
            return prefix, ""
        why.append(f"{' '.join(prefix)}: {probe.stderr.strip() or f'exit {probe.returncode}'}")
    return None, "cannot make a mount namespace without /dev/shm here (" + "; ".join(why) + ")"


def run_without_dev_shm(
    command: list[str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `command` with no /dev/shm; skips the calling test where that is not permitted."""
    prefix, why = _unshare()
    if prefix is None:
        pytest.skip(why)
    return subprocess.run(
        [*prefix, "sh", "-c", HIDE_SHM, "sh", *command],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
