"""Issue 13, item 6: the default ATE is unbiased when the propensity is estimated.

A simulation with known truth: decisions targeted on activity, an effect that is not
linear in activity and grows with the propensity, no logged propensity.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from upshot.attribution import estimate_uplift
from upshot.config import Uplift


def _targeted_world(seed: int, n: int):
    """Targeting on activity with an effect that is not linear in it and grows with the
    propensity; no logged propensity, so it is estimated. Returns the frame and the sample
    ATE (the mean of the true individual effects)."""
    rng = np.random.default_rng(seed)
    activity = rng.normal(size=n)
    tenure = rng.uniform(0, 5, size=n)
    p = 1 / (1 + np.exp(-(1.2 * activity - 0.2 * tenure + 0.3)))
    T = (rng.random(n) < p).astype(np.int8)
    tau = 2 * np.exp(0.8 * activity) + 0.5 * (tenure > 2)
    y = 10 + 4 * activity + np.sin(2 * activity) + tenure + T * tau + rng.normal(0, 3, n)
    frame = pl.DataFrame(
        {"message_class": "c", "treated": T, "activity": activity, "tenure": tenure, "y": y}
    )
    return frame, float(tau.mean())


@pytest.mark.slow
def test_the_default_ate_is_unbiased_and_covers_when_the_propensity_is_estimated():
    # Issue 13, item 6: 20 seeds of 10,000 decisions, the default estimator (linear_dml)
    # and LightGBM nuisances, the propensity estimated. The issue measured the linear-θ
    # score 0.8-0.9 SE biased at 20,000 and at 80,000 rows (bias in SE units that does not
    # shrink with n). In this world at 20,000 rows, the linear-θ score (the code before
    # this test) was biased by 0.196 (9 Monte-Carlo SEs; 1.7 SE on average) and its CI
    # covered 13 of 20; the per-arm score: -0.008 (0.6 MC SE; -0.09 SE), 20 of 20.
    # Asserted: mean bias within 2 Monte-Carlo SEs (sd of the 20 errors / sqrt(20)) and CI
    # coverage >= 90% (18 of 20; a valid 95% CI misses 3+ of 20 with probability 7.5%, so
    # the threshold is the 90%, not tighter).
    errors, covered, z = [], [], []
    for seed in range(20):
        frame, truth = _targeted_world(seed, 10_000)
        results = estimate_uplift(
            frame, outcomes=["y"], covariates=["activity", "tenure"], propensity_col=None,
            settings=Uplift(segments=(), seed=seed), refute=False,
        )  # fmt: skip
        (e,) = results.estimates
        assert (e.design, e.status) == ("estimated_propensity", "ok")
        errors.append(e.ate - truth)
        z.append((e.ate - truth) / e.ate_se)
        covered.append(e.ate_ci_lower <= truth <= e.ate_ci_upper)
    errors = np.array(errors)
    mc_se = errors.std(ddof=1) / math.sqrt(len(errors))
    assert abs(errors.mean()) < 2 * mc_se, (errors.mean(), mc_se, np.mean(z))
    assert np.mean(covered) >= 0.9, np.mean(covered)
