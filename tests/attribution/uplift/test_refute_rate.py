"""The refuters on a clean randomized world pass at about their nominal rate (slow)."""

from __future__ import annotations

import pytest

from tests.attribution.uplift.test_refute import _randomized_world
from upshot.attribution.uplift.refute import refute_task


@pytest.mark.slow
def test_refuters_pass_at_their_nominal_rate_on_a_clean_randomized_world():
    # Each rule is a 3-sigma (or stricter) band: with no planted problem a seed should
    # fail at most ~1% of the time, so >= 18 of 20 passes tolerates 2 false alarms
    # (P(>= 3 of 20 | p = 0.01) ~ 0.1%).
    passed = []
    for seed in range(20):
        task, _ = _randomized_world(100 + seed, n=1000)
        passed.append(refute_task(task, task.T, task.X, ["y"])["y"].passed)
    assert sum(passed) >= 18, passed
