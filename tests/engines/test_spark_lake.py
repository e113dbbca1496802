"""Lake mode on Spark reads the lake as DuckDB's lake views do: through `[load.columns]`,
typed as `load` types it, without the rows `load` would quarantine, the first row of a
repeated key kept (by file path, then row).

The lake here is the engine tests' world written under other column names and other event
names (mapped back by upshot.toml), with bad rows and repeated keys that a raw read would
count: a duplicate send whose first copy (by path) has its treatment flipped, users twice
with other covariates, a NULL user, an unknown channel, a propensity over 1, repeated
events; the assignments' experiment_id only in their `experiment_id=` folders. The
reference is DuckDB's lake views (`upshot.lake.attach`, tested against `load` in
tests/test_lake*.py); the views must agree row for row, and the documents of `uplift`,
`experiments analyze NAME` and `check` to 1e-9 (see test_spark.py for why 1e-9).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow

EVENTS = {"subscription_start": "sub_start", "stream_minutes": "watch_minutes"}
CONFIG = """
[load.columns.sends]
user_id = "customer_id"
decided_at = "sent_at"

[load.columns.outcomes]
event = "kind"
occurred_at = "ts"

[load.columns.assignments]
user_id = "customer_id"

[objectives.conversion]
events = ["sub_start"]
aggregation = "any"
window = "7d"

[objectives.engagement]
events = ["watch_minutes"]
aggregation = "sum"
window = "7d"

[objectives.retention]
events = ["active_day"]
aggregation = "distinct_days"
window = "7d"

[objectives.reachability]
events = ["push_opt_out", "email_unsubscribe"]
aggregation = "any"
window = "7d"

[longterm.outcomes.retention_180d]
events = ["active_day"]
aggregation = "distinct_days"
window = "180d"

[longterm.outcomes.subscribed_180d]
events = ["sub_start"]
aggregation = "any"
window = "180d"

[experiments.metrics.conversions]
events = ["sub_start"]
aggregation = "any"
window = "14d"

[experiments.metrics.minutes]
events = ["watch_minutes"]
aggregation = "sum"
window = "14d"
pre_window = "14d"

[experiments.metrics.active_days]
events = ["active_day"]
aggregation = "distinct_days"
window = "14d"
pre_window = "14d"
role = "guardrail"
margin = 0.02
"""

# run metadata and wall-clock seconds differ by nature; every estimate must not
VOLATILE = {"run_id", "seconds"}


def _same(got, want, path=""):
    if isinstance(want, dict):
        assert set(got) == set(want), path
        for key in want:
            if key not in VOLATILE:
                _same(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _same(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and not math.isnan(want):
        # the frames are equal bit for bit (exact decimal sums, one covariate order); 1e-9
        # leaves room only for the last bits of the estimators' own arithmetic
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), (path, got, want)
    elif isinstance(want, float):
        assert isinstance(got, float), path
        assert math.isnan(got), path
    else:
        assert got == want, (path, got, want)


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.parquet"))


def _mapped_lake(lake: dict[str, str], root: Path) -> Path:
    """The engine tests' lake with renamed columns and events and the faults above."""
    shutil.copytree(Path(lake["sends"]).parent, root)
    renames = {
        "sends": {"user_id": "customer_id", "decided_at": "sent_at"},
        "outcomes": {"event": "kind", "occurred_at": "ts"},
        "assignments": {"user_id": "customer_id"},
        "users": {},
    }
    for table, names in renames.items():
        for part in _parts(root / table):
            frame = pl.read_parquet(part, hive_partitioning=False).rename(names)
            if table == "outcomes":
                frame = frame.with_columns(pl.col("kind").replace(EVENTS))
            frame.write_parquet(part)
    first = _parts(root / "sends")[0]
    sends = pl.read_parquet(first, hive_partitioning=False)
    # before every other file of its folder by path: its copy of a send is the one kept
    sends.head(2).with_columns(~pl.col("treated")).write_parquet(first.parent / "0-first.parquet")
    bad = pl.concat(
        [
            sends.slice(2, 3),  # repeated send ids, later by path: left out
            sends.slice(5, 1).with_columns(pl.lit(None, pl.String).alias("customer_id"),
                                           pl.lit("s-null").alias("send_id")),
            sends.slice(6, 1).with_columns(pl.lit("fax").alias("channel"),
                                           pl.lit("s-fax").alias("send_id")),
            sends.slice(7, 1).with_columns(pl.lit(1.5).alias("propensity"),
                                           pl.lit("s-p").alias("send_id")),
        ]
    )  # fmt: skip
    bad.write_parquet(first.parent / "zz-last.parquet")
    # experiment_id only in the folders' names, as Spark and pyarrow write partitions
    (assigned,) = _parts(root / "assignments")
    frame = pl.read_parquet(assigned)
    assigned.unlink()
    for (experiment,), part in frame.group_by("experiment_id"):
        folder = root / "assignments" / f"experiment_id={experiment}"
        folder.mkdir()
        part.drop("experiment_id").write_parquet(folder / "part-0.parquet")
    users_file = _parts(root / "users")[0]
    users = pl.read_parquet(users_file)
    later = users.head(3).with_columns(pl.col("pre_minutes") * 10 + 7)
    pl.concat([users, later]).write_parquet(users_file)
    outcomes = _parts(root / "outcomes")
    events = pl.read_parquet(outcomes[-1], hive_partitioning=False)
    pl.concat([events, events.head(4)]).write_parquet(outcomes[-1])
    (root.parent / "upshot.toml").write_text(CONFIG, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def mapped(lake, tmp_path_factory):
    return _mapped_lake(lake, tmp_path_factory.mktemp("mapped") / "lake")


@pytest.fixture(scope="module")
def views(spark_session, mapped):
    """(Spark engine, DuckDB connection) over the mapped lake's checked views."""
    import duckdb

    from upshot import lake
    from upshot.config import load_config
    from upshot.engines.spark import SparkEngine

    config = load_config(str(mapped.parent / "upshot.toml"))
    import dataclasses

    from upshot.config import Lake

    config = dataclasses.replace(config, lake=Lake(path=str(mapped)))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    tables = lake.attach(con, config)
    engine = SparkEngine("local[2]", tables=tables, lake=config)
    yield engine, con
    con.close()


ORDER = {
    "sends": "send_id",
    "outcomes": "user_id, occurred_at, event, event_id, value",
    "users": "user_id",
    "assignments": "experiment_id, user_id, variant",
}


@pytest.mark.parametrize("table", list(ORDER))
def test_spark_views_equal_duckdbs_row_for_row(views, table):
    engine, con = views
    sql = f"SELECT * FROM {table} ORDER BY {ORDER[table]}"
    want = con.sql(sql).pl()
    got = engine.frame(sql, {}, name=f"lake {table}")
    assert want.height > 100
    assert got.columns == want.columns
    assert got.rows() == want.rows()


def test_spark_views_leave_out_what_duckdbs_leave_out(views):
    """The faults are there (a raw read would differ) and both engines drop the same."""
    engine, con = views
    sql = (
        "SELECT count(*) AS n, count(_fail) AS bad, count(DISTINCT send_id) AS ids FROM _lake_sends"
    )
    want = con.execute(sql).fetchall()[0]
    got = tuple(engine.fetch(sql, {}, "lake")[0].values())
    assert got == want
    n, bad, ids = want
    assert bad == 3  # NULL user, unknown channel, propensity out of range
    assert n - bad - 2 - 3 == ids - 3  # 2 + 3 repeated send ids, the bad rows' ids unique
    kept = "SELECT send_id, treated FROM sends WHERE send_id IN (SELECT send_id FROM _lake_sends GROUP BY 1 HAVING count(*) > 1) ORDER BY 1"  # noqa: E501
    first = con.execute(kept).fetchall()
    assert len(first) == 5
    assert [tuple(r.values()) for r in engine.fetch(kept, {}, "lake")] == first
    events = con.execute("SELECT count(*) FROM outcomes WHERE event = 'watch_minutes'")
    assert events.fetchall()[0][0] > 100  # the renamed events are read as they are


def _uplift(engine: str, root: Path, db: Path):
    return run_cli(
        "--engine", engine, "--lake", str(root), "--db", str(db), "uplift",
        "--week", "2026-W43", "--class", "promo_blast_push", "--json",
        cwd=root.parent,
    )  # fmt: skip


def test_spark_uplift_on_a_mapped_dirty_lake_prints_duckdbs_document(mapped, tmp_path):
    duck = _uplift("duckdb", mapped, tmp_path / "duck.duckdb")
    spark = _uplift("spark", mapped, tmp_path / "spark.duckdb")
    assert duck.code == 0, duck.err
    assert spark.code == 0, spark.err
    want, got = json.loads(duck.out), json.loads(spark.out)
    rows = [e for e in want["estimates"] if e["segment"] == "all"]
    assert rows
    assert all(e["status"] == "ok" for e in rows)
    _same(got, want)


def test_text_timestamps_are_refused_on_spark_naming_the_column(spark_session, lake, tmp_path):
    root = tmp_path / "lake"
    shutil.copytree(Path(lake["sends"]).parent, root)
    for part in _parts(root / "outcomes"):
        frame = pl.read_parquet(part, hive_partitioning=False)
        frame.with_columns(pl.col("occurred_at").cast(pl.String)).write_parquet(part)
    result = run_cli(
        "--engine", "spark", "--lake", str(root), "--db", str(tmp_path / "s.duckdb"),
        "uplift", "--week", "2026-W43", "--json",
    )  # fmt: skip
    assert result.code == 2, result.err
    assert result.err.startswith(
        f"Error: {root / 'outcomes'}: lake mode on Spark: column 'occurred_at' (occurred_at) "
        "is VARCHAR;"
    )
    assert len(result.err.strip().splitlines()) == 1


def _analyze(engine: str, root: Path, db: Path, *extra: str):
    return run_cli(
        "--engine", engine, "--lake", str(root), "--db", str(db), "experiments", "analyze",
        "send_time_test", "--no-save", "--json", *extra, cwd=root.parent,
    )  # fmt: skip


def test_spark_analyzes_a_lake_experiment_by_name_as_duckdb(mapped, tmp_path):
    """The metrics of upshot.toml over the renamed events, assignments under a mapped
    user column; every number of the document to 1e-9."""
    duck = _analyze("duckdb", mapped, tmp_path / "duck.duckdb")
    spark = _analyze("spark", mapped, tmp_path / "spark.duckdb")
    assert duck.code == 0, duck.err
    assert spark.code == 0, spark.err
    want, got = json.loads(duck.out), json.loads(spark.out)
    metrics = {r["metric"] for r in want["results"]}
    assert metrics == {"conversions", "minutes", "active_days", "minutes_per_active_day"}
    minutes = next(r for r in want["results"] if r["metric"] == "minutes")
    assert minutes["status"] == "ok"
    assert minutes["control"] > 0  # the renamed events are counted, not missing
    _same(got, want)
    unknown = _analyze("spark", mapped, tmp_path / "spark.duckdb", "--interaction", "nope")
    assert unknown.code == 2
    assert unknown.err.startswith("Error: --interaction 'nope' has no assignments")


def test_a_warehouse_experiment_on_spark_needs_a_lake(spark_session, tmp_path):
    result = run_cli(
        "--engine", "spark", "--db", str(tmp_path / "w.duckdb"), "experiments", "analyze",
        "send_time_test", "--no-save", cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 2
    assert result.err == (
        "Error: --engine spark: experiments analyze NAME reads the contract tables in place; "
        "give --lake DIR (`upshot lake export DIR` writes a loaded warehouse there)\n"
    )


def _check(engine: str, root: Path, db: Path):
    return run_cli(
        "--engine", engine, "--lake", str(root), "--db", str(db), "check", "--json",
        cwd=root.parent,
    )  # fmt: skip


def test_spark_check_counts_what_duckdb_counts(mapped, tmp_path):
    """`upshot check` on the lake: the rows left out by reason (with the file and row of a
    first example) and every other finding, as DuckDB's views count them."""
    runs = [_check(engine, mapped, tmp_path / f"{engine}.duckdb") for engine in ("duckdb", "spark")]
    assert [r.code for r in runs] == [0, 0], runs[1].err
    want, got = (json.loads(r.out) for r in runs)
    _same(got, want)
    sends = want["checks"][0]["tables"]["sends"]
    reasons = {(r["reason"], r["column"]): r["count"] for r in sends["reasons"]}
    assert reasons == {
        ("null_required", "user_id"): 1,
        ("propensity_out_of_range", "propensity"): 1,
        ("unknown_channel", "channel"): 1,
    }
    assert sends["duplicates"] == 5
    assert want["checks"][0]["tables"]["users"]["duplicates"] == 3
    assert sends["reasons"][0]["example"]["file"].endswith("zz-last.parquet")


def test_a_lake_without_users_or_assignments_reads_them_empty(spark_session, lake, tmp_path):
    """As before anything is loaded: empty tables with the warehouse's columns."""
    import dataclasses

    import duckdb

    from upshot import check
    from upshot import lake as lakes
    from upshot.config import Config, Lake
    from upshot.engines.spark import SparkEngine

    root = tmp_path / "lake"
    for table in ("sends", "outcomes"):
        shutil.copytree(lake[table], root / table)
    config = dataclasses.replace(Config(), lake=Lake(path=str(root)))
    con = duckdb.connect()
    tables = lakes.attach(con, config)
    assert set(tables) == {"sends", "outcomes"}
    engine = SparkEngine("local[2]", tables=tables, lake=config)
    want = [tuple(r[:2]) for r in con.execute("DESCRIBE users").fetchall()]
    assert engine.table_columns("users") == want == [("user_id", "VARCHAR"), ("load_id", "VARCHAR")]
    assert engine.fetch("SELECT count(*) AS n FROM assignments", {}, "lake") == [{"n": 0}]
    assert check.covariates(engine) == check.covariates(con)
    con.close()
