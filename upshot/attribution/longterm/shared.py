"""The surrogate index for many experiments on one history, the shared nuisances fit once.

Projecting K message classes of a window with `surrogate_index_outcomes` one class at a
time refits, K times over, the two nuisances that are learned on the (large) history:

- h = nu(s, x) = E[Y | S, X, G = history] is learned on the history rows only, so with
  the same history folds it is the *same* cross-fitted model for every class: here it is
  fit once and its predictions are shared (identical numbers to the per-class path);
- gamma_c(s, x) = P(G = history | S, X, G in {history, class c}) enters the influence
  function only through the density ratio (1 - gamma_c)/gamma_c = p_c(s, x)/p_H(s, x).
  One multinomial logistic model of P(G = g | S, X) over the history and all K classes
  gives every ratio at once, gamma_c = p_H / (p_H + p_c): in a multinomial logit the log
  odds of any two groups are a linear function of the features, which is exactly the
  binary logistic model the per-class path fits, so both estimate the same gamma_c (the
  fits differ by the penalty and by the rows that inform the shared coefficients, a
  difference of estimation error, not of target). The Chen & Ritzwoller influence function
  is unchanged: gamma_c is still cross-fitted (pooled folds = the history folds then each
  class's folds, the per-class path's pooled folds restricted to its rows), and only
  consistency of the nuisances is required of it.

The nuisances that depend on the class (its propensities P(W | X), P(W | S, X) and its arm
means) are fitted per class on its own rows, as before.

`history_share="binary"` (the default) fits gamma_c per class, from every row of the class
and at most `share_ratio` history rows per class row (`crossfit.fit_history_share`, a
case-control sample with the log-odds shifted back; `share_ratio=None`: every history
row, the per-class path's numbers exactly, h shared); `"multinomial"` fits the one model
above. With the default spline
learners the multinomial fit (L-BFGS, Newton being quadratic in columns x groups) was
*slower* than the K binary Newton fits in `benchmarks/bench_longterm.py`, so it is opt-in
until a faster multinomial solver is found; its estimates are within 0.02 se of the
binary ones (`tests/attribution/longterm/test_shared.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from upshot.attribution.longterm.crossfit import (
    SHARE_RATIO,
    Learners,
    crossfit,
    default_learners,
    fit_history_share,
    fold_ids,
)
from upshot.attribution.longterm.surrogate import (
    FoldPlan,
    SurrogateEstimate,
    estimates_from,
    fit_nuisances,
)


@dataclass(frozen=True)
class ClassExperiment:
    """One class's experiment: treatment w (n,), surrogates s (n, k), covariates x (n, p)
    and the logged propensity (n,) of a targeted design, or None to estimate it."""

    w: np.ndarray
    s: np.ndarray
    x: np.ndarray
    propensity: np.ndarray | None = None


def class_folds(
    n_history: int, sizes: Sequence[int], n_folds: int, seed: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Seeded fold labels: the history's, then each experiment's."""
    rng = np.random.default_rng(seed)
    history = fold_ids(n_history, n_folds, rng)
    return history, [fold_ids(n, n_folds, rng) for n in sizes]


def _multinomial_oof(
    template: object, features: np.ndarray, groups: np.ndarray, folds: np.ndarray
) -> np.ndarray:
    """Out-of-fold P(G = g | features) for every row, one column per group 0..G-1."""
    from sklearn.base import clone

    out = np.zeros((features.shape[0], int(groups.max()) + 1))
    for k in np.unique(folds):
        held = folds == k
        model = clone(template).fit(features[~held], groups[~held])
        out[np.ix_(held, model.classes_.astype(int))] = model.predict_proba(features[held])
    return out


def surrogate_index_classes(
    history_surrogates: np.ndarray,
    history_covariates: np.ndarray,
    history_outcomes: np.ndarray,
    experiments: Sequence[ClassExperiment],
    *,
    surrogate_names: tuple[str, ...] | None = None,
    n_folds: int = 5,
    seed: int = 0,
    alpha: float = 0.05,
    learners: Learners | None = None,
    history_share: str = "binary",
    share_ratio: float | None = SHARE_RATIO,
) -> list[list[SurrogateEstimate]]:
    """Per experiment, one `SurrogateEstimate` per column of `history_outcomes` (n_h, m),
    as `surrogate_index_outcomes` would give with these folds (`class_folds`), h fitted
    once, the history share per class or by one multinomial model (see the module doc).
    The binary history share learns from at most `share_ratio` history rows per row of
    the class (`crossfit.fit_history_share`; None: every history row, the per-class path's
    numbers exactly)."""
    if history_share not in ("multinomial", "binary"):
        raise ValueError(f"history_share == {history_share!r}, must be multinomial or binary")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha == {alpha}, must be in (0, 1)")
    learners = learners or default_learners()
    n_h = history_surrogates.shape[0]
    y_h = np.asarray(history_outcomes, dtype=float).reshape(n_h, -1)
    m = y_h.shape[1]
    sizes = [e.w.shape[0] for e in experiments]
    fold_h, fold_e = class_folds(n_h, sizes, n_folds, seed)
    # pooled rows: the history, then each experiment
    s_all = np.vstack([history_surrogates, *(e.s for e in experiments)]).astype(float)
    x_all = np.vstack([history_covariates, *(e.x for e in experiments)]).astype(float)
    sx = np.hstack([s_all, x_all])
    is_h = np.arange(sx.shape[0]) < n_h
    y_pad = np.vstack([y_h, np.zeros((sx.shape[0] - n_h, m))])
    nu = crossfit(learners.regressor, sx, y_pad, is_h, fold_h, classifier=False)
    starts = np.cumsum([n_h, *sizes])
    probs = None
    if history_share == "multinomial":
        groups = np.repeat(np.arange(len(sizes) + 1), [n_h, *sizes])
        template = learners.multiclass or learners.classifier
        probs = _multinomial_oof(template, sx, groups, np.concatenate([fold_h, *fold_e]))
    out = []
    for c, exp in enumerate(experiments):
        n_e = sizes[c]
        idx = np.concatenate([np.arange(starts[c], starts[c] + n_e), np.arange(n_h)])
        w = np.asarray(exp.w, dtype=float)
        plan = FoldPlan(fold_e[c], fold_e[c], fold_e[c], fold_h,
                        np.concatenate([fold_e[c], fold_h]))  # fmt: skip
        if probs is not None:
            p_h, p_c = probs[idx, 0], probs[idx, c + 1]
            gamma = p_h / np.maximum(p_h + p_c, np.finfo(float).tiny)
        else:
            gamma = fit_history_share(learners.classifier, sx[idx], n_e, plan.pooled,
                                      ratio=share_ratio, seed=seed + 1 + c)  # fmt: skip
        y = np.vstack([np.zeros((n_e, m)), y_h])
        nuis = fit_nuisances(
            w, s_all[idx], x_all[idx], y, n_e, plan, learners,
            propensity=exp.propensity, extra_targets=s_all[idx[:n_e]],
            nu=nu[idx], gamma=gamma,
        )  # fmt: skip
        out.append(estimates_from(nuis, w, s_all[idx[:n_e]], y_h, surrogate_names, alpha))
    return out
