"""Several long-term outcomes at once give each outcome's one-at-a-time numbers."""

from __future__ import annotations

import numpy as np
import pytest

from upshot.attribution.longterm.backtest import PastWindow, check_outcomes, check_window
from upshot.attribution.longterm.crossfit import default_learners
from upshot.attribution.longterm.surrogate import (
    FoldPlan,
    aipw_scores,
    fit_nuisances,
    history_scores,
    projection_se,
    surrogate_index,
    surrogate_index_outcomes,
)


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


def _one_outcome_by_hand(s_h, x_h, y_h, w, s_e, x_e, seed):
    """The one-outcome estimator from its parts, h fitted on a 1-D outcome (what
    `surrogate_index` computed before it became a call of `surrogate_index_outcomes`)."""
    n_e, n_h = len(w), len(y_h)
    s, x = np.vstack([s_e, s_h]), np.vstack([x_e, x_h])
    y = np.concatenate([np.zeros(n_e), y_h])
    plan = FoldPlan.shared(n_e, n_h, 5, np.random.default_rng(seed))
    nuis = fit_nuisances(w, s, x, y, n_e, plan, default_learners(), extra_targets=s_e)
    rho = nuis.rho_x[:n_e]
    a = aipw_scores(w, nuis.nu[:n_e], nuis.mu1[:, 0], nuis.mu0[:, 0], rho)
    b = history_scores(y_h, nuis, n_e)
    short = aipw_scores(w, s_e, nuis.mu1[:, 1:], nuis.mu0[:, 1:], rho)
    return float(a.mean() + b.sum() / n_e), projection_se(a, b), short.mean(axis=0)


def test_one_outcome_equals_the_single_outcome_estimator():
    s_h, x_h, y_h, w, s_e, x_e, _ = _arrays()
    estimate, (se, se_known), short = _one_outcome_by_hand(s_h, x_h, y_h, w, s_e, x_e, 3)
    for one in (
        surrogate_index(s_h, x_h, y_h, w, s_e, x_e, seed=3),
        surrogate_index_outcomes(s_h, x_h, y_h[:, None], w, s_e, x_e, seed=3)[0],
    ):
        # a 2-D ridge target solves the same normal equations: equal up to rounding
        assert one.estimate == pytest.approx(estimate, abs=1e-12)
        assert one.se == pytest.approx(se, abs=1e-12)
        assert one.se_h_known == pytest.approx(se_known, abs=1e-12)
        assert [t.effect for t in one.short_term] == pytest.approx(list(short), abs=1e-12)


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


def test_the_naive_baseline_scales_the_named_primary_surrogate():
    s_h, x_h, y_h, w, s_e, x_e, y_e = _arrays(3)
    kw = {"n_folds": 5, "seed": 6, "alpha": 0.05, "learners": default_learners()}
    swap = [1, 0]
    # primary = the second surrogate gives what primary = first gives with the columns
    # swapped (the naive baseline reads only X-nuisances and the primary column)
    (named,) = check_outcomes(PastWindow("w", "c", s_h, x_h, y_h, w, s_e, x_e, y_e,
                                         primary=(1,)), **kw)  # fmt: skip
    (swapped,) = check_outcomes(PastWindow("w", "c", s_h[:, swap], x_h, y_h, w, s_e[:, swap],
                                           x_e, y_e), **kw)  # fmt: skip
    assert named.naive == pytest.approx(swapped.naive, rel=1e-9)
    (first,) = check_outcomes(PastWindow("w", "c", s_h, x_h, y_h, w, s_e, x_e, y_e), **kw)
    assert named.naive != pytest.approx(first.naive, rel=1e-3)
    # the constant is the history's OLS slope of Y on the primary surrogate: here the
    # treatment moves only S1, so the effect on S2 (and the naive projection) is ~ 0
    # while the slope on S2 is ~ 0 too; against the first surrogate, slope ~ 1
    assert np.polyfit(s_h[:, 0], y_h, 1)[0] == pytest.approx(1.0, abs=0.15)
    assert abs(named.naive) < abs(first.naive)
