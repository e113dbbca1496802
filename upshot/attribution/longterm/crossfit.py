"""Cross-fitted nuisance predictions for the surrogate index: folds, learners, one fit.

Every nuisance is learned on a subset of the pooled rows (the history, the experiment, or
one arm of it) and predicted on every row: rows of the subset get the prediction of the
model that did not see their fold, the other rows that of a model fit on the whole subset
(they never took part in its fit, so no own-observation bias enters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# propensities and the history share are kept inside [CLIP, 1 - CLIP]: the influence
# function divides by them, and a fitted 0 or 1 is a model artefact, not a certainty
CLIP = 0.01


@dataclass(frozen=True, slots=True)
class Learners:
    """scikit-learn templates, cloned for every fit: a regressor (`predict`) for h(S, X)
    and the arm means, a classifier (`predict_proba`) for the propensities and for
    P(history | S, X); `multiclass` (None: the classifier) for P(G = g | S, X) over the
    history and several experiments at once (`shared`)."""

    regressor: Any
    classifier: Any
    multiclass: Any = None


def default_learners() -> Learners:
    """Additive cubic splines (5 knots per column): ridge for means, logistic for
    probabilities. Smooth nonlinear h and propensities, fast at millions of rows; pass
    your own `Learners` (e.g. gradient boosting) when interactions matter."""
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import SplineTransformer, StandardScaler

    def splines() -> Any:
        return SplineTransformer(n_knots=5, degree=3, extrapolation="linear")

    return Learners(
        regressor=make_pipeline(StandardScaler(), splines(), RidgeCV(alphas=(1e-3, 1e-1, 10.0))),
        classifier=make_pipeline(
            StandardScaler(), splines(), LogisticRegression(C=1.0, max_iter=2000)
        ),
    )


def indicator_learners() -> Learners:
    """The default learners with 0/1 columns passed through rather than expanded into
    splines (`IndicatorSplines`): the same additive model on designs with many one-hot
    covariates (the warehouse's users columns), at a fraction of the cost."""
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.pipeline import make_pipeline

    from upshot.attribution.longterm.indicator import IndicatorSplines

    return Learners(
        regressor=make_pipeline(IndicatorSplines(), RidgeCV(alphas=(1e-3, 1e-1, 10.0))),
        classifier=make_pipeline(
            IndicatorSplines(), LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=200)
        ),
        # Newton on a multinomial model costs (columns x groups)^2 per row; L-BFGS does not
        multiclass=make_pipeline(IndicatorSplines(), LogisticRegression(C=1.0, max_iter=500)),
    )


def fold_ids(n: int, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Balanced random fold labels 0..n_folds-1 for n rows."""
    ids = np.arange(n) % n_folds
    rng.shuffle(ids)
    return ids


def crossfit(
    template: Any,
    features: np.ndarray,
    target: np.ndarray,
    train: np.ndarray,
    folds: np.ndarray,
    *,
    classifier: bool,
) -> np.ndarray:
    """Predictions for every row of `features` (shape (n, p); p may be 0).

    `train` (bool, n) marks the rows the model learns `target` from; `folds` (int, one
    label per training row, in row order) splits them. Training rows are predicted out
    of fold, the others by a model fit on all training rows. A classifier predicts
    P(target == 1); a regressor's `target` may be (n, m): m outcomes in one fit when the
    regressor takes several (ridge does), one fit each otherwise.
    """
    from sklearn.base import clone
    from sklearn.dummy import DummyClassifier, DummyRegressor

    if features.shape[1] == 0:  # no columns: the model is the training mean
        template = DummyClassifier(strategy="prior") if classifier else DummyRegressor()
    elif target.ndim == 2 and not _multi_output(template):
        from sklearn.multioutput import MultiOutputRegressor

        template = MultiOutputRegressor(template)
    from threadpoolctl import threadpool_limits

    rows = np.flatnonzero(train)
    out = np.empty(target.shape)

    def fit_predict(fit_rows: np.ndarray, predict_rows: np.ndarray) -> None:
        model = clone(template).fit(features[fit_rows], target[fit_rows])
        x = features[predict_rows]
        pred = model.predict_proba(x)[:, 1] if classifier else model.predict(x)
        out[predict_rows] = pred.reshape((len(predict_rows), *target.shape[1:]))

    # one BLAS thread: the designs have tens of columns, where threads gain little alone
    # and, on a loaded machine, oversubscribed threads made the world test's pass 5x slower
    # (107-136 s against 19-26 s, load 8-9 on 2 cores; same numbers either way)
    with threadpool_limits(limits=1):
        for k in np.unique(folds):
            held = folds == k
            fit_predict(rows[~held], rows[held])
        others = np.flatnonzero(~train)
        if others.size:
            fit_predict(rows, others)
    return out


def _multi_output(template: Any) -> bool:
    """Whether a regressor fits a 2-D target in one go (scikit-learn's estimator tag)."""
    from sklearn.utils import get_tags

    return bool(get_tags(template).target_tags.multi_output)
