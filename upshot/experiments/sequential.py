"""Always-valid inference: asymptotic confidence sequences (Waudby-Smith et al. 2023).

With a confidence sequence the experiment can be looked at every week, or every day,
and stopped at any look: the chance that the sequence ever excludes the true effect
stays below alpha. This is the normal-mixture boundary GrowthBook uses: with N users in
both arms, sigma**2 = N * SE**2 the per-user variance of the effect estimate, and rho the
mixing parameter,

    halfwidth = sigma * sqrt(2 (N rho**2 + 1) / (N**2 rho**2) * log(sqrt(N rho**2 + 1) / alpha))

and rho = sqrt((-2 log alpha + log(-2 log alpha + 1)) / tuning) makes the sequence
tightest at N = tuning users. Inverting the boundary at 0 gives the always-valid p-value.
"""

from __future__ import annotations

import numpy as np


def rho(alpha: float, tuning: float) -> float:
    """The mixing parameter that makes the sequence tightest at `tuning` users."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha == {alpha}, must be in (0, 1)")
    if not tuning > 0:
        raise ValueError(f"sequential tuning == {tuning}, must be > 0")
    la = -2.0 * np.log(alpha)
    return float(np.sqrt((la + np.log(la + 1.0)) / tuning))


def halfwidth(se: np.ndarray, n: np.ndarray, alpha: float, tuning: float) -> np.ndarray:
    """Half-width of the two-sided confidence sequence for an estimate with standard error
    `se` after `n` users (both arms)."""
    r2 = rho(alpha, tuning) ** 2
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma = np.asarray(se) * np.sqrt(n)
        return sigma * np.sqrt(
            2.0 * (n * r2 + 1.0) / (n**2 * r2) * np.log(np.sqrt(n * r2 + 1.0) / alpha)
        )


def pvalue(
    effect: np.ndarray, se: np.ndarray, n: np.ndarray, alpha: float, tuning: float
) -> np.ndarray:
    """The smallest level at which the sequence excludes 0: always-valid, two-sided.

    `alpha` only fixes rho (the shape of the boundary), as in the sequence itself.
    """
    r2 = rho(alpha, tuning) ** 2
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        z2 = (np.asarray(effect) / np.asarray(se)) ** 2
        log_e = r2 * n * z2 / (2.0 * (n * r2 + 1.0)) - 0.5 * np.log(n * r2 + 1.0)
        return np.where(np.isnan(log_e), np.nan, np.minimum(1.0, np.exp(-log_e)))
