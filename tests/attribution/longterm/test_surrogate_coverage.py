"""Seeded simulation: the surrogate-index CI covers the true long-term ATE.

40 worlds per design (tests/attribution/longterm/world.py: surrogacy holds, h nonlinear in
S2, true ATE 0.445), 1,000 history and 1,000 experiment rows each, default learners:
a randomized experiment, a targeted one with the propensity estimated, and the same
targeted one with the logged propensity given. Nominal level 95%; the issue asks >= 90%
of >= 40 (with 95% true coverage, P(fewer than 36 of 40) is about 5%; seeded, so fixed).
Measured when written: 97.5%, 95%, 95% on these 40 worlds (95%, 93%, 93% over 60 others);
bias +0.004, -0.015, -0.022 (se of the mean ~0.014); ~20 s CPU per design.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.attribution.longterm.world import TRUE_ATE, make_world
from upshot.attribution.longterm.surrogate import surrogate_index

WORLDS = 40


@pytest.mark.slow
@pytest.mark.parametrize("design", ["randomized", "targeted_estimated", "targeted_given"])
def test_ci_covers_the_true_long_term_effect(design):
    rng = np.random.default_rng(20260516)
    truth = TRUE_ATE["nonlinear"]
    estimates, covered = [], []
    for r in range(WORLDS):
        w = make_world(rng, 1000, 1000, h="nonlinear", targeted=design != "randomized")
        est = surrogate_index(
            w.s_h, w.x_h, w.y_h, w.w, w.s, w.x,
            propensity=w.p if design == "targeted_given" else None, seed=r,
        )  # fmt: skip
        estimates.append(est.estimate)
        covered.append(est.ci_lower <= truth <= est.ci_upper)
    assert np.mean(covered) >= 0.90
    # and no material bias: the mean of 40 estimates within 3 of its standard errors
    assert abs(np.mean(estimates) - truth) < 3 * np.std(estimates) / np.sqrt(WORLDS)
