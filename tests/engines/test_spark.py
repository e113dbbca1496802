"""The Spark engine gives DuckDB's numbers: the same statements over the same files.

The reference is DuckDB running the untranslated statement (whose numbers the rest of the
suite checks against scipy, statsmodels and the simulation's truth). Tolerance: 1e-9
relative (1e-12 absolute near 0). Both engines add doubles in an order of their own
(per thread, per partition), so sums may differ in the last bits: relative error of a sum
of n terms is at most ~n * 2^-53 * sum|x| / |sum x|, about 1e-12 for these few thousand
rows, and the statistics built from them inherit it; 1e-9 leaves room for that and
nothing more, so any difference in meaning (a row, a NULL, a window bound, a time zone)
fails.

All tests share one local[2] session (`spark_session`, session-scoped).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tests.conftest import run_cli
from upshot.config import Config

pytestmark = pytest.mark.slow

WEEK = ("2026-10-19", "2026-10-26")


def same(a, b, path=""):
    """Documents equal: floats to 1e-9 relative, NaN as NaN, everything else exactly."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None, (path, a, b)
        assert b is not None, (path, a, b)
        if math.isnan(a):
            assert math.isnan(b), (path, a, b)
        else:
            assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (path, a, b)
    else:
        assert a == b, (path, a, b)


def test_decision_frame_row_for_row(spark_lake, duck_lake):
    from upshot.attribution.uplift.frames import decision_frame

    config = Config()
    want = decision_frame(duck_lake, config, start=WEEK[0], end=WEEK[1])
    got = decision_frame(spark_lake, config, start=WEEK[0], end=WEEK[1])
    assert want.height > 1000
    assert got.columns == want.columns
    assert got.schema == want.schema
    # rows in the same order (class, time, send_id), every value equal
    assert_frame_equal(got, want, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)
    # the frame is not trivially empty of outcomes or covariates
    assert want["conversion"].sum() > 0
    assert want["pre_engagement"].sum() > 0


def test_decision_frame_classes_and_objectives(spark_lake, duck_lake):
    """A class filter, one objective, no pre-period: the same splices, the same rows."""
    import dataclasses

    from upshot.attribution.uplift.frames import decision_frame, known_classes

    classes = known_classes(duck_lake)
    assert known_classes(spark_lake) == classes
    config = Config()
    config = dataclasses.replace(config, uplift=dataclasses.replace(config.uplift, pre_window="0d"))
    kwargs = {"classes": classes[:2], "start": WEEK[0], "end": "2026-11-02"}
    want = decision_frame(duck_lake, config, objectives=["engagement"], **kwargs)
    got = decision_frame(spark_lake, config, objectives=["engagement"], **kwargs)
    assert set(want["message_class"].unique()) == set(classes[:2])
    assert_frame_equal(got, want, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)


def test_written_frame_is_read_per_class_in_order(spark_lake, duck_lake, tmp_path):
    from upshot.attribution.uplift.frames import decision_frame, frame_files, write_decision_frame

    config = Config()
    path = tmp_path / "decisions.parquet"
    n = write_decision_frame(spark_lake, config, path, start=WEEK[0], end=WEEK[1])
    want = decision_frame(duck_lake, config, start=WEEK[0], end=WEEK[1])
    assert n == want.height
    got = pl.scan_parquet(frame_files(path)).collect()
    assert_frame_equal(got, want, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)
    # written unsorted to a scratch folder first, then sorted from it: the scratch is gone
    assert not Path(f"{path}.unsorted").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["decisions.parquet"]


# population-wide statements over the contract tables, with the values their callers bind
STATEMENTS = [
    ("check", "id-overlap-outcomes", {}),
    ("check", "id-overlap-users", {}),
    ("check", "outcome-events", {}),
    ("check", "classes", {}),
    ("check", "window-reach", {"seconds": 7 * 86400.0, "last": "2026-11-01 12:00:00+00"}),
    ("check", "last-outcome", {}),
    ("check", "experiment-outcomes", {}),
    ("experiments", "list-experiments", {}),
    ("experiments", "multi-arm-users", {}),
    ("experiments", "experiment-ids", {}),
    ("frames", "class-names", {}),
]


@pytest.mark.parametrize(("module", "name", "params"), STATEMENTS, ids=lambda x: str(x))
def test_population_statements(spark_lake, duck_lake, module, name, params):
    from datetime import datetime

    from upshot.sql import query

    sql = query(module, name)
    bound = {k: datetime.fromisoformat(v) if k == "last" else v for k, v in params.items()}
    cursor = duck_lake.execute(sql, bound or None)
    want = [list(r) for r in cursor.fetchall()]
    got = [list(r.values()) for r in spark_lake.fetch(sql, bound, "lake", name=name)]
    # the simulated world assigns every user one arm: that count is rightly empty
    assert want or name == "multi-arm-users", f"{module} {name}: no rows to compare"
    same(sorted(got, key=str), sorted(want, key=str), f"{module} {name}")


def test_warehouse_experiment_statistics(spark_lake, duck_lake):
    """Assignments x outcomes per user, the sufficient statistics and the analysis."""
    from upshot.experiments import spec as specs_mod
    from upshot.experiments.engine import Options, analyze_rows
    from upshot.experiments.sources import prepare_warehouse

    config = Config()
    found = duck_lake.execute("SELECT DISTINCT experiment_id FROM assignments ORDER BY 1")
    ids = [r[0] for r in found.fetchall()]
    assert ids
    specs, variables = specs_mod.from_config(config.experiments, None)
    for experiment in ids:
        prepared = prepare_warehouse(experiment, specs, variables)
        want = prepared.rows(duck_lake)
        got = prepared.rows(spark_lake)
        same(sorted(got, key=str), sorted(want, key=str), experiment)
        docs = [
            analyze_rows(
                rows, specs, experiment=experiment, control="control", split=None,
                options=Options(), source="warehouse",
            ).to_document()
            for rows in (want, got)
        ]  # fmt: skip
        same(docs[1], docs[0], experiment)


def ab_file(folder: Path, seed: int = 5) -> Path:
    """Three arms, a 3% NaN outcome, NULL covariates, a 0/1 integer, a ratio, booleans."""
    rng = np.random.default_rng(seed)
    n = 3000
    arm = rng.choice(["control", "a", "b"], n)
    pre = rng.gamma(2.0, 3.0, n)
    minutes = 0.8 * pre + rng.normal(0.0, 2.0, n) + 0.4 * (arm == "a")
    minutes[rng.random(n) < 0.03] = np.nan
    clicks = rng.poisson(3.0, n).astype(float)
    frame = pl.DataFrame(
        {
            "user_id": np.arange(n) % 2990,  # ten users in two rows: some in two arms
            "variant": arm,
            "minutes": minutes,
            "pre_minutes": pre,
            "converted": (rng.random(n) < 0.2 + 0.05 * (arm == "b")).astype(np.int64),
            "clicks": clicks,
            "sends": clicks + rng.poisson(5.0, n),
            "opened": rng.random(n) < 0.4,
        }
    ).with_columns(pl.when(pl.int_range(n) % 40 == 0).then(None).otherwise(pl.col("pre_minutes")))
    path = folder / "ab.parquet"
    frame.write_parquet(path)
    frame.write_csv(folder / "ab.csv")
    return path


@pytest.mark.parametrize(
    ("suffix", "extra"),
    [
        (".parquet", ["--user-col", "user_id"]),
        (".parquet", ["--adjust", "lin", "--winsorize", "minutes=0.99"]),
        (".csv", ["--metric", "opened", "--nulls", "zero"]),
    ],
)
def test_cli_analyze_same_document(spark_session, tmp_path, suffix, extra):
    table = ab_file(tmp_path).with_suffix(suffix)
    args = [
        "experiments", "analyze", "--table", str(table), "--variant-col", "variant",
        "--control", "control", "--metric", "minutes", "--metric", "converted",
        "--ratio", "clicks/sends", "--covariate", "minutes=pre_minutes", "--no-save",
        "--json", *extra,
    ]  # fmt: skip
    duck = run_cli("--engine", "duckdb", *args, cwd=tmp_path)
    spark = run_cli("--engine", "spark", *args, cwd=tmp_path)
    assert duck.code == 0, duck.err
    assert spark.code == 0, spark.err
    want, got = json.loads(duck.out), json.loads(spark.out)
    assert len(want["results"]) >= 6
    assert any(r["status"] == "ok" for r in want["results"])
    same(got, want)


def test_config_chooses_spark_and_flag_overrides(spark_session, tmp_path):
    table = ab_file(tmp_path)
    (tmp_path / "upshot.toml").write_text('[engine]\nkind = "spark"\n', encoding="utf-8")
    args = ["experiments", "analyze", "--table", str(table), "--control", "control"]
    args += ["--metric", "minutes", "--no-save", "--json"]
    on_config = run_cli(*args, cwd=tmp_path)
    on_flag = run_cli("--engine", "duckdb", *args, cwd=tmp_path)
    assert on_config.code == 0, on_config.err
    assert on_flag.code == 0, on_flag.err
    same(json.loads(on_config.out), json.loads(on_flag.out))
    # a warehouse experiment on Spark reads a lake: without one it says so, never falls back
    refused = run_cli("experiments", "analyze", "exp1", "--no-save", cwd=tmp_path)
    assert refused.code == 2
    assert refused.err.startswith("Error: --engine spark: experiments analyze NAME reads the")


def test_spark_error_names_the_statement(spark_lake):
    from upshot.errors import InputError

    with pytest.raises(InputError, match=r"^lake: Spark refused frames probe \("):
        spark_lake.fetch("SELECT no_such_column FROM sends", {}, "lake", name="frames probe")


def test_distinct_days_on_spark_count_as_duckdb(spark_session, tmp_path):
    """`count(DISTINCT CAST(t AS DATE)) FILTER (...)` (the retention objective), which
    Spark computes as the size of a set of days: NULL times, a group with no row inside
    the filter, two events on one day, a day boundary in UTC."""
    from datetime import UTC, datetime

    import duckdb

    from upshot.engines.spark import SparkEngine

    at = [
        datetime(2026, 11, 2, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 11, 3, 0, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 3, 12, 0, 0, tzinfo=UTC),
        None,
        datetime(2026, 11, 5, 8, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 9, 8, 0, 0, tzinfo=UTC),
    ]
    events = pl.DataFrame({
        "g": ["a", "a", "a", "a", "b", "c"], "t": at, "keep": [True, True, True, True, False, True],
    })  # fmt: skip
    events.write_parquet(tmp_path / "e.parquet")
    sql = (
        "SELECT g, CAST(count(DISTINCT CAST(t AS DATE)) FILTER (WHERE keep) AS DOUBLE) AS d, "
        "count(DISTINCT CAST(t AS DATE)) AS all_days FROM read_parquet($path) GROUP BY g ORDER BY g"
    )
    params = {"path": str(tmp_path / "e.parquet")}
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    want = [
        dict(zip(("g", "d", "all_days"), r, strict=True))
        for r in con.execute(sql, params).fetchall()
    ]
    assert want == [
        {"g": "a", "d": 2.0, "all_days": 2},
        {"g": "b", "d": 0.0, "all_days": 1},
        {"g": "c", "d": 1.0, "all_days": 1},
    ]
    assert SparkEngine("local[2]").fetch(sql, params, "days", name="days") == want
