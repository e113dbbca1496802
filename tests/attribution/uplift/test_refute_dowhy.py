"""upshot's three refuters against DoWhy's own, with one estimator on both sides.

`refute.py` re-implements DoWhy's placebo (permute), random common cause and data subset
refuters around upshot's estimator (DoWhy would refit through its own model objects).
Here both run the backdoor linear regression y ~ T + X on one confounded world: DoWhy's
identification must find the covariates as the backdoor set, the base estimates must be
the same number, and each refuter's mean re-estimate must agree within Monte Carlo error
(the draws differ, so only their distributions can be compared).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from upshot.attribution.uplift.refute import SUBSET_FRACTION, refute_class

N, SIMULATIONS = 1500, 20


def _world(seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Treatment targeted on x0 (a confounder), true effect 1.0."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, 3))
    T = (rng.random(N) < 1 / (1 + np.exp(-1.2 * X[:, 0]))).astype(np.int8)
    y = 1.0 * T + 1.5 * X[:, 0] + 0.5 * X[:, 1] + rng.normal(size=N)
    return T, X, y


def _ols(y: np.ndarray, t: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    fit = sm.OLS(y, np.column_stack([np.ones(len(t)), t, x])).fit()
    return float(fit.params[1]), float(fit.bse[1])


@pytest.mark.filterwarnings("ignore")
def test_the_refuters_agree_with_dowhys_on_one_estimator():
    from dowhy import CausalModel

    T, X, y = _world()
    names = [f"x{i}" for i in range(X.shape[1])]
    data = pd.DataFrame(X, columns=names).assign(T=T.astype(bool), y=y)
    model = CausalModel(data=data, treatment="T", outcome="y", common_causes=names)
    identified = model.identify_effect(proceed_when_unidentifiable=True)
    assert sorted(identified.get_backdoor_variables()) == names
    theirs = model.estimate_effect(identified, method_name="backdoor.linear_regression")

    def estimate(rows: np.ndarray, t: np.ndarray, x: np.ndarray, placebo: bool) -> np.ndarray:
        return np.array([_ols(y[rows], t, x)])

    ours = refute_class(T, X, ["y"], estimate, sample=N, simulations=SIMULATIONS, seed=3)["y"]
    # the same regression on the same rows: equal up to floating point
    assert ours.estimate == pytest.approx(float(theirs.value), rel=1e-9)
    assert ours.n == N

    def refuted(method: str, **kwargs: object) -> float:
        result = model.refute_estimate(
            identified, theirs, method_name=method, num_simulations=SIMULATIONS,
            random_seed=11, show_progress_bar=False, **kwargs,
        )  # fmt: skip
        return float(result.new_effect)

    se = ours.se
    # Each side's refuter mean averages SIMULATIONS independent re-estimates; the two
    # means differ by at most 4 standard deviations of a difference of two such means
    # (a false alarm rate of 6e-5). A placebo re-estimate varies like the estimate (sd se);
    # an 80% subset's varies around the full estimate by se * sqrt(0.2 / 0.8).
    placebo_sd = se * math.sqrt(2 / SIMULATIONS)
    assert abs(ours.placebo - refuted("placebo_treatment_refuter", placebo_type="permute")) <= (
        4 * placebo_sd
    )
    assert abs(ours.placebo) <= 4 * se / math.sqrt(SIMULATIONS)  # and both near 0
    subset_sd = se * math.sqrt((1 - SUBSET_FRACTION) / SUBSET_FRACTION) * math.sqrt(2 / SIMULATIONS)
    dowhy_subset = refuted("data_subset_refuter", subset_fraction=SUBSET_FRACTION)
    assert abs(ours.subset - dowhy_subset) <= 4 * subset_sd
    # a pure-noise covariate moves an OLS estimate by a small fraction of its se: both
    # refuters' means sit on the estimate, far closer than the placebo bound
    dowhy_cause = refuted("random_common_cause")
    assert abs(ours.random_cause - dowhy_cause) <= 4 * placebo_sd / 3
    assert abs(ours.random_cause - ours.estimate) <= 0.5 * se
    assert ours.passed
