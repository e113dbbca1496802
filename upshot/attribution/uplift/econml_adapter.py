"""The EconML adapter: one class's propensity design, folds, and one objective's fit.

Per class, `upshot.attribution.uplift.classfit.fit_class` calls, in order:

1. `propensity_design`: the propensity `p_i` of each decision, shared by every objective.
   Randomized holdouts use the known (logged) propensity; targeted decisions the logged
   one; without a logged propensity it is cross-fitted once from the covariates. The
   share of decisions beyond [clip, 1 − clip] is the overlap diagnostic; `p` is clipped.
2. `stratified_folds`: cross-fitting folds stratified on `T` (every fold holds both
   arms), shared by every objective.
3. `nuisances.arm_outcomes` (called by `classfit`, once for all objectives): the
   cross-fitted per-arm outcome predictions mu0(x), mu1(x).
4. `fit_objective` per objective: the doubly robust (AIPW) scores `dr_scores`, ψ_i
   (E[ψ_i | x_i] = τ(x_i) when the propensity or the outcome models are right), whose
   mean is the ATE and whose means over segment cells are the GATEs, SE sd/√n, for
   every estimator. EconML's LinearDML / LinearDRLearner / CausalForestDML is given the
   propensity and the outcomes as known models (`KnownPropensity`, `KnownOutcome`,
   through `W`), so it fits only its final stage; only the causal forest needs it (the
   sensitivity bounds come from EconML's functions on the same nuisances). It returns
   our `ObjectiveFit`: ATE, GATEs, ψ (for the joint covariance across objectives), the
   held-out CATE evaluation and the sensitivity bounds when asked.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from upshot.attribution.uplift.evaluate import (
    CateEvaluation,
    FoldSums,
    evaluate_cate,
    fold_sums,
    out_of_fold_from_sums,
    out_of_fold_linear,
)
from upshot.attribution.uplift.nuisances import (
    KnownOutcome,
    KnownPropensity,
    nuisance_model,
    outcome_columns,
)
from upshot.attribution.uplift.propensity import boosted_propensity
from upshot.attribution.uplift.sensitivity import Sensitivity, sensitivity

if TYPE_CHECKING:
    from upshot.config import Uplift

ESTIMATORS = ("linear_dml", "dr_learner", "causal_forest")
NUISANCES = ("lightgbm", "linear")


@dataclass(frozen=True, slots=True)
class Effect:
    """An average effect with its standard error, CI and two-sided p-value."""

    ate: float
    se: float
    ci_lower: float
    ci_upper: float
    pvalue: float


@dataclass(frozen=True, slots=True)
class ObjectiveFit:
    """What `fit_objective` returns: our record, never the EconML object.

    `scores` (n,) are doubly robust scores built from the fit's cross-fitted nuisances;
    `evaluation` scores out-of-fold CATE predictions against them; `gates` holds one
    `Effect` per segment mask given; `sensitivity` is None when not asked for.
    """

    overall: Effect
    scores: np.ndarray
    evaluation: CateEvaluation
    gates: tuple[Effect, ...]
    sensitivity: Sensitivity | None
    discrete_outcome: bool


@dataclass(frozen=True, slots=True)
class PropensityDesign:
    """The propensity used for a class: `p` (n,) clipped, and how it was obtained."""

    p: np.ndarray
    design: str  # randomized | logged_propensity | estimated_propensity
    clipped_share: float
    clipped: np.ndarray  # (n,) bool: the raw propensity was outside [clip, 1 - clip]
    ess_treated: float
    ess_control: float


def stratified_folds(T: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cross-fitting folds stratified on the treatment, so every fold holds both arms."""
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros((len(T), 1)), T))


def propensity_design(
    T: np.ndarray,
    X: np.ndarray,
    logged: np.ndarray | None,
    randomized: np.ndarray | None,
    *,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    settings: Uplift,
    threads: int,
    spare: Sequence[np.ndarray] | None = None,
) -> PropensityDesign:
    """The propensity of each decision, by design; see the module docstring. An estimated
    propensity is cross-fitted on `folds` (their training parts may be capped); with
    LightGBM nuisances it is `propensity.boosted_propensity` (a logistic fit plus the trees
    that lower the log loss on held-out training rows: `spare`, the rows the cap left out)."""
    all_randomized = randomized is not None and bool(randomized.all())
    if logged is not None and np.all(np.isfinite(logged)):
        raw = logged.astype(np.float64)
        design = "randomized" if all_randomized else "logged_propensity"
    elif all_randomized:
        raw = np.full(len(T), T.mean())  # a holdout without logged propensity: its share
        design = "randomized"
    elif settings.nuisance == "lightgbm":
        raw = boosted_propensity(T, X, folds, spare, seed=settings.seed, threads=threads)
        design = "estimated_propensity"
    else:
        from sklearn.model_selection import cross_val_predict

        model = nuisance_model(settings.nuisance, binary=True, seed=settings.seed, threads=threads)
        raw = cross_val_predict(model, X, T, cv=list(folds), method="predict_proba")[:, 1]
        design = "estimated_propensity"
    clip = settings.propensity_clip
    outside = (raw < clip) | (raw > 1 - clip)
    p = np.clip(raw, clip, 1 - clip)
    return PropensityDesign(
        p=p,
        design=design,
        clipped_share=float(outside.mean()),
        clipped=outside,
        ess_treated=_ess(1 / p[T == 1]),
        ess_control=_ess(1 / (1 - p[T == 0])),
    )


def _ess(weights: np.ndarray) -> float:
    """Kish's effective sample size of importance weights."""
    return float(weights.sum() ** 2 / np.sum(weights**2)) if len(weights) else 0.0


def make_estimator(
    estimator: str,
    *,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    seed: int,
    threads: int,
    use_ray: bool = False,
) -> Any:
    """The unfitted EconML estimator, cross-fitting on `folds`. Its nuisances are known:
    the propensity and the per-arm outcomes arrive in `W` (`outcome_columns`), so EconML
    fits only its final stage. With `use_ray` EconML runs the folds as Ray tasks of
    `threads` CPUs each (the same numbers)."""
    common: dict[str, Any] = {"discrete_outcome": False, "cv": list(folds), "random_state": seed}
    if use_ray:
        common.update(use_ray=True, ray_remote_func_options={"num_cpus": threads})
    if estimator == "linear_dml":
        from econml.dml import LinearDML

        return LinearDML(
            model_y=KnownOutcome(), model_t=KnownPropensity(), discrete_treatment=True, **common
        )
    if estimator == "dr_learner":
        from econml.dr import LinearDRLearner

        # the propensity is already clipped; EconML's own floor must not move it again
        return LinearDRLearner(
            model_propensity=KnownPropensity(),
            model_regression=KnownOutcome(by_arm=True),
            min_propensity=0,
            **common,
        )
    if estimator == "causal_forest":
        from econml.dml import CausalForestDML

        return CausalForestDML(
            model_y=KnownOutcome(),
            model_t=KnownPropensity(),
            discrete_treatment=True,
            n_jobs=threads,
            **common,
        )
    raise ValueError(f"estimator == {estimator!r}, must be one of {', '.join(ESTIMATORS)}")


def dr_scores(y: np.ndarray, T: np.ndarray, p: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """The doubly robust (AIPW) score of each row: (n,), from per-arm outcomes `mu` (n, 2)
    and the clipped propensity `p`; E[ψ_i | x_i] = τ(x_i) when either is right.

    ψ = mu1 − mu0 + T(Y − mu1)/p − (1 − T)(Y − mu0)/(1 − p).
    """
    mu0, mu1 = mu[:, 0], mu[:, 1]
    return mu1 - mu0 + T * (y - mu1) / p - (1 - T) * (y - mu0) / (1 - p)


def _effect(point: float, se: float, alpha: float) -> Effect:
    from scipy.stats import norm

    if not (math.isfinite(point) and math.isfinite(se)) or se <= 0:
        return Effect(point, se, math.nan, math.nan, math.nan)
    z = float(norm.ppf(1 - alpha / 2))
    return Effect(point, se, point - z * se, point + z * se, float(2 * norm.sf(abs(point / se))))


def fit_objective(
    y: np.ndarray,
    T: np.ndarray,
    X: np.ndarray,
    p: np.ndarray,
    mu: np.ndarray,
    *,
    estimator: str,
    discrete_outcome: bool,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    seed: int,
    threads: int,
    alpha: float,
    crossfit: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
    use_ray: bool = False,
    masks: Sequence[np.ndarray] = (),
    sensitivity_strength: float | None = None,
    calibration_groups: int = 4,
    sums: FoldSums | None = None,
) -> ObjectiveFit:
    """One objective's estimates from its cross-fitted nuisances (see `ObjectiveFit`).

    `y` (n,) outcome; `T` (n,) 0/1; `X` (n, k) covariates (also the CATE features);
    `p` (n,) the clipped propensity; `mu` (n, 2) the per-arm outcome predictions
    (`nuisances.arm_outcomes`, cross-fitted on `crossfit`); `masks` boolean (n,) rows
    of each segment cell. The ATE and every GATE are means of the same doubly robust
    scores, whatever the estimator. EconML's CausalForestDML (its nuisances known, so only
    the forest is fitted) gives the forest's CATE; EconML's sensitivity functions give
    the bounds from the same nuisances. The held-out evaluation uses the whole `folds`;
    `sums` (`final_stage_sums` of the same estimator, X, T, p and folds) is what its
    linear final stage shares with the class's other objectives, computed here if None.
    """
    scores = dr_scores(y, T, p, mu)
    overall = _mean_effect(scores, alpha)
    gates = tuple(_mean_effect(scores[m], alpha) for m in masks)
    if estimator == "causal_forest":
        est = make_estimator(
            estimator,
            folds=folds if crossfit is None else crossfit,
            seed=seed,
            threads=threads,
            use_ray=use_ray,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(y, T, X=X, W=outcome_columns(mu, p), cache_values=True)
        # the forest's own out-of-bag predictions; NaN for the rare row every tree saw
        cate_oof = np.ravel(est.model_cate.oob_predict(X))
    else:
        if sums is None:
            sums = final_stage_sums(estimator, X, T, p, folds)
        if estimator == "dr_learner":
            target, multiplier = scores, np.ones(len(y))
        else:
            # the R-learner's linear θ(x), each row's from the other folds
            target, multiplier = y - (p * mu[:, 1] + (1 - p) * mu[:, 0]), T - p
        if sums is None:
            cate_oof = out_of_fold_linear(_features(X), target, multiplier, folds)
        else:
            cate_oof = out_of_fold_from_sums(target, sums)
    sens = None
    if sensitivity_strength is not None:
        sens = sensitivity(
            y, T, p, mu, dr=estimator == "dr_learner", alpha=alpha, strength=sensitivity_strength
        )
    evaluation = evaluate_cate(cate_oof, scores, groups=calibration_groups)
    return ObjectiveFit(overall, scores, evaluation, gates, sens, discrete_outcome)


def _features(X: np.ndarray) -> np.ndarray:
    """The linear final stage's features: an intercept and `X`."""
    return np.column_stack([np.ones(len(X)), X])


def final_stage_sums(
    estimator: str,
    X: np.ndarray,
    T: np.ndarray,
    p: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
) -> FoldSums | None:
    """The cross-fitting sums of `estimator`'s linear final stage that every objective of
    a class shares (`evaluate.fold_sums`): its multiplier is T − p (DML's treatment
    residual) or 1 (the DR learner), the same for every objective. None for the causal
    forest (no linear stage) or folds that do not partition the rows."""
    if estimator == "causal_forest":
        return None
    multiplier = np.ones(len(T)) if estimator == "dr_learner" else T - p
    return fold_sums(_features(X), multiplier, folds)


def _mean_effect(scores: np.ndarray, alpha: float) -> Effect:
    """The mean of doubly robust scores and its standard error (a GATE, as GRF's)."""
    kept = scores[np.isfinite(scores)]
    if len(kept) < 2:
        return Effect(math.nan, math.nan, math.nan, math.nan, math.nan)
    return _effect(float(kept.mean()), float(kept.std(ddof=1) / math.sqrt(len(kept))), alpha)
