"""The A/B pass's shortcuts change no number: 0/1 variables' sums of squares copied from
their sums, the plain pass over a Parquet file without NULLs, the `--table` analysis on a
database without warehouse tables."""

from __future__ import annotations

import math
from dataclasses import replace

import duckdb
import numpy as np
import polars as pl
import pytest
from statsmodels.stats import proportion as sm_proportion

from tests.conftest import run_cli
from upshot import store
from upshot.config import Config
from upshot.experiments import analyze, query
from upshot.experiments.analysis import table_specs
from upshot.experiments.sources import prepare_table

# Both sides add the same float64 values (0/1 counts are exact integers, the rest are sums
# of ~4,000 values); only the order of additions across DuckDB's threads may differ,
# which moves a sum by a few ulps (~1e-15 relative), far inside 1e-12.
REL = 1e-12
N = 4000


def users(seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    arm = rng.random(N) < 0.5
    pre = rng.gamma(2.0, 20.0, N)
    return pl.DataFrame(
        {
            "variant": np.where(arm, "treatment", "control").tolist(),
            "converted": (rng.random(N) < 0.10 + 0.03 * arm).tolist(),  # BOOLEAN
            "clicked": (rng.random(N) < 0.3).astype(np.int8),  # 0/1 integers
            "spend": pre * 0.6 + rng.gamma(2.0, 10.0, N) + 3.0 * arm,
            "pre_spend": pre,
            "pre_converted": (rng.random(N) < 0.2).tolist(),  # a 0/1 covariate
            "orders": rng.poisson(2.0, N).astype(float),
            "visits": rng.poisson(5.0, N).astype(float) + 1.0,
        }
    )


ARGS = {
    "metrics": ["converted", "clicked", "spend"],
    "ratios": ["orders/visits"],
    "covariates": ["spend=pre_spend", "converted=pre_converted"],
}


def prepared(con: duckdb.DuckDBPyConnection, path: str):  # type: ignore[no-untyped-def]
    specs = table_specs(ARGS["metrics"], ARGS["ratios"], ARGS["covariates"], None)
    return prepare_table(con, path, specs, variant_col="variant")


def full(p):  # type: ignore[no-untyped-def]
    """The same pass with no shortcut: every square aggregated, every case masked."""
    return replace(p, shortcut=None, agg=replace(p.agg, ones=()))


def assert_rows_equal(fast: list[dict], slow: list[dict]) -> None:
    by_arm = {r["variant"]: r for r in slow}
    assert len(fast) == len(slow) == 2
    for row in fast:
        ref = by_arm[row["variant"]]
        assert set(row) == set(ref)
        for key, value in ref.items():
            if isinstance(value, float):
                assert row[key] == pytest.approx(value, rel=REL, abs=0.0), key
            else:
                assert row[key] == value, key


def test_zero_one_shortcut_equals_the_full_pass_and_statsmodels(tmp_path):
    path = str(tmp_path / "users.parquet")
    df = users()
    df.write_parquet(path)
    con = duckdb.connect()
    p = prepared(con, path)
    # the shortcuts are on: 0/1 variables known from types and footers, no NULL anywhere
    assert {"converted", "clicked", "pre_converted"} <= set(p.agg.ones)
    assert "spend" not in p.agg.ones
    assert p.shortcut is not None
    fast_sql, _ = query.suffstats_sql(p.shortcut[0], p.keys, p.shortcut[1])
    assert '"converted" * "converted"' not in fast_sql
    assert '"spend" * "spend"' in fast_sql
    slow = full(p)
    slow_sql, _ = query.suffstats_sql(slow.source, slow.keys, slow.agg)
    assert '"cc(converted)::converted" * "cc(converted)::converted"' in slow_sql
    assert_rows_equal(p.rows(con), slow.rows(con))

    # the whole analysis, through the public entry point, against statsmodels
    a = analyze(table=path, **ARGS)  # type: ignore[arg-type]
    clicked = next(r for r in a.results if r.metric == "clicked")
    t = df.filter(pl.col("variant") == "treatment")["clicked"]
    c = df.filter(pl.col("variant") == "control")["clicked"]
    wald = sm_proportion.test_proportions_2indep(
        int(t.sum()), t.len(), int(c.sum()), c.len(), method="wald"
    )
    assert clicked.kind == "proportion"
    assert clicked.effect == pytest.approx(t.mean() - c.mean(), rel=REL)
    assert clicked.statistic == pytest.approx(wald.statistic, rel=REL)
    assert clicked.pvalue == pytest.approx(wald.pvalue, rel=REL)


def test_analysis_with_shortcuts_equals_the_analysis_without(tmp_path, monkeypatch):
    path = str(tmp_path / "users.parquet")
    users(11).write_parquet(path)
    fast = analyze(table=path, **ARGS)  # type: ignore[arg-type]
    monkeypatch.setattr("upshot.experiments.sources._ones", lambda *a: [])
    monkeypatch.setattr("upshot.experiments.complete.no_null_columns", lambda *a: set())
    slow = analyze(table=path, **ARGS)  # type: ignore[arg-type]
    assert len(fast.results) == len(slow.results) == 4
    for f, s in zip(fast.results, slow.results, strict=True):
        for name in ("control", "treatment", "effect", "effect_se", "pvalue", "statistic"):
            x, y = getattr(f, name), getattr(s, name)
            assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=REL), name
        assert (f.kind, f.method, f.status) == (s.kind, s.method, s.status)


def test_a_nan_sends_the_plain_pass_back_to_the_full_one(tmp_path):
    """No NULL in the footers, but a NaN: it is missing, as in the full pass."""
    df = users(3).with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(float("nan")).otherwise(pl.col("spend"))
        .alias("spend")
    )  # fmt: skip
    path = str(tmp_path / "nan.parquet")
    df.write_parquet(path)
    con = duckdb.connect()
    p = prepared(con, path)
    assert p.shortcut is not None  # tried, and it must notice the NaN
    fast = p.rows(con)
    assert_rows_equal(fast, full(p).rows(con))
    arm = df["variant"][5]
    row = next(r for r in fast if r["variant"] == arm)
    assert row["cc(spend)::n"] == row["n"] - 1  # the NaN user is out of spend's case


def test_a_null_keeps_the_full_pass(tmp_path):
    df = users(5).with_columns(
        pl.when(pl.int_range(pl.len()) == 9).then(None).otherwise(pl.col("pre_spend"))
        .alias("pre_spend")
    )  # fmt: skip
    path = str(tmp_path / "null.parquet")
    df.write_parquet(path)
    con = duckdb.connect()
    p = prepared(con, path)
    assert p.shortcut is None
    assert_rows_equal(p.rows(con), full(p).rows(con))


def test_table_analysis_runs_no_migrations(tmp_path, monkeypatch):
    """`experiments analyze --table` only reads the file: its in-memory database gets no
    warehouse tables."""
    path = str(tmp_path / "users.parquet")
    users().write_parquet(path)
    migrated: list[str] = []
    real = store.migrate

    def spy(con: duckdb.DuckDBPyConnection) -> None:
        migrated.append(str(con.execute("SELECT current_database()").fetchone()[0]))
        real(con)

    monkeypatch.setattr(store, "migrate", spy)
    r = run_cli(
        "experiments", "analyze", "--table", path, "--metric", "spend", "--json", cwd=tmp_path
    )
    assert r.code == 0, r.stderr
    assert "memory" not in migrated
    from upshot.experiments.analysis import connection

    with connection(None, None, Config()) as con:
        assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (0,)
