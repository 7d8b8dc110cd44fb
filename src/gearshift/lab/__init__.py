"""The lab: measure how work runs here, honestly (repeats, medians, the ideal for this machine).

bench(fn, items)  ─► every strategy x worker count, side by side ─► BenchResult
run_demo()        ─► the source's two experiments (sum 0..N five times; five downloads),
                     the source's own code beside gearshift's ─► DemoResult
ImageServer       ─► images on 127.0.0.1, with a remote's latency and bandwidth, so no demo
                     or test needs the internet
"""

from __future__ import annotations

from gearshift.lab._bench import BenchResult, bench
from gearshift.lab._demos import (
    DEMO_N,
    SOURCE_N,
    DemoResult,
    Experiment,
    cpu_experiment,
    io_experiment,
    run_demo,
)
from gearshift.lab._imageserver import ImageServer, ServerStatistics
from gearshift.lab._measure import NOISY_SPREAD, Machine, Measurement, machine
from gearshift.lab._png import png_image

__all__ = [
    "DEMO_N",
    "NOISY_SPREAD",
    "SOURCE_N",
    "BenchResult",
    "DemoResult",
    "Experiment",
    "ImageServer",
    "Machine",
    "Measurement",
    "ServerStatistics",
    "bench",
    "cpu_experiment",
    "io_experiment",
    "machine",
    "png_image",
    "run_demo",
]
