"""Shared fixtures: one behaviour suite runs on every strategy (anyio's habit)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# A shell that starts a job in the background (`make test &` without job control) ignores
# SIGINT in it, and every child inherits that: the Ctrl-C tests would then send signals
# nobody hears. A handler here makes children start with the default action, as from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Lithops' localhost backend keeps every call's files under /tmp/lithops-$USER: one directory for
# every test run on the machine, where one run's cleanup deleted the files of another's calls (a
# call whose files vanish never ends: its test hung for 60 s). USER names that directory and
# nothing else the suite runs reads it, so each run gets its own (tests/test_lithops.py removes it).
os.environ["USER"] = f"gearshift-tests-{os.getpid()}"

# Every strategy the shared behaviour suite (tests/test_api.py) runs on. A strategy whose
# extra is installed by `make test` belongs here, so CI runs its tests for real.
STRATEGIES = ["serial", "threads", "processes", "asyncio", "dask"]


@pytest.fixture(scope="session")
def dask_client() -> Iterator[Any]:
    """A client of one cluster of 2 worker processes shared by the whole session (a cluster
    takes seconds to start), run by tests/daskcluster.py in a process of its own. Tests that
    kill a worker wait for its replacement."""
    pytest.importorskip("distributed")
    from distributed import Client

    script = Path(__file__).with_name("daskcluster.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        address = proc.stdout.readline().strip()
        if not address:
            pytest.fail("tests/daskcluster.py did not start a cluster")
        with Client(address) as client:
            client.wait_for_workers(2, timeout=60)
            yield client
    finally:
        proc.stdin.close()
        proc.stdout.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(params=STRATEGIES)
def strategy(request: pytest.FixtureRequest) -> Any:
    """A strategy: its name, or for dask a `Dask(client=...)` on the session's cluster (the
    test id stays the name); tests using it run once per strategy."""
    name = str(request.param)
    if name == "dask":
        import gearshift

        return gearshift.Dask(client=request.getfixturevalue("dask_client"))
    return name
