"""The robust empirical-Bayes critical value of Armstrong, Kolesár and Plagborg-Møller (2022).

A shrunk estimate `θ̂ = μ + w (y - μ)`, `w = μ2 / (μ2 + σ²)`, errs by `w σ (Z + b)` with
`Z ~ N(0, 1)` and a normalised bias `b = (1/w - 1)(μ - θ)/σ`. Over the classes of a group,
`E b² = t = σ² / μ2` whatever the distribution of `θ`. The interval `θ̂ ± cva(t) w σ` has
average coverage ≥ 1 - α for *every* distribution of `θ` with that second moment: `cva(t)`
solves `ρ(t, χ) = α`, where `ρ(t, χ) = sup { E r(b, χ) : E b² = t }` and
`r(b, χ) = P(|Z + b| > χ)` (their eq. (8), with no kurtosis constraint, κ = ∞).

As a function of `u = b²`, `r` is convex then concave, so the supremum is the concave
envelope: a point mass at `u = t` when `t ≥ t0(χ)` (then `cva(t)² ` is the `1 - α` quantile
of a non-central χ² with 1 df and non-centrality `t`, the parametric EBCI), else the mixture
of `u = 0` and `u = t0` (their Proposition B.1). At the usual α the mixture is least
favourable for every `t`, so `cva(t)` grows like `√(t/α)`, not `√t`: without a bound on the
kurtosis a few classes far from the mean are possible, and the interval allows for them.
The table `cva` interpolates is computed once per α (about 1 s), inverting `t ↦ cva(t)` on
a grid of critical values.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

_CHI_MAX = 2000.0  # the table's largest critical value: t up to about α χ² = 2e5
_SQRT2 = math.sqrt(2.0)


def _r0(u: float, chi: float) -> float:
    """Non-coverage `P(|Z + √u| > χ)`."""
    b = math.sqrt(u)
    return 0.5 * (math.erfc((chi - b) / _SQRT2) + math.erfc((chi + b) / _SQRT2))


def _t0(chi: float) -> float:
    """Where the chord from `u = 0` touches `r0`: the maximiser of `(r0(u) - r0(0)) / u`."""
    from scipy.optimize import minimize_scalar
    from scipy.special import erfc

    base = _r0(0.0, chi)
    # a coarse grid first (the slope is flat and tiny far from the tangent, which misleads a
    # bracketing search), then a bounded refinement between the best point's neighbours
    grid = np.geomspace(1e-8, (chi + 8.0) ** 2, 2000)
    b = np.sqrt(grid)
    slope = (0.5 * (erfc((chi - b) / _SQRT2) + erfc((chi + b) / _SQRT2)) - base) / grid
    k = int(np.argmax(slope))
    low, high = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    found = minimize_scalar(
        lambda u: -(_r0(u, chi) - base) / u,
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-12 * max(1.0, high)},
    )
    return float(found.x)


def max_noncoverage(t: float, chi: float) -> float:
    """`ρ(t, χ)`: the largest average non-coverage of `θ̂ ± χ w σ` when `E b² = t`."""
    t0 = _t0(chi)
    if t >= t0:
        return _r0(t, chi)
    base = _r0(0.0, chi)
    return base + t / t0 * (_r0(t0, chi) - base)


def cva_exact(t: float, alpha: float = 0.05) -> float:
    """The robust critical value for `E b² = t` by root-finding (slow; `cva` interpolates)."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    if t <= 0:
        return float(norm.isf(alpha / 2))
    low = float(norm.isf(alpha / 2))
    # ρ(t, χ) ≤ P(|Z| > χ/2) + P(b² > χ²/4) ≤ P(|Z| > χ/2) + 4t/χ² (Markov), below α here
    high = 2 * math.sqrt(8 * t / alpha) + 2 * low + 5.0
    return float(brentq(lambda chi: max_noncoverage(t, chi) - alpha, low, high, xtol=1e-12))


def _t_of_chi(chi: float, alpha: float) -> float:
    """The inverse of `cva`: the `t` at which `χ` is the critical value (ρ rises with t)."""
    from scipy.optimize import brentq

    t0, base = _t0(chi), _r0(0.0, chi)
    top = _r0(t0, chi)
    if alpha <= top:  # on the chord from u = 0 to u = t0
        return t0 * (alpha - base) / (top - base)
    return float(brentq(lambda t: _r0(t, chi) - alpha, t0, (chi + 10.0) ** 2, xtol=1e-12))


@lru_cache(maxsize=8)
def _table(alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """`(√t, cva(t))` on a grid of critical values from the normal one to past `√_T_MAX`."""
    from scipy.stats import norm

    z = float(norm.isf(alpha / 2))
    chis = z + np.concatenate([[0.0], np.geomspace(1e-5, _CHI_MAX, 800)])
    roots = np.sqrt([0.0] + [_t_of_chi(float(c), alpha) for c in chis[1:]])
    return roots, chis


def cva(t: float | np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """`cva(t)` for an array of `t ≥ 0`, interpolated in `√t` from a table (within 1e-4
    of `cva_exact`, see the tests); by root-finding beyond the table."""
    t = np.asarray(t, dtype=float)
    flat = t.ravel()
    roots, chis = _table(alpha)
    out = np.interp(np.sqrt(flat), roots, chis)
    for i in np.flatnonzero(flat > roots[-1] ** 2):
        out[i] = cva_exact(float(flat[i]), alpha)
    return out.reshape(t.shape)
