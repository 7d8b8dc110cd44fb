"""examples/lambda_handler.py works as inside AWS Lambda: without /dev/shm, where Pool fails."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from _namespaces import run_without_dev_shm

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ITEMS = [200_000, 150_000, 100_000, 50_000, 1]

# Runs in the namespace: the standard pool first, then the handler with a fake event and context.
SCRIPT = """
import json, os, sys, multiprocessing
sys.path.insert(0, sys.argv[1])  # the task root, as /var/task is inside Lambda
assert not os.path.exists("/dev/shm")
try:
    with multiprocessing.Pool(2) as pool:
        pool.map(abs, [-1])
    print("Pool: works")
except OSError as exc:
    print("Pool: fails with", type(exc).__name__)

class Context:  # what Lambda's context object offers; the handler reads memory_limit_in_mb
    function_name = "gearshift-example"
    memory_limit_in_mb = 3538
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    def get_remaining_time_in_millis(self):
        return 900_000

import lambda_handler
print("handler:", json.dumps(lambda_handler.handler({"items": json.loads(sys.argv[2])}, Context())))
"""


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The example module, importable by name as Lambda imports it (worker processes do too)."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.delitem(sys.modules, "lambda_handler", raising=False)
    import lambda_handler

    return lambda_handler


def test_handler_runs_without_dev_shm_where_multiprocessing_pool_fails(
    tmp_path: Path, example: ModuleType
) -> None:
    script = tmp_path / "invoke.py"
    script.write_text(SCRIPT)
    result = run_without_dev_shm([sys.executable, str(script), str(EXAMPLES), json.dumps(ITEMS)])
    assert result.returncode == 0, result.stderr
    # Without /dev/shm the semaphores behind Pool cannot be made: ENOENT here, ENOSYS in Lambda.
    assert "Pool: fails with" in result.stdout
    answer = json.loads(result.stdout.split("handler:", 1)[1])
    assert answer == {
        "results": [example.work(n) for n in ITEMS],
        "processes": 2,
        "memory_mb": 3538,
    }


class Context:
    """A minimal Lambda context: only what the handler reads."""

    def __init__(self, memory_limit_in_mb: int) -> None:
        self.memory_limit_in_mb = memory_limit_in_mb


def test_handler_returns_the_results_in_order(example: ModuleType) -> None:
    answer = example.handler({"items": ITEMS}, Context(1769))
    assert answer == {
        "results": [sum(i * i for i in range(n)) for n in ITEMS],
        "processes": 1,
        "memory_mb": 1769,
    }


@pytest.mark.parametrize(
    ("memory_mb", "processes"),
    [(128, 1), (1769, 1), (2048, 1), (3008, 2), (3538, 2), (5307, 3), (8845, 5), (10240, 6)],
)
def test_processes_follow_the_cpu_share_of_the_memory(
    example: ModuleType, memory_mb: int, processes: int
) -> None:
    assert example.processes_for(memory_mb) == processes
