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
    return _coefficient(_Ranked.of(cate_train, cate_val, dr_val, percentiles), metric == "qini")


@dataclass(frozen=True, slots=True)
class _Ranked:
    """What the Qini and the AUUC share: the cut points, how many rows lie above each,
    the sum of their DR scores, and which cuts each row is above (one sort for both)."""

    cuts: np.ndarray
    step: np.ndarray
    count: np.ndarray
    above_sum: np.ndarray
    cuts_below: np.ndarray
    dr_val: np.ndarray

    @staticmethod
    def of(
        cate_train: np.ndarray, cate_val: np.ndarray, dr_val: np.ndarray, percentiles: np.ndarray
    ) -> _Ranked:
        cuts = np.percentile(cate_train, percentiles)[:-1]  # the last cut closes the integral
        n = len(dr_val)
        # the rows above each cut, from one sort: how many, and the sum of their DR scores
        order = np.argsort(cate_val, kind="stable")
        suffix = np.concatenate([np.cumsum(dr_val[order][::-1])[::-1], [0.0]])
        count = n - np.searchsorted(cate_val[order], cuts, side="left")
        step = np.where(count > 0, np.diff(percentiles) / 100, 0.0)  # an empty cut adds nothing
        below = np.searchsorted(cuts, cate_val, side="right")
        return _Ranked(cuts, step, count, suffix[n - count], below, dr_val)


def _coefficient(r: _Ranked, qini: bool) -> tuple[float, float]:
    n = len(r.dr_val)
    ate = r.dr_val.mean()
    share = r.count / n
    gain = r.above_sum / np.maximum(r.count, 1) - ate
    coefficient = float(np.sum(r.step * (share * gain if qini else gain)))
    # Σ_j step_j ψ_ij with ψ_ij = (dr_i − ate)(w_j 1[row i above cut j] − b_j) − value_j,
    # w_j = 1 and b_j = share_j for the Qini, w_j = 1/share_j and b_j = 1 for the TOC; row i
    # is above exactly the cuts <= its prediction, so no n x cuts matrix is needed
    w = r.step * (1.0 if qini else 1 / np.maximum(share, 1 / n))
    above = np.concatenate([[0.0], np.cumsum(w)])[r.cuts_below]
    psi = (r.dr_val - ate) * (above - np.sum(r.step * (share if qini else 1.0))) - coefficient
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
    ranked = _Ranked.of(cate, cate, dr, PERCENTILES)
    qini, qini_se = _coefficient(ranked, qini=True)
    auuc, auuc_se = _coefficient(ranked, qini=False)
    return CateEvaluation(
        qini, qini_se, auuc, auuc_se, calibration_r2(cate, cate, dr, groups=groups)
    )


@dataclass(frozen=True, slots=True)
class FoldSums:
    """What a linear final stage's cross-fitting shares across a class's objectives.

    The rows grouped by test fold (`order`, fold k's rows at `bounds[k]:bounds[k + 1]`),
    `features` in that order, `multiplier` in that order and, per fold, the Gram matrix
    Σ (mᵢxᵢ)(mᵢxᵢ)ᵀ over its test rows. A fold's training rows are the other folds' test
    rows, so its training Gram is a sum of the others': one pass over the rows serves
    every fold and every objective (only Σ mᵢxᵢ targetᵢ differs between objectives).
    """

    order: np.ndarray
    bounds: tuple[int, ...]
    features: np.ndarray
    multiplier: np.ndarray
    grams: tuple[np.ndarray, ...]


def fold_sums(
    features: np.ndarray,
    multiplier: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
) -> FoldSums | None:
    """`FoldSums` of `folds`, or None when their test parts do not partition the rows
    with each training part the rest (then `out_of_fold_linear` refits per fold)."""
    n = len(multiplier)
    sizes = [len(test) for _, test in folds]
    if sum(sizes) != n or any(len(train) != n - len(test) for train, test in folds):
        return None
    order = np.concatenate([test for _, test in folds])
    if np.any(np.bincount(order, minlength=n) != 1):
        return None
    bounds = tuple(int(b) for b in np.concatenate([[0], np.cumsum(sizes)]))
    ordered, m = features[order], multiplier[order]
    grams = []
    for lo, hi in itertools.pairwise(bounds):
        design = ordered[lo:hi] * m[lo:hi, None]
        grams.append(design.T @ design)
    return FoldSums(order, bounds, ordered, m, tuple(grams))


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
    `out_of_fold_from_sums` gives the same predictions from a class's `fold_sums`.
    """
    out = np.full(len(target), np.nan)
    for train, test in folds:
        design = features[train] * multiplier[train, None]
        # normal equations: k x k, cheap for millions of rows; lstsq copes with a singular one
        beta, *_ = np.linalg.lstsq(design.T @ design, design.T @ target[train], rcond=None)
        out[test] = features[test] @ beta
    return out


def out_of_fold_from_sums(target: np.ndarray, sums: FoldSums) -> np.ndarray:
    """`out_of_fold_linear` of `target` with the features, multiplier and folds of `sums`:
    per objective only Σ mᵢxᵢ targetᵢ per fold is new."""
    weighted = sums.multiplier * target[sums.order]
    parts = list(itertools.pairwise(sums.bounds))
    moments = [sums.features[lo:hi].T @ weighted[lo:hi] for lo, hi in parts]
    ordered = np.empty(len(target))
    for k, (lo, hi) in enumerate(parts):
        # fold k's training rows are every other fold's test rows (summed, not subtracted
        # from the total, so no precision is lost)
        gram = sum(g for j, g in enumerate(sums.grams) if j != k)
        moment = sum(v for j, v in enumerate(moments) if j != k)
        beta, *_ = np.linalg.lstsq(gram, moment, rcond=None)
        ordered[lo:hi] = sums.features[lo:hi] @ beta
    out = np.empty(len(target))
    out[sums.order] = ordered
    return out
