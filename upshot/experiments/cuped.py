"""Regression adjustment with pre-period covariates: pooled-slope CUPED and Lin (2013).

Both subtract theta' (covariate mean of the arm - covariate mean of all users) from the
arm's value, which removes the part of the metric the pre-period already predicts.

- Pooled slope (CUPED, Deng et al. 2013): one theta from the within-arm covariances of
  all arms pooled. For a mean metric the effect equals the treatment coefficient of the
  ANCOVA regression y ~ arm + x exactly.
- Lin (2013): a theta per arm, which equals the fully interacted regression
  y ~ arm * (x - mean(x)) and is never less efficient asymptotically, even with
  unequal splits.

For a ratio metric the same algebra runs on its linearization (the gradient of the
ratio), which is CUPED on ratios. Arrays carry a leading batch shape.

Lin's variance is HC2, as Lin (2013) recommends: the interacted regression is one
regression per arm, so the treatment coefficient's HC2 variance is the sum over the arms
of sum_i w_i^2 e_i^2 / (1 - h_ii), with e_i the arm's residual, h_ii its leverage and
w_i the unit's weight in the arm's fitted mean at the overall covariate mean. Leverages
are per unit, so this needs one more pass over the units with the arm's constants
(`LinArm`): `hc2_sum` here (numpy), `query.hc2_sql` in SQL, the same formula.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def quadratic_terms(
    cov: np.ndarray, grad: np.ndarray, cov_idx: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-unit variance of the metric, its covariances with the covariates, and theirs.

    `cov` is the sample covariance of all variables, `batch + (k, k)`; `grad` the metric's
    gradient, `batch + (k,)`; returns shapes `batch`, `batch + (p,)`, `batch + (p, p)`.
    """
    idx = list(cov_idx)
    s_gg = np.einsum("...i,...ij,...j->...", grad, cov, grad)
    s_hg = np.einsum("...hj,...j->...h", cov[..., idx, :], grad)
    s_hh = cov[..., idx, :][..., :, idx]
    return s_gg, s_hg, s_hh


def pooled_theta(
    s_hh: Sequence[np.ndarray], s_hg: Sequence[np.ndarray], n: Sequence[np.ndarray]
) -> np.ndarray:
    """One slope for all arms: within-arm scatter matrices summed, weights n - 1.

    Arms with fewer than two users carry no within-arm information and are skipped; a
    covariate with no variance gets slope 0 (the pseudo-inverse), i.e. no adjustment.
    """
    a = np.zeros(np.broadcast_shapes(*(x.shape for x in s_hh)))
    b = np.zeros(np.broadcast_shapes(*(x.shape for x in s_hg)))
    for hh, hg, na in zip(s_hh, s_hg, n, strict=True):
        w = np.where(np.asarray(na) >= 2, np.asarray(na, dtype=float) - 1.0, 0.0)
        a = a + np.nan_to_num(hh) * w[..., None, None]
        b = b + np.nan_to_num(hg) * w[..., None]
    return _solve(a, b)


def lin_theta(s_hh: np.ndarray, s_hg: np.ndarray) -> np.ndarray:
    """The arm's own slope (the interacted regression)."""
    return _solve(np.nan_to_num(s_hh), np.nan_to_num(s_hg))


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("...ij,...j->...i", np.linalg.pinv(a), b)


def adjusted_variance(
    s_gg: np.ndarray, s_hg: np.ndarray, s_hh: np.ndarray, theta: np.ndarray
) -> np.ndarray:
    """Per-unit variance of metric - theta' covariates (theta taken as known)."""
    return (
        s_gg
        - 2.0 * np.einsum("...h,...h->...", theta, s_hg)
        + np.einsum("...h,...hk,...k->...", theta, s_hh, theta)
    )


@dataclass(frozen=True, slots=True, eq=False)
class LinArm:
    """One arm's constants for its HC2 sum; arrays of the batch shape.

    `mean` (k,) the arm's variable means; `grad` (k,) the metric's gradient (a mean: a unit
    vector; a ratio: its linearization); `cov_idx` the covariates' positions; `theta` (p,)
    the arm's slope; `s_inv` (p, p) the inverse scatter matrix of its covariates;
    `toward` (p,) = s_inv (overall covariate mean - arm's); `n` its users.
    """

    mean: np.ndarray
    grad: np.ndarray
    cov_idx: tuple[int, ...]
    theta: np.ndarray
    s_inv: np.ndarray
    toward: np.ndarray
    n: np.ndarray


def lin_arm(
    mu: np.ndarray,
    grad: np.ndarray,
    cov_idx: Sequence[int],
    s_hh: np.ndarray,
    theta: np.ndarray,
    centre: np.ndarray,
    n: np.ndarray,
) -> LinArm:
    idx = tuple(cov_idx)
    nn = np.asarray(n, dtype=float)[..., None, None]
    with np.errstate(invalid="ignore"):
        s_inv = np.linalg.pinv(np.nan_to_num(s_hh) * (nn - 1.0))  # scatter = (n - 1) cov
    toward = np.einsum("...hk,...k->...h", s_inv, centre - mu[..., list(idx)])
    return LinArm(mu, grad, idx, theta, s_inv, toward, np.asarray(n, dtype=float))


def hc2_sum(units: np.ndarray, arm: LinArm) -> np.ndarray:
    """sum_i w_i^2 e_i^2 / (1 - h_ii) over one arm's units, shape `batch + (units, k)`:
    the HC2 variance of the arm's Lin-adjusted value (for tests, simulations and as the
    reference of the SQL pass; the product runs the same formula in SQL)."""
    x = np.asarray(units, dtype=float)
    centred = x - arm.mean[..., None, :]
    d = centred[..., list(arm.cov_idx)]
    e = np.einsum("...uk,...k->...u", centred, arm.grad) - np.einsum(
        "...uh,...h->...u", d, arm.theta
    )
    n = arm.n[..., None]
    h = 1.0 / n + np.einsum("...uh,...hk,...uk->...u", d, arm.s_inv, d)
    w = 1.0 / n + np.einsum("...uh,...h->...u", d, arm.toward)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(w**2 * e**2 / (1.0 - h), axis=-1)
