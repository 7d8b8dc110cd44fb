"""The test session's Dask cluster, in a process of its own: `python tests/daskcluster.py N`.

It starts gearshift's LocalCluster of N workers, prints the scheduler's address, and closes
the cluster when its stdin closes. In its own process, the cluster's workers are not children
of the test process (tests that count child processes stay exact).
"""

from __future__ import annotations

import sys

from gearshift.strategies._dask import start_local_cluster


def main() -> None:
    cluster = start_local_cluster(int(sys.argv[1]))
    print(cluster.scheduler_address, flush=True)
    sys.stdin.read()  # until the test session closes our stdin (or dies)
    cluster.close()


if __name__ == "__main__":  # the workers start by spawn and import this file again
    main()
