"""DoWhy refutation of each class's estimate: placebo treatment, random common cause, subset.

For one class, DoWhy gets a causal model (treatment → outcome, every covariate a common
cause), identifies the backdoor estimand, estimates it by inverse propensity weighting
(normalized weights, logistic propensity) on a seeded subsample of `refute_sample` rows
(stratified on the arm), and runs three refuters with `refute_simulations` simulations each:

- placebo treatment (permuted): the effect must vanish; passes when
  |placebo| ≤ 3 · se / √simulations (the mean of that many null estimates);
- random common cause: adding a pure-noise covariate must not move the estimate;
  passes when |new − estimate| ≤ 0.5 · se;
- data subset (80%): passes when |new − estimate| ≤ 3 · se · √(0.2 / 0.8), the spread of
  a subset's estimate around the full sample's.

`se` is the standard error of DoWhy's own estimate, from the influence function of the
normalized IPW estimator with DoWhy's propensities clipped to [0.05, 0.95] as it does.

Guard against DoWhy's stale-propensity problem (py-why/dowhy#1728): a propensity
estimator writes a `propensity_score` column into the frame it is given, and a refuter
handed that frame skips refitting, so the placebo is weighted by the *real* treatment's
propensity and shows a large spurious effect. Every DoWhy call here gets its own fresh
copy of a frame that has no such column, so the placebo's propensity is refitted on the
placebo; `tests/attribution/uplift/test_refute.py` shows both the failure and the guard.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from upshot.attribution.uplift.sampling import stratified_rows

PS_COLUMN = "propensity_score"  # DoWhy's default; must never be in a frame we hand over
_PS_BOUNDS = (0.05, 0.95)  # DoWhy's min_ps_score / max_ps_score
SUBSET_FRACTION = 0.8


@dataclass(frozen=True, slots=True)
class Refutation:
    """DoWhy's estimate on the subsample and the three refuters' re-estimates (outcome units).

    `*_passed` apply the rules in the module docstring; `pvalues` are DoWhy's own
    significance tests, kept for reference.
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


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    logger = logging.getLogger("dowhy")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def ipw_se(y: np.ndarray, t: np.ndarray, propensity: np.ndarray) -> float:
    """Standard error of the normalized (Hájek) IPW difference of means."""
    p = np.clip(propensity, *_PS_BOUNDS)
    w1 = t / p
    w0 = (1 - t) / (1 - p)
    mu1 = np.sum(w1 * y) / np.sum(w1)
    mu0 = np.sum(w0 * y) / np.sum(w0)
    psi = w1 * (y - mu1) / w1.mean() - w0 * (y - mu0) / w0.mean()
    return float(np.sqrt(np.mean(psi**2) / len(y)))


def refute_class(
    Y: np.ndarray,
    T: np.ndarray,
    X: np.ndarray,
    objectives: Sequence[str],
    *,
    sample: int,
    simulations: int,
    seed: int,
) -> dict[str, Refutation]:
    """Refute the effect of `T` (n,) on each column of `Y` (n, m) given covariates `X` (n, k).

    Objectives whose outcome does not vary on the subsample are left out.
    """
    import pandas as pd
    from dowhy import CausalModel
    from dowhy.causal_estimator import estimate_effect
    from dowhy.causal_estimators.propensity_score_weighting_estimator import (
        PropensityScoreWeightingEstimator,
    )
    from dowhy.causal_refuters import (
        refute_data_subset,
        refute_placebo_treatment,
        refute_random_common_cause,
    )
    from dowhy.causal_refuters.placebo_treatment_refuter import PlaceboType
    from sklearn.linear_model import LogisticRegression

    # the treated share kept exactly (sampling.py): the refuters see the class's design
    picked = stratified_rows(np.asarray(T, dtype=np.int8), sample, seed)
    rows = np.arange(len(T)) if picked is None else picked
    x = X[rows]
    scale = x.std(axis=0)
    keep = scale > 0
    # standardized covariates: DoWhy's logistic propensity model converges on them
    x = (x[:, keep] - x[:, keep].mean(axis=0)) / scale[keep]
    causes = [f"c{i}" for i in range(x.shape[1])]
    clean = pd.DataFrame(x, columns=causes)
    clean["treated"] = T[rows].astype(bool)
    clean["y"] = 0.0
    if PS_COLUMN in clean.columns:  # pragma: no cover - names are ours, kept as a tripwire
        raise RuntimeError(f"{PS_COLUMN} must not be in a frame given to DoWhy")
    out: dict[str, Refutation] = {}
    with _quiet():
        model = CausalModel(
            data=clean.copy(), treatment="treated", outcome="y", common_causes=causes
        )
        estimand = model.identify_effect(proceed_when_unidentifiable=True)
        for j, name in enumerate(objectives):
            y = Y[rows, j].astype(np.float64)
            if np.ptp(y) == 0:
                continue
            frame = clean.assign(y=y)
            fitted = frame.copy()  # DoWhy writes its propensity column into this copy
            estimate = estimate_effect(
                data=fitted,
                treatment="treated",
                outcome="y",
                identifier_name="backdoor",
                estimator=PropensityScoreWeightingEstimator(
                    estimand,
                    weighting_scheme="ips_normalized_weight",
                    propensity_score_model=LogisticRegression(max_iter=1000),
                ),
                target_units="ate",
                method_params={},
            )
            t = frame["treated"].to_numpy(dtype=np.float64)
            se = ipw_se(y, t, fitted[PS_COLUMN].to_numpy(dtype=np.float64))
            placebo = refute_placebo_treatment(
                frame.copy(),
                estimand,
                estimate,
                ["treated"],
                num_simulations=simulations,
                placebo_type=PlaceboType.PERMUTE,
                random_state=seed,
            )
            random_cause = refute_random_common_cause(
                frame.copy(), estimand, estimate, num_simulations=simulations, random_state=seed
            )
            subset = refute_data_subset(
                frame.copy(),
                estimand,
                estimate,
                subset_fraction=SUBSET_FRACTION,
                num_simulations=simulations,
                random_state=seed,
            )
            out[name] = _judge(
                float(estimate.value), se, placebo, random_cause, subset, len(rows), simulations
            )
    return out


def _judge(
    value: float, se: float, placebo: Any, random_cause: Any, subset: Any, n: int, sims: int
) -> Refutation:
    p, r, s = float(placebo.new_effect), float(random_cause.new_effect), float(subset.new_effect)
    spread = math.sqrt((1 - SUBSET_FRACTION) / SUBSET_FRACTION)
    pvalues = {
        name: float(ref.refutation_result["p_value"])
        for name, ref in (("placebo", placebo), ("random_cause", random_cause), ("subset", subset))
        if isinstance(getattr(ref, "refutation_result", None), dict)
    }
    return Refutation(
        estimate=value,
        se=se,
        placebo=p,
        random_cause=r,
        subset=s,
        placebo_passed=abs(p) <= 3 * se / math.sqrt(sims),
        random_cause_passed=abs(r - value) <= 0.5 * se,
        subset_passed=abs(s - value) <= 3 * se * spread,
        n=n,
        simulations=sims,
        pvalues=pvalues,
    )
