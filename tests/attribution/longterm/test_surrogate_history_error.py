"""The error of h matters: with a short history, a CI that treats h as known under-covers.

40 seeded randomized worlds (world.py, nonlinear h, true ATE 0.445) with only 300 history
rows beside 3,000 experiment rows, so h is learned with an error comparable to the
experiment's sampling error. Our CI (Chen & Ritzwoller influence function, the history
term B included) against the CI a method treating h as known would give (the
experiment term A alone). Measured when written: 92.5% against 85%, and our se 1.24 times
the h-known one.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from tests.attribution.longterm.world import TRUE_ATE, make_world
from upshot.attribution.longterm.surrogate import surrogate_index


@pytest.mark.slow
def test_the_history_term_restores_coverage_with_a_short_history():
    rng = np.random.default_rng(99)
    truth, z = TRUE_ATE["nonlinear"], norm.ppf(0.975)
    ours, known, ratio = [], [], []
    for r in range(40):
        w = make_world(rng, 300, 3000, h="nonlinear")
        est = surrogate_index(w.s_h, w.x_h, w.y_h, w.w, w.s, w.x, seed=r)
        ours.append(est.ci_lower <= truth <= est.ci_upper)
        known.append(abs(est.estimate - truth) <= z * est.se_h_known)
        ratio.append(est.se / est.se_h_known)
    assert np.mean(ours) >= 0.90
    assert np.mean(known) <= np.mean(ours) - 0.05  # at least 2 of 40 worlds more missed
    assert np.mean(ratio) > 1.15
