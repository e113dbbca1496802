"""Invariances: negating a metric negates the effect and keeps the SE; swapping arms
flips the sign. Checked for every estimator on arbitrary seeds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.experiments.conftest import rows_from, two_arms
from upshot.experiments.engine import Options, analyze_rows
from upshot.experiments.spec import MetricSpec

SPECS = {
    "welch": MetricSpec("y", "y"),
    "cuped": MetricSpec("y", "y", covariates=("x", "z")),
    "ratio": MetricSpec("r", "num", "den", covariates=("x",)),
}


def analysis(d, spec, adjust, negate=False, swap=False):
    sign = -1.0 if negate else 1.0
    arms = {}
    for label, key in (("control", "c"), ("treatment", "t")):
        arms[label] = {
            "y": sign * d[f"y_{key}"],
            "x": d[f"x_{key}"],
            "z": d[f"z_{key}"],
            "num": sign * d[f"num_{key}"],
            "den": d[f"den_{key}"],
        }
    if swap:
        arms = {"control": arms["treatment"], "treatment": arms["control"]}
    opts = Options(adjust=adjust)
    a = analyze_rows(
        rows_from(arms),
        [spec],
        experiment="e",
        control="control",
        split=None,
        options=opts,
        source="test",
    )
    return a.results[0]


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    which=st.sampled_from(list(SPECS)),
    adjust=st.sampled_from(["cuped", "lin"]),
)
def test_negating_the_metric_negates_the_effect_and_keeps_the_se(seed, which, adjust):
    d = two_arms(seed, 200, 260)
    base = analysis(d, SPECS[which], adjust)
    neg = analysis(d, SPECS[which], adjust, negate=True)
    assert neg.effect == pytest.approx(-base.effect, rel=1e-9, abs=1e-12)
    assert neg.effect_se == pytest.approx(base.effect_se, rel=1e-9)
    assert neg.pvalue == pytest.approx(base.pvalue, rel=1e-9)
    assert neg.effect_ci_lower == pytest.approx(-base.effect_ci_upper, rel=1e-9, abs=1e-12)
    assert neg.rel_effect == pytest.approx(base.rel_effect, rel=1e-9, abs=1e-12)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    which=st.sampled_from(list(SPECS)),
    adjust=st.sampled_from(["cuped", "lin", "none"]),
)
def test_swapping_arms_flips_the_sign(seed, which, adjust):
    d = two_arms(seed, 230, 230)
    base = analysis(d, SPECS[which], adjust)
    swapped = analysis(d, SPECS[which], adjust, swap=True)
    assert swapped.effect == pytest.approx(-base.effect, rel=1e-9, abs=1e-12)
    assert swapped.effect_se == pytest.approx(base.effect_se, rel=1e-9)
    assert swapped.pvalue == pytest.approx(base.pvalue, rel=1e-9)
    assert (swapped.control, swapped.treatment) == pytest.approx((base.treatment, base.control))


def test_shifting_a_mean_metric_changes_nothing_but_the_level():
    d = two_arms(3)
    base = analysis(d, SPECS["cuped"], "cuped")
    for k in ("y_c", "y_t"):
        d[k] = d[k] + 1000.0
    shifted = analysis(d, SPECS["cuped"], "cuped")
    assert shifted.effect == pytest.approx(base.effect, rel=1e-8)
    assert shifted.effect_se == pytest.approx(base.effect_se, rel=1e-8)
    assert np.isfinite(shifted.rel_effect)
