"""CATE evaluation and sensitivity: EconML's DRTester code as the reference, and known truth."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from tests.attribution.uplift.uplift_world import ClassSpec, make_decisions
from upshot.attribution import estimate_uplift
from upshot.attribution.uplift.evaluate import (
    calibration_r2,
    evaluate_cate,
    fold_sums,
    out_of_fold_from_sums,
    out_of_fold_linear,
    uplift_coefficient,
)
from upshot.config import Uplift

COVARIATES = ["activity", "tenure_years", "product_tier", "country", "platform"]


@pytest.fixture(scope="module")
def scored():
    rng = np.random.default_rng(0)
    n = 4000
    cate_train = rng.normal(size=n)
    cate_val = rng.normal(size=n)
    dr_val = 0.5 * cate_val + rng.normal(0, 2, size=n)
    return cate_train, cate_val, dr_val


@pytest.mark.parametrize("metric", ["qini", "toc"])
def test_uplift_coefficient_equals_econml_calc_uplift(scored, metric):
    from econml.validate.utils import calc_uplift

    cate_train, cate_val, dr_val = scored
    ours, ours_se = uplift_coefficient(cate_train, cate_val, dr_val, metric=metric)
    # calc_uplift also bootstraps uniform bands from the global RNG; the coefficient and its
    # standard error do not depend on them
    np.random.seed(0)
    theirs, theirs_se, _ = calc_uplift(
        cate_train, cate_val, dr_val, np.linspace(5, 95, 50), metric, n_bootstrap=10
    )
    assert ours == pytest.approx(theirs, rel=1e-12)
    assert ours_se == pytest.approx(theirs_se, rel=1e-12)


def test_calibration_equals_drtester(scored):
    from econml.validate import DRTester

    cate_train, cate_val, dr_val = scored
    tester = DRTester(model_regression=None, model_propensity=None, cate=None)
    # DRTester's state after fitting its nuisances and CATE predictions, set directly
    tester.dr_train_ = dr_val[:, None]
    tester.dr_val_ = dr_val[:, None]
    tester.cate_preds_train_ = cate_train[:, None]
    tester.cate_preds_val_ = cate_val[:, None]
    tester.ate_val = dr_val.mean(keepdims=True)
    tester.n_treat = 1
    tester.treatments = [0, 1]
    expected = tester.evaluate_cal(n_groups=4).cal_r_squared[0]
    assert calibration_r2(cate_train, cate_val, dr_val, groups=4) == pytest.approx(
        expected, rel=1e-12
    )


def test_out_of_fold_linear_with_one_fold_is_econml_final_stage():
    from econml.dml import LinearDML
    from sklearn.linear_model import LinearRegression

    from upshot.attribution.uplift.nuisances import KnownPropensity

    rng = np.random.default_rng(1)
    n = 2000
    X = rng.normal(size=(n, 3))
    p = np.full(n, 0.5)
    T = (rng.random(n) < p).astype(int)
    y = X[:, 0] + T * (1 + X[:, 1]) + rng.normal(size=n)
    folds = [(np.arange(0, n, 2), np.arange(1, n, 2)), (np.arange(1, n, 2), np.arange(0, n, 2))]
    est = LinearDML(
        model_y=LinearRegression(), model_t=KnownPropensity(), discrete_treatment=True, cv=folds
    )
    est.fit(y, T, X=X, W=p[:, None], cache_values=True)
    y_res, t_res, _, _ = est.residuals_
    features = np.column_stack([np.ones(n), X])
    everything = [(np.arange(n), np.arange(n))]
    ours = out_of_fold_linear(features, np.ravel(y_res), np.ravel(t_res), everything)
    np.testing.assert_allclose(ours, np.ravel(est.effect(X)), rtol=1e-9, atol=1e-12)


def test_fold_sums_give_the_refits_of_out_of_fold_linear():
    # one pass of per-fold Gram matrices shared by every objective must give the same
    # held-out predictions as refitting each fold from its training rows (rounding only)
    from upshot.attribution.uplift.econml_adapter import stratified_folds

    rng = np.random.default_rng(2)
    n = 3000
    features = np.column_stack([np.ones(n), rng.normal(size=(n, 4))])
    T = (rng.random(n) < 0.3).astype(np.int8)
    multiplier = T - 0.3
    folds = stratified_folds(T, 3, seed=0)
    sums = fold_sums(features, multiplier, folds)
    assert sums is not None
    for _ in range(3):  # several objectives, one `sums`
        target = features @ rng.normal(size=5) * multiplier + rng.normal(size=n)
        expected = out_of_fold_linear(features, target, multiplier, folds)
        np.testing.assert_allclose(out_of_fold_from_sums(target, sums), expected, rtol=1e-9)
    # folds whose test parts overlap are not a partition: no shared sums
    assert fold_sums(features, multiplier, [(np.arange(n), np.arange(n))]) is None


def _evaluated(frame):
    settings = Uplift(nuisance="linear", segments=())
    results = estimate_uplift(
        frame, outcomes=["engagement"], covariates=COVARIATES, settings=settings, refute=False
    )
    return results.estimates[0]


def test_evaluation_finds_real_heterogeneity_and_not_fake_one():
    frame, _ = make_decisions(6000, seed=4, specs={"digest": ClassSpec("email", 1.0, 0.0, 1.0)})
    sent = pl.col("treated").cast(pl.Float64)
    # the world's engagement effect is 6 + 3 x activity; make it 6 + 23 x activity ...
    strong = frame.with_columns(pl.col("engagement") + 20 * pl.col("activity") * sent)
    e = _evaluated(strong)
    assert e.qini > 3 * e.details["qini_se"]
    assert e.auuc > 3 * e.details["auuc_se"]
    assert e.calibration > 0.5
    # ... or a constant 6: a model that ranks by noise gains nothing on held-out folds
    null = frame.with_columns(pl.col("engagement") - 3 * pl.col("activity") * sent)
    e = _evaluated(null)
    assert abs(e.qini) < 3 * e.details["qini_se"]


def test_evaluate_cate_degenerate_inputs_are_nan():
    flat = evaluate_cate(np.zeros(100), np.ones(100))
    assert math.isnan(flat.qini)
    assert math.isnan(flat.calibration)


def test_sensitivity_only_for_non_randomized_designs():
    specs = {
        "holdout": ClassSpec("email", 1.0, 0.0, 1.0),
        "targeted": ClassSpec("push", 0.0, 1.2, 1.0),
    }
    frame, _ = make_decisions(3000, seed=6, specs=specs)
    results = estimate_uplift(
        frame, outcomes=["engagement"], covariates=COVARIATES,
        settings=Uplift(nuisance="linear", segments=()), refute=False,
    )  # fmt: skip
    rows = {e.message_class: e for e in results.estimates}
    assert rows["holdout"].design == "randomized"
    assert math.isnan(rows["holdout"].robustness_value)
    targeted = rows["targeted"]
    assert targeted.design == "logged_propensity"
    assert 0 < targeted.robustness_value < 1
    bounds = targeted.details["sensitivity"]
    # a confounder of strength 5% widens the interval on both sides
    assert bounds["ci_lower"] < targeted.ate_ci_lower
    assert bounds["ci_upper"] > targeted.ate_ci_upper
