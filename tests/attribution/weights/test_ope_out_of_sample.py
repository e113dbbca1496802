"""Off-policy evaluation out of sample (issue 13, item 12): 20 message classes with no
effect at all. A candidate built from one window's uplift estimates ("send the classes
whose estimate is positive") is no better than the logged policy, and the evaluation must
say so: on the next window its CI covers 0; on the window it was estimated from it does
not (the classes picked are the ones whose treated sends were lucky)."""

from __future__ import annotations

import numpy as np
import pytest

from upshot.attribution.weights.ope import candidate_actions, estimate

CLASSES, PER_CLASS, RUNS = 20, 300, 400


def _window(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One window of logged decisions: class, a randomized send (p 0.5), an outcome with
    no effect (conversion, 10%), and the logged propensity."""
    cls = np.repeat(np.arange(CLASSES), PER_CLASS)
    treated = rng.random(len(cls)) < 0.5
    y = (rng.random(len(cls)) < 0.1).astype(float)
    return cls, treated, y, np.full(len(cls), 0.5)


def _uplift(cls: np.ndarray, treated: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Difference in means per class: the uplift run's ATE on a randomized hold-out."""
    sums = np.bincount(cls, y * treated, CLASSES), np.bincount(cls, y * ~treated, CLASSES)
    counts = np.bincount(cls, treated, CLASSES), np.bincount(cls, ~treated, CLASSES)
    return sums[0] / counts[0] - sums[1] / counts[1]


def _covers(cls, treated, y, p, weights) -> tuple[bool, float]:
    action = candidate_actions(weights[cls])
    snips = next(
        e for e in estimate(y, treated, p, action, names=["value"]) if e.estimator == "snips"
    )
    return snips.effect_ci_lower <= 0 <= snips.effect_ci_upper, snips.effect


@pytest.mark.slow
def test_zero_effect_classes_cover_zero_out_of_sample_only():
    """400 runs (the issue's test). Measured with seed 21: the next window's SNIPS CI
    covers 0 in 93.75% of runs (mean effect -0.0001, i.e. none); over 3,000 more runs
    (seeds 1 and 2) 95.5%, so the CI is not short and this seed is 1.5 binomial SE
    (0.011) below its long-run rate. The estimation window's covers 0 in 0.75% of runs
    (mean +0.014): the defect the issue reports (0% at +0.025). The in-sample ceiling of
    50% shows the test can fail."""
    rng = np.random.default_rng(21)
    out_of_sample, in_sample = [], []
    for _ in range(RUNS):
        first, second = _window(rng), _window(rng)
        weights = _uplift(*first[:3])
        in_sample.append(_covers(*first, weights))
        out_of_sample.append(_covers(*second, weights))
    coverage = np.mean([c for c, _ in out_of_sample])
    assert coverage >= 0.93, coverage
    assert abs(np.mean([e for _, e in out_of_sample])) < 0.002
    assert np.mean([c for c, _ in in_sample]) < 0.5
