"""DoWhy refutation: the stale-propensity guard, the standard error it judges by, the wiring."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest

from tests.attribution.uplift.uplift_world import ClassSpec, make_decisions
from upshot.attribution import estimate_uplift
from upshot.attribution.uplift.refute import ipw_se, refute_class
from upshot.config import Uplift

SIMULATIONS = 10


@pytest.fixture(scope="module")
def confounded():
    """Activity drives both sending and the outcome; the true effect is 0.5."""
    rng = np.random.default_rng(0)
    n = 6000
    X = rng.normal(size=(n, 4))
    p = 1 / (1 + np.exp(-1.5 * X[:, 0]))
    T = (rng.random(n) < p).astype(np.int8)
    y = 2 * X[:, 0] + X[:, 1] + 0.5 * T + rng.normal(size=n)
    return X, T, y


def test_placebo_effect_vanishes_and_every_refuter_passes_on_clean_data(confounded):
    X, T, y = confounded
    result = refute_class(
        np.column_stack([y, -y]),
        T,
        X,
        ["y", "minus_y"],
        sample=3000,
        simulations=SIMULATIONS,
        seed=1,
    )
    got = result["y"]
    assert got.n == 3000
    assert got.estimate == pytest.approx(0.5, abs=4 * got.se)
    # the mean of 10 placebo estimates has sd ~ se / sqrt(10): far below the real effect
    assert abs(got.placebo) < 3 * got.se / np.sqrt(SIMULATIONS)
    assert got.placebo_passed
    assert got.random_cause_passed
    assert got.subset_passed
    assert got.passed
    assert result["minus_y"].estimate == pytest.approx(-got.estimate, rel=1e-9)


def test_dowhy_used_statefully_reuses_the_stale_propensity(confounded):
    # Why the guard exists (py-why/dowhy#1728): the model's frame keeps the propensity
    # column of the *real* treatment, so the placebo is weighted by it and shows a large
    # effect. If this starts failing, DoWhy has fixed the bug and the guard is redundant.
    from dowhy import CausalModel

    X, T, y = confounded
    frame = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    frame["treated"] = T.astype(bool)
    frame["y"] = y
    logging.getLogger("dowhy").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = CausalModel(
            data=frame, treatment="treated", outcome="y", common_causes=list(frame.columns[:4])
        )
        estimand = model.identify_effect(proceed_when_unidentifiable=True)
        estimate = model.estimate_effect(
            estimand,
            method_name="backdoor.propensity_score_weighting",
            method_params={"weighting_scheme": "ips_normalized_weight"},
        )
        stale = model.refute_estimate(
            estimand, estimate, method_name="placebo_treatment_refuter", placebo_type="permute",
            num_simulations=SIMULATIONS, random_seed=1,
        )  # fmt: skip
    ours = refute_class(y[:, None], T, X, ["y"], sample=6000, simulations=SIMULATIONS, seed=1)["y"]
    assert abs(stale.new_effect) > 0.5
    assert abs(stale.new_effect) > 20 * abs(ours.placebo)


def test_ipw_standard_error_matches_the_bootstrap(confounded):
    X, T, y = confounded
    p = 1 / (1 + np.exp(-1.5 * X[:, 0]))

    def hajek(idx):
        t, yy, pp = T[idx], y[idx], np.clip(p[idx], 0.05, 0.95)
        w1, w0 = t / pp, (1 - t) / (1 - pp)
        return np.sum(w1 * yy) / np.sum(w1) - np.sum(w0 * yy) / np.sum(w0)

    rng = np.random.default_rng(2)
    boot = [hajek(rng.integers(0, len(y), len(y))) for _ in range(400)]
    # 400 bootstrap draws estimate an sd to about +-3.5% (1/sqrt(2 x 400)); allow 12%
    assert ipw_se(y, T.astype(float), p) == pytest.approx(np.std(boot), rel=0.12)


def test_refutation_results_land_on_the_overall_rows():
    frame, _ = make_decisions(1500, seed=8, specs={"promo": ClassSpec("push", 0.3, 1.2, 1.0)})
    results = estimate_uplift(
        frame,
        outcomes=["engagement", "conversion"],
        covariates=["activity", "tenure_years", "product_tier"],
        settings=Uplift(nuisance="linear", segments=("country",), refute_simulations=5),
    )
    overall = [e for e in results.estimates if e.segment == "all"]
    for e in overall:
        assert e.refute_passed is True
        assert np.isfinite([e.refute_placebo, e.refute_random_cause, e.refute_subset]).all()
        assert e.details["refutation"]["simulations"] == 5
    segments = pl.DataFrame([e.row() for e in results.estimates if e.segment != "all"])
    assert segments["refute_passed"].null_count() == segments.height
