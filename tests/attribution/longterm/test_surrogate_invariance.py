"""Invariances of the surrogate index (gbstats' habit): negating the long-term outcome
negates the estimate and keeps the se; swapping the arms flips the sign; the inputs are
not modified; no covariates at all is allowed (propensity and arm means become means)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.attribution.longterm.world import make_world
from upshot.attribution.longterm.surrogate import surrogate_index


@pytest.fixture(scope="module")
def world():
    return make_world(np.random.default_rng(17), 600, 600, targeted=True)


def test_negating_y_negates_the_estimate_and_keeps_the_se(world):
    w = world
    base = surrogate_index(w.s_h, w.x_h, w.y_h, w.w, w.s, w.x, seed=3)
    neg = surrogate_index(w.s_h, w.x_h, -w.y_h, w.w, w.s, w.x, seed=3)
    # ridge predictions are linear in the target (same GCV alpha), nothing else sees Y
    assert neg.estimate == pytest.approx(-base.estimate, rel=1e-9)
    assert neg.se == pytest.approx(base.se, rel=1e-9)


def test_swapping_arms_flips_the_sign(world):
    w = world
    base = surrogate_index(w.s_h, w.x_h, w.y_h, w.w, w.s, w.x, seed=3)
    swapped = surrogate_index(w.s_h, w.x_h, w.y_h, 1 - w.w, w.s, w.x, seed=3)
    # P(W=0 | .) is 1 - P(W=1 | .) up to the logistic solver's tolerance
    assert swapped.estimate == pytest.approx(-base.estimate, abs=1e-4 * base.se)
    assert swapped.se == pytest.approx(base.se, rel=1e-3)
    for a, b in zip(base.short_term, swapped.short_term, strict=True):
        assert b.effect == pytest.approx(-a.effect, abs=1e-4 * a.se)


def test_inputs_untouched_and_no_covariates(world):
    w = world
    copies = [a.copy() for a in (w.s_h, w.y_h, w.w, w.s)]
    none_h, none_e = np.empty((600, 0)), np.empty((600, 0))
    est = surrogate_index(w.s_h, none_h, w.y_h, w.w, w.s, none_e, propensity=w.p, seed=1)
    for before, after in zip(copies, (w.s_h, w.y_h, w.w, w.s), strict=True):
        np.testing.assert_array_equal(before, after)
    assert np.isfinite(est.estimate)
    assert est.ci_lower < est.estimate < est.ci_upper
