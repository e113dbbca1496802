"""Value = Σ rate × uplift with a CI from the joint covariance: hand cases and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from upshot.attribution.weights.combine import Component, Value, combine, covariance_matrix, z_value

Z95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975)


def test_hand_computed_joint_covariance():
    # value = 2(0.5) - 3(0.1) = 0.7; var = 4(0.01) + 9(0.04) + 2(2)(-3)(0.01) = 0.28
    v = combine(
        {"a": 2.0, "b": -3.0},
        {"a": 0.5, "b": 0.1},
        {"a": 0.1, "b": 0.2},
        {("a", "b"): 0.01},
    )
    assert v.status == "ok"
    assert v.covariance == "joint"
    assert v.value == pytest.approx(0.7, abs=1e-15)
    assert v.value_se == pytest.approx(math.sqrt(0.28), rel=1e-12)
    assert v.value_ci_lower == pytest.approx(0.7 - Z95 * math.sqrt(0.28), rel=1e-12)
    assert v.value_ci_upper == pytest.approx(0.7 + Z95 * math.sqrt(0.28), rel=1e-12)
    parts = {c.objective: c for c in v.components}
    assert parts["a"].contribution == pytest.approx(1.0)
    assert parts["b"].contribution == pytest.approx(-0.3)
    assert parts["b"].uplift_ci_lower == pytest.approx(0.1 - Z95 * 0.2)


def test_pair_order_and_diagonal_from_the_table():
    # (b, a) counts like (a, b); an explicit diagonal beats se²
    v = combine(
        {"a": 1.0, "b": 1.0},
        {"a": 0.0, "b": 0.0},
        {"a": 99.0, "b": 1.0},
        {("b", "a"): 0.5, ("a", "a"): 1.0},
    )
    assert v.value_se == pytest.approx(math.sqrt(1 + 1 + 2 * 0.5))


def test_independence_fallback_is_flagged():
    v = combine({"a": 2.0, "b": -3.0}, {"a": 0.5, "b": 0.1}, {"a": 0.1, "b": 0.2})
    assert v.covariance == "independent"
    assert v.value_se == pytest.approx(math.sqrt(0.04 + 0.36))


def test_partial_covariance_is_flagged():
    sigma, source = covariance_matrix(
        ["a", "b", "c"], {"a": 1.0, "b": 1.0, "c": 1.0}, {("a", "b"): 0.3}
    )
    assert source == "partial"
    np.testing.assert_allclose(sigma, [[1, 0.3, 0], [0.3, 1, 0], [0, 0, 1]])


def test_zero_rate_objectives_drop_out():
    v = combine({"a": 1.0, "b": 0.0}, {"a": 0.2}, {"a": 0.1})
    assert v.status == "ok"
    assert [c.objective for c in v.components] == ["a"]
    assert v.value == pytest.approx(0.2)


def test_missing_objective_is_nan_with_status():
    v = combine({"a": 1.0, "b": 2.0}, {"a": 0.2, "b": math.nan}, {"a": 0.1, "b": 0.1})
    assert v.status == "insufficient_data"
    assert "b" in (v.reason or "")
    assert math.isnan(v.value)
    assert math.isnan(v.value_ci_lower)
    assert math.isnan(v.value_ci_upper)


def test_covariance_that_is_not_psd_fails():
    v = combine({"a": 1.0, "b": 1.0}, {"a": 0, "b": 0}, {"a": 0.1, "b": 0.1}, {("a", "b"): -0.5})
    assert v.status == "failed:covariance_not_psd"
    assert math.isnan(v.value_se)


def test_negating_rates_negates_value_and_keeps_se():
    args = ({"a": 0.5, "b": 0.1}, {"a": 0.1, "b": 0.2}, {("a", "b"): 0.01})
    plus = combine({"a": 2.0, "b": -3.0}, *args)
    minus = combine({"a": -2.0, "b": 3.0}, *args)
    assert minus.value == pytest.approx(-plus.value)
    assert minus.value_se == pytest.approx(plus.value_se)


def test_components_must_add_up():
    part = Component("a", 1.0, 1.0, 0.1, 0.8, 1.2, 1.0)
    with pytest.raises(ValueError, match="add up"):
        Value(2.0, 0.1, 1.8, 2.2, (part,), "joint", "ok")


def test_z_value_matches_scipy():
    from scipy.stats import norm

    for alpha in (0.01, 0.05, 0.1, 0.32):
        assert z_value(alpha) == pytest.approx(norm.ppf(1 - alpha / 2), rel=1e-12)
    with pytest.raises(ValueError, match=r"alpha == 1\.5"):
        z_value(1.5)


def test_coverage_with_correlated_objectives():
    """Estimates drawn from N(truth, Σ) with strongly correlated objectives.

    With 4,000 draws the coverage's standard error is sqrt(.95 × .05 / 4000) ≈ 0.0034, so
    [0.935, 0.965] is ±4.4 SE. The three contributions have equal sd (0.2 value units), so
    ignoring the correlation (the fallback) gives an se of sqrt(3 / 7.8) = 0.62 of the true
    one and covers only P(|Z| < 1.22) ≈ 0.78: why the joint covariance matters.
    """
    rng = np.random.default_rng(42)
    truth = {"conversion": 0.01, "engagement": 3.0, "retention": 0.2}
    rates = {"conversion": 100.0, "engagement": 0.05, "retention": 1.0}
    sd = np.array([0.002, 4.0, 0.2])
    corr = np.array([[1, 0.8, 0.7], [0.8, 1, 0.9], [0.7, 0.9, 1]])
    sigma = corr * np.outer(sd, sd)
    names = list(truth)
    draws = rng.multivariate_normal([truth[k] for k in names], sigma, size=4000)
    true_value = sum(rates[k] * truth[k] for k in names)
    pairs = {(a, b): sigma[i, j] for i, a in enumerate(names) for j, b in enumerate(names)}
    ses = dict(zip(names, sd, strict=True))
    joint = independent = 0
    for row in draws:
        estimate = dict(zip(names, row, strict=True))
        v = combine(rates, estimate, ses, pairs)
        joint += v.value_ci_lower <= true_value <= v.value_ci_upper
        w = combine(rates, estimate, ses)
        independent += w.value_ci_lower <= true_value <= w.value_ci_upper
    assert 0.935 <= joint / len(draws) <= 0.965
    assert independent / len(draws) < 0.85
