"""Every statement of upshot/sql/*.sql written for Spark, BigQuery and Snowflake by SQLGlot,
and the fix-ups of `upshot.engines.transpile` (no Spark needed here; test_spark.py runs the
population-wide statements on Spark).

The migrations (upshot/sql/migrations/*.sql) are left out: they are the DuckDB
warehouse's own DDL (CREATE TABLE/SEQUENCE/INDEX of the local run records), which another
engine never runs: with `--engine spark` estimates and run records still go to DuckDB.
"""

from __future__ import annotations

import re
from importlib import resources

import pytest

from upshot.engines.transpile import TranspileError, split_order, transpile
from upshot.sql import _file, query

# fills for the `/*marker*/` and `{marker}` splices, as the code generating them does
_MARKERS = {
    "/*relation*/": "read_parquet($path)",
    "/*assigned*/": query("experiments", "assigned-one"),
    "/*segment*/": "NULL::VARCHAR",
    "/*segment_join*/": "",
    "/*metrics*/": ", CAST(count(*) FILTER (WHERE o.event IN ($e0)) > 0 AS DOUBLE) AS m",
    "/*events*/": "AND o.event IN ($e0)",
    "/*sent*/": query("touches", "treated-per-class").rstrip(";"),
    "{opt_in}": '"push_opt_in"',
    "{rest}": ', u."country", p."conversion"',
    "{events}": "$events_0",
    "{window}": "$window_0",
    "{k}": "0",
}
# statements that are fragments of an expression, not whole statements (frames.sql)
_FRAGMENTS = re.compile(r"^(objective-|pre-inside)")


def _statements() -> list[tuple[str, str, str]]:
    out = []
    for item in sorted(resources.files("upshot.sql").iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".sql"):
            continue
        module = item.name[:-4]
        for name, sql in _file(module).items():
            out.append((module, name, sql))
    return out


def _filled(module: str, name: str, sql: str) -> str:
    inside = query("frames", "objective-inside")
    sql = sql.replace("{objectives}", query("frames", "objective-any") + " AS conversion")
    sql = sql.replace("{inside}", inside)
    for marker, fill in _MARKERS.items():
        sql = sql.replace(marker, fill)
    if _FRAGMENTS.match(name) and module == "frames":
        sql = f"SELECT {sql} FROM sends AS d, outcomes AS o"
    return sql


STATEMENTS = _statements()


def test_every_sql_file_is_covered():
    """The list is read from the package, so a new file or statement is tested too."""
    modules = {m for m, _, _ in STATEMENTS}
    assert {"experiments", "frames", "report", "touches", "weights", "check"} <= modules
    assert len(STATEMENTS) >= 80


@pytest.mark.parametrize("dialect", ["spark", "bigquery", "snowflake"])
def test_every_statement_transpiles(dialect):
    failures = []
    for module, name, sql in STATEMENTS:
        try:
            text = transpile(_filled(module, name, sql), dialect, name=f"{module} {name}")
        except TranspileError as exc:
            failures.append(str(exc))
            continue
        assert text.strip(), f"{module} {name}: empty output"
    assert failures == []


def test_markers_all_filled():
    for module, name, sql in STATEMENTS:
        filled = _filled(module, name, sql)
        assert not re.search(r"/\*[a-z_]+\*/|\{[a-z_]+\}", filled), (module, name)


def test_untranslatable_statement_names_itself():
    with pytest.raises(TranspileError, match=r"^frames decision-frame: SQLGlot cannot parse"):
        transpile("SELECT FROM WHERE (", "spark", name="frames decision-frame")
    with pytest.raises(TranspileError, match=r"^x: no value bound for \$missing"):
        transpile("SELECT $missing", "spark", name="x", params={})


def test_values_bind_as_typed_literals():
    """Floats are DOUBLE (Spark reads a bare 0.1 as DECIMAL), strings quoted by the writer,
    lists arrays, tz-aware instants in UTC, NULL as NULL."""
    from datetime import datetime, timedelta, timezone

    at = datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))
    text = transpile(
        "SELECT $f, $s, $l, $t, $n, $i",
        "spark",
        name="x",
        params={"f": 0.1, "s": "it's", "l": ["a", "b"], "t": at, "n": None, "i": 3},
    )
    assert text == (
        "SELECT CAST('0.1' AS DOUBLE), 'it\\'s', ARRAY('a', 'b'), "
        "CAST('2026-01-01 00:00:00' AS TIMESTAMP), NULL, 3"
    )


def test_spark_fixups():
    text = transpile(
        "SELECT 1.0 / n, a - to_seconds(CAST(86400.0 AS DOUBLE)), "
        "coalesce(x, '-infinity'::TIMESTAMPTZ) FROM read_parquet($p) t",
        "spark",
        name="x",
        params={"p": "/data/f.parquet"},
        relations=lambda kind, path: f"view_{kind}_{len(path)}",
    )
    assert "CAST('1.0' AS DOUBLE) / n" in text
    # a literal already cast keeps its cast
    assert "MAKE_DT_INTERVAL(0, 0, 0, CAST(CAST(86400.0 AS DOUBLE) AS DECIMAL(18, 6)))" in text
    assert "CAST('0001-01-01 00:00:00' AS TIMESTAMP)" in text
    assert text.endswith("FROM view_parquet_15 AS t")


def test_distinct_on_becomes_first_row_per_key():
    text = transpile(
        "SELECT DISTINCT ON (user_id) * FROM users ORDER BY user_id, load_id DESC NULLS LAST",
        "spark",
        name="x",
    )
    assert "ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY user_id" in text
    assert "load_id DESC" in text
    assert "WHERE _upshot_rank = 1" in text


def test_touches_statement_has_no_duckdb_only_syntax_on_spark():
    """The journeys statement's ASOF join, `AS MATERIALIZED` and `epoch_us` have no Spark
    spelling; test_spark_touches.py runs the rewrite against DuckDB's results."""
    text = transpile(query("touches", "journey-aggregates"), "spark", name="touches")
    assert not re.search(r"\bASOF\b", text, re.IGNORECASE)
    assert "MATERIALIZED" not in text.upper()
    assert "EPOCH_US" not in text.upper()
    assert "UNIX_MICROS(converted_at) - UNIX_MICROS(decided_at)" in text
    # a running window over both sides; each left row's match is the last right row
    # before it: for `c.converted_at > t.decided_at`, newest first, at a tie the touch first
    assert "ORDER BY _upshot_at DESC, _upshot_side DESC, _upshot_r DESC" in text
    assert "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW" in text


@pytest.mark.parametrize(
    ("on", "order"),
    [
        ("t.k = c.k AND c.x > t.y", "_upshot_at DESC, _upshot_side DESC"),
        ("t.k = c.k AND t.y < c.x", "_upshot_at DESC, _upshot_side DESC"),  # the same, flipped
        ("t.k = c.k AND c.x >= t.y", "_upshot_at DESC, _upshot_side ASC"),
        ("c.k = t.k AND c.x < t.y", "_upshot_at ASC, _upshot_side DESC"),
        ("t.k = c.k AND t.y >= c.x", "_upshot_at ASC, _upshot_side ASC"),
    ],
)
def test_asof_join_directions(on, order):
    text = transpile(
        f"SELECT t.a, c.b FROM l AS t ASOF LEFT JOIN r AS c ON {on}", "spark", name="x"
    )
    assert f"ORDER BY {order}, _upshot_r DESC" in text
    assert "PARTITION BY _upshot_k0" in text


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM l AS t ASOF JOIN r AS c ON t.k = c.k AND c.x > t.y",  # inner
        "SELECT * FROM l AS t ASOF LEFT JOIN r AS c ON c.x > t.y",  # no equality
        "SELECT * FROM l AS t ASOF LEFT JOIN r AS c ON t.k = c.k",  # no inequality
        "SELECT * FROM l AS t ASOF LEFT JOIN r AS c ON t.k = c.k AND c.x > t.y + 1",
        "SELECT * FROM l AS t ASOF LEFT JOIN r AS c ON t.k = c.k AND c.x > t.y JOIN s ON 1=1",
    ],
)
def test_asof_join_shapes_without_a_rewrite_are_refused(sql):
    with pytest.raises(TranspileError, match=r"^x: cannot be written for spark \(.*ASOF"):
        transpile(sql, "spark", name="x")


def test_distinct_days_become_the_size_of_a_set_of_days():
    """Spark plans a distinct aggregate as an Expand of every row; a set of days is small.
    Only a count of distinct DATEs is rewritten (a set of user ids would not be small)."""
    text = transpile(
        "SELECT g, count(DISTINCT CAST(t AS DATE)) FILTER (WHERE t > to_seconds(1.0)), "
        "count(DISTINCT CAST(t AS DATE)), count(DISTINCT user_id) FROM x GROUP BY g",
        "spark",
        name="x",
    )
    # the filter's inside is fixed too (to_seconds has no Spark spelling)
    assert "SIZE(COLLECT_SET(CAST(t AS DATE)) FILTER(WHERE t > MAKE_DT_INTERVAL(" in text
    assert "SIZE(COLLECT_SET(CAST(t AS DATE)))" in text
    assert "COUNT(DISTINCT user_id)" in text


@pytest.mark.parametrize(
    ("sql", "body", "keys"),
    [
        (
            "WITH a AS (SELECT 1 AS x) SELECT p.x, p.y AS z FROM a AS p ORDER BY p.x, z DESC",
            "WITH a AS (SELECT 1 AS x) SELECT p.x, p.y AS z FROM a AS p",
            '"x", "z" DESC',
        ),
        ("SELECT x FROM a ORDER BY x NULLS FIRST", "SELECT x FROM a", '"x" NULLS FIRST'),
        # an order that cannot be applied to the written rows stays in the statement
        ("SELECT x FROM a ORDER BY x LIMIT 3", None, ""),
        ("SELECT x FROM a ORDER BY x + 1", None, ""),
        ("SELECT * FROM a ORDER BY x", None, ""),
        ("SELECT p.y AS x FROM a AS p ORDER BY p.x", None, ""),  # the source's x, not the output's
        ("SELECT DISTINCT ON (x) x, y FROM a ORDER BY x, y", None, ""),
        ("SELECT x FROM a UNION ALL SELECT x FROM b ORDER BY x", None, ""),
        ("SELECT x FROM a", None, ""),
    ],
)
def test_split_order(sql, body, keys):
    assert split_order(sql) == (body or sql, keys)
