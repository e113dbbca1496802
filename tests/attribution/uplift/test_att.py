"""The effect on the treated from the doubly robust scores (issue 13, item 15): a
targeted world where ATT and ATE differ by about a third, with known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from upshot.attribution.uplift.att import effect_on_treated


def _world(n: int, rng: np.random.Generator):
    """Sends targeted on activity, whose effect grows with activity (nonlinearly)."""
    activity = rng.normal(size=n)
    p = np.clip(1 / (1 + np.exp(-(0.3 + 2.0 * activity))), 0.05, 0.95)
    T = (rng.random(n) < p).astype(float)
    tau = 4 + 4 * activity + 1.5 * activity**2
    mu0 = 40 + 25 * activity
    y = mu0 + T * tau + rng.normal(0, 10, size=n)
    return activity, p, T, tau, mu0, y


def _truth() -> tuple[float, float]:
    """ATE and ATT of the world by numerical integration over activity ~ N(0, 1)."""
    a = np.linspace(-8, 8, 200_001)
    density = np.exp(-(a**2) / 2) / math.sqrt(2 * math.pi)
    p = np.clip(1 / (1 + np.exp(-(0.3 + 2.0 * a))), 0.05, 0.95)
    tau = 4 + 4 * a + 1.5 * a**2
    ate = np.trapezoid(tau * density, a)
    att = np.trapezoid(p * tau * density, a) / np.trapezoid(p * density, a)
    return float(ate), float(att)


def test_att_and_ate_differ_in_a_targeted_world():
    ate, att = _truth()
    assert ate == pytest.approx(5.5, rel=1e-9)  # 4 + 1.5 E[a²]
    assert att / ate - 1 > 0.3  # 38% here; the issue measured 32% in its targeted world


def test_oracle_scores_cover_the_att():
    """AIPW scores with the true outcome models: 400 worlds of 4,000 decisions. The
    propensity-weighted mean covers the true ATT (measured 0.975: slightly conservative,
    the propensity is taken as known; 0.93 is 4 binomial SE of 0.008 below) and is
    unbiased."""
    _, att = _truth()
    rng = np.random.default_rng(4)
    covered, centred = [], []
    for _ in range(400):
        _, p, T, tau, mu0, y = _world(4000, rng)
        mu1 = mu0 + tau
        phi = tau + T * (y - mu1) / p - (1 - T) * (y - mu0) / (1 - p)
        est = effect_on_treated(phi, p)
        covered.append(abs(est["att"] - att) <= 1.959964 * est["att_se"])
        centred.append(est["att"] - att)
    assert np.mean(covered) >= 0.93
    # unbiased: the mean error within 3 Monte-Carlo SE of 0
    assert abs(np.mean(centred)) < 3 * np.std(centred) / math.sqrt(len(centred))


@pytest.mark.slow
def test_linear_dml_scores_give_the_att_although_theta_is_misspecified():
    """Through the product's fit (`fit_objective`, linear_dml, per-arm linear outcome
    models while τ is quadratic): the propensity-weighted score mean is within 3 SE of the
    true ATT in each of 5 worlds of 20,000 decisions, and more than 5 SE away from the ATE
    that the causal column used to multiply the treated sends by."""
    from upshot.attribution.uplift.econml_adapter import fit_objective, stratified_folds
    from upshot.attribution.uplift.nuisances import arm_outcomes

    ate, att = _truth()
    for seed in range(5):
        rng = np.random.default_rng(100 + seed)
        activity, p, T, _, _, y = _world(20_000, rng)
        folds = stratified_folds(T.astype(int), 2, seed)
        X = activity[:, None]
        mu = arm_outcomes(
            y[:, None], [False], T.astype(int), X, folds, kind="linear", seed=seed, threads=1
        )
        fit = fit_objective(
            y,
            T.astype(int),
            X,
            p,
            mu[:, 0, :],
            estimator="linear_dml",
            discrete_outcome=False,
            folds=folds,
            seed=seed,
            threads=1,
            alpha=0.05,
        )
        est = effect_on_treated(fit.scores, p)
        assert abs(est["att"] - att) < 3 * est["att_se"], (seed, est, att)
        assert abs(est["att"] - ate) > 5 * est["att_se"]
