"""Several long-term outcomes at once give each outcome's one-at-a-time numbers."""

from __future__ import annotations

import numpy as np
import pytest

from upshot.attribution.longterm.backtest import PastWindow, check_outcomes, check_window
from upshot.attribution.longterm.crossfit import default_learners
from upshot.attribution.longterm.surrogate import surrogate_index, surrogate_index_outcomes


def _arrays(seed: int = 0):
    rng = np.random.default_rng(seed)
    n_h, n_e = 600, 400
    x_h, x_e = rng.normal(size=(n_h, 2)), rng.normal(size=(n_e, 2))
    w = rng.binomial(1, 0.5, n_e).astype(float)
    s_h = np.column_stack([x_h[:, 0] + rng.normal(size=n_h), rng.normal(size=n_h)])
    s_e = np.column_stack([x_e[:, 0] + 0.5 * w + rng.normal(size=n_e), rng.normal(size=n_e)])
    y_h = s_h[:, 0] + 0.3 * s_h[:, 1] ** 2 + x_h[:, 1] + rng.normal(size=n_h)
    y_e = s_e[:, 0] + 0.3 * s_e[:, 1] ** 2 + x_e[:, 1] + rng.normal(size=n_e)
    return s_h, x_h, y_h, w, s_e, x_e, y_e


def test_one_outcome_equals_the_single_outcome_estimator():
    s_h, x_h, y_h, w, s_e, x_e, _ = _arrays()
    one = surrogate_index(s_h, x_h, y_h, w, s_e, x_e, seed=3)
    (many,) = surrogate_index_outcomes(s_h, x_h, y_h[:, None], w, s_e, x_e, seed=3)
    assert many.estimate == pytest.approx(one.estimate, abs=1e-12)
    assert many.se == pytest.approx(one.se, abs=1e-12)
    assert many.se_h_known == pytest.approx(one.se_h_known, abs=1e-12)
    for a, b in zip(many.short_term, one.short_term, strict=True):
        assert a.effect == pytest.approx(b.effect, abs=1e-12)
        assert a.se == pytest.approx(b.se, abs=1e-12)


def test_two_outcomes_give_each_its_own_numbers():
    # the same outcome twice: both columns give the single-outcome numbers
    s_h, x_h, y_h, w, s_e, x_e, _ = _arrays(1)
    one = surrogate_index(s_h, x_h, y_h, w, s_e, x_e, seed=5)
    a, b = surrogate_index_outcomes(s_h, x_h, np.column_stack([y_h, y_h]), w, s_e, x_e, seed=5)
    for est in (a, b):
        assert est.estimate == pytest.approx(one.estimate, abs=1e-12)
        assert est.se == pytest.approx(one.se, abs=1e-12)


def test_backtest_of_several_outcomes_equals_one_at_a_time():
    s_h, x_h, y_h, w, s_e, x_e, y_e = _arrays(2)
    past = PastWindow("w1", "c", s_h, x_h, y_h, w, s_e, x_e, y_e)
    kw = {"n_folds": 5, "seed": 4, "alpha": 0.05, "learners": default_learners()}
    single = check_window(past, **kw)
    both = PastWindow(
        "w1", "c", s_h, x_h, np.column_stack([y_h, y_h]), w, s_e, x_e, np.column_stack([y_e, y_e])
    )
    for row in check_outcomes(both, **kw):
        assert row.projected == pytest.approx(single.projected, abs=1e-12)
        assert row.realized == pytest.approx(single.realized, abs=1e-12)
        assert row.difference_se == pytest.approx(single.difference_se, abs=1e-12)
        assert row.naive == pytest.approx(single.naive, abs=1e-12)
