"""Touch attribution on Spark: `upshot --engine spark --lake DIR touches` prints the
document `--engine duckdb` prints, on the simulated lake plus hand-made journeys at the
edges (touches tied with each other and with a conversion, conversions tied with each
other, a conversion exactly at the lookback's edge and one microsecond past it, users
who never convert).

The reference is DuckDB running `touches.sql` as written (ASOF join, hash buckets);
Spark runs the same statement transpiled (the ASOF join as a running window, one pass).
Tolerance 1e-9 relative: the engines add doubles in their own orders (time-decay weights,
values), a few ulps for these few hundred journeys; a touch in the wrong journey moves a
credit by a whole conversion. The hand-made journeys are also checked against credits
worked out by hand below, independently of either engine.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import run_cli
from tests.engines.test_spark import same

pytestmark = pytest.mark.slow

WEEK = "2026-W43"  # 2026-10-19 to 2026-10-26
CONFIG = """
[objectives.conversion]
events = ["subscription_start", "message_open"]
aggregation = "any"
window = "7d"
"""


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (user, class, decided_at) touches and (user, occurred_at, value) conversions; classes
# edge_a / edge_b appear nowhere else, so the paths holding them are these users' alone
TOUCHES = [
    # edge1: two touches at one instant, a conversion at that instant too (not strictly
    # after them: they go to the next one, 26 h later)
    ("edge1", "edge_b", "2026-10-20 10:00:00"),
    ("edge1", "edge_a", "2026-10-20 10:00:00"),
    # edge2: one touch exactly 7 days before the conversion (in), one 1 µs earlier (out,
    # and before the period: in no journey)
    ("edge2", "edge_a", "2026-10-13 06:00:00"),
    ("edge2", "edge_b", "2026-10-13 05:59:59.999999"),
    # edge3: the next conversion is 7 days and 1 µs later: a non-converting journey
    ("edge3", "edge_b", "2026-10-20 00:00:00"),
    # edge4: never converts
    ("edge4", "edge_a", "2026-10-21 00:00:00"),
    ("edge4", "edge_b", "2026-10-22 00:00:00"),
    # edge5: two conversions at one instant (the same value: DuckDB matches either)
    ("edge5", "edge_a", "2026-10-21 09:00:00"),
    ("edge5", "edge_b", "2026-10-22 14:00:00"),
]
CONVERSIONS = [
    ("edge1", "2026-10-20 10:00:00", 1.0),
    ("edge1", "2026-10-21 12:00:00", 5.0),
    ("edge2", "2026-10-20 06:00:00", 1.0),
    ("edge3", "2026-10-27 00:00:00.000001", 1.0),
    ("edge5", "2026-10-22 15:00:00", 2.0),
    ("edge5", "2026-10-22 15:00:00", 2.0),
]


def _write_by_day(rows: list[dict], schema: pl.Schema, folder: Path, column: str) -> None:
    frame = pl.DataFrame(rows, schema=schema)
    for (day,), part in frame.group_by(pl.col(column).dt.date(), maintain_order=True):
        target = folder / f"day={day}"
        target.mkdir(parents=True, exist_ok=True)
        part.write_parquet(target / "edge.parquet")


@pytest.fixture(scope="module")
def edge_lake(lake, tmp_path_factory) -> Path:
    """The engines' simulated lake plus the hand-made users above, partitioned by day."""
    root = tmp_path_factory.mktemp("touch_lake") / "lake"
    shutil.copytree(Path(lake["sends"]).parent, root)
    sends = pl.read_parquet(next((root / "sends").glob("day=*/*.parquet"))).schema
    outcomes = pl.read_parquet(next((root / "outcomes").glob("day=*/*.parquet"))).schema
    touch_rows = [
        {"send_id": f"edge-s{i}", "user_id": user, "message_class": cls, "channel": "push",
         "decided_at": _at(at), "treated": True, "propensity": 0.5, "randomized": False,
         "campaign_id": "edge"}
        for i, (user, cls, at) in enumerate(TOUCHES)
    ]  # fmt: skip
    conversion_rows = [
        {"user_id": user, "occurred_at": _at(at), "event": "subscription_start",
         "value": value, "event_id": f"edge-e{i}"}
        for i, (user, at, value) in enumerate(CONVERSIONS)
    ]  # fmt: skip
    _write_by_day(touch_rows, sends, root / "sends", "decided_at")
    _write_by_day(conversion_rows, outcomes, root / "outcomes", "occurred_at")
    (root.parent / "upshot.toml").write_text(CONFIG, encoding="utf-8")
    return root


def _touches(engine: str, root: Path, db: Path, *options: str):
    return run_cli(
        "--engine", engine, "--lake", str(root), "--db", str(db),
        "--config", str(root.parent / "upshot.toml"), "touches", *options, "--json",
    )  # fmt: skip


def test_spark_touches_on_a_lake_prints_duckdbs_document(spark_session, edge_lake, tmp_path):
    options = ("--week", WEEK, "--by", "class")
    duck = _touches("duckdb", edge_lake, tmp_path / "duck.duckdb", *options)
    spark = _touches("spark", edge_lake, tmp_path / "spark.duckdb", *options)
    assert duck.code == 0, duck.err
    assert spark.code == 0, spark.err
    want, got = json.loads(duck.out), json.loads(spark.out)
    # not a trivially small document: journeys, non-converting ones, every method credited
    assert want["total_conversions"] > 100
    assert want["total_null"] > 100
    assert want["conversions_without_touch"] > 0
    assert want["methods"] == ["first_touch", "last_touch", "linear", "time_decay", "markov",
                               "shapley"]  # fmt: skip
    assert want.pop("run_id") != got.pop("run_id")  # each side stored its own run
    same(got, want)
    # the hand-made journeys, worked out by hand (lookback 7 d, half-life 7 d): edge1
    # [edge_a, edge_b] (touches tied at one instant: by name; the conversion at that
    # instant is not after them, the next one is) converts with 5.0; edge5 [edge_a,
    # edge_b] with 2.0 (one of its two conversions at one instant); edge2 [edge_a] with
    # 1.0 (the touch exactly 7 d before; the one 1 µs earlier is out); edge3 (7 d + 1 µs)
    # and edge4 (no conversion) convert nothing
    credits = {
        (c["class"], c["method"]): (c["conversions"], c["value"])
        for c in got["credits"]
        if c["class"].startswith("edge_")
    }
    # time decay: edge1's touches (26 h old) share equally, edge2's one takes all, edge5's
    # are 30 h and 1 h old: weights 2^(-29/168) : 1
    w = 2.0 ** (-29 / 168)
    hand = {
        ("edge_a", "first_touch"): (3.0, 8.0),
        ("edge_b", "first_touch"): (0.0, 0.0),
        ("edge_a", "last_touch"): (1.0, 1.0),
        ("edge_b", "last_touch"): (2.0, 7.0),
        ("edge_a", "linear"): (2.0, 4.5),
        ("edge_b", "linear"): (1.0, 3.5),
        ("edge_a", "time_decay"): (1.5 + w / (1 + w), 3.5 + 2 * w / (1 + w)),
        ("edge_b", "time_decay"): (0.5 + 1 / (1 + w), 2.5 + 2 / (1 + w)),
    }
    for key, (conversions, value) in hand.items():
        assert credits[key] == pytest.approx((conversions, value), rel=1e-12), key


def test_spark_counts_the_causal_columns_treated_sends(spark_session, edge_lake, tmp_path):
    """Spark beside a warehouse with no sends at all: the treated sends per item can only
    have been counted on Spark, and they are DuckDB's counts over the lake (every send:
    the statement's NULL bounds)."""
    import dataclasses

    from upshot import store
    from upshot.attribution.touches.causal import causal_column
    from upshot.config import Lake, load_config
    from upshot.engines.spark import SparkEngine
    from upshot.lake import lake_tables
    from upshot.period import ALL_TIME

    plain = load_config(edge_lake.parent / "upshot.toml")
    on_lake = dataclasses.replace(plain, lake=Lake(path=str(edge_lake)))
    options = {"by": "class", "span": ALL_TIME, "items": []}
    with store.reading(on_lake, str(tmp_path / "lake.duckdb")) as con:
        want = causal_column(con, **options)
    store.connect(str(tmp_path / "empty.duckdb"), read_only=False).close()
    spark = SparkEngine("local[2]", tables=lake_tables(str(edge_lake)))
    with store.reading(plain, str(tmp_path / "empty.duckdb")) as con:
        assert con.execute("SELECT count(*) FROM sends").fetchone() == (0,)
        got = causal_column(con, engine=spark, **options)
    treated = {r.item: r.n_treatment for r in want.rows}
    assert len(treated) >= 6
    assert treated["edge_a"] == 4  # edge1, edge2, edge4, edge5 (TOUCHES)
    assert treated["edge_b"] == 5
    assert {r.item: r.n_treatment for r in got.rows} == treated
    assert [(r.item, r.status) for r in got.rows] == [(r.item, r.status) for r in want.rows]


def test_an_asof_join_in_every_direction_matches_duckdb(spark_session, tmp_path):
    """The ASOF rewrite on its own, for >, >=, < and <=: ties between the sides at one
    instant, a left row with a NULL key or time, right rows with NULL times."""
    from upshot.engines.spark import SparkEngine

    left = pl.DataFrame({
        "k": ["a", "a", "a", "b", None, "a"],
        "y": [1, 5, 9, 3, 4, None],
    })  # fmt: skip
    right = pl.DataFrame({"k": ["a", "a", "a", "b", "b"], "x": [2, 5, 8, None, 7],
                          "v": [20.0, 50.0, 80.0, -1.0, 70.0]})  # fmt: skip
    left.write_parquet(tmp_path / "l.parquet")
    right.write_parquet(tmp_path / "r.parquet")
    parts = [
        f"SELECT '{op}' AS op, t.k, t.y, c.x, c.v FROM read_parquet($left) AS t "
        f"ASOF LEFT JOIN read_parquet($right) AS c ON t.k = c.k AND c.x {op} t.y"
        for op in (">", ">=", "<", "<=")
    ]
    sql = f"SELECT * FROM ({' UNION ALL '.join(parts)}) ORDER BY op, k, y"
    params = {"left": str(tmp_path / "l.parquet"), "right": str(tmp_path / "r.parquet")}
    import duckdb

    con = duckdb.connect()
    names = ("op", "k", "y", "x", "v")
    want = [dict(zip(names, r, strict=True)) for r in con.execute(sql, params).fetchall()]
    got = SparkEngine("local[2]").fetch(sql, params, "asof", name="asof")
    assert len(want) == 24
    assert [r for r in want if r["op"] == ">" and r["k"] == "a" and r["y"] == 5] == [
        {"op": ">", "k": "a", "y": 5, "x": 8, "v": 80.0}
    ]
    assert got == want
