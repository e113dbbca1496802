"""The SQL sufficient statistics equal numpy on the same data, NULLs included."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from upshot.errors import InputError, UsageError
from upshot.experiments import query
from upshot.experiments.engine import is_binary
from upshot.experiments.estimates import Target
from upshot.experiments.sources import table_rows
from upshot.experiments.spec import MetricSpec
from upshot.experiments.stats import Moments, column_names
from upshot.store import connect


def frame(seed: int, n: int = 3000) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.gamma(2.0, 50.0, n)
    x = y * 0.5 + rng.gamma(2.0, 20.0, n)
    y[rng.random(n) < 0.05] = np.nan  # NULL metric values
    x[rng.random(n) < 0.03] = np.nan
    variant = rng.choice(["control", "treatment", "variant_b"], n).astype(object)
    variant[rng.random(n) < 0.01] = None
    return pl.DataFrame(
        {
            "variant": variant.tolist(),
            "minutes streamed": y,  # a column name that needs quoting
            "pre": x,
            "clicks": rng.poisson(2.0, n).astype(float),
            "sends": rng.poisson(5.0, n).astype(float),
            "converted": (rng.random(n) < 0.1),
        }
    ).with_columns(pl.col("minutes streamed").fill_nan(None), pl.col("pre").fill_nan(None))


SPECS = [
    MetricSpec("minutes streamed", "minutes streamed", covariates=("pre",), binary=None),
    MetricSpec("clicks/sends", "clicks", "sends"),
    MetricSpec("converted", "converted", binary=None),
]


def numpy_case(df: pl.DataFrame, arm: str, target: Target) -> Moments:
    """The metric's complete case, computed independently: users whose numerator and
    denominator are known; a covariate's NULL is 0 beside its 0/1 missing indicator."""
    sub = df.filter(pl.col("variant") == arm)
    _, required = target.case
    cols = {c: sub[c].cast(pl.Float64).to_numpy() for c in {*required, *target.covariates}}
    keep = np.logical_and.reduce([~np.isnan(cols[c]) for c in required])
    data = []
    for v in target.variables:
        if v in cols:
            x = cols[v] if v in required else np.nan_to_num(cols[v], nan=0.0)
        else:  # v is missing_name(c)
            x = np.isnan(cols[v.removesuffix("__missing")]).astype(float)
        data.append(x[keep])
    return Moments.from_data(np.column_stack(data), target.variables)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_sql_suffstats_equal_numpy_with_nulls(tmp_path, fmt):
    df = frame(5)
    path = tmp_path / f"users.{fmt}"
    df.write_parquet(path) if fmt == "parquet" else df.write_csv(path)
    con = connect(":memory:", read_only=False)
    rows = {r["variant"]: r for r in table_rows(con, path, SPECS, variant_col="variant")}
    assert rows[None]["n"] == df["variant"].null_count()
    assert "exclusion" not in rows[None]  # a NULL variant is its own group, excluded later
    for arm in ("control", "treatment", "variant_b"):
        n_arm = (df["variant"] == arm).sum()
        assert rows[arm]["n"] == n_arm
        for spec in SPECS:
            target = replace(spec.target(), indicators=True)
            got = Moments.from_row(rows[arm], target.variables, target.case[0])
            want = numpy_case(df, arm, target)
            assert got.n == want.n
            if spec.name == "minutes streamed":  # NULLs in the metric: fewer users
                assert got.n < n_arm
            # DuckDB sums in parallel in another order; 1e-12 relative is float64 rounding
            np.testing.assert_allclose(got.sums, want.sums, rtol=1e-12)
            np.testing.assert_allclose(got.products, want.products, rtol=1e-12)
    arms = {a: r for a, r in rows.items() if a is not None}
    assert is_binary(arms, "converted", "cc(converted)::")
    assert not is_binary(arms, "minutes streamed", "cc(minutes streamed)::")


def test_winsorization_caps_at_the_pooled_quantile(tmp_path):
    df = frame(6)
    path = tmp_path / "users.parquet"
    df.write_parquet(path)
    con = connect(":memory:", read_only=False)
    spec = [MetricSpec("m", "minutes streamed")]
    rows = table_rows(con, path, spec, variant_col="variant", winsorize={"minutes streamed": 0.9})
    # over the users analysed (rows without a variant are excluded); DuckDB's quantile_cont
    # is numpy's 'linear' method
    y = df.filter(pl.col("variant").is_not_null())["minutes streamed"].to_numpy().astype(float)
    cap = np.quantile(y[~np.isnan(y)], 0.9)
    for row in rows:
        if row["variant"] is None:
            continue
        sub = df.filter(pl.col("variant") == row["variant"])["minutes streamed"].to_numpy()
        sub = sub.astype(float)
        capped = np.minimum(sub[~np.isnan(sub)], cap)
        pre = "cc(minutes streamed)::"
        assert row[pre + "n"] == capped.size
        assert row[pre + "minutes streamed_sum"] == pytest.approx(capped.sum(), rel=1e-12)
        assert row[pre + "minutes streamed_sum_squares"] == pytest.approx(
            (capped**2).sum(), rel=1e-12
        )


def test_user_col_excludes_users_in_several_arms(tmp_path):
    df = pl.DataFrame(
        {
            "user": ["a", "b", "c", "c", "d", "e"],
            "variant": ["control", "treatment", "control", "treatment", "control", "treatment"],
            "y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )
    path = tmp_path / "u.parquet"
    df.write_parquet(path)
    con = connect(":memory:", read_only=False)
    rows = table_rows(con, path, [MetricSpec("y", "y")], variant_col="variant", user_col="user")
    by = {(r["variant"], r["exclusion"]): r for r in rows}
    assert by[("control", "multi_arm")]["n"] == 1
    assert by[("treatment", "multi_arm")]["n"] == 1
    assert by[("control", "")]["cc(y)::y_sum"] == 6.0
    assert by[("treatment", "")]["cc(y)::y_sum"] == 8.0


def test_clashing_aggregate_names_are_refused():
    with pytest.raises(UsageError, match="twice"):
        column_names(["a_b", "c", "a", "b_c"])
    with pytest.raises(UsageError):
        query.plan([Target("a_b", covariates=("c",)), Target("a", covariates=("b_c",))])


def test_missing_column_and_text_metric_name_the_file(tmp_path):
    path = tmp_path / "u.csv"
    pl.DataFrame({"variant": ["control", "treatment"], "y": ["x", "y"]}).write_csv(path)
    con = connect(":memory:", read_only=False)
    with pytest.raises(InputError, match="no column 'z'"):
        table_rows(con, path, [MetricSpec("z", "z")], variant_col="variant")
    with pytest.raises(InputError, match=r"u\.csv"):
        table_rows(con, path, [MetricSpec("y", "y")], variant_col="variant")


def test_a_pair_is_found_whatever_order_a_metric_lists_it(tmp_path):
    """Two metrics share the pair (x, y) in opposite orders; the query names it once."""
    rng = np.random.default_rng(2)
    df = pl.DataFrame(
        {
            "variant": rng.choice(["control", "treatment"], 500).tolist(),
            "x": rng.normal(size=500),
            "y": rng.normal(size=500),
        }
    )
    path = tmp_path / "u.parquet"
    df.write_parquet(path)
    con = connect(":memory:", read_only=False)
    specs = [MetricSpec("x", "x", covariates=("y",)), MetricSpec("y", "y", covariates=("x",))]
    rows = {r["variant"]: r for r in table_rows(con, path, specs, variant_col="variant")}
    for arm, row in rows.items():
        sub = df.filter(pl.col("variant") == arm)
        want = float((sub["x"] * sub["y"]).sum())
        for names in (["x", "y"], ["y", "x"]):
            for prefix in ("cc(x)::", "cc(y)::"):
                got = Moments.from_row(row, names, prefix)
                assert got.products[0, 1] == pytest.approx(want, rel=1e-12)
    with pytest.raises(KeyError):
        Moments.from_row(rows["control"], ["x", "z"], "cc(x)::")


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_binary_detection_from_footers_or_aggregates(tmp_path, fmt):
    """0/1 columns (ints, booleans) are proportions; 0.5s or 2s are not, in both formats."""
    df = pl.DataFrame(
        {
            "variant": ["control", "treatment"] * 50,
            "ints": [0, 1, 1, 0] * 25,
            "flags": [True, False] * 50,
            "halves": [0.0, 0.5, 1.0, 1.0] * 25,
            "twos": [0, 2] * 50,
        }
    )
    path = tmp_path / f"u.{fmt}"
    df.write_parquet(path) if fmt == "parquet" else df.write_csv(path)
    con = connect(":memory:", read_only=False)
    specs = [MetricSpec(c, c, binary=None) for c in ("ints", "flags", "halves", "twos")]
    rows = {r["variant"]: r for r in table_rows(con, path, specs, variant_col="variant")}
    assert [is_binary(rows, c, f"cc({c})::") for c in ("ints", "flags", "halves", "twos")] == [
        True,
        True,
        False,
        False,
    ]
