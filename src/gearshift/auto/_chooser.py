"""choose(): from a `Profile`, the strategy, width and chunk size for the rest of the work, and why.

The rules, in order:
  1. A coroutine function -> asyncio: it runs only on an event loop. Width as in rule 3.
  2. One item left, or none -> serial: there is nothing to split.
  3. Waiting-bound work (CPU share < WAITING_BOUND_SHARE) -> threads, cores x (1 + wait/CPU)
     of them, capped at MAX_THREADS: while one thread waits, others use the CPU; past the cap,
     memory and the far side's patience run out first. If the sample's wave of k threads ran
     under SATURATED x k times as fast as one thread, what the threads share (a server, a
     disk, the CPUs that child processes need) stopped scaling there: no more is predicted,
     for threads or processes, and rule 6 may find neither worth it. Items whose CPU holds the
     GIL for a switch interval or more (CONVOY_SWITCHES) get MAX_THREADS threads: each I/O
     completion may wait that long for the GIL, and more threads keep it busy meanwhile.
     Otherwise the width is a start: while the run goes on it doubles as long as throughput
     still rises (gearshift.strategies._ramp), up to MAX_THREADS; the sample saw only a few threads.
  4. CPU-bound work that scales on threads (thread_speedup >= SCALES_ON_THREADS: C code that
     releases the GIL), or any CPU work when the GIL is off -> threads x cores: nothing to ship,
     no process to start.
  5. CPU-bound work that holds the GIL -> processes x cores (a few more if items also wait), if
     the function, its arguments and its results can be pickled.
  6. The strategy rules 3-5 picked must be predicted MIN_SPEEDUP x faster than serial; if it is
     not (items too cheap to ship, too little work, payloads that cost more to ship than to
     compute), the best other parallel strategy that is, else serial.

Predicted speedups over serial, for the `n` items left (n unknown: in the steady state), where t
is an item's own time, cpu its CPU time, gil the CPU time that holds the GIL (all of cpu unless
rule 4 holds), ship its cloudpickle dumps+loads time (argument and result), W the width:
  threads    rate = min(W' / t, cores / cpu, 1 / gil, s / t), W' = min(W, chunks), s the
             wave's measured speedup if it saturated (rule 3); gil >= CALL_GIL_SECONDS
  processes  rate = min(W' / (t + ship + PROCESS_CHUNK_SECONDS / chunk), cores / (cpu + ship),
                        1 / (ship / 2 + PROCESS_ITEM_SECONDS), s / t): the parent alone pickles
                        half of the shipping and handles every item
  asyncio    rate = min(W' / t, 1 / cpu): one thread runs every coroutine's CPU part
  speedup = n t / (start + n / rate), start = PROCESS_START_SECONDS for processes, else 0
"""

from __future__ import annotations

import math
import sys
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from gearshift.auto._profiler import Profile
from gearshift.chunking import first_size
from gearshift.units import percent, seconds

__all__ = ["Choice", "Option", "choose"]

# Every constant below is tuned by bench/auto.py (a dozen workloads, auto vs the best by hand).
WAITING_BOUND_SHARE = 0.5  # below: sleep, HTTP, subprocess workloads; above: pure Python, hashing
# 2 threads: pure Python reads ~1.0x on an idle machine, up to ~1.4x on one loaded 4x over (a GIL
# handoff then waits for a CPU, which counts as load); GIL-free hashing reads 1.9-2.0x. Leaning
# high is the safe side: GIL-free work sent to processes still runs in parallel.
SCALES_ON_THREADS = 1.7
MIN_SPEEDUP = 1.2  # a smaller predicted gain is within the model's error: stay serial
MAX_THREADS = 64  # the HTTP workload gains nothing past it on a 2-core machine
# Rule 3's wave on k threads ran under this x k faster than one thread: no more is predicted.
# bench/auto.py: HTTP read 0.6-0.8 x 64 (it still gained), `subprocess true` 0.3-0.5 x 10.
SATURATED = 0.5
# Rule 3: waiting-bound items whose CPU stretches hold the GIL this many switch intervals
# (sys.getswitchinterval(), 5 ms) or more: MAX_THREADS. bench/auto.py: fetch then parse (7-11 ms
# of CPU per item) ran 25% faster on 64 threads than on its 8 for 100 items (a tie at 300);
# `subprocess true` (0.2 ms) ran 28% slower on 64.
CONVOY_SWITCHES = 1.0
MAX_COROUTINES = 256  # the asyncio HTTP workload: more only queues at the server
PROCESSES_PER_CORE = 2  # at most, for CPU-bound items that also wait a little
# A process's first pool starts the fork server and forks workers from it (later pools: ~7 ms;
# start_method="spawn": ~40 ms). Measured with 2 workers: 50-54 ms (bench/pool.py, "1st call").
PROCESS_START_SECONDS = 0.05
PROCESS_CHUNK_SECONDS = 150e-6  # per chunk shipped to a process: pipe round trip and framing
# The parent's own cost per item sent to processes, besides pickling: cutting chunks, handing
# results back one by one, its pool threads' share of the GIL. Measured: 1.5 M x identity on
# processes x 2 took 0.25 us per item after the start, of which pickling ints took ~0.05 us.
# Without it, 1.5 M x*x (serial 0.24 us per item in map) was predicted up to 1.2x on processes
# and ran 0.7x there (bench/auto.py, tiny x*x).
PROCESS_ITEM_SECONDS = 0.2e-6
THREAD_CHUNK_SECONDS = 30e-6  # per chunk handed to a thread: a future and a queue hop
CALL_GIL_SECONDS = 0.5e-6  # held by GIL-free items too: the call around them (bench/auto.py tiny)


@dataclass(frozen=True)
class Option:
    """One way to run the work, with the speedup over serial the model predicts for it."""

    strategy: str
    max_workers: int
    chunksize: int
    predicted: float
    blocked: str = ""  # why this strategy cannot run the work at all, if it cannot
    grow_to: int | None = None  # threads: the width may double up to this while throughput rises


@dataclass(frozen=True)
class Choice:
    """The strategy to run the work with, its width and chunk size, and a sentence saying why."""

    strategy: str
    max_workers: int
    chunksize: int
    predicted: float  # speedup over serial the model predicts
    why: str
    options: tuple[Option, ...] = ()  # every strategy considered, with its prediction
    grow_to: int | None = None  # threads: the width may double up to this while throughput rises

    @property
    def predictions(self) -> dict[str, float]:
        """Predicted speedup over serial, per strategy."""
        return {option.strategy: option.predicted for option in self.options}

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "max_workers": self.max_workers,
            "chunksize": self.chunksize,
            "predicted": self.predicted,
            "grow_to": self.grow_to,
            "why": self.why,
            "options": [vars(option) for option in self.options],
        }

    def __str__(self) -> str:
        return self.why


def choose(
    profile: Profile, *, remaining: int | None = None, allowed: Collection[str] | None = None
) -> Choice:
    """Pick the strategy for the work `profile` measured, by the rules in the module docstring.

    `remaining` is the number of items still to run (default: `profile.items_total`, which may
    be None: unknown). `allowed` limits the strategies to pick from (default: all; serial is
    always allowed, and a coroutine function always gets asyncio, the one way to run it).
    """
    n = remaining if remaining is not None else profile.items_total
    options = {o.strategy: o for o in _options(profile, n)}
    facts = _facts(profile)
    if profile.coroutine:
        return _pick(options["asyncio"], facts, options, _width_rule(MAX_COROUTINES))
    if n is not None and n <= 1:
        left = "1 item left" if n == 1 else f"{n} items left"
        return _pick(options["serial"], left, options, ": nothing to split")
    if allowed is not None:
        options = {k: v for k, v in options.items() if k in allowed or k == "serial"}
    if profile.cpu_share < WAITING_BOUND_SHARE or _gil_free(profile):
        wanted = "threads"
    else:
        wanted = "processes"
        if profile.shipping_measured:
            facts += f"; shipping an item costs {percent(profile.ship_ratio)} of its compute"
    return _settle(options, wanted, facts, profile, n)


def _settle(
    options: dict[str, Option], wanted: str, facts: str, profile: Profile, n: int | None
) -> Choice:
    """Rule 6: the wanted strategy if it pays, else the best other parallel one that does."""
    runners = [o for o in options.values() if o.strategy != "serial" and not o.blocked]
    ranked = sorted(runners, key=lambda o: (o.strategy != wanted, -o.predicted))
    for option in ranked:
        if option.predicted < MIN_SPEEDUP:
            continue
        if option.strategy != wanted:
            facts += f"; {_why_not(options.get(wanted))}"
        note = ""
        if profile.cpu_share < WAITING_BOUND_SHARE and option.strategy == "threads":
            note = _width_rule(MAX_THREADS, _convoyed(profile), option.grow_to)
        return _pick(option, facts, options, note)
    others = ", ".join(
        f"{o.strategy} {o.blocked or f'{o.predicted:.1f}x'}"
        for o in options.values()
        if o.strategy != "serial"
    )
    reasons = [others or "nothing else allowed"]
    if n is not None and n * profile.seconds_per_item < PROCESS_START_SECONDS:
        reasons.append(f"all {n} items take {seconds(n * profile.seconds_per_item)}")
    note = f": not worth it below {MIN_SPEEDUP}x ({'; '.join(reasons)})"
    return _pick(options["serial"], facts, options, note)


def _width_rule(cap: int, convoyed: bool = False, grow_to: int | None = None) -> str:
    if convoyed:
        return f"{cap}: its CPU holds the GIL for whole switch intervals, which I/O waits on"
    if grow_to:
        return f"cores x (1 + wait/CPU), doubled while throughput rises, up to {grow_to}"
    return f"cores x (1 + wait/CPU), at most {cap}"


def _why_not(option: Option | None) -> str:
    if option is None:
        return "the best strategy for it is not allowed here"
    if option.blocked:
        return f"{option.strategy} cannot run it ({option.blocked})"
    return f"{option.strategy} would give only {option.predicted:.1f}x"


def _pick(option: Option, facts: str, options: dict[str, Option], note: str = "") -> Choice:
    """The Choice of `option`; its `why` reads "<facts> -> <strategy> x <width> (<note>), ..."."""
    why = f"{facts} -> {option.strategy}"
    if option.strategy == "serial":
        why += note
    else:
        why += f" x {option.max_workers}" + (f" ({note})" if note else "")
        why += f", chunksize {option.chunksize}, predicted {option.predicted:.1f}x"
    o = option
    return Choice(
        o.strategy, o.max_workers, o.chunksize, o.predicted, why, (*options.values(),), o.grow_to
    )


def _gil_free(profile: Profile) -> bool:
    """Rule 4: CPU work runs in parallel on threads (measured, or the GIL is off)."""
    if not profile.gil_enabled:
        return True
    return profile.thread_speedup is not None and profile.thread_speedup >= SCALES_ON_THREADS


def _convoyed(profile: Profile) -> bool:
    """Rule 3: waiting-bound items whose CPU stretches hold the GIL for a switch interval or more.

    A thread whose I/O completes then waits up to a whole interval for the GIL, at every read:
    the waits grow with the CPU, and only more threads keep the GIL busy meanwhile.
    """
    if profile.cpu_share >= WAITING_BOUND_SHARE or not profile.gil_enabled:
        return False
    return profile.cpu_seconds_per_item >= CONVOY_SWITCHES * sys.getswitchinterval()


def _saturated(profile: Profile) -> float | None:
    """Rule 3: the wave's measured speedup, if throughput had stopped rising there."""
    speedup = profile.thread_speedup if profile.cpu_share < WAITING_BOUND_SHARE else None
    return speedup if speedup and speedup < SATURATED * profile.scaling_threads else None


def _facts(profile: Profile) -> str:
    """The measurements a rule rests on, in words: "CPU-bound: 97% of its time on CPU, ..."."""
    share = f"{profile.cpu_share:.0%} of its time on CPU"
    per_item = f"{seconds(profile.seconds_per_item)} per item"
    if profile.coroutine:
        return (
            f"coroutine function: {share} ({per_item}, {seconds(profile.cpu_seconds_per_item)} CPU)"
        )
    if profile.cpu_share < WAITING_BOUND_SHARE:
        cpu = seconds(profile.cpu_seconds_per_item)
        scaled = f"; {profile.scaling_description()}" if profile.thread_speedup else ""
        return f"waiting-bound: {share} ({per_item}, {cpu} CPU{scaled})"
    if not profile.gil_enabled:
        gil = "the GIL is off (free-threaded interpreter)"
    elif profile.thread_speedup is None and profile.holds_gil:
        held = profile.gil_held_share or 0.0
        gil = f"holding the GIL (another thread was kept out of it {held:.0%} of the time)"
    elif profile.thread_speedup is None:
        gil = "assumed to hold the GIL (not measured: too little work or too few items to matter)"
    else:
        verb = "releasing" if _gil_free(profile) else "holding"
        gil = f"{verb} the GIL ({profile.scaling_description()})"
    return f"CPU-bound: {share} ({per_item}), {gil}"


def _options(profile: Profile, n: int | None) -> list[Option]:
    """Every strategy with its width, chunk size and predicted speedup (the docstring's model)."""
    n = None if n is None else max(1, n)  # no items left: predict as for one
    t = profile.seconds_per_item
    cpu = max(profile.cpu_seconds_per_item, 1e-9)
    ship = profile.ship_seconds_per_item
    cores = profile.cores
    free = _gil_free(profile) and profile.cpu_share >= WAITING_BOUND_SHARE
    gil = min(cpu, CALL_GIL_SECONDS) if free else cpu
    wide = round(cores * (1 + profile.wait_seconds_per_item / cpu))
    widths = {
        "threads": _clamp(MAX_THREADS if _convoyed(profile) else wide, cores, MAX_THREADS, n),
        "processes": _clamp(wide, cores, PROCESSES_PER_CORE * cores, n),
        "asyncio": _clamp(wide, cores, MAX_COROUTINES, n),
    }
    chunks = {name: _chunksize(profile, width, n) for name, width in widths.items()}
    waits = profile.cpu_share < WAITING_BOUND_SHARE and not _saturated(profile)
    grow_to = _clamp(MAX_THREADS, cores, MAX_THREADS, n) if waits else 0

    def busy(name: str) -> int:  # workers that get a chunk
        if n is None:
            return widths[name]
        return min(widths[name], math.ceil(n / chunks[name]))

    measured = (_saturated(profile) or math.inf) / t
    rates = {
        "threads": min(busy("threads") / t, cores / cpu, 1 / gil if gil else math.inf, measured),
        "processes": min(
            busy("processes") / (t + ship + PROCESS_CHUNK_SECONDS / chunks["processes"]),
            cores / (cpu + ship),
            1 / (ship / 2 + PROCESS_ITEM_SECONDS),
            measured,
        ),
        "asyncio": min(busy("asyncio") / t, 1 / cpu),
    }
    overhead = {"threads": THREAD_CHUNK_SECONDS / chunks["threads"], "processes": 0.0}
    options = [Option("serial", 1, _chunksize(profile, 1, n), 1.0)]
    for name in ("threads", "processes", "asyncio"):
        if name == "asyncio" and not profile.coroutine:
            continue
        start = PROCESS_START_SECONDS if name == "processes" else 0.0
        per_item = 1 / rates[name] + overhead.get(name, 0.0)
        speedup = t / per_item if n is None else n * t / (start + n * per_item)
        blocked = ""
        if name in ("threads", "processes") and profile.coroutine:
            blocked = "a coroutine function needs an event loop"
        elif name == "processes" and profile.unpicklable:
            blocked = f"cannot pickle {profile.unpicklable}"
        grows = grow_to if name == "threads" and grow_to > widths[name] else None
        options.append(Option(name, widths[name], chunks[name], round(speedup, 2), blocked, grows))
    return options


def _clamp(width: int, low: int, high: int, n: int | None) -> int:
    width = max(low, min(high, width))
    return max(1, min(width, n)) if n is not None else width


def _chunksize(profile: Profile, workers: int, n: int | None) -> int:
    return first_size(profile.seconds_per_item, workers, n, profile.variation)
