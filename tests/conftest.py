"""Shared fixtures: one behaviour suite runs on every strategy (anyio's habit)."""

from __future__ import annotations

import pytest

# Every strategy the shared behaviour suite (tests/test_api.py) runs on. A strategy whose
# extra is installed by `make test` belongs here, so CI runs its tests for real.
STRATEGIES = ["serial", "threads", "processes"]


@pytest.fixture(params=STRATEGIES)
def strategy(request: pytest.FixtureRequest) -> str:
    """The name of a strategy; tests using it run once per strategy."""
    return str(request.param)
