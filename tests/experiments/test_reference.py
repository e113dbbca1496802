"""Every statistic against an independent implementation, to 1e-9 relative.

References: scipy's Welch t-test, statsmodels OLS (HC2 for the difference of means, whose
sandwich equals Welch's variance exactly; the ANCOVA and Lin-interacted coefficients for
CUPED and Lin), statsmodels' proportion tests, and brute-force numpy on unit-level data
(residualized outcomes for the adjusted SEs, the linearization for ratios).
"""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats import proportion as sm_proportion
from statsmodels.stats.proportion import confint_proportions_2indep

from tests.experiments.conftest import moments
from upshot.experiments.effects import compare, proportions
from upshot.experiments.estimates import ArmEstimate, Target, arm_estimates
from upshot.experiments.ratio import linearized

REL = 1e-9  # float64 sums of ~1e3 values of magnitude ~1e2 keep ~12 significant digits


def run(d, names, target, adjust="none", dist="t", alpha=0.05):
    c, t = arm_estimates([moments(d, "c", names), moments(d, "t", names)], target, adjust)
    return compare(c, t, alpha=alpha, dist=dist), c, t


def design(d, *cols):
    n_c, n_t = d["y_c"].size, d["y_t"].size
    treat = np.r_[np.zeros(n_c), np.ones(n_t)]
    return treat, [np.r_[d[f"{c}_c"], d[f"{c}_t"]] for c in cols]


def test_welch_matches_scipy_and_ols_hc2(data):
    r, _, _ = run(data, ["y"], Target("y"))
    ref = stats.ttest_ind(data["y_t"], data["y_c"], equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert r.statistic == pytest.approx(ref.statistic, rel=REL)
    assert r.pvalue == pytest.approx(ref.pvalue, rel=REL)
    assert r.df == pytest.approx(ref.df, rel=REL)
    assert r.ci_lower == pytest.approx(ci.low, rel=REL)
    assert r.ci_upper == pytest.approx(ci.high, rel=REL)
    treat, (y,) = design(data, "y")
    ols = sm.OLS(y, sm.add_constant(treat)).fit(cov_type="HC2")
    assert r.effect == pytest.approx(ols.params[1], rel=REL)
    assert r.se == pytest.approx(ols.bse[1], rel=REL)


def test_normal_version_uses_z(data):
    r, _, _ = run(data, ["y"], Target("y"), dist="normal")
    treat, (y,) = design(data, "y")
    ols = sm.OLS(y, sm.add_constant(treat)).fit(cov_type="HC2")
    z = ols.params[1] / ols.bse[1]
    assert r.pvalue == pytest.approx(2 * stats.norm.sf(abs(z)), rel=REL)
    assert r.ci_upper - r.effect == pytest.approx(stats.norm.ppf(0.975) * ols.bse[1], rel=REL)
    assert np.isinf(r.df)


def test_hc1_differs_from_welch_only_by_its_small_sample_factor(data):
    """HC1 = HC0 * n/(n-2) and HC0 per arm uses (n_a - 1)/n_a of the sample variance."""
    r, _, _ = run(data, ["y"], Target("y"))
    treat, (y,) = design(data, "y")
    hc1 = sm.OLS(y, sm.add_constant(treat)).fit(cov_type="HC1").bse[1]
    n_c, n_t, n = data["y_c"].size, data["y_t"].size, treat.size
    v_c, v_t = data["y_c"].var(ddof=1), data["y_t"].var(ddof=1)
    hc0 = v_c * (n_c - 1) / n_c**2 + v_t * (n_t - 1) / n_t**2
    assert hc1 == pytest.approx(np.sqrt(hc0 * n / (n - 2)), rel=REL)
    assert r.se == pytest.approx(np.sqrt(v_c / n_c + v_t / n_t), rel=REL)


def test_proportions_match_statsmodels(data):
    c, t = arm_estimates(
        [moments(data, "c", ["b"]), moments(data, "t", ["b"])], Target("b", binary=True), "none"
    )
    r = proportions(c, t, alpha=0.05)
    counts = [data["b_t"].sum(), data["b_c"].sum()]
    nobs = [data["b_t"].size, data["b_c"].size]
    # one statistic for both: the unpooled Wald z (statsmodels' method="wald" for each)
    wald = sm_proportion.test_proportions_2indep(
        counts[0], nobs[0], counts[1], nobs[1], method="wald"
    )
    z, p = wald.statistic, wald.pvalue
    lo, hi = confint_proportions_2indep(counts[0], nobs[0], counts[1], nobs[1], method="wald")
    assert r.statistic == pytest.approx(z, rel=REL)
    assert r.pvalue == pytest.approx(p, rel=REL)
    assert r.ci_lower == pytest.approx(lo, rel=REL)
    assert r.ci_upper == pytest.approx(hi, rel=REL)


@pytest.mark.parametrize("covs", [["x"], ["x", "z"]])
def test_cuped_effect_is_the_ancova_coefficient(data, covs):
    r, c, t = run(data, ["y", *covs], Target("y", covariates=tuple(covs)), adjust="cuped")
    treat, (y, *xs) = design(data, "y", *covs)
    ols = sm.OLS(y, np.column_stack([np.ones_like(y), treat, *xs])).fit(cov_type="HC1")
    assert r.effect == pytest.approx(ols.params[1], rel=REL)
    # the SE treats the slope as known: Welch on the residualized outcome y - theta'x
    theta = ols.params[2:]
    adj = {
        a: data[f"y_{a}"] - sum(th * data[f"{v}_{a}"] for th, v in zip(theta, covs, strict=True))
        for a in "ct"
    }
    ref = stats.ttest_ind(adj["t"], adj["c"], equal_var=False)
    assert r.statistic == pytest.approx(ref.statistic, rel=REL)
    assert r.pvalue == pytest.approx(ref.pvalue, rel=REL)
    # ...which is HC1's asymptotic equivalent: they differ by O(p/n), here n ~ 2,000
    assert r.se == pytest.approx(ols.bse[1], rel=5e-3)
    assert 1 - (r.se**2) / (c.raw_variance + t.raw_variance) > 0.5  # x predicts y well


@pytest.mark.parametrize("covs", [["x"], ["x", "z"]])
def test_lin_effect_is_the_interacted_coefficient(data, covs):
    r, _, _ = run(data, ["y", *covs], Target("y", covariates=tuple(covs)), adjust="lin")
    treat, (y, *xs) = design(data, "y", *covs)
    centred = [x - x.mean() for x in xs]
    X = np.column_stack([np.ones_like(y), treat, *centred, *(treat * x for x in centred)])
    ols = sm.OLS(y, X).fit(cov_type="HC2")
    assert r.effect == pytest.approx(ols.params[1], rel=REL)
    xbar = {v: np.r_[data[f"{v}_c"], data[f"{v}_t"]].mean() for v in covs}
    adj = {}
    for a in "ct":
        Xa = np.column_stack([np.ones(data[f"y_{a}"].size), *(data[f"{v}_{a}"] for v in covs)])
        beta = np.linalg.lstsq(Xa, data[f"y_{a}"], rcond=None)[0][1:]
        adj[a] = data[f"y_{a}"] - sum(
            b * (data[f"{v}_{a}"] - xbar[v]) for b, v in zip(beta, covs, strict=True)
        )
    ref = stats.ttest_ind(adj["t"], adj["c"], equal_var=False)
    assert r.statistic == pytest.approx(ref.statistic, rel=REL)
    assert r.se == pytest.approx(ols.bse[1], rel=5e-3)  # HC2 again agrees to O(p/n)


def test_ratio_se_equals_the_numpy_linearization(data):
    _r, c, t = run(data, ["num", "den"], Target("num", "den"), dist="normal")
    for arm, est in (("c", c), ("t", t)):
        num, den = data[f"num_{arm}"], data[f"den_{arm}"]
        assert est.value == pytest.approx(num.sum() / den.sum(), rel=REL)
        assert est.variance == pytest.approx(linearized(num, den).var(ddof=1) / num.size, rel=REL)
    # cross-check the linearization helper itself with an explicit influence function
    num, den = data["num_t"], data["den_t"]
    m_n, m_d = num.mean(), den.mean()
    infl = num / m_d - m_n / m_d**2 * den
    assert t.variance == pytest.approx(infl.var(ddof=1) / num.size, rel=REL)


def test_ratio_cuped_equals_residualized_linearization(data):
    """CUPED on a ratio: pooled slope of the linearized ratio on the covariate."""
    target = Target("num", "den", covariates=("x",))
    r, c, t = run(data, ["num", "den", "x"], target, adjust="cuped", dist="normal")
    lin = {a: linearized(data[f"num_{a}"], data[f"den_{a}"]) for a in "ct"}
    xs = {a: data[f"x_{a}"] for a in "ct"}
    sxy = sum(((lin[a] - lin[a].mean()) * (xs[a] - xs[a].mean())).sum() for a in "ct")
    sxx = sum(((xs[a] - xs[a].mean()) ** 2).sum() for a in "ct")
    theta = sxy / sxx
    xbar = np.r_[xs["c"], xs["t"]].mean()
    for a, est in (("c", c), ("t", t)):
        ratio = data[f"num_{a}"].sum() / data[f"den_{a}"].sum()
        assert est.value == pytest.approx(ratio - theta * (xs[a].mean() - xbar), rel=REL)
        resid = lin[a] - theta * xs[a]
        assert est.variance == pytest.approx(resid.var(ddof=1) / resid.size, rel=REL)
    assert r.se < np.sqrt(c.raw_variance + t.raw_variance)


def test_relative_lift_delta_method_by_complex_step(data):
    """The delta-method SE of t/c - 1 against a gradient computed by complex step."""
    r, c, t = run(data, ["y"], Target("y"))
    mu = np.array([t.value, c.value], dtype=complex)
    cov = np.diag([float(t.variance), float(c.variance)])
    h = 1e-30
    grad = np.array([((lambda m: m[0] / m[1] - 1)(mu + h * 1j * e)).imag / h for e in np.eye(2)])
    assert r.rel == pytest.approx(float(t.value / c.value - 1), rel=REL)
    assert r.rel_se == pytest.approx(np.sqrt(grad @ cov @ grad), rel=REL)


def test_proportion_pvalue_and_ci_never_disagree():
    """Before, the pooled-z p-value and the Wald CI disagreed on 14 cells of this grid near
    the boundary. Now p < alpha exactly when the CI excludes 0."""
    n_c, n_t = 300, 250
    disagreements = 0
    for k_c in range(5, 80, 3):
        for k_t in range(5, 80):
            c = ArmEstimate(*_prop(k_c, n_c))
            t = ArmEstimate(*_prop(k_t, n_t))
            r = proportions(c, t, alpha=0.05)
            significant = float(r.pvalue) < 0.05
            excludes = float(r.ci_lower) > 0 or float(r.ci_upper) < 0
            disagreements += significant != excludes
    assert disagreements == 0


def _prop(k: int, n: int) -> tuple[np.ndarray, ...]:
    p = k / n
    v = np.asarray(p * (1 - p) / n)
    return np.asarray(p), v, np.asarray(p), v, np.asarray(float(n))
