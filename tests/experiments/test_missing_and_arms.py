"""Issue 13, experiments 1-3 and 5: missing values, arms, rows that reconcile, a zero control.

References are independent: scipy's Welch test and statsmodels OLS on the complete case
computed in numpy, never the product's own sufficient statistics.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from scipy import stats

from tests.conftest import run_cli
from upshot.errors import UsageError
from upshot.experiments import analyze, decide
from upshot.results import dumps

# sums over thousands of users in another order: 1e-9 relative is float64 rounding with
# a wide margin, far below any statistical difference
REL = 1e-9


def write(tmp_path, name="users.parquet", **cols):
    path = tmp_path / name
    pl.DataFrame(cols).write_parquet(path)
    return path


def null_world(seed=3, n=20_000):
    """No effect at all; y is NULL for 10% of control and 30% of treatment users."""
    rng = np.random.default_rng(seed)
    variant = np.array(["control", "treatment"])[rng.integers(0, 2, n)]
    x = rng.gamma(2.0, 10.0, n)
    y = 50.0 + 2.0 * x + rng.normal(0, 10, n)
    den = rng.poisson(5, n) + 1.0
    num = rng.binomial(den.astype(int), 0.3).astype(float)
    p_missing = np.where(variant == "control", 0.1, 0.3)
    y_obs = np.where(rng.random(n) < p_missing, np.nan, y)
    den_obs = np.where(rng.random(n) < p_missing, np.nan, den)
    x_obs = np.where(rng.random(n) < 0.2, np.nan, x)
    return variant, y_obs, num, den_obs, x_obs


def frame(variant, y, num, den, x, nan_as_null=True):
    df = pl.DataFrame({"variant": variant, "y": y, "num": num, "den": den, "x": x})
    if nan_as_null:
        df = df.with_columns(pl.col(c).fill_nan(None) for c in ("y", "num", "den", "x"))
    return df


def test_differential_missingness_is_not_an_effect(tmp_path):
    """Before: NULL summed as 0, so 10% vs 30% NULLs gave p ~ 1e-185 with no real effect."""
    variant, y, num, den, x = null_world()
    path = tmp_path / "u.parquet"
    frame(variant, y, num, den, x).write_parquet(path)
    a = analyze(table=path, metrics=["y"], options=_plain())
    r = a.result("y")
    yc, yt = y[(variant == "control") & ~np.isnan(y)], y[(variant == "treatment") & ~np.isnan(y)]
    ref = stats.ttest_ind(yt, yc, equal_var=False)
    assert r.pvalue == pytest.approx(ref.pvalue, rel=1e-7)  # Welch on the observed values
    assert r.effect == pytest.approx(yt.mean() - yc.mean(), rel=REL)
    assert (r.n_control, r.n_treatment) == (yc.size, yt.size)
    assert r.n_missing_control == int(np.isnan(y[variant == "control"]).sum())
    assert r.n_missing_treatment == int(np.isnan(y[variant == "treatment"]).sum())
    assert r.pvalue > 0.001  # no effect: nothing like 1e-185


def test_ratio_drops_numerator_and_denominator_together(tmp_path):
    """Before: a NULL denominator gave a fake +25% ratio lift."""
    variant, y, num, den, x = null_world(4)
    path = tmp_path / "u.parquet"
    frame(variant, y, num, den, x).write_parquet(path)
    r = analyze(table=path, ratios=["num/den"], options=_plain()).result("num/den")
    ok = ~np.isnan(den)
    ratio = {
        a: num[ok & (variant == a)].sum() / den[ok & (variant == a)].sum()
        for a in ("control", "treatment")
    }
    assert r.control == pytest.approx(ratio["control"], rel=REL)
    assert r.treatment == pytest.approx(ratio["treatment"], rel=REL)
    assert abs(r.rel_effect) < 0.03  # the truth is 0; +25% before
    assert r.n_missing_treatment == int((~ok & (variant == "treatment")).sum())


def test_nan_and_null_are_the_same_and_nulls_zero_opts_in(tmp_path):
    variant, y, num, den, x = null_world(5, 4000)
    nulls = write(
        tmp_path, "nulls.parquet", **frame(variant, y, num, den, x).to_dict(as_series=False)
    )
    nans = tmp_path / "nans.parquet"
    frame(variant, y, num, den, x, nan_as_null=False).write_parquet(nans)
    zeros = tmp_path / "zeros.parquet"
    frame(variant, *(np.nan_to_num(v) for v in (y, num, den, x))).write_parquet(zeros)
    kw = {"metrics": ["y"], "ratios": ["num/den"], "covariates": {"y": ["x"]}}
    a, b = analyze(table=nulls, **kw), analyze(table=nans, **kw)
    assert dumps(a.to_dicts()) == dumps(b.to_dicts())  # NaN != NaN: compare as JSON
    z = analyze(table=nulls, nulls="zero", **kw)
    z_ref = analyze(table=zeros, **kw)
    for got, want in zip(z.results, z_ref.results, strict=True):
        assert got.effect == pytest.approx(want.effect, rel=REL)
        assert got.n_missing_control == got.n_missing_treatment == 0
    assert z.result("y").effect != pytest.approx(a.result("y").effect, rel=1e-3)


def test_missing_covariate_is_imputed_beside_an_indicator(tmp_path):
    """CUPED with 20% NULL covariates equals OLS y ~ treat + x0 + missing(x) on the users
    whose y is known (x0: x with NULL as 0, the same span as mean imputation + indicator)."""
    variant, y, num, den, x = null_world(6, 6000)
    path = tmp_path / "u.parquet"
    frame(variant, y, num, den, x).write_parquet(path)
    r = analyze(table=path, metrics=["y"], covariates={"y": ["x"]}).result("y")
    keep = ~np.isnan(y)
    treat = (variant[keep] == "treatment").astype(float)
    miss = np.isnan(x[keep]).astype(float)
    design = np.column_stack([np.ones(keep.sum()), treat, np.nan_to_num(x[keep]), miss])
    ols = sm.OLS(y[keep], design).fit()
    assert r.effect == pytest.approx(ols.params[1], rel=1e-8)
    assert r.n_control + r.n_treatment == keep.sum()  # nobody dropped for a missing x
    assert r.variance_reduction > 0.3


def test_adjusted_rows_reconcile(tmp_path):
    """effect = treatment - control and rel_effect = treatment / control - 1 on the row;
    for Lin the arm values are the interacted regression's fitted means at the overall
    covariate mean (statsmodels)."""
    rng = np.random.default_rng(8)
    n = 3000
    variant = np.array(["control", "treatment"])[rng.integers(0, 2, n)]
    x = rng.gamma(2.0, 10.0, n)
    y = 20 + 1.5 * x + 3.0 * (variant == "treatment") + rng.normal(0, 5, n)
    path = write(tmp_path, variant=variant.tolist(), y=y.tolist(), x=x.tolist())
    for adjust in ("cuped", "lin"):
        r = analyze(
            table=path, metrics=["y"], covariates={"y": ["x"]}, options=_plain(adjust=adjust)
        ).result("y")
        assert r.effect == pytest.approx(r.treatment - r.control, rel=1e-12)
        assert r.rel_effect == pytest.approx(r.treatment / r.control - 1, rel=1e-12)
        assert r.control_raw == pytest.approx(y[variant == "control"].mean(), rel=REL)
        assert r.control != pytest.approx(r.control_raw, rel=1e-6)  # the arms' x differ
    t = (variant == "treatment").astype(float)
    xc = x - x.mean()
    ols = sm.OLS(y, np.column_stack([np.ones(n), t, xc, t * xc])).fit()
    assert r.control == pytest.approx(ols.params[0], rel=REL)
    assert r.treatment == pytest.approx(ols.params[0] + ols.params[1], rel=REL)


def test_control_naming_no_arm_and_numeric_labels(tmp_path):
    rng = np.random.default_rng(1)
    path = write(tmp_path, variant=[0.0, 1.0] * 100, y=rng.normal(size=200).tolist())
    a = analyze(table=path, metrics=["y"], control="0")  # before: an empty arm '0'
    assert a.control_arm == "0.0"
    assert a.arms == {"0.0": 100, "1.0": 100}
    assert a.srm.status == "ok"
    with pytest.raises(UsageError, match=r"no such arm \(arms found: 0\.0, 1\.0\)"):
        analyze(table=path, metrics=["y"], control="2")
    r = run_cli("experiments", "analyze", "--table", str(path), "--metric", "y",
                "--control", "baseline")  # fmt: skip
    assert r.code == 2
    assert r.err.strip().splitlines()[-1] == (
        "Error: --control baseline: no such arm (arms found: 0.0, 1.0)"
    )


def test_cli_shows_missing_counts_and_takes_nulls(tmp_path):
    variant, y, num, den, x = null_world(7, 2000)
    path = tmp_path / "u.parquet"
    frame(variant, y, num, den, x).write_parquet(path)
    r = run_cli("experiments", "analyze", "--table", str(path), "--metric", "y", "--json")
    assert r.code == 0, r.err
    (row,) = json.loads(r.out)["results"]
    assert row["n_missing_control"] == int(np.isnan(y[variant == "control"]).sum())
    # the missing counts are --wide columns (the compact table keeps 100 columns)
    table = run_cli("experiments", "analyze", "--table", str(path), "--metric", "y", "--wide")
    assert "n_missing_control" in table.out
    assert "n_missing_treatment" in table.out
    assert str(row["n_missing_treatment"]) in table.out
    z = run_cli("experiments", "analyze", "--table", str(path), "--metric", "y",
                "--nulls", "zero", "--json")  # fmt: skip
    (row0,) = json.loads(z.out)["results"]
    assert row0["n_missing_control"] == 0
    assert row0["n_control"] == row["n_control"] + row["n_missing_control"]
    bad = run_cli("experiments", "analyze", "--table", str(path), "--metric", "y",
                  "--nulls", "drop")  # fmt: skip
    assert bad.code == 2


def test_success_metric_with_a_zero_control_can_ship(tmp_path):
    """Before: status zero_denominator blocked shipping a valid win."""
    rng = np.random.default_rng(2)
    n = 2000
    variant = ["control", "treatment"] * (n // 2)
    y = np.where(np.array(variant) == "treatment", rng.poisson(0.3, n), 0).astype(float)
    path = write(tmp_path, variant=variant, y=y.tolist())
    a = analyze(table=path, metrics=["y"])
    r = a.result("y")
    assert r.status == "zero_denominator"
    assert np.isnan(r.rel_effect)
    assert r.pvalue < 1e-10
    v = decide(a)
    assert v.verdict == "ship", v.arms[0].metrics[0].reason


def _plain(adjust="none"):
    from upshot.experiments import Options

    return Options(adjust=adjust)
