"""Decompositions against independent influence-function computations on unit-level data,
and the add-up checks that run when a result is built."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from upshot.experiments.decompose import funnel, segment_moments, shift_share
from upshot.experiments.stats import Moments


def funnel_arm(rng, n, open_rate):
    sends = rng.poisson(5.0, n).astype(float)
    opens = rng.binomial(sends.astype(int), open_rate).astype(float)
    conv = rng.binomial(opens.astype(int), 0.1).astype(float)
    return np.column_stack([sends, opens, conv])


def influence_logs(x):
    """Per-user influence values of log(step j) for the steps of a funnel (an independent
    route to the delta method: the mean's covariance is cov(IF) / n)."""
    mu = x.mean(axis=0)
    z = (x - mu) / mu  # influence of log(mean_j)
    return np.column_stack([z[:, 0]] + [z[:, j] - z[:, j - 1] for j in range(1, x.shape[1])])


def test_funnel_matches_influence_functions():
    rng = np.random.default_rng(8)
    xc, xt = funnel_arm(rng, 3000, 0.2), funnel_arm(rng, 3200, 0.24)
    names = ["sends", "opens", "conversions"]
    d = funnel(
        Moments.from_data(xc, names),
        Moments.from_data(xt, names),
        experiment="e",
        arm="t",
        alpha=0.05,
    )
    assert d.status == "ok"
    steps_c = np.r_[xc[:, 0].mean(), xc.sum(0)[1:] / xc.sum(0)[:-1]]
    steps_t = np.r_[xt[:, 0].mean(), xt.sum(0)[1:] / xt.sum(0)[:-1]]
    np.testing.assert_allclose(
        [s.log_effect for s in d.steps], np.log(steps_t / steps_c), rtol=1e-12
    )
    ic, it = influence_logs(xc), influence_logs(xt)
    cov = np.cov(ic.T) / len(xc) + np.cov(it.T) / len(xt)
    np.testing.assert_allclose(np.array(d.covariance), cov, rtol=1e-9)
    total = np.log(xt[:, 2].mean() / xc[:, 2].mean())
    assert d.total_log_effect == pytest.approx(total, rel=1e-12)
    assert d.total_log_effect_se == pytest.approx(np.sqrt(cov.sum()), rel=1e-9)
    # share of step j = L_j / T; its delta-method SE from the same joint covariance
    L = np.log(steps_t / steps_c)
    g = (np.eye(3) * total - L[:, None]) / total**2
    share_se = np.sqrt(np.diag(g @ cov @ g.T))
    np.testing.assert_allclose([s.share_se for s in d.steps], share_se, rtol=1e-8)
    assert sum(s.share for s in d.steps) == pytest.approx(1.0, rel=1e-12)
    for s in d.steps:  # simultaneous intervals are wider than marginal ones
        assert (
            s.rel_effect_joint_ci_lower
            < s.rel_effect_ci_lower
            < s.rel_effect
            < s.rel_effect_ci_upper
            < s.rel_effect_joint_ci_upper
        )


def test_funnel_refuses_parts_that_do_not_add_up():
    rng = np.random.default_rng(9)
    names = ["a", "b"]
    d = funnel(
        Moments.from_data(funnel_arm(rng, 500, 0.2)[:, :2], names),
        Moments.from_data(funnel_arm(rng, 500, 0.3)[:, :2], names),
        experiment="e", arm="t", alpha=0.05,
    )  # fmt: skip
    with pytest.raises(ValueError, match="add to"):
        replace(d, total_log_effect=d.total_log_effect + 0.01)


def test_funnel_with_a_zero_step_is_a_status_not_a_number():
    names = ["a", "b"]
    zero = Moments.from_data(np.zeros((50, 2)), names)
    d = funnel(zero, zero, experiment="e", arm="t", alpha=0.05)
    assert d.status == "zero_denominator"
    assert math.isnan(d.total_log_effect)
    assert all(math.isnan(s.log_effect) for s in d.steps)


def shift_share_data(rng, n, shares, means):
    seg = rng.choice(len(shares), n, p=shares)
    y = rng.gamma(2.0, np.asarray(means)[seg] / 2.0)
    return seg, y


def test_shift_share_parts_add_up_and_match_influence_functions():
    rng = np.random.default_rng(10)
    segs = ["a", "b", "c"]
    sc, yc = shift_share_data(rng, 4000, [0.5, 0.3, 0.2], [10, 20, 40])
    st, yt = shift_share_data(rng, 4100, [0.45, 0.3, 0.25], [11, 20, 44])

    def rows(seg, y):
        return [
            {
                "segment": s,
                "n": int((seg == i).sum()),
                "y_sum": float(y[seg == i].sum()),
                "y_sum_squares": float((y[seg == i] ** 2).sum()),
            }
            for i, s in enumerate(segs)
        ]

    mc, mt = segment_moments(rows(sc, yc), "y", segs), segment_moments(rows(st, yt), "y", segs)
    r = shift_share(mc, mt, segs, experiment="e", arm="t", metric="y", alpha=0.05)
    assert r.effect == pytest.approx(yt.mean() - yc.mean(), rel=1e-12)
    assert sum(p.mix + p.rate for p in r.parts) == pytest.approx(r.effect, rel=1e-12)
    # part "c": w = share of users, r = segment mean; influence functions per arm
    i = 2

    def terms(seg, y):
        ind = (seg == i).astype(float)
        w, rate = ind.mean(), y[seg == i].mean()
        return w, rate, ind - w, (y * ind - rate * ind) / w

    w_c, r_c, iw_c, ir_c = terms(sc, yc)
    w_t, r_t, iw_t, ir_t = terms(st, yt)
    mix = (w_t - w_c) * (r_t + r_c) / 2
    rate = (w_t + w_c) / 2 * (r_t - r_c)
    assert r.parts[i].mix == pytest.approx(mix, rel=1e-12)
    assert r.parts[i].rate == pytest.approx(rate, rel=1e-12)
    # mix's influence: d/dw_t = (r_t + r_c)/2, d/dr_t = (w_t - w_c)/2 (and the control's)
    if_t = (r_t + r_c) / 2 * iw_t + (w_t - w_c) / 2 * ir_t
    if_c = -(r_t + r_c) / 2 * iw_c + (w_t - w_c) / 2 * ir_c
    se = np.sqrt(if_t.var(ddof=1) / len(st) + if_c.var(ddof=1) / len(sc))
    assert r.parts[i].mix_se == pytest.approx(se, rel=1e-9)
    with pytest.raises(ValueError, match="add to"):
        replace(r, effect=r.effect + 1.0)


def test_shift_share_with_a_segment_missing_in_one_arm():
    rng = np.random.default_rng(11)
    segs = ["a", "b"]
    y = rng.gamma(2.0, 5.0, 300)
    rows_c = [{"segment": "a", "n": 300, "y_sum": y.sum(), "y_sum_squares": (y**2).sum()}]
    rows_t = [
        {"segment": "a", "n": 200, "y_sum": y[:200].sum(), "y_sum_squares": (y[:200] ** 2).sum()},
        {
            "segment": "b",
            "n": 100,
            "y_sum": y[200:].sum() * 2,
            "y_sum_squares": (y[200:] ** 2).sum() * 4,
        },
    ]
    r = shift_share(
        segment_moments(rows_c, "y", segs),
        segment_moments(rows_t, "y", segs),
        segs,
        experiment="e",
        arm="t",
        metric="y",
        alpha=0.05,
    )
    assert r.status == "ok"
    assert sum(p.mix + p.rate for p in r.parts) == pytest.approx(r.effect, rel=1e-12)
    b = r.parts[1]
    assert b.rate == 0.0
    assert b.mix == pytest.approx(b.weight_treatment * b.rate_treatment)
