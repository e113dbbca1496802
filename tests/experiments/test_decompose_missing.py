"""Issue 13, experiments 1 for `decompose --table`: a NULL (or NaN) value is missing.

Differential missingness with no real effect (10% of control, 30% of treatment users
missing a value) used to be read as 0 and became a large fake effect. Now a user missing
any variable of the decomposition is left out of it (complete case), counted in
n_missing_control / n_missing_treatment; `--nulls zero` opts into NULL = 0. References
are computed independently from the unit-level data: numpy means on the complete case,
scipy's Welch test for a difference of means, per-user influence values for a log-ratio.
"""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from tests.conftest import run_cli
from upshot.experiments import decompose

# sums over thousands of users in another order: 1e-9 relative is float64 rounding with
# a wide margin, far below any statistical difference
REL = 1e-9


def world(seed: int, n: int = 20_000, nan_as_null: bool = True) -> pl.DataFrame:
    """No effect at all: every column has the same law in both arms, but opens and
    push_sends are missing for 10% of control and 30% of treatment users."""
    rng = np.random.default_rng(seed)
    variant = np.array(["control", "treatment"])[rng.integers(0, 2, n)]
    sends = rng.poisson(5.0, n) + 1.0
    opens = rng.binomial(sends.astype(int), 0.4).astype(float)
    conv = rng.binomial(opens.astype(int), 0.2).astype(float)
    push = rng.poisson(3.0, n) + 1.0
    push_opens = rng.binomial(push.astype(int), 0.3).astype(float)
    email = rng.poisson(2.0, n) + 1.0
    email_opens = rng.binomial(email.astype(int), 0.2).astype(float)
    segment = np.array(["a", "b", "c"])[rng.integers(0, 3, n)]
    p_missing = np.where(variant == "control", 0.1, 0.3)
    opens_obs = np.where(rng.random(n) < p_missing, np.nan, opens)
    push_obs = np.where(rng.random(n) < p_missing, np.nan, push)
    df = pl.DataFrame(
        {
            "variant": variant,
            "segment": segment,
            "sends": sends,
            "opens": opens_obs,
            "conv": conv,
            "push_sends": push_obs,
            "push_opens": push_opens,
            "email_sends": email,
            "email_opens": email_opens,
        }
    )
    if nan_as_null:
        df = df.with_columns(pl.col(c).fill_nan(None) for c in ("opens", "push_sends"))
    return df


def arrays(df: pl.DataFrame, cols: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """Per arm, the complete-case columns (users with every one of `cols` known)."""
    out = {}
    for arm in ("control", "treatment"):
        part = df.filter(pl.col("variant") == arm).select(cols).to_numpy().astype(float)
        part = part[~np.isnan(part).any(axis=1)]
        out[arm] = {c: part[:, j] for j, c in enumerate(cols)}
    return out


def missing(df: pl.DataFrame, cols: list[str], arm: str) -> int:
    part = df.filter(pl.col("variant") == arm).select(cols).to_numpy().astype(float)
    return int(np.isnan(part).any(axis=1).sum())


def log_ratio_se(x_t: np.ndarray, x_c: np.ndarray) -> float:
    """SE of log(mean_t / mean_c) from per-user influence values (independent arms)."""
    return math.sqrt(sum(np.var(x / x.mean(), ddof=1) / x.size for x in (x_t, x_c)))


@pytest.mark.parametrize("nan_as_null", [True, False])
def test_funnel_drops_users_with_a_missing_step(tmp_path, nan_as_null):
    """Before: a NULL `opens` was 0, so 10% vs 30% NULLs put opens per send 23 SE below
    control and conversions per open 13 SE above, where nothing changed (checked with
    --nulls zero, the old reading). NaN and NULL are the same."""
    df = world(1, nan_as_null=nan_as_null)
    path = tmp_path / "u.parquet"
    df.write_parquet(path)
    cols = ["sends", "opens", "conv"]
    d = decompose(table=path, funnel=cols, control="control", alpha=0.05)
    (item,) = d.items
    ref = arrays(df, cols)
    c, t = ref["control"], ref["treatment"]
    assert (item.n_control, item.n_treatment) == (c["sends"].size, t["sends"].size)
    assert item.n_missing_control == missing(df, cols, "control")
    assert item.n_missing_treatment == missing(df, cols, "treatment")
    assert item.n_missing_treatment > 2.5 * item.n_missing_control  # the world's 30% vs 10%
    opens_step = item.steps[1]  # opens per send
    assert opens_step.control == pytest.approx(c["opens"].sum() / c["sends"].sum(), rel=REL)
    assert opens_step.treatment == pytest.approx(t["opens"].sum() / t["sends"].sum(), rel=REL)
    total = math.log(t["conv"].mean() / c["conv"].mean())
    assert item.total_log_effect == pytest.approx(total, rel=REL)
    assert item.total_log_effect_se == pytest.approx(log_ratio_se(t["conv"], c["conv"]), rel=1e-6)
    # no real effect: every step's log-effect is within 4 SE of 0 (the NULL-as-0 reading
    # put two steps 13 and 23 SE away); 4 SE: a false alarm has odds ~1e-4 per step
    for step in item.steps:
        assert abs(step.log_effect) < 4 * step.log_effect_se, step.step


def test_parts_drop_a_missing_weight_with_its_value(tmp_path):
    """A NULL weight (push_sends, the denominator of the push rate) drops the user's whole
    row of parts; before, weight 0 with the value kept gave a fake +27% push rate lift
    (mix 21 SE below 0, rate 15 SE above; checked with --nulls zero, the old reading)."""
    df = world(2)
    path = tmp_path / "u.parquet"
    df.write_parquet(path)
    parts = ["push_sends:push_opens", "email_sends:email_opens"]
    cols = ["push_sends", "email_sends", "push_opens", "email_opens"]
    d = decompose(table=path, parts=parts, control="control", alpha=0.05)
    (item,) = d.items
    ref = arrays(df, cols)
    c, t = ref["control"], ref["treatment"]
    push = item.parts[0]
    assert push.rate_control == pytest.approx(
        c["push_opens"].sum() / c["push_sends"].sum(), rel=REL
    )
    assert push.rate_treatment == pytest.approx(
        t["push_opens"].sum() / t["push_sends"].sum(), rel=REL
    )
    # the same law in both arms: ~32,000 sends per arm at rate 0.3 put the lift's SE near
    # 1.2%, so 5% is 4 SE (the NULL-as-0 reading gave +27%)
    assert push.rate_treatment / push.rate_control - 1 == pytest.approx(0.0, abs=0.05)
    # the effect is the difference of the opens per user: Welch's SE is its delta-method SE
    y_c, y_t = c["push_opens"] + c["email_opens"], t["push_opens"] + t["email_opens"]
    welch = stats.ttest_ind(y_t, y_c, equal_var=False)
    assert item.effect == pytest.approx(y_t.mean() - y_c.mean(), rel=REL)
    assert item.effect_se == pytest.approx(item.effect / welch.statistic, rel=1e-6)
    assert welch.pvalue > 0.001  # nothing changed
    assert abs(item.mix) < 4 * item.mix_se
    assert abs(item.rate) < 4 * item.rate_se
    assert item.n_missing_control == missing(df, cols, "control")
    assert item.n_missing_treatment == missing(df, cols, "treatment")


def test_segment_split_drops_a_missing_metric(tmp_path):
    """--segment: the metric's complete case per segment; its effect is Welch's on it."""
    df = world(3)
    path = tmp_path / "u.parquet"
    df.write_parquet(path)
    d = decompose(table=path, segment="segment", metric="opens", control="control", alpha=0.05)
    (item,) = d.items
    ref = arrays(df, ["opens"])
    y_c, y_t = ref["control"]["opens"], ref["treatment"]["opens"]
    welch = stats.ttest_ind(y_t, y_c, equal_var=False)
    assert (item.n_control, item.n_treatment) == (y_c.size, y_t.size)
    assert item.effect == pytest.approx(y_t.mean() - y_c.mean(), rel=REL)
    assert item.effect_se == pytest.approx(item.effect / welch.statistic, rel=1e-6)
    assert welch.pvalue > 0.001
    assert item.n_missing_control == missing(df, ["opens"], "control")
    assert item.n_missing_treatment == missing(df, ["opens"], "treatment")


def test_nulls_zero_reads_a_missing_value_as_zero(tmp_path):
    """--nulls zero: the old reading, asked for explicitly; nobody is left out."""
    df = world(4)
    path = tmp_path / "u.parquet"
    df.write_parquet(path)
    d = decompose(
        table=path, segment="segment", metric="opens", control="control", alpha=0.05, nulls="zero"
    )
    (item,) = d.items
    filled = df.with_columns(pl.col("opens").fill_null(0.0))
    y = {
        a: filled.filter(pl.col("variant") == a)["opens"].to_numpy()
        for a in ("control", "treatment")
    }
    assert item.effect == pytest.approx(y["treatment"].mean() - y["control"].mean(), rel=REL)
    assert (item.n_missing_control, item.n_missing_treatment) == (0, 0)
    assert item.effect < -4 * item.effect_se  # 30% zeros against 10%: the effect zeros make


def test_cli_decompose_reports_the_users_left_out(tmp_path):
    df = world(5, n=4_000)
    path = tmp_path / "u.parquet"
    df.write_parquet(path)
    cols = ["sends", "opens", "conv"]
    res = run_cli(
        "experiments", "decompose", "--table", str(path), "--funnel", ",".join(cols), "--json"
    )
    assert res.code == 0, res.err
    (doc,) = json.loads(res.out)["decompositions"]
    assert doc["n_missing_control"] == missing(df, cols, "control")
    assert doc["n_missing_treatment"] == missing(df, cols, "treatment")
    table = run_cli("experiments", "decompose", "--table", str(path), "--funnel", ",".join(cols))
    assert table.code == 0, table.err
    note = (
        f"(left out, a value missing: {doc['n_missing_control']:,} control, "
        f"{doc['n_missing_treatment']:,} treatment)"
    )
    assert note in " ".join(table.out.split())  # the title may wrap
    csv = run_cli(
        "experiments",
        "decompose",
        "--table",
        str(path),
        "--funnel",
        ",".join(cols),
        "--format",
        "csv",
    )
    assert csv.code == 0, csv.err
    header = csv.out.splitlines()[0].split(",")
    assert "n_missing_control" in header
    assert "n_missing_treatment" in header
    zero = run_cli(
        "experiments",
        "decompose",
        "--table",
        str(path),
        "--funnel",
        ",".join(cols),
        "--nulls",
        "zero",
        "--json",
    )
    (doc0,) = json.loads(zero.out)["decompositions"]
    assert (doc0["n_missing_control"], doc0["n_missing_treatment"]) == (0, 0)
    assert doc0["n_control"] == doc["n_control"] + doc["n_missing_control"]


def test_cli_nulls_needs_a_table():
    res = run_cli("experiments", "decompose", "exp1", "--funnel", "a,b", "--nulls", "zero")
    assert res.code == 2
    assert res.err.strip() == (
        "Error: --nulls works with --table only; for the warehouse see upshot.toml"
    )
