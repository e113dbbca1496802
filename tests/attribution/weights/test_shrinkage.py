"""Empirical-Bayes shrinkage: the closed-form normal-normal case, statsmodels' DL, a brute-force
REML maximiser, and a simulation with known true values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from upshot.attribution.weights.ebci import cva_exact
from upshot.attribution.weights.shrinkage import (
    Prior,
    fit_prior,
    shrink,
    shrink_groups,
    tau2_moments,
    tau2_reml,
)


def test_known_prior_is_the_closed_form_posterior_mean():
    # y = 2, s = 1, prior N(0, 1): posterior mean (2/1 + 0/1)/(1 + 1) = 1, B = 1/2
    s = shrink(2.0, 1.0, Prior(0.0, 0.0, 1.0, 10, "reml", "x"))
    assert s.estimate == pytest.approx(1.0)
    assert s.shrinkage == pytest.approx(0.5)
    # the noise of the shrunk estimate is w·s; the normalised bias has E b² = s²/τ² = 1
    assert s.se == pytest.approx(0.5)
    assert s.ci_upper - s.estimate == pytest.approx(cva_exact(1.0) * 0.5, rel=1e-4)
    # general case: precision-weighted average
    y, se, mu, tau = 0.3, 0.2, -0.1, 0.15
    s = shrink(y, se, Prior(mu, 0.0, tau, 10, "reml", "x"))
    precision = 1 / se**2 + 1 / tau**2
    assert s.estimate == pytest.approx((y / se**2 + mu / tau**2) / precision, rel=1e-12)
    assert s.shrinkage == pytest.approx(se**2 / (se**2 + tau**2))


def test_uncertain_prior_mean_widens_the_interval():
    # the noise of θ̂ = wy + (1 - w)μ̂ adds (1 - w)² Var(μ̂); t is the bias over that noise
    s = shrink(2.0, 1.0, Prior(0.0, 0.5, 1.0, 10, "reml", "x"))
    sd = math.sqrt(0.25 + 0.25 * 0.25)
    assert s.se == pytest.approx(sd)
    t = 0.25 * 1.0 / sd**2
    assert s.ci_upper - s.estimate == pytest.approx(cva_exact(t) * sd, rel=1e-4)
    assert s.ci_upper - s.ci_lower > 2 * 1.96 * sd


def test_tau2_variance_is_the_inverse_reml_information():
    # balanced case: information = ½ Σw² (1 - 2/k + 1/k) = (k - 1) / (2 (s² + τ²)²)
    y = np.array([0.1, 0.4, -0.2, 0.9, 0.3, 0.05])
    prior = fit_prior(y, np.full(6, 0.1))
    total = 0.01 + prior.tau**2
    assert prior.tau2_var == pytest.approx(2 * total**2 / 5, rel=1e-9)


@pytest.mark.parametrize("method", ["reml", "moments"])
def test_balanced_closed_form(method):
    # equal variances s²: both estimators give τ² = Σ(y - ȳ)²/(k - 1) - s², truncated at 0
    y = np.array([0.1, 0.4, -0.2, 0.9, 0.3, 0.05])
    s2 = 0.02
    expected = max(0.0, float(np.var(y, ddof=1)) - s2)
    fit = tau2_reml if method == "reml" else tau2_moments
    assert fit(y, np.full(len(y), s2)) == pytest.approx(expected, rel=1e-9)
    assert fit(y, np.full(len(y), 10.0)) == 0.0
    prior = fit_prior(y, np.full(len(y), math.sqrt(s2)), method)
    assert prior.mean == pytest.approx(y.mean())
    assert prior.tau == pytest.approx(math.sqrt(expected))


def test_moments_match_statsmodels_dersimonian_laird():
    from statsmodels.stats.meta_analysis import combine_effects

    rng = np.random.default_rng(3)
    y = rng.normal(0.5, 0.4, size=12)
    v = rng.uniform(0.01, 0.2, size=12)
    ref = combine_effects(y, v, method_re="dl")
    assert tau2_moments(y, v) == pytest.approx(ref.tau2, rel=1e-10)
    prior = fit_prior(y, np.sqrt(v), "moments")
    assert prior.mean == pytest.approx(ref.mean_effect_re, rel=1e-10)
    assert prior.mean_se == pytest.approx(ref.sd_eff_w_re, rel=1e-10)


def test_reml_matches_brute_force_maximisation():
    from scipy.optimize import minimize_scalar

    rng = np.random.default_rng(11)
    y = rng.normal(1.0, 0.6, size=9)
    v = rng.uniform(0.05, 0.5, size=9)

    def neg_restricted_loglik(tau2: float) -> float:
        w = 1 / (v + tau2)
        mu = w @ y / w.sum()
        return 0.5 * (np.log(v + tau2).sum() + math.log(w.sum()) + w @ (y - mu) ** 2)

    best = minimize_scalar(
        neg_restricted_loglik, bounds=(0, 10), method="bounded", options={"xatol": 1e-10}
    )
    assert tau2_reml(y, v) == pytest.approx(best.x, rel=1e-5)


def test_identical_estimates_shrink_to_the_floor():
    # τ̂ = 0, but shrinkage stops at the PMT floor 2 Σs⁴/(k Σs²) = 2 s²/k = 0.005 (AKP 2022),
    # so B = s²/(s² + 0.005) = 2/3, not 1, and the interval keeps a width
    prior = fit_prior(np.full(4, 0.3), np.full(4, 0.1))
    assert prior.tau == 0.0
    assert prior.mu2 == pytest.approx(0.005)
    s = shrink(0.3, 0.1, prior)
    assert s.shrinkage == pytest.approx(2 / 3)
    assert s.ci_upper - s.ci_lower > 0


def test_groups_borrow_the_global_prior_and_pass_nan_through():
    estimates = {
        "p1": ("push", 1.0, 0.5),
        "p2": ("push", 2.0, 0.5),
        "p3": ("push", 3.0, 0.5),
        "e1": ("email", 10.0, 0.5),  # alone in its channel: the global prior
        "n1": ("push", math.nan, math.nan),
        "x1": ("push", 1.5, 0.0),  # exact: kept as is
    }
    shrunk, priors = shrink_groups(estimates, min_k=3)
    assert priors["push"].scope == "push"
    assert priors["push"].k == 3
    assert priors["email"].scope == "*"
    assert priors["email"].k == 4
    assert math.isnan(shrunk["n1"].estimate)
    assert math.isnan(shrunk["n1"].shrinkage)
    assert shrunk["x1"].estimate == 1.5
    assert shrunk["x1"].shrinkage == 0.0
    assert 0 < shrunk["p1"].shrinkage < 1
    assert shrunk["p1"].estimate > 1.0  # toward the channel mean 2
    assert shrunk["p3"].estimate < 3.0


def test_a_lone_estimate_is_not_shrunk():
    shrunk, priors = shrink_groups({"a": ("push", 1.0, 0.5)})
    assert priors == {}
    assert shrunk["a"].estimate == 1.0
    assert shrunk["a"].shrinkage == 0.0


@pytest.mark.parametrize("method", ["reml", "moments"])
def test_simulation_lowers_error_and_covers(method):
    """True values θ_i ~ N(μ, τ²), estimates y_i ~ N(θ_i, s_i²) with unequal s_i.

    Over 200 groups of 30 the shrunk estimates must have a clearly lower mean squared
    error than the raw ones (measured: 63% lower), and the posterior 95%
    intervals must cover θ in at least 90% of the 6,000 cases. EB intervals run short
    because τ̂ is itself noisy (here its sd is about half of τ²): plug-in intervals covered
    0.90 in this design, the Kass–Steffey correction lifts that to about 0.915; 0.90 is
    4 binomial SE (0.0036) below that.
    """
    rng = np.random.default_rng(7)
    raw_error = shrunk_error = covered = total = 0.0
    for _ in range(200):
        theta = rng.normal(1.0, 0.5, size=30)
        se = rng.uniform(0.2, 1.0, size=30)
        y = rng.normal(theta, se)
        prior = fit_prior(y, se, method)
        post = [shrink(a, b, prior) for a, b in zip(y, se, strict=True)]
        est = np.array([p.estimate for p in post])
        raw_error += float(((y - theta) ** 2).sum())
        shrunk_error += float(((est - theta) ** 2).sum())
        covered += sum(p.ci_lower <= t <= p.ci_upper for p, t in zip(post, theta, strict=True))
        total += 30
    assert shrunk_error < 0.5 * raw_error
    assert covered / total >= 0.90
