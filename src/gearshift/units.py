"""How gearshift writes a quantity for a person: one rule per kind, used by every report.

seconds(2000) 2,000.0 s   seconds(1.234) 1.23 s   seconds(0.0456) 45.6 ms   seconds(7.8e-5) 78 µs
percent(0.97) 97%         percent(0.042) 4.2%     percent(0.0004) 0.04%
size(28) 28 B             size(4100) 4.1 kB       size(8.4e6) 8.4 MB        (powers of 1,000)
parse_size("2GB") 2e9     parse_size("1.5GiB") 1.5 x 2**30 (what people write, read back)
usd(0.064981) $0.06498    usd(1234.5) $1,234.50
"""

from __future__ import annotations

import math
import re

__all__ = ["SIZE_UNITS", "parse_size", "percent", "seconds", "size", "usd"]

# kB, MB, GB, TB count in powers of 1,000, as `size` writes them (and disks, and Kubernetes'
# "M"); KiB, MiB, GiB, TiB in powers of 1,024. Any case: "mb" is "MB".
SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
SIZE_UNITS.update({"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40})


def seconds(value: float) -> str:
    """A duration read at a glance: three significant digits or so, in s, ms or µs."""
    if value >= 10:
        return f"{value:,.1f} s"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.1f} ms"
    if value >= 1e-5:
        return f"{value * 1e6:.0f} µs"
    return f"{value * 1e6:.2f} µs"


def percent(value: float) -> str:
    """A share as a percentage with the digits that matter."""
    if value >= 0.1:
        return f"{value:.0%}"
    return f"{value:.1%}" if value >= 0.001 else f"{value:.2%}"


def size(value: float) -> str:
    """A byte count in B, kB, MB or GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


def parse_size(text: str) -> int:
    """Bytes from a size as people write it: "2GB", "512 MB", "1.5GiB", "300000" (bytes).

    ValueError for anything else (no number, a negative one, an unknown unit such as "2G").
    """
    match = re.fullmatch(r"\s*(\d+\.?\d*|\.\d+)\s*([a-z]*)\s*", text.lower())
    if match is None or match[2] not in (*SIZE_UNITS, ""):
        raise ValueError(f"not a size: {text!r}")
    return round(float(match[1]) * SIZE_UNITS[match[2] or "b"])


def usd(value: float) -> str:
    """Dollars: four significant digits below $1 (a Lambda bill is often cents), cents above."""
    if value >= 1 or value <= 0:
        return f"${value:,.2f}"
    return f"${value:.{max(2, 3 - math.floor(math.log10(value)))}f}"
