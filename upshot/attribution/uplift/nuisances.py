"""The nuisances: per-arm outcome models fitted once per class, and what EconML is handed.

`arm_outcomes` cross-fits E[Y | x, arm] for every objective of a class at once, sharing
the training rows (and LightGBM's binned dataset) across objectives. `KnownOutcome`
hands those predictions to EconML the way `KnownPropensity` hands it the propensity.

EconML fits its treatment nuisance on `hstack([X, W])`. upshot passes the propensity of
each decision (logged, known by design, or cross-fitted once per class) as the last column
of `W`, and `KnownPropensity` returns it instead of learning anything: the treatment
model is then shared by every objective of a class instead of refitted per objective.

`Nuisance*` wraps a model so that it trains on one thread and predicts on the class's
share, and has no `score`, so EconML does not predict every test fold a second time just
to record a goodness-of-fit number that upshot never reads. How many rows a nuisance
trains on is set by the cross-fitting folds (`sampling.capped_folds`), not here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

# OpenMP threads that spin while waiting make LightGBM several times slower whenever other
# processes hold the CPUs (parallel --jobs, a busy CI box). Set before scikit-learn or
# LightGBM load the OpenMP runtime, which reads it once; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils.metaestimators import available_if


def _no_score(_: Any) -> bool:
    return False


class KnownPropensity(ClassifierMixin, BaseEstimator):
    """A 'classifier' whose P(treated | row) is the row's last column, already known.

    The treatment is 0/1 (checked where the frame comes in), so nothing is learnt.
    """

    def fit(self, X: np.ndarray, y: np.ndarray) -> KnownPropensity:  # noqa: ARG002
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = np.asarray(X)[:, -1].astype(np.float64)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    @available_if(_no_score)
    def score(self, X: np.ndarray, y: np.ndarray, sample_weight: Any = None) -> float:
        raise NotImplementedError  # pragma: no cover - hidden by available_if


def _fitted(estimator: Any, X: np.ndarray, y: np.ndarray, threads: int) -> Any:
    model = clone(estimator)
    model.fit(X, y)
    # prediction parallelises well; training is left single-threaded (see `base_model`)
    if "n_jobs" in model.get_params(deep=False):
        model.set_params(n_jobs=threads)
    return model


class NuisanceRegressor(RegressorMixin, BaseEstimator):
    """`estimator`, trained as given and predicting with `threads` threads; no `score`."""

    def __init__(self, estimator: Any = None, threads: int = 1) -> None:
        self.estimator = estimator
        self.threads = threads

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: Any = None) -> NuisanceRegressor:  # noqa: ARG002
        self.estimator_ = _fitted(self.estimator, X, y, self.threads)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator_.predict(X))

    @available_if(_no_score)
    def score(self, X: np.ndarray, y: np.ndarray, sample_weight: Any = None) -> float:
        raise NotImplementedError  # pragma: no cover - hidden by available_if


class NuisanceClassifier(ClassifierMixin, BaseEstimator):
    """`estimator`, trained as given and predicting with `threads` threads; no `score`."""

    def __init__(self, estimator: Any = None, threads: int = 1) -> None:
        self.estimator = estimator
        self.threads = threads

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: Any = None) -> NuisanceClassifier:  # noqa: ARG002
        self.estimator_ = _fitted(self.estimator, X, y, self.threads)
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator_.predict_proba(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator_.predict(X))

    @available_if(_no_score)
    def score(self, X: np.ndarray, y: np.ndarray, sample_weight: Any = None) -> float:
        raise NotImplementedError  # pragma: no cover - hidden by available_if


def base_model(kind: str, *, binary: bool, seed: int) -> Any:
    """An unfitted nuisance model: `lightgbm` (boosted trees) or `linear`.

    LightGBM trains on one thread: at these sizes its threads gain little even on an idle
    machine and lose a lot on a busy one, and `--jobs` runs whole classes side by side.
    """
    if kind == "lightgbm":
        from lightgbm import LGBMClassifier, LGBMRegressor

        # deterministic + row-wise histograms: the same inputs give the same trees
        params: dict[str, Any] = {
            "n_estimators": 100,
            "learning_rate": 0.1,
            "num_leaves": 31,
            "min_child_samples": 20,
            "random_state": seed,
            "n_jobs": 1,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }
        return LGBMClassifier(**params) if binary else LGBMRegressor(**params)
    if kind == "linear":
        from sklearn.linear_model import LinearRegression, LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if binary:
            return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        return LinearRegression()
    raise ValueError(f"nuisance == {kind!r}, must be lightgbm or linear")


def nuisance_model(kind: str, *, binary: bool, seed: int, threads: int) -> Any:
    """`base_model` predicting with `threads`, without `score`; a classifier when `binary`."""
    model = base_model(kind, binary=binary, seed=seed)
    return NuisanceClassifier(model, threads) if binary else NuisanceRegressor(model, threads)


class KnownOutcome(RegressorMixin, BaseEstimator):
    """An outcome 'model' reading cross-fitted per-arm predictions from the row's last columns.

    EconML's outcome nuisance sees `hstack([X, W])` with `W = [mu0, mu1, p]`
    (`outcome_columns`): for DML it returns E[Y | x] = p·mu1 + (1 − p)·mu0. The DR
    learner's regression sees `[X, W, T]` (`by_arm`): it returns mu_T of the row.
    Nothing is learnt: `arm_outcomes` already fitted the models, once per class.
    """

    def __init__(self, by_arm: bool = False) -> None:
        self.by_arm = by_arm

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: Any = None) -> KnownOutcome:  # noqa: ARG002
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if self.by_arm:
            return np.where(X[:, -1] == 1, X[:, -3], X[:, -4])
        mu0, mu1, p = X[:, -3], X[:, -2], X[:, -1]
        return p * mu1 + (1 - p) * mu0

    @available_if(_no_score)
    def score(self, X: np.ndarray, y: np.ndarray, sample_weight: Any = None) -> float:
        raise NotImplementedError  # pragma: no cover - hidden by available_if


def outcome_columns(mu: np.ndarray, p: np.ndarray) -> np.ndarray:
    """`W` for EconML: (n, 3) = [mu0, mu1, p], read by `KnownOutcome` and `KnownPropensity`."""
    return np.column_stack([mu[:, 0], mu[:, 1], p])


def arm_outcomes(
    Y: np.ndarray,
    discrete: Sequence[bool],
    T: np.ndarray,
    X: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    kind: str,
    seed: int,
    threads: int,
    spare: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """Cross-fitted E[Y_j | x, arm] of every column of `Y` (n, m): (n, m, 2), arm 0 then 1.

    Each test part is predicted by models trained on its fold's training part (capped by
    `sampling.capped_folds`), one per fold × arm × column, classifiers where `discrete`.
    What the columns share is built once per fold × arm: the training rows and, for
    LightGBM, the binned Dataset (the bins depend on X, not on the label). Per-arm models
    make the doubly robust score right when the propensity is estimated and the effect is
    not linear in x, where the linear θ(x) of DML is not (issue 13, item 6).

    LightGBM boosts from a linear fit (`_lightgbm_arms`). `spare` (per fold: training
    rows the cap left out, `sampling.spare_rows`) lets it stop early: trees are added
    while the loss on the arm's spare rows falls (at most 100, as without them). Most
    of the 100 trees only fit noise (on the benchmark's data the loss stops falling after
    1 to 40), and every tree costs a pass over the training rows and over every row
    predicted.
    """
    n, m = Y.shape
    mu = np.empty((n, m, 2))
    for k, (train, test) in enumerate(folds):
        for arm in (0, 1):
            rows = train[T[train] == arm]
            if kind == "lightgbm":
                held = spare[k] if spare is not None else np.empty(0, dtype=np.int64)
                held = held[T[held] == arm]
                valid = (X[held], Y[held]) if len(held) >= MIN_STOPPING_ROWS else None
                mu[test, :, arm] = _lightgbm_arms(
                    X[rows], Y[rows], discrete, X[test], seed, threads, valid
                )
            else:
                mu[test, :, arm] = _linear_arms(X[rows], Y[rows], discrete, X[test], seed, threads)
    return mu


MIN_STOPPING_ROWS = 500  # spare rows of an arm below which its trees do not stop early
# With a stopping rule on held-out rows, a larger step reaches the same held-out loss in
# fewer trees, and every tree costs a pass over the training rows and over every row
# predicted. Trees from scratch: on benchmarks/bench_uplift.py data (100k decisions per
# class) 0.15 with 5 trees of patience, instead of 0.1 and 10, took ~30% less CPU. On top
# of the linear start (`_linear_starts`) few trees remain useful: 0.1 with 5 trees of
# patience fits as well as 0.1 with 10 and better than 0.15 with 5 (squared error against
# the truth 0.018 vs 0.018 vs 0.024 on test_early_stopping.py's world, seed 5), and it is
# the cheapest of the three; tests/attribution/uplift/test_early_stopping.py checks it.
# Without spare rows: 0.1 and 100 trees, as before.
STOPPING_ROUNDS = 5  # trees added without a better loss on the spare rows before stopping
STOPPING_LEARNING_RATE = 0.1


def _lgbm_params(seed: int) -> dict[str, Any]:
    """LightGBM's native names for `base_model`'s LGBM parameters (the same trees)."""
    return {
        "learning_rate": 0.1,
        "num_leaves": 31,
        "min_data_in_leaf": 20,
        "min_sum_hessian_in_leaf": 1e-3,
        "seed": seed,
        "num_threads": 1,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }


def _lightgbm_arms(
    X: np.ndarray,
    Y: np.ndarray,
    discrete: Sequence[bool],
    X_test: np.ndarray,
    seed: int,
    threads: int,
    valid: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Boosted trees on top of a least-squares fit (`_linear_starts`): its prediction is
    LightGBM's `init_score`, so the trees fit only what the linear fit misses. Where data
    are sparse (the tails of a targeted class, whose few decisions of one arm carry large
    weights in the doubly robust score) the linear trend carries on instead of a flat
    leaf average; from scratch, the tree models' tail errors times the propensity's
    biased the ATE (issue 13 item 6, `propensity.py`)."""
    import lightgbm as lgb

    params = _lgbm_params(seed)
    if valid is not None:
        params["learning_rate"] = STOPPING_LEARNING_RATE
    starts = [X, X_test] + ([valid[0]] if valid is not None else [])
    base = _linear_starts(X, Y, discrete, starts, seed)
    data = lgb.Dataset(X, label=Y[:, 0], params=params, free_raw_data=False).construct()
    # the held-out rows are binned with the training rows' bins, once for every column
    held = None
    if valid is not None:
        held = lgb.Dataset(valid[0], label=valid[1][:, 0], reference=data).construct()
    out = np.empty((len(X_test), Y.shape[1]))
    for j in range(Y.shape[1]):
        data.set_label(Y[:, j])
        data.set_init_score(np.ascontiguousarray(base[0][:, j]))
        objective = "binary" if discrete[j] else "regression"
        extra: dict[str, Any] = {}
        if held is not None and valid is not None:
            held.set_label(valid[1][:, j])
            held.set_init_score(np.ascontiguousarray(base[2][:, j]))
            stop = lgb.early_stopping(STOPPING_ROUNDS, first_metric_only=True, verbose=False)
            extra = {"valid_sets": [held], "callbacks": [stop]}
        booster = lgb.train({**params, "objective": objective}, data, num_boost_round=100, **extra)
        # the best iteration when it stopped early, every tree otherwise; the trees' raw
        # score adds to the linear start (log-odds for a classifier)
        raw = base[1][:, j] + booster.predict(X_test, raw_score=True, num_threads=threads)
        out[:, j] = 1 / (1 + np.exp(-raw)) if discrete[j] else raw
    return out


def _linear_starts(
    X: np.ndarray,
    Y: np.ndarray,
    discrete: Sequence[bool],
    at: Sequence[np.ndarray],
    seed: int,
) -> list[np.ndarray]:
    """The starts of every column of `Y`, at each of `at`: the least-squares fit on `X`
    (one solve for every numeric column); the log-odds of its mean where `discrete`."""
    out = [np.empty((len(rows), Y.shape[1])) for rows in at]
    numeric = [j for j in range(Y.shape[1]) if not discrete[j]]
    if numeric:
        model = base_model("linear", binary=False, seed=seed).fit(X, Y[:, numeric])
        for o, rows in zip(out, at, strict=True):
            o[:, numeric] = np.asarray(model.predict(rows)).reshape(len(rows), -1)
    for j in range(Y.shape[1]):
        if discrete[j]:
            # a 0/1 objective starts from its log-odds, as LightGBM does by itself: a
            # logistic start per fold, arm and objective cost ~1/3 more CPU at 100k
            # decisions per class, and its outcomes are bounded, so the tails matter less
            share = float(np.clip(Y[:, j].mean(), 1e-12, 1 - 1e-12))
            for o in out:
                o[:, j] = math.log(share / (1 - share))
    return out


def logistic_start() -> Any:
    """The logistic regression the trees of a 0/1 target start from: standardized
    covariates, sklearn's default L2 penalty, Newton steps (lbfgs took ~2/3 of the
    nuisances' CPU at 100k decisions per class; Newton-Cholesky converges in a few
    steps when the rows far outnumber the covariates)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(solver="newton-cholesky"))


def _linear_arms(
    X: np.ndarray,
    Y: np.ndarray,
    discrete: Sequence[bool],
    X_test: np.ndarray,
    seed: int,
    threads: int,  # noqa: ARG001
) -> np.ndarray:
    out = np.empty((len(X_test), Y.shape[1]))
    numeric = [j for j in range(Y.shape[1]) if not discrete[j]]
    if numeric:  # one least-squares solve serves every numeric column
        model = base_model("linear", binary=False, seed=seed).fit(X, Y[:, numeric])
        out[:, numeric] = np.asarray(model.predict(X_test)).reshape(len(X_test), -1)
    for j in range(Y.shape[1]):
        if discrete[j]:
            model = base_model("linear", binary=True, seed=seed).fit(X, Y[:, j])
            out[:, j] = model.predict_proba(X_test)[:, 1]
    return out
