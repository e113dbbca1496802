"""Refutation by our own estimator: it is the reported ATE's, it can fail, and on a clean
randomized world it passes at about its nominal rate."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tests.attribution.uplift.uplift_world import ClassSpec, make_decisions
from upshot.attribution import estimate_uplift
from upshot.attribution.uplift.classtask import ClassTask, population
from upshot.attribution.uplift.refute import refute_class, refute_task
from upshot.config import Uplift

SIMULATIONS = 5


def _task(T, y, X, *, logged=None, randomized=None, settings=None) -> ClassTask:
    Y = np.asarray(y, dtype=np.float64)[:, None]
    return ClassTask(
        message_class="c",
        channel=None,
        T=T,
        Y=Y,
        X=X,
        logged=logged,
        randomized=randomized,
        objectives=("y",),
        binary=(False,),
        segments=(),
        settings=settings or Uplift(nuisance="linear", refute_simulations=SIMULATIONS),
        population=population(T, Y, ()),
        sampling={},
    )


def _randomized_world(seed: int, n: int = 2000):
    """A holdout at p = 0.5 (logged), true effect 1.0, a hidden binary U with effect 2."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    U = (rng.random(n) < 0.5).astype(np.int8)
    T = (rng.random(n) < 0.5).astype(np.int8)
    y = 1.0 * T + 2.0 * U + X[:, 0] + rng.normal(size=n)
    task = _task(T, y, X, logged=np.full(n, 0.5), randomized=np.ones(n, dtype=bool))
    return task, U


def test_a_placebo_that_really_acts_fails_the_placebo_refuter():
    task, U = _randomized_world(0, n=1200)
    clean = refute_task(task, task.T, task.X, ["y"])["y"]
    assert clean.placebo_passed
    assert clean.passed
    # the estimator really is the reported one: 4 SE is a loose bound on a 1.0 effect
    assert clean.estimate == pytest.approx(1.0, abs=4 * clean.se)

    # "placebo" U is a real cause of y (effect 2, ~16 SE here): a refuter that re-estimated
    # with anything but a working estimator, or never compared, could not fail on it
    from upshot.attribution.uplift import refute

    def acting(rng, rows, t):
        return U[rows]

    columns = [0]
    got = refute_class(
        task.T,
        task.X,
        ["y"],
        lambda rows, t, x, placebo: refute.reestimate(task, columns, rows, t, x, placebo=placebo),
        sample=task.settings.refute_sample,
        simulations=SIMULATIONS,
        seed=0,
        draw_placebo=acting,
    )["y"]
    assert got.placebo == pytest.approx(2.0, abs=4 * got.se)
    assert not got.placebo_passed
    assert not got.passed
    assert got.pvalues["placebo"] < 1e-6


def test_an_unobserved_confounder_moves_the_estimate_when_given_as_the_common_cause():
    # U drives both sending and the outcome and is not among the covariates: the estimate
    # is biased. The random-common-cause refuter with noise cannot see U (no refuter of
    # the three can, by construction); handed the planted U itself, the re-estimate moves
    # back to the truth and the refuter fails: it compares with our estimate and can fail.
    from upshot.attribution.uplift import refute

    rng = np.random.default_rng(5)
    n = 3000
    X = rng.normal(size=(n, 2))
    U = rng.normal(size=n)
    T = (rng.random(n) < 1 / (1 + np.exp(-1.5 * U))).astype(np.int8)
    y = 1.0 * T + 2.0 * U + X[:, 0] + rng.normal(size=n)
    task = _task(T, y, X)

    def estimate(rows, t, x, placebo):
        return refute.reestimate(task, [0], rows, t, x, placebo=placebo)

    blind = refute_class(T, X, ["y"], estimate, sample=20_000, simulations=5, seed=0)["y"]
    assert blind.estimate - 1.0 > 10 * blind.se  # badly biased ...
    assert blind.passed  # ... and the noise refuters cannot tell

    def confounder(rng, rows, t):
        return U[rows]

    seen = refute_class(
        T, X, ["y"], estimate, sample=20_000, simulations=5, seed=0, draw_cause=confounder
    )["y"]
    # the estimate adjusted for U is unbiased again: within 4 of its SEs of the truth
    assert seen.random_cause == pytest.approx(1.0, abs=4 * seen.se)
    assert abs(seen.random_cause - seen.estimate) > 0.5 * seen.se
    assert not seen.random_cause_passed
    assert not seen.passed


def test_refutation_results_land_on_the_overall_rows():
    frame, _ = make_decisions(1500, seed=8, specs={"promo": ClassSpec("push", 0.3, 1.2, 1.0)})
    results = estimate_uplift(
        frame,
        outcomes=["engagement", "conversion"],
        covariates=["activity", "tenure_years", "product_tier"],
        settings=Uplift(nuisance="linear", segments=("country",), refute_simulations=5),
    )
    overall = [e for e in results.estimates if e.segment == "all"]
    for e in overall:
        assert e.refute_passed is True
        assert np.isfinite([e.refute_placebo, e.refute_random_cause, e.refute_subset]).all()
        refutation = e.details["refutation"]
        assert refutation["simulations"] == 5
        # the class fits inside refute_sample: the refuters' estimate IS the reported ATE
        assert refutation["estimate"] == pytest.approx(e.ate, rel=1e-9)
        assert refutation["se"] == pytest.approx(e.ate_se, rel=1e-9)
    segments = pl.DataFrame([e.row() for e in results.estimates if e.segment != "all"])
    assert segments["refute_passed"].null_count() == segments.height
