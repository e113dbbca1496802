"""The surrogate index against the `surrogate-index` package (Chen & Ritzwoller's EIF).

The package is the reference, used here only. Its folds come from scikit-learn's
`KFold(shuffle=True)` on NumPy's global generator, drawn in a fixed order (P(W|S,X),
P(W|X), P(G|S,X), h); seeding that generator and replaying the same draws gives us its
exact folds. Its learners here are deterministic (OLS, logistic regression solved to
1e-10), so our cross-fitted nuisances must equal its columns to solver precision. One
structural difference remains: the package predicts the arm means mu_w in sample (its
out-of-fold predictions are overwritten by a full fit, learners.py), we cross-fit them;
so the point estimates agree to O(p/n), checked against a fraction of the standard error.
We run the package with `unconfounded=False`: its `unconfounded=True` shortcut sets
P(W | S, X) = P(W | X), which drops the error of h from the influence function.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import KFold

from tests.attribution.longterm.world import make_world
from upshot.attribution.longterm.crossfit import Learners
from upshot.attribution.longterm.surrogate import (
    FoldPlan,
    Nuisances,
    aipw_scores,
    fit_nuisances,
    history_scores,
    projection_se,
)
from upshot.attribution.longterm.table import surrogate_index_tables

surrogate_index_pkg = pytest.importorskip("surrogate_index")

SEED = 11


def _learners() -> Learners:
    return Learners(LinearRegression(), LogisticRegression(tol=1e-10, max_iter=10_000))


def _package(world, *, seed: int) -> pd.DataFrame:
    exp = pd.DataFrame(
        {"w": world.w.astype(int), "s1": world.s[:, 0], "s2": world.s[:, 1]}
        | {"x1": world.x[:, 0], "x2": world.x[:, 1]}
    )
    obs = pd.DataFrame(
        {"y": world.y_h, "s1": world.s_h[:, 0], "s2": world.s_h[:, 1]}
        | {"x1": world.x_h[:, 0], "x2": world.x_h[:, 1]}
    )
    np.random.seed(seed)  # the package's KFold draws from the global generator
    learners = _learners()
    return surrogate_index_pkg.efficient_influence_function(
        exp, obs, "y", "w", ["s1", "s2"], ["x1", "x2"],
        classifier=learners.classifier, regressor=learners.regressor, unconfounded=False,
    )  # fmt: skip


def _package_folds(seed: int, n_e: int, n_h: int) -> FoldPlan:
    """The folds the package drew, replayed in its order of draws."""
    np.random.seed(seed)

    def ids(n: int) -> np.ndarray:
        out = np.empty(n, dtype=int)
        for k, (_, test) in enumerate(KFold(n_splits=5, shuffle=True).split(np.zeros(n))):
            out[test] = k
        return out

    rho_sx, rho_x, pooled, history = ids(n_e), ids(n_e), ids(n_e + n_h), ids(n_h)
    return FoldPlan(rho_x, rho_sx, rho_x, history, pooled)


@pytest.fixture(scope="module")
def world():
    return make_world(np.random.default_rng(7), 1500, 1200, h="linear", targeted=True)


@pytest.fixture(scope="module")
def ours_and_package(world):
    n_e, n_h = world.w.size, world.y_h.size
    pkg = _package(world, seed=SEED)
    nuis = fit_nuisances(
        world.w,
        np.vstack([world.s, world.s_h]),
        np.vstack([world.x, world.x_h]),
        np.concatenate([np.zeros(n_e), world.y_h]),
        n_e,
        _package_folds(SEED, n_e, n_h),
        _learners(),
    )
    return nuis, pkg


def test_cross_fitted_nuisances_equal_the_package_on_its_folds(ours_and_package):
    nuis, pkg = ours_and_package
    # same folds, same deterministic learners: equal to the logistic solver's precision
    # (no clipping happens on this world: every probability is inside [0.01, 0.99])
    for ours, theirs in (
        (nuis.nu, "nu_sx"),
        (nuis.rho_x, "varrho_x"),
        (nuis.rho_sx, "varrho_sx"),
        (nuis.gamma, "gamma_sx"),
    ):
        np.testing.assert_allclose(ours, pkg[theirs].to_numpy(), rtol=0, atol=1e-6)


def test_influence_function_arithmetic_equals_the_package(ours_and_package, world):
    """Fed the package's own nuisance columns, our scores are its EIF, to rounding."""
    _, pkg = ours_and_package
    n_e = world.w.size
    col = {c: pkg[c].to_numpy() for c in pkg.columns}
    nuis = Nuisances(
        nu=col["nu_sx"],
        rho_x=col["varrho_x"],
        rho_sx=col["varrho_sx"],
        gamma=col["gamma_sx"],
        mu1=col["bar_nu_1"][:n_e, None],
        mu0=col["bar_nu_0"][:n_e, None],
    )
    rho = col["varrho_x"][:n_e]
    a = aipw_scores(world.w, col["nu_sx"][:n_e], nuis.mu1[:, 0], nuis.mu0[:, 0], rho)
    b = history_scores(world.y_h, nuis, n_e)
    one_minus_pi = 1 - col["pi"][0]  # the package weights each sample by 1/(1 - pi)
    np.testing.assert_allclose(a / one_minus_pi, col["eif"][:n_e], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b / one_minus_pi, col["eif"][n_e:], rtol=1e-12, atol=1e-12)
    # our variance holds both sample sizes fixed; the package's pooled variance treats
    # the split into samples as random and so adds the between-sample term
    # pi (1 - pi) (tau / (1 - pi))^2 / n; with it, the two agree up to ddof (~1/n)
    se, _ = projection_se(a, b)
    eif = col["eif"]
    pi, tau = col["pi"][0], eif.mean()
    between = pi * (1 - pi) * (tau / one_minus_pi) ** 2 / eif.size
    pkg_var = eif.var(ddof=1) / eif.size
    assert se**2 + between == pytest.approx(pkg_var, rel=2e-3)


def test_estimate_equals_the_package_up_to_cross_fitting_of_the_arm_means(ours_and_package, world):
    nuis, pkg = ours_and_package
    n_e = world.w.size
    a = aipw_scores(world.w, nuis.nu[:n_e], nuis.mu1[:, 0], nuis.mu0[:, 0], nuis.rho_x[:n_e])
    b = history_scores(world.y_h, nuis, n_e)
    ours = a.mean() + b.sum() / n_e
    se, _ = projection_se(a, b)
    # the only difference is mu_w out of fold (ours) or in sample (theirs): an O(p/n)
    # change of the arm means, far below the sampling error; 5% of a se is ~0.003 here
    assert abs(ours - pkg["eif"].mean()) < 0.05 * se


def test_table_path_agrees_with_the_package_within_fold_noise(world):
    """The public table path, with its own seeded folds, against the package over five
    fold draws: the two differ only by the fold draw, whose spread is a small fraction
    of the se, so the mean package estimate must lie within 0.2 se of ours."""
    history = pl.DataFrame(
        {"s1": world.s_h[:, 0], "s2": world.s_h[:, 1], "x1": world.x_h[:, 0]}
        | {"x2": world.x_h[:, 1], "y": world.y_h}
    )
    experiment = pl.DataFrame(
        {"t": world.w.astype(int), "s1": world.s[:, 0], "s2": world.s[:, 1]}
        | {"x1": world.x[:, 0], "x2": world.x[:, 1]}
    )
    ours = surrogate_index_tables(
        history, experiment, treatment_col="t", surrogates=["s1", "s2"], long_term_col="y",
        covariates=["x1", "x2"], learners=_learners(),
    )  # fmt: skip
    theirs = [_package(world, seed=s)["eif"].mean() for s in range(5)]
    assert abs(ours.estimate - np.mean(theirs)) < 0.2 * ours.se
    assert np.std(theirs) < 0.1 * ours.se  # the fold noise is indeed small
