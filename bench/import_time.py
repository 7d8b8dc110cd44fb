"""How much does `import gearshift` add to interpreter start-up? Target: <= 50 ms.

    python bench/import_time.py [--runs N]

Runs `python -c "import gearshift"` and `python -c "pass"` alternately (N each, fresh
interpreters), prints the medians and their difference, then the slowest modules that
`import gearshift` pulls in (`python -X importtime`, cumulative milliseconds, median of 5).
gearshift's bytecode is compiled first, as installing a wheel does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _workloads

TARGET_MS = 50.0


def run_ms(code: str, *flags: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *flags, "-c", code], check=True, capture_output=True, text=True
    )
    return (time.perf_counter() - start) * 1000, done.stderr


def slowest_imports(runs: int = 5, top: int = 12) -> list[tuple[str, float]]:
    """(module, cumulative ms) of the modules `import gearshift` loads, slowest first."""
    samples: dict[str, list[int]] = defaultdict(list)
    for _ in range(runs):
        _, stderr = run_ms("import gearshift", "-X", "importtime")
        for line in stderr.splitlines():
            if not line.startswith("import time:") or "cumulative" in line:
                continue
            _, cumulative, name = line[len("import time:") :].split("|")
            samples[name.strip()].append(int(cumulative))
    medians = {name: statistics.median(us) / 1000 for name, us in samples.items()}
    return sorted(medians.items(), key=lambda item: -item[1])[:top]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="interpreters started per variant")
    args = parser.parse_args()
    _workloads.compile_gearshift()
    run_ms("import gearshift")  # warm the file cache
    bare, with_gearshift = [], []
    for _ in range(args.runs):
        bare.append(run_ms("pass")[0])
        with_gearshift.append(run_ms("import gearshift")[0])
    base, ours = statistics.median(bare), statistics.median(with_gearshift)
    added = ours - base
    print(f"{_workloads.machine()}; {args.runs} runs each, medians")
    print(f"  python -c pass               {base:7.1f} ms")
    print(f"  python -c 'import gearshift' {ours:7.1f} ms")
    print(f"  added by import gearshift    {added:7.1f} ms")
    print("slowest modules under `import gearshift` (cumulative ms, -X importtime):")
    for name, ms in slowest_imports():
        print(f"  {ms:7.1f}  {name}")
    ok = added <= TARGET_MS
    verdict = "PASS" if ok else "FAIL"
    print(f"{verdict}  import gearshift adds {added:.1f} ms (target <= {TARGET_MS:.0f} ms)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
