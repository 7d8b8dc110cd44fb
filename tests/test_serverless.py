"""plan_lambda() against arithmetic written out by hand, and `gearshift plan-lambda` end to end.

Prices used below (the defaults): x86_64 $0.0000166667 per GB-s, arm64 $0.0000133334 per GB-s,
$0.0000002 per request; a cold start of 0.25 s, billed; 1 GB = 1,024 MB; 1,769 MB = 1 vCPU.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import gearshift
from gearshift.cli import main
from gearshift.errors import UsageError
from gearshift.serverless import (
    LambdaLayout,
    LambdaPlan,
    cpu_share,
    plan_lambda,
    visible_vcpus,
)

X86, ARM, REQUEST = 0.0000166667, 0.0000133334, 0.0000002


def one(
    tasks: int, cpu: float, lambdas: int, processes: int, memory: int, **kw: object
) -> LambdaLayout:
    """The single layout `lambdas` x `processes` at `memory` MB."""
    plan = plan_lambda(
        tasks,
        cpu,
        lambdas=[lambdas],
        processes=[processes],
        memories_mb=[memory],
        **kw,  # type: ignore[arg-type]
    )
    assert len(plan.layouts) == 1
    return plan.layouts[0]


# --- the model, by hand -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "memory, visible",
    [(128, 2), (1769, 2), (3008, 2), (3009, 3), (5307, 3), (5308, 4), (7076, 4), (7077, 5),
     (8845, 5), (8846, 6), (10240, 6)],
)  # fmt: skip
def test_visible_vcpus_step_with_memory(memory: int, visible: int) -> None:
    # github.com/rwnx/lambda-cpuinfo: 2 vCPUs up to 3,008 MB, then 3 / 4 / 5 / 6 vCPUs from
    # 3,009 / 5,308 / 7,077 / 8,846 MB; the CPU time is memory / 1,769 MB, never more than those
    assert visible_vcpus(memory) == visible
    assert cpu_share(memory) == pytest.approx(min(visible, memory / 1769))
    # the default grid tries 1 .. visible processes (more only for tasks that wait)
    plan = plan_lambda(100, 1.0, lambdas=[1], memories_mb=[memory])
    assert sorted(x.processes for x in plan.layouts) == list(range(1, visible + 1))


def test_cpu_share_is_the_smaller_of_visible_vcpus_and_memory_over_1769() -> None:
    assert cpu_share(1769) == 1.0  # one vCPU's worth at 1,769 MB
    assert cpu_share(3008) == pytest.approx(3008 / 1769)  # 1.70: 2 visible, less than 2 of time
    assert cpu_share(8845) == 5.0  # = 5 x 1,769
    assert cpu_share(10240) == pytest.approx(5.78858)  # 6 visible, 5.79 vCPUs of time


def test_1000_tasks_on_one_10240_mb_lambda_with_6_processes() -> None:
    x = one(1000, 2.0, 1, 6, 10240)
    # CPU share = min(6 visible vCPUs, 10,240 / 1,769) = 5.7886 vCPUs
    assert x.cpu_share == pytest.approx(10240 / 1769)
    # 6 busy processes get 5.7886 / 6 = 0.96476 of a CPU each: a round takes
    # 2 / (10,240 / 1,769 / 6) = 2 x 6 x 1,769 / 10,240 = 21,228 / 10,240 = 2.073046875 s
    # 1,000 tasks = 166 rounds of 6 + 1 round of 4; 4 busy processes get a whole CPU: 2 s
    # handler = 166 x 2.073046875 + 2 = 344.12578125 + 2 = 346.12578125 s
    assert x.lambda_seconds == pytest.approx(346.12578125)
    # makespan = cold start 0.25 + 346.12578125 = 346.37578125 s
    assert x.makespan_seconds == pytest.approx(346.37578125)
    # billed = ceil(346,125.78125 ms) = 346,126 ms + 250 ms init = 346,376 ms
    # GB-s = 346.376 s x 10,240 / 1,024 GB = 3,463.76 GB-s
    assert x.gb_seconds == pytest.approx(3463.76)
    # cost = 3,463.76 x $0.0000166667 + 1 request x $0.0000002 = $0.0577296
    assert x.cost_usd == pytest.approx(3463.76 * X86 + 1 * REQUEST)
    assert x.cost_usd == pytest.approx(0.0577296, abs=1e-7)
    assert (x.tasks_per_lambda, x.waves, x.violations) == (1000, 1, ())


def test_1000_tasks_on_1000_lambdas_of_1769_mb() -> None:
    x = one(1000, 2.0, 1000, 1, 1769)
    # CPU share = 1,769 / 1,769 = 1 vCPU; one task each: 2 s
    assert x.cpu_share == pytest.approx(1.0)
    assert x.lambda_seconds == pytest.approx(2.0)
    # 1,000 environments: all within the first scaling step (1,000 per 10 s), no ramp
    # makespan = 0.25 + 2 = 2.25 s
    assert x.makespan_seconds == pytest.approx(2.25)
    # billed = 1,000 x (2,000 + 250) ms = 2,250 s; GB-s = 2,250 x 1,769 / 1,024 = 3,886.962890625
    assert x.gb_seconds == pytest.approx(3886.962890625)
    # cost = 3,886.962890625 x $0.0000166667 + 1,000 x $0.0000002 = $0.0647828 + $0.0002
    assert x.cost_usd == pytest.approx(3886.962890625 * X86 + 1000 * REQUEST)
    assert x.cost_usd == pytest.approx(0.0649828, abs=1e-7)


def test_1000_tasks_on_100_lambdas_of_10240_mb_with_6_processes() -> None:
    x = one(1000, 2.0, 100, 6, 10240)
    # 10 tasks per Lambda = 1 round of 6 (2.073046875 s, as above) + 1 round of 4 (2 s)
    assert x.tasks_per_lambda == 10
    assert x.lambda_seconds == pytest.approx(4.073046875)
    assert x.makespan_seconds == pytest.approx(0.25 + 4.073046875)
    # billed = 100 x (4,074 + 250) ms = 432.4 s; GB-s = 432.4 x 10 = 4,324
    assert x.gb_seconds == pytest.approx(4324.0)
    # cost = 4,324 x $0.0000166667 + 100 x $0.0000002 = $0.0720668108 + $0.00002 = $0.0720868108
    assert x.cost_usd == pytest.approx(4324 * X86 + 100 * REQUEST)
    assert x.cost_usd == pytest.approx(0.0720868108, abs=1e-10)


def test_a_lambda_past_900_seconds_violates_the_timeout() -> None:
    # 1,000 tasks x 2 s on one process of one vCPU: 2,000 s > 900 s
    x = one(1000, 2.0, 1, 1, 1769)
    assert x.lambda_seconds == pytest.approx(2000.0)
    assert not x.valid
    assert len(x.violations) == 1 and x.violations[0].startswith("timeout: 2,000.0 s > 900 s")
    # 450 tasks x 2 s = exactly 900 s: allowed
    assert one(450, 2.0, 1, 1, 1769).valid
    # and no layout that breaks a limit is on the frontier
    plan = plan_lambda(1000, 2.0)
    broken = [y for y in plan.layouts if not y.valid]
    assert broken and not any(y.on_frontier for y in broken)


def test_over_the_concurrency_limit_runs_in_waves() -> None:
    # 2,000 Lambdas, 1 s each, concurrency 1,000: 2 waves on 1,000 environments
    x = one(2000, 1.0, 2000, 1, 1769)
    assert x.waves == 2 and x.valid
    # makespan = 0.25 cold start + 2 waves x 1 s = 2.25 s
    assert x.makespan_seconds == pytest.approx(2.25)
    # billed = 2,000 x 1,000 ms + only 1,000 cold starts x 250 ms = 2,250 s x 1,769 / 1,024 GB
    assert x.gb_seconds == pytest.approx(2250 * 1769 / 1024)
    assert x.cost_usd == pytest.approx(2250 * 1769 / 1024 * X86 + 2000 * REQUEST)
    # = 3,886.962890625 GB-s x $0.0000166667 + 2,000 x $0.0000002 = $0.0647828444 + $0.0004
    assert x.cost_usd == pytest.approx(0.0651828444, abs=1e-10)
    # with the concurrency raised to 3,000: 1 wave, but Lambda adds 1,000 environments per 10 s,
    # so the 3,000th starts at 20 s: makespan = 20 + 0.25 + 1 = 21.25 s
    y = one(3000, 1.0, 3000, 1, 1769, concurrency=3000)
    assert y.waves == 1
    assert y.makespan_seconds == pytest.approx(21.25)
    # a plan that picks a layout in waves says so
    plan = plan_lambda(2000, 1.0, lambdas=[2000], memories_mb=[1769], concurrency=1000)
    assert plan.recommended is not None and "2 waves" in plan.reason


def test_uneven_division_rounds_up() -> None:
    # 7 tasks over 3 Lambdas = 3 + 2 + 2: the busiest runs 3 x 1 s
    x = one(7, 1.0, 3, 1, 1769)
    assert x.tasks_per_lambda == 3
    assert x.makespan_seconds == pytest.approx(0.25 + 3.0)
    # billed = 3,000 + 2,000 + 2,000 ms + 3 cold starts x 250 ms = 7.75 s x 1,769 / 1,024 GB
    assert x.gb_seconds == pytest.approx(7.75 * 1769 / 1024)
    # 7 tasks on 2 processes with 2 vCPUs (3,538 MB): ceil(7 / 2) = 4 rounds of 1 s
    assert one(7, 1.0, 1, 2, 3538).lambda_seconds == pytest.approx(4.0)
    # on 3 processes sharing 2 vCPUs: 2 rounds of 3 at 2/3 CPU (1.5 s) + 1 alone (1 s) = 4 s
    assert one(7, 1.0, 1, 3, 3538).lambda_seconds == pytest.approx(4.0)
    # billing rounds each invocation up to the next millisecond: 1.0001 s bills 1,001 ms
    z = one(1, 1.0001, 1, 1, 1769, init_seconds=0.0)
    assert z.gb_seconds == pytest.approx(1.001 * 1769 / 1024)


def test_waiting_is_not_slowed_by_sharing_the_cpu() -> None:
    # 4 tasks of 1 s CPU + 3 s wait, 4 processes on 1 vCPU (1,769 MB): CPU 1 / (1/4) = 4 s + 3 s
    assert one(4, 1.0, 1, 4, 1769, task_wait_seconds=3.0).lambda_seconds == pytest.approx(7.0)


def test_arm64_is_cheaper_than_x86_for_the_same_duration() -> None:
    x86 = one(1000, 2.0, 100, 6, 10240, arch="x86_64")
    arm = one(1000, 2.0, 100, 6, 10240, arch="arm64")
    assert arm.makespan_seconds == x86.makespan_seconds
    assert arm.gb_seconds == x86.gb_seconds
    assert arm.cost_usd < x86.cost_usd
    # the duration part scales by 0.0000133334 / 0.0000166667 = 0.8; requests cost the same
    arm_duration, x86_duration = arm.cost_usd - 100 * REQUEST, x86.cost_usd - 100 * REQUEST
    assert arm_duration == pytest.approx(x86_duration * ARM / X86)
    assert arm_duration == pytest.approx(0.8 * x86_duration, rel=1e-5)


def test_payload_and_process_memory_limits() -> None:
    # 1,000 tasks x 10,000 B in one invocation = 10,000,000 B > 6,291,456 B (6 MB synchronous)
    x = one(1000, 0.01, 1, 1, 1769, payload_in_bytes=10_000, payload_out_bytes=10)
    assert [v.split(":")[0] for v in x.violations] == ["payload in"]
    # spread over 1,000 Lambdas: 10,000 B each, fine
    assert one(1000, 0.01, 1000, 1, 1769, payload_in_bytes=10_000).valid
    # 4 Python processes x ~64 MB do not fit in 128 MB
    assert one(10, 0.01, 1, 4, 128).violations[0].startswith("memory: 4 processes")


# --- frontier and recommendation --------------------------------------------------------------


def dominates(a: LambdaLayout, b: LambdaLayout) -> bool:
    return (
        a.makespan_seconds <= b.makespan_seconds
        and a.cost_usd <= b.cost_usd
        and (a.makespan_seconds < b.makespan_seconds or a.cost_usd < b.cost_usd)
    )


@pytest.mark.parametrize("cpu, wait", [(2.0, 0.0), (0.05, 0.5), (30.0, 1.0)])
def test_frontier_is_non_dominated_and_covers_every_valid_layout(cpu: float, wait: float) -> None:
    plan = plan_lambda(1000, cpu, wait)
    valid = [x for x in plan.layouts if x.valid]
    assert plan.frontier and set(plan.frontier) == {x for x in plan.layouts if x.on_frontier}
    for f in plan.frontier:
        assert f.valid and not any(dominates(x, f) for x in valid), f.label
    for x in valid:  # everything off the frontier is matched or beaten by a frontier layout
        assert any(
            f.makespan_seconds <= x.makespan_seconds and f.cost_usd <= x.cost_usd
            for f in plan.frontier
        ), x.label
    times = [f.makespan_seconds for f in plan.frontier]
    costs = [f.cost_usd for f in plan.frontier]
    assert times == sorted(times) and costs == sorted(costs, reverse=True)


def test_default_pick_is_the_cheapest_within_10_percent_of_the_fastest() -> None:
    plan = plan_lambda(1000, 2.0)
    valid = [x for x in plan.layouts if x.valid]
    fastest = min(x.makespan_seconds for x in valid)
    near = [x for x in valid if x.makespan_seconds <= 1.1 * fastest]
    assert plan.recommended is not None and plan.recommended.on_frontier
    assert plan.recommended.cost_usd == min(x.cost_usd for x in near)
    assert "within 10% of the fastest" in plan.reason
    assert plan.recommended.label in plan.reason


def test_deadline_and_budget_choose_differently() -> None:
    by_deadline = plan_lambda(1000, 2.0, deadline_seconds=100)
    valid = [x for x in by_deadline.layouts if x.valid]
    pick = by_deadline.recommended
    assert pick is not None and pick.makespan_seconds <= 100
    assert pick.cost_usd == min(x.cost_usd for x in valid if x.makespan_seconds <= 100)
    by_budget = plan_lambda(1000, 2.0, budget_usd=0.058)
    pick = by_budget.recommended
    assert pick is not None and pick.cost_usd <= 0.058
    assert pick.makespan_seconds == min(x.makespan_seconds for x in valid if x.cost_usd <= 0.058)
    too_poor = plan_lambda(1000, 2.0, budget_usd=0.01)
    assert too_poor.reason.startswith("No layout costs at most $0.01")
    assert too_poor.recommended == min(valid, key=lambda x: x.cost_usd)  # the cheapest instead
    impossible = plan_lambda(1000, 2.0, deadline_seconds=0.5)
    assert impossible.reason.startswith("No layout finishes within 500.0 ms")
    assert impossible.recommended == impossible.frontier[0]  # the fastest, as a fallback


def test_no_valid_layout_means_no_recommendation() -> None:
    plan = plan_lambda(1, 1000.0)  # one task of 1,000 s cannot fit in 900 s
    assert plan.recommended is None and not plan.frontier
    assert plan.reason.startswith("No layout fits Lambda's limits") and "timeout" in plan.reason


def test_a_profile_object_supplies_the_seconds() -> None:
    @dataclass
    class Measured:
        cpu_seconds_per_item: float = 2.0
        wait_seconds_per_item: float = 0.5

    from_profile = plan_lambda(100, profile=Measured())
    assert (from_profile.task_cpu_seconds, from_profile.task_wait_seconds) == (2.0, 0.5)
    assert from_profile.layouts == plan_lambda(100, 2.0, 0.5).layouts


def sleepy_square(x: bytes) -> int:
    time.sleep(0.01)
    return len(x) ** 2


def test_a_measured_profile_supplies_seconds_and_payload() -> None:
    # 100,000-byte items: 1,000 of them in one invocation are ~100 MB > the 6 MB payload limit
    prof = gearshift.profile(sleepy_square, [b"x" * 100_000] * 8, sample=4)
    plan = plan_lambda(1000, profile=prof, lambdas=[1, 1000], processes=[1], memories_mb=[1769])
    assert plan.task_cpu_seconds == prof.cpu_seconds_per_item
    assert plan.task_wait_seconds == prof.wait_seconds_per_item >= 0.005
    one_lambda, many = sorted(plan.layouts, key=lambda x: x.lambdas)
    assert [v.split(":")[0] for v in one_lambda.violations] == ["payload in"]
    assert many.valid  # 100,000 B per invocation
    # a payload given explicitly wins over the measured one
    explicit = plan_lambda(1000, profile=prof, payload_in_bytes=0, lambdas=[1], processes=[1])
    assert explicit.layouts and all(x.valid for x in explicit.layouts)


@pytest.mark.parametrize(
    "kwargs, arg",
    [
        ({"tasks": 0}, "tasks"),
        ({"tasks": 2.5}, "tasks"),
        ({"task_cpu_seconds": -1.0}, "task_cpu_seconds"),
        ({"task_cpu_seconds": math.nan}, "task_cpu_seconds"),
        ({"task_cpu_seconds": 0.0}, "task_cpu_seconds"),
        ({"task_cpu_seconds": None}, "task_cpu_seconds"),
        ({"arch": "sparc"}, "arch"),
        ({"memories_mb": [100]}, "memories_mb"),
        ({"memories_mb": [20_000]}, "memories_mb"),
        ({"concurrency": 0}, "concurrency"),
        ({"lambdas": [11]}, "lambdas"),
        ({"processes": [0]}, "processes"),
        ({"payload_in_bytes": -1}, "payload_in_bytes"),
        ({"within": -0.1}, "within"),
        ({"deadline_seconds": 0}, "deadline_seconds"),
    ],
)
def test_bad_arguments_name_themselves(kwargs: dict[str, object], arg: str) -> None:
    args: dict[str, object] = {"tasks": 10, "task_cpu_seconds": 1.0, **kwargs}
    with pytest.raises(UsageError) as info:
        plan_lambda(**args)  # type: ignore[arg-type]
    assert str(info.value).startswith(f"{arg}: ")


def test_public_and_cheap() -> None:
    assert gearshift.plan_lambda is plan_lambda and gearshift.LambdaPlan is LambdaPlan
    code = (
        "import sys, gearshift; gearshift.plan_lambda(10, 1.0);"
        " print(sorted({'rich', 'matplotlib'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the command line ---------------------------------------------------------------------------


def test_cli_table_marks_frontier_and_recommendation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan-lambda", "--tasks", "1000", "--task-cpu-seconds", "2"]) == 0
    out = capsys.readouterr().out
    assert "1,000 tasks x 2 s CPU on AWS Lambda" in out
    assert "◆" in out and "★" in out
    assert "Recommended: 200 x 5 processes at 8,845 MB" in out
    # the three shapes of the question all appear
    for shape in ("1 Lambda x k processes", "n Lambdas x 1 process", "m Lambdas x k processes"):
        assert shape in out


def test_cli_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan-lambda", "--tasks", "0", "--task-cpu-seconds", "2"]) == 2
    assert "--tasks: got 0" in capsys.readouterr().err
    assert main(["plan-lambda", "--tasks", "10"]) == 2
    assert "--task-cpu-seconds: missing" in capsys.readouterr().err
    assert main(["plan-lambda", "--tasks", "10", "--task-cpu-seconds", "1", "--memory", "64"]) == 2
    assert "--memory: got [64]" in capsys.readouterr().err
    assert main(["plan-lambda", "--tasks", "ten", "--task-cpu-seconds", "1"]) == 2  # argparse


def test_cli_exits_1_when_no_layout_fits(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan-lambda", "--tasks", "1", "--task-cpu-seconds", "1000"]) == 1
    assert "No layout fits Lambda's limits" in capsys.readouterr().out


def test_cli_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan-lambda", "--tasks", "100", "--task-cpu-seconds", "2", "--arch", "arm64", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {
        *("tasks", "task_cpu_seconds", "task_wait_seconds", "arch", "concurrency"),
        *("init_seconds", "prices", "layouts", "frontier", "recommended", "reason", "chart"),
    }
    assert (data["tasks"], data["arch"], data["chart"]) == (100, "arm64", None)
    assert set(data["prices"]) == {"x86_64_gb_second", "arm64_gb_second", "request"}
    layout_keys = {
        *("lambdas", "processes", "memory_mb", "cpu_share", "tasks_per_lambda"),
        *("lambda_seconds", "waves", "makespan_seconds", "gb_seconds", "cost_usd"),
        *("violations", "on_frontier"),
    }
    assert all(set(x) == layout_keys for x in data["layouts"])
    assert all(isinstance(x["violations"], list) for x in data["layouts"])
    assert data["frontier"] == [x for x in data["layouts"] if x["on_frontier"]]
    assert data["recommended"] in data["frontier"]


def test_cli_reads_a_profile_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(
        json.dumps(
            {
                "cpu_seconds_per_item": 2.0,
                "wait_seconds_per_item": 0.5,
                "payload_bytes_in": 100,
                "other": "ignored",
            }
        )
    )
    assert main(["plan-lambda", "--tasks", "50", "--profile", str(profile), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["task_cpu_seconds"], data["task_wait_seconds"]) == (2.0, 0.5)
    # a flag on the command line wins over the file
    argv = ["plan-lambda", "--tasks", "50", "--profile", str(profile), "--task-wait-seconds", "0"]
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["task_wait_seconds"] == 0.0
    profile.write_text('{"wait_seconds_per_item": 1}')
    assert main(["plan-lambda", "--tasks", "50", "--profile", str(profile)]) == 2
    assert "--profile: " in (err := capsys.readouterr().err) and "no 'cpu_seconds_per_item'" in err
    assert main(["plan-lambda", "--tasks", "5", "--profile", str(tmp_path / "missing.json")]) == 2
    assert "--profile: cannot read" in capsys.readouterr().err


def test_cli_reads_what_gearshift_profile_json_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "work.py").write_text(
        "import time\n\ndef crunch(x):\n    time.sleep(0.01)\n    return len(x)\n"
    )
    measured = subprocess.run(
        [sys.executable, "-m", "gearshift", "profile", "./work.py:crunch", "--json",
         "--items", "[b'x' * 100_000] * 8", "--sample", "4"],
        cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    profile = json.loads(measured.stdout)
    path = tmp_path / "profile.json"
    path.write_text(measured.stdout)
    argv = ["plan-lambda", "--tasks", "1000", "--profile", str(path), "--lambdas", "1,1000"]
    assert main([*argv, "--processes", "1", "--memory", "1769", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["task_cpu_seconds"] == profile["cpu_seconds_per_item"]
    assert plan["task_wait_seconds"] == profile["wait_seconds_per_item"]
    # the measured payload (~100,000 B a task) reaches the model: one Lambda breaks the 6 MB limit
    assert profile["payload_bytes_in"] > 100_000
    one_lambda, many = sorted(plan["layouts"], key=lambda x: x["lambdas"])
    per_task = math.ceil(profile["payload_bytes_in"])
    assert one_lambda["violations"] == [f"payload in: 1,000 tasks x {per_task:,} B > 6,291,456 B"]
    assert many["violations"] == []


def test_cli_chart_is_a_png_of_the_documented_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gearshift.cli.charts import DPI, FIGSIZE

    chart = tmp_path / "plan.png"
    argv = ["plan-lambda", "--tasks", "1000", "--task-cpu-seconds", "2", "--chart", str(chart)]
    assert main(argv) == 0
    assert f"chart: {chart}" in capsys.readouterr().out
    data = chart.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (round(FIGSIZE[0] * DPI), round(FIGSIZE[1] * DPI)) == (800, 500)
