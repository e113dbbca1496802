"""How numbers read in the report and the summary: signs, units, CIs, "n/a" for missing."""

from __future__ import annotations

import math
from typing import Any

MISSING = "n/a"


def _ok(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def count(value: Any) -> str:
    """1234.6 → `1,235`; None → `n/a`."""
    return f"{value:,.0f}" if _ok(value) else MISSING


def total(value: Any) -> str:
    """A weekly total with its sign: `+1,235`, `-12.5`, `+0.42`."""
    if not _ok(value):
        return MISSING
    if abs(value) >= 100:
        return f"{value:+,.0f}"
    if abs(value) >= 1:
        return f"{value:+,.1f}"
    return f"{value:+.2g}"


def per_send(value: Any, binary: bool) -> str:
    """A per-send uplift: percentage points for probabilities, else 3 significant digits."""
    if not _ok(value):
        return MISSING
    if binary:
        return f"{value * 100:+.2f} pp"
    return f"{value:+.3g}"


def interval(lower: Any, upper: Any, one: Any) -> str:
    """`[a, b]` with each bound formatted by `one`, or `n/a`."""
    if not (_ok(lower) and _ok(upper)):
        return MISSING
    return f"[{one(lower)}, {one(upper)}]"


def percent(value: Any, digits: int = 1, signed: bool = False) -> str:
    if not _ok(value):
        return MISSING
    return f"{value:+.{digits}%}" if signed else f"{value:.{digits}%}"


def weight(value: Any, signed: bool = False) -> str:
    if not _ok(value):
        return MISSING
    if value == 0:
        return "0"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def pvalue(value: Any) -> str:
    if not _ok(value):
        return MISSING
    return f"{value:.4f}" if value >= 1e-4 else "<0.0001"


def seconds(value: Any) -> str:
    return f"{value:.1f} s" if _ok(value) else MISSING
