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


def _bias_and_coverage(rows: int, cap: int) -> None:
    """20 seeds of `rows` decisions, nuisances trained on at most `cap` rows per fold;
    asserts mean bias within 2 Monte-Carlo SEs and CI coverage >= 90%."""
    errors, covered, z = [], [], []
    for seed in range(20):
        frame, truth = _targeted_world(seed, rows)
        results = estimate_uplift(
            frame, outcomes=["y"], covariates=["activity", "tenure"], propensity_col=None,
            settings=Uplift(segments=(), seed=seed, nuisance_max_rows=cap), refute=False,
        )  # fmt: skip
        (e,) = results.estimates
        assert (e.design, e.status) == ("estimated_propensity", "ok")
        errors.append(e.ate - truth)
        z.append((e.ate - truth) / e.ate_se)
        covered.append(e.ate_ci_lower <= truth <= e.ate_ci_upper)
    err = np.array(errors)
    mc_se = err.std(ddof=1) / math.sqrt(len(err))
    # a valid 95% CI misses 3+ of 20 with probability 7.5%, so the threshold is the
    # issue's 90% (18 of 20), not tighter
    assert abs(err.mean()) < 2 * mc_se, (err.mean(), mc_se, np.mean(z))
    assert np.mean(covered) >= 0.9, np.mean(covered)


@pytest.mark.slow
def test_the_ate_stays_unbiased_where_the_nuisance_cap_and_early_stopping_apply():
    # Issue 13, item 6 at a size where the nuisances train on a capped sample of each
    # fold and the trees stop early on the rows the cap left out (20,000 decisions, 5,000
    # per fold: the 30,000 default cap lowered to keep the test fast). With a propensity
    # and outcome models of LightGBM trees from scratch (before they started from a
    # logistic / least-squares fit: `propensity.py`, `nuisances._lightgbm_arms`), this was
    # biased by -0.153 (8.3 Monte-Carlo SEs, -1.34 SE) and covered 16 of 20; at 60,000
    # decisions and the default cap -0.040 (5.3 MC SEs). Now +0.015 (1.1 MC SEs, +0.22 SE),
    # 19 of 20 (benchmarks/bias_uplift.py --rows 20000 --cap 5000).
    _bias_and_coverage(20_000, 5_000)


@pytest.mark.slow
def test_the_default_ate_is_unbiased_and_covers_when_the_propensity_is_estimated():
    # Issue 13, item 6: 20 seeds of 10,000 decisions, the default estimator (linear_dml)
    # and LightGBM nuisances, the propensity estimated. The issue measured the linear-θ
    # score 0.8-0.9 SE biased at 20,000 and at 80,000 rows (bias in SE units that does not
    # shrink with n). In this world at 20,000 rows, the linear-θ score (the code before
    # this test) was biased by 0.196 (9 Monte-Carlo SEs; 1.7 SE on average) and its CI
    # covered 13 of 20; the per-arm score: -0.008 (0.6 MC SE; -0.09 SE), 20 of 20; with
    # the nuisances boosted from a linear start: -0.018 at 10,000 (1.2 MC SEs), 20 of 20.
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
