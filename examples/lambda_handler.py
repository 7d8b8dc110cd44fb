"""An AWS Lambda handler that runs CPU-bound work on several processes, with gearshift.

Lambda has no /dev/shm, so `multiprocessing.Pool`, `Queue` and `ProcessPoolExecutor` fail inside
it (OSError: [Errno 38] Function not implemented). gearshift's process pool needs no shared
memory — each worker talks to the pool over its own pipe — so the same `gearshift.map` runs there.

Invoke it with an event like {"items": [2000000, 2000000, 2000000]}; it returns
{"results": [...], "processes": k, "memory_mb": m}.

How many processes? Lambda gives CPU in proportion to memory: 1,769 MB buys one vCPU's worth,
10,240 MB about 5.8 (on 6 visible vCPUs). Below ~2,600 MB a second process only shares the same
CPU time, so this handler starts round(memory / 1,769) processes, at least one:

    memory (MB)   1,769   3,538   5,307   7,076   8,845   10,240
    processes         1       2       3       4       5        6

Whether one big Lambda with k processes or many small ones is cheaper or faster for your job is
what `gearshift plan-lambda --tasks N --task-cpu-seconds S` answers (README: "Serverless").

Packaging (gearshift needs cloudpickle and rich; both are pure Python, so any architecture works):

    pip install gearshift --target package/        # or the path of a gearshift checkout
    cp examples/lambda_handler.py package/
    (cd package && zip -r ../function.zip .)       # handler: lambda_handler.handler

or as a layer shared by several functions, with the packages under python/ in the zip:

    pip install gearshift --target layer/python/
    (cd layer && zip -r ../gearshift-layer.zip python)

Worker processes are fresh interpreters (running `gearshift.strategies.processes.worker`) that
find gearshift and this module on the handler's own sys.path (/var/task, /opt/python), so `work`
must be defined at module level of an importable module, as here.
"""

from __future__ import annotations

from typing import Any

import gearshift
from gearshift.serverless import MB_PER_VCPU, MEMORY_MAX_MB

DEFAULT_MEMORY_MB = 1_769  # when the context does not say (a local run)


def work(n: int) -> int:
    """CPU-bound and GIL-bound: the sum of squares below n, in pure Python."""
    return sum(i * i for i in range(n))


def processes_for(memory_mb: int) -> int:
    """One process per vCPU's worth of CPU time that this much memory buys, at least one."""
    return max(1, round(min(memory_mb, MEMORY_MAX_MB) / MB_PER_VCPU))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda's entry point: `work` over `event["items"]` on as many processes as CPU allows."""
    memory_mb = int(getattr(context, "memory_limit_in_mb", DEFAULT_MEMORY_MB))
    k = processes_for(memory_mb)
    results = gearshift.map(work, event["items"], strategy=gearshift.Processes(max_workers=k))
    return {"results": results, "processes": k, "memory_mb": memory_mb}
