"""Refutation of each class's estimate by re-running OUR estimator: placebo, random common
cause and data subset, following DoWhy's definitions of the three refuters.

The refuters must refute the estimate that is reported, so every re-estimate runs the very
function that produced the class's ATE (`classfit` hands it over as `Estimate`: the same
propensity design, estimator, nuisances and folds) on a seeded subsample of
`refute_sample` decisions (stratified on the arm). `estimate` and `se` are that estimator
on the subsample: the reported ATE and its SE whenever the class has no more decisions.
Each refuter runs `refute_simulations` times and reports the mean of its re-estimates:

- placebo treatment (DoWhy's `permute`): the treatment is permuted, so it is a randomized
  assignment with a known propensity (its share), and its effect must vanish. Passes when
  |placebo| ≤ 3 · se_placebo / √simulations: se_placebo is the root mean square of the
  placebo fits' own standard errors, and the mean of that many independent permutations
  has that spread (3 SE: about 0.3% false alarms).
- random common cause: a standard normal covariate, independent of everything, is added
  to the covariates; passes when it moves the estimate by at most 0.5 · se.
- data subset: 80% of the subsample without replacement; passes when the mean moves by at
  most 3 · se · √(0.2 / 0.8), three times the spread of one subset's estimate around the
  whole sample's (for a mean, Var(θ_sub − θ) = se² · (1/0.8 − 1)).

None of the three can see an unobserved confounder by construction (a permutation, pure
noise and a subset are all independent of it); the sensitivity bounds are for that. What
they catch is an estimate that reacts to what it should not: a spurious effect of a
random treatment, or an instability. `draw_placebo` and `draw_cause` are the only
randomness; a test hands them a placebo that really acts and a confounder that really
confounds, and the refuters fail (tests/attribution/uplift/test_refute.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from upshot.attribution.uplift.econml_adapter import (
    fit_objective,
    propensity_design,
    stratified_folds,
)
from upshot.attribution.uplift.nuisances import arm_outcomes
from upshot.attribution.uplift.sampling import stratified_rows

if TYPE_CHECKING:
    from upshot.attribution.uplift.classtask import ClassTask

SUBSET_FRACTION = 0.8

Estimate = Callable[[np.ndarray, np.ndarray, np.ndarray, bool], np.ndarray]
"""`(rows, t, x, placebo) -> (m, 2)`: the class's estimator on `rows` of the class with
treatment `t` and covariates `x` (both over `rows`), returning [ate, se] per objective
(NaN where an objective cannot be fitted); `placebo`: `t` was drawn at random, so its
propensity is its share, whatever the class's design."""

Draw = Callable[[np.random.Generator, np.ndarray, np.ndarray], np.ndarray]
"""`(rng, rows, t) -> values` over `rows`: a placebo treatment (0/1) or a common cause."""


def permuted(rng: np.random.Generator, rows: np.ndarray, t: np.ndarray) -> np.ndarray:  # noqa: ARG001
    """DoWhy's `permute` placebo: the treatment, shuffled."""
    return rng.permutation(t)


def noise(rng: np.random.Generator, rows: np.ndarray, t: np.ndarray) -> np.ndarray:  # noqa: ARG001
    """DoWhy's random common cause: a standard normal variable."""
    return rng.standard_normal(len(rows))


@dataclass(frozen=True, slots=True)
class Refutation:
    """Our estimate on the subsample and the three refuters' mean re-estimates (outcome units).

    `*_passed` apply the rules in the module docstring; `pvalues` are two-sided normal
    p-values of the placebo mean against 0 and of the subset shift (see `_judge`).
    """

    estimate: float
    se: float
    placebo: float
    random_cause: float
    subset: float
    placebo_passed: bool
    random_cause_passed: bool
    subset_passed: bool
    n: int
    simulations: int
    pvalues: dict[str, float]

    @property
    def passed(self) -> bool:
        return self.placebo_passed and self.random_cause_passed and self.subset_passed


def refute_class(
    T: np.ndarray,
    X: np.ndarray,
    objectives: Sequence[str],
    estimate: Estimate,
    *,
    sample: int,
    simulations: int,
    seed: int,
    draw_placebo: Draw = permuted,
    draw_cause: Draw = noise,
) -> dict[str, Refutation]:
    """Refute the effect of `T` (n,) on each objective given covariates `X` (n, k), by
    re-running `estimate` (see `Estimate`) under the three refuters.

    Objectives the estimator cannot fit on the subsample (NaN) are left out.
    """
    t_all = np.asarray(T, dtype=np.int8)
    # the treated share kept exactly (sampling.py): the refuters see the class's design
    picked = stratified_rows(t_all, sample, seed)
    rows = np.arange(len(t_all)) if picked is None else picked
    t, x = t_all[rows], X[rows]
    rng = np.random.default_rng([seed, 1728])
    base = estimate(rows, t, x, False)
    placebo, cause, subset = [], [], []
    for _ in range(simulations):
        fake = np.asarray(draw_placebo(rng, rows, t), dtype=np.int8)
        placebo.append(estimate(rows, fake, x, True))
        extra = np.column_stack([x, draw_cause(rng, rows, t)])
        cause.append(estimate(rows, t, extra, False))
        # DoWhy's subset: a plain random 80%, without replacement
        part = np.sort(rng.choice(len(rows), int(SUBSET_FRACTION * len(rows)), replace=False))
        subset.append(estimate(rows[part], t[part], x[part], False))
    out: dict[str, Refutation] = {}
    for j, name in enumerate(objectives):
        if not np.all(np.isfinite(base[j])):
            continue
        out[name] = _judge(
            base[j],
            np.array([p[j] for p in placebo]),
            np.array([c[j, 0] for c in cause]),
            np.array([s[j, 0] for s in subset]),
            len(rows),
        )
    return out


def _pvalue(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2)) if math.isfinite(z) else math.nan


def _judge(
    base: np.ndarray, placebo: np.ndarray, cause: np.ndarray, subset: np.ndarray, n: int
) -> Refutation:
    """The rules of the module docstring; `base` [ate, se], `placebo` (S, 2), others (S,)."""
    value, se = float(base[0]), float(base[1])
    sims = len(cause)
    p_mean = float(np.nanmean(placebo[:, 0]))
    p_se = float(np.sqrt(np.nanmean(placebo[:, 1] ** 2)) / math.sqrt(sims))
    r_mean, s_mean = float(np.nanmean(cause)), float(np.nanmean(subset))
    spread = se * math.sqrt((1 - SUBSET_FRACTION) / SUBSET_FRACTION)
    return Refutation(
        estimate=value,
        se=se,
        placebo=p_mean,
        random_cause=r_mean,
        subset=s_mean,
        placebo_passed=bool(abs(p_mean) <= 3 * p_se),
        random_cause_passed=bool(abs(r_mean - value) <= 0.5 * se),
        subset_passed=bool(abs(s_mean - value) <= 3 * spread),
        n=n,
        simulations=sims,
        pvalues={
            "placebo": _pvalue(p_mean / p_se) if p_se > 0 else math.nan,
            "subset": _pvalue((s_mean - value) / spread) if spread > 0 else math.nan,
        },
    )


def refute_task(
    task: ClassTask,
    T: np.ndarray,
    X: np.ndarray,
    objectives: Sequence[str],
    *,
    threads: int = 1,
    min_arm: int = 10,
) -> dict[str, Refutation]:
    """`refute_class` on a class's fitted rows with `reestimate` as the estimator."""
    columns = [task.objectives.index(name) for name in objectives]
    s = task.settings

    def estimate(rows: np.ndarray, t: np.ndarray, x: np.ndarray, placebo: bool) -> np.ndarray:
        return reestimate(
            task, columns, rows, t, x, placebo=placebo, threads=threads, min_arm=min_arm
        )

    return refute_class(
        T,
        X,
        objectives,
        estimate,
        sample=s.refute_sample,
        simulations=s.refute_simulations,
        seed=s.seed,
    )


def reestimate(
    task: ClassTask,
    columns: Sequence[int],
    rows: np.ndarray,
    t: np.ndarray,
    x: np.ndarray,
    *,
    placebo: bool,
    threads: int = 1,
    min_arm: int = 10,
) -> np.ndarray:
    """The class's estimator on `rows` with treatment `t` and covariates `x`: [ate, se] of
    each objective in `columns` (m, 2), NaN where it cannot be fitted (an arm with fewer
    than `min_arm` decisions per fold, an outcome that does not vary). The same steps as
    the reported ATE (`classfit`: propensity by design, stratified folds, `fit_objective`);
    a `placebo` treatment is a random draw, so its propensity is its share."""
    s = task.settings
    out = np.full((len(columns), 2), np.nan)
    treated = int(t.sum())
    if min(treated, len(t) - treated) < min_arm * s.folds:
        return out
    folds = stratified_folds(t, s.folds, s.seed)
    logged = None if placebo or task.logged is None else task.logged[rows]
    randomized = np.ones(len(t), dtype=bool) if placebo else None
    if not placebo and task.randomized is not None:
        randomized = task.randomized[rows]
    design = propensity_design(t, x, logged, randomized, folds=folds, settings=s, threads=threads)
    y_all = task.Y[rows]
    varying = [j for j in columns if np.ptp(y_all[:, j]) > 0]
    if not varying:
        return out
    # per-arm outcome models of every objective at once, as `classfit` fits them; a
    # classifier needs both values in every fold's training rows of each arm
    discrete = [
        task.binary[j]
        and all(np.ptp(y_all[train[t[train] == a], j]) > 0 for train, _ in folds for a in (0, 1))
        for j in varying
    ]
    mu = arm_outcomes(
        y_all[:, varying], discrete, t, x, folds, kind=s.nuisance, seed=s.seed, threads=threads
    )
    for k, j in enumerate(columns):
        if j not in varying:
            continue
        i = varying.index(j)
        fit = fit_objective(
            y_all[:, j],
            t,
            x,
            design.p,
            mu[:, i, :],
            estimator=s.estimator,
            discrete_outcome=discrete[i],
            folds=folds,
            seed=s.seed,
            threads=threads,
            alpha=s.alpha,
            calibration_groups=s.calibration_groups,
        )
        out[k] = fit.overall.ate, fit.overall.se
    return out
