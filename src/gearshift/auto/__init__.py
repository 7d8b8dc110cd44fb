"""auto: measure a sample of the work, then choose how to run the rest, and say why.

profile(fn, items) ─► Profile (CPU share, GIL, thread scaling, shipping cost, variation)
choose(profile)    ─► Choice (strategy, width, chunk size, predicted speedups, one sentence)
map(strategy="auto") ─► decide(): both, keeping the sample's results ─► the chosen Strategy
"""

from __future__ import annotations

from gearshift.auto._chooser import Choice, Option, choose
from gearshift.auto._profiler import Profile, Sample, profile, profile_sample
from gearshift.auto._strategy import Auto, Decision, decide, resolve

__all__ = [
    "Auto",
    "Choice",
    "Decision",
    "Option",
    "Profile",
    "Sample",
    "choose",
    "decide",
    "profile",
    "profile_sample",
    "resolve",
]
