"""The surrogacy check on a planted world: one class harms the long term in a way its
short-term effects do not show; the backtest must flag it, and only it.

Four classes x three past windows, 1,000 history and 1,000 experiment rows each,
nonlinear h (world.py): `steady` moves both surrogates, `deep` mostly S2 (whose value is
quadratic, so "short-term x constant" misses it), `shallow` only S1, and `wearout` moves
the surrogates like `steady` but lowers Y directly by 0.6 (about 6 se of a window's
difference). Class flags are Bonferroni over the 4 classes at alpha = 0.05.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.attribution.longterm.world import make_class_window
from upshot.attribution.longterm.backtest import PastWindow, backtest

CLASSES = {
    "steady": ((0.4, 0.3), 0.0),
    "deep": ((0.1, 0.9), 0.0),
    "shallow": ((0.6, 0.0), 0.0),
    "wearout": ((0.4, 0.3), -0.6),
}


@pytest.fixture(scope="module")
def result():
    rng = np.random.default_rng(42)
    windows = []
    for week in ("2026-W01", "2026-W02", "2026-W03"):
        for name, (tau, direct) in CLASSES.items():
            w = make_class_window(rng, 1000, 1000, tau, direct=direct)
            windows.append(PastWindow(week, name, w.s_h, w.x_h, w.y_h, w.w, w.s, w.x, w.y, None))
    return backtest(windows, seed=1)


@pytest.mark.slow
def test_the_planted_class_is_flagged_and_only_it(result):
    assert result.flagged == ("wearout",)
    wearout = next(c for c in result.classes if c.message_class == "wearout")
    # the projection does not see the harm: it is above the realized effect by ~0.6
    assert wearout.difference == pytest.approx(0.6, abs=3 * wearout.difference_se)
    assert all(r.missed for r in result.rows if r.message_class == "wearout")


@pytest.mark.slow
def test_calibration_holds_where_surrogacy_holds(result):
    held = [r for r in result.rows if r.message_class != "wearout"]
    # 9 windows, each missing with chance 5% when surrogacy holds: at most one miss
    assert sum(r.missed for r in held) <= 1
    assert result.coverage == pytest.approx(np.mean([not r.missed for r in result.rows]))
    # over the classes where it holds, projected and realized line up (slope near 1;
    # the spread of true effects, 0.4 to 0.6, is ~5x a projection's se of ~0.08)
    projected = np.array([r.projected for r in held])
    realized = np.array([r.realized for r in held])
    assert np.corrcoef(projected, realized)[0, 1] > 0.5
    truth = {"steady": 0.445, "deep": 0.505, "shallow": 0.6}
    for r in held:  # each realized effect is itself an unbiased measure of the truth
        assert abs(r.realized - truth[r.message_class]) < 4 * r.realized_se


@pytest.mark.slow
def test_naive_short_term_times_constant_is_worse(result):
    held = [r for r in result.rows if r.message_class != "wearout"]
    gap = np.sqrt(np.mean([(r.projected - r.realized) ** 2 for r in held]))
    naive_gap = np.sqrt(np.mean([(r.naive - r.realized) ** 2 for r in held]))
    assert naive_gap > 1.5 * gap
    assert result.rmse_naive > result.rmse_projected
