"""Is the estimated heterogeneity real? Qini, AUUC and calibration on held-out rows.

Every row is scored by a CATE model that never saw its fold (`out_of_fold_linear`, or a
forest's out-of-bag prediction) and compared with its doubly robust score `φ_i`, whose
mean over any group of rows is an unbiased estimate of that group's average effect when
the propensity is right (the nuisances behind `φ_i` are cross-fitted too).

The definitions are those of EconML's `DRTester` (Chernozhukov et al. 2022; Dwivedi et al.
2020; Radcliffe 2007), computed without its bootstrap so they are deterministic:

- Qini(q) = P(τ̂ ≥ μ̂_q) · (mean φ over {τ̂ ≥ μ̂_q} − mean φ), the coefficient its
  integral over q ∈ [5%, 95%]; 0 for a model that ranks at random, > 0 when the rows it
  ranks first gain more;
- AUUC: the same integral of the TOC curve, mean φ over {τ̂ ≥ μ̂_q} − mean φ;
- calibration R² = 1 − Σ_g π_g |mean φ_g − mean τ̂_g| / Σ_g π_g |mean φ_g − mean φ| over
  quantile groups of τ̂: 1 when the predicted group effects match the realised ones.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# the percentiles of predicted CATE at which DRTester evaluates its curves
PERCENTILES = np.linspace(5, 95, 50)


@dataclass(frozen=True, slots=True)
class CateEvaluation:
    """Held-out evaluation of one CATE model; coefficients in the objective's units."""

    qini: float
    qini_se: float
    auuc: float
    auuc_se: float
    calibration: float


def uplift_coefficient(
    cate_train: np.ndarray,
    cate_val: np.ndarray,
    dr_val: np.ndarray,
    *,
    metric: str = "qini",
    percentiles: np.ndarray = PERCENTILES,
) -> tuple[float, float]:
    """The Qini (`metric="qini"`) or AUUC (`"toc"`) coefficient and its standard error.

    `cate_train` sets the cut points (quantiles of predicted CATE); `cate_val` and
    `dr_val` (n,) are the held-out predictions and doubly robust scores.
    """
    if metric not in ("qini", "toc"):
        raise ValueError(f"metric == {metric!r}, must be qini or toc")
    qini = metric == "qini"
    cuts = np.percentile(cate_train, percentiles)[:-1]  # the last cut closes the integral
    n = len(dr_val)
    ate = dr_val.mean()
    # the rows above each cut, from one sort: how many, and the sum of their DR scores
    order = np.argsort(cate_val, kind="stable")
    suffix = np.concatenate([np.cumsum(dr_val[order][::-1])[::-1], [0.0]])
    count = n - np.searchsorted(cate_val[order], cuts, side="left")
    step = np.where(count > 0, np.diff(percentiles) / 100, 0.0)  # an empty cut adds nothing
    share = count / n
    gain = suffix[n - count] / np.maximum(count, 1) - ate
    coefficient = float(np.sum(step * (share * gain if qini else gain)))
    # Σ_j step_j ψ_ij with ψ_ij = (dr_i − ate)(w_j 1[row i above cut j] − b_j) − value_j,
    # w_j = 1 and b_j = share_j for the Qini, w_j = 1/share_j and b_j = 1 for the TOC; row i
    # is above exactly the cuts <= its prediction, so no n x cuts matrix is needed
    w = step * (1.0 if qini else 1 / np.maximum(share, 1 / n))
    above = np.concatenate([[0.0], np.cumsum(w)])[np.searchsorted(cuts, cate_val, side="right")]
    psi = (dr_val - ate) * (above - np.sum(step * (share if qini else 1.0))) - coefficient
    return coefficient, float(np.sqrt(np.mean(psi**2) / n))


def calibration_r2(
    cate_train: np.ndarray, cate_val: np.ndarray, dr_val: np.ndarray, *, groups: int = 4
) -> float:
    """DRTester's calibration R² over `groups` quantile groups of predicted CATE."""
    cuts = np.quantile(cate_train, np.linspace(0, 1, groups + 1))
    ate = dr_val.mean()
    model_gap = 0.0
    ate_gap = 0.0
    for lo, hi in itertools.pairwise(cuts):
        inside = (cate_val >= lo) & (cate_val <= hi)
        if not inside.any():
            continue
        share = inside.mean()
        gate = dr_val[inside].mean()
        model_gap += share * abs(gate - cate_val[inside].mean())
        ate_gap += share * abs(gate - ate)
    return float(1 - model_gap / ate_gap) if ate_gap > 0 else float("nan")


def evaluate_cate(cate_oof: np.ndarray, scores: np.ndarray, *, groups: int = 4) -> CateEvaluation:
    """Qini, AUUC and calibration of out-of-fold CATE predictions against DR scores."""
    keep = np.isfinite(cate_oof) & np.isfinite(scores)
    cate, dr = cate_oof[keep], scores[keep]
    if len(dr) < 2 * groups or np.ptp(cate) == 0:
        nan = float("nan")
        return CateEvaluation(nan, nan, nan, nan, nan)
    qini, qini_se = uplift_coefficient(cate, cate, dr, metric="qini")
    auuc, auuc_se = uplift_coefficient(cate, cate, dr, metric="toc")
    return CateEvaluation(
        qini, qini_se, auuc, auuc_se, calibration_r2(cate, cate, dr, groups=groups)
    )


def out_of_fold_linear(
    features: np.ndarray,
    target: np.ndarray,
    multiplier: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Held-out predictions `features_i β₋ₖ` of a linear final stage refitted without fold k.

    β₋ₖ minimises Σ_{j∉k} (target_j − multiplier_j · features_j β)²: the R-learner final
    stage of DML with `target` = outcome residuals and `multiplier` = treatment residuals,
    or the DR-learner's with `target` = DR scores and `multiplier` = 1.
    """
    out = np.full(len(target), np.nan)
    for train, test in folds:
        design = features[train] * multiplier[train, None]
        # normal equations: k x k, cheap for millions of rows; lstsq copes with a singular one
        beta, *_ = np.linalg.lstsq(design.T @ design, design.T @ target[train], rcond=None)
        out[test] = features[test] @ beta
    return out
