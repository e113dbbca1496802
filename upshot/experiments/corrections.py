"""Multiple-testing corrections across metrics and arms: Bonferroni, Holm, Benjamini-Hochberg.

NaN p-values (tests that could not be run) are left out of the family and stay NaN.
The adjusted p-values equal statsmodels' `multipletests` (bonferroni, holm, fdr_bh).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Correction = Literal["holm", "bonferroni", "bh", "none"]
CORRECTIONS: tuple[str, ...] = ("holm", "bonferroni", "bh", "none")


def adjust(pvalues: Sequence[float] | np.ndarray, method: str) -> np.ndarray:
    """Adjusted p-values, same order as `pvalues`."""
    if method not in CORRECTIONS:
        raise ValueError(f"correction == {method!r}, must be one of {', '.join(CORRECTIONS)}")
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    out[ok] = _adjust(p[ok], method)
    return out


def _adjust(p: np.ndarray, method: str) -> np.ndarray:
    m = p.size
    if m == 0 or method == "none":
        return p.copy()
    if method == "bonferroni":
        return np.minimum(p * m, 1.0)
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if method == "holm":
        steps = np.maximum.accumulate(ranked * (m - np.arange(m)))
    else:  # bh: step-up, monotone from the largest p-value down
        steps = np.minimum.accumulate((ranked * m / np.arange(1, m + 1))[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(steps, 1.0)
    return out
