"""Every touches query is planned without a nested loop join, whatever DuckDB estimates.

DuckDB plans an ASOF join whose left side it estimates under `asof_loop_join_threshold`
rows as a nested loop; at 10M journeys that estimate was 52 rows for 100k converters
touches, and the run took 25x longer. A tiny warehouse makes the estimate small on
purpose, so the default plan has the loop and the test shows `merge_asof` removes it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from tests.attribution.touches.test_touches_warehouse import make_logs, make_warehouse
from upshot.attribution.touches.attribute import merge_asof
from upshot.sql import query

START = datetime(2026, 10, 26, tzinfo=UTC)
END = datetime(2026, 11, 2, tzinfo=UTC)
PARAMS = {
    "events": ["subscription_start"],
    "by": "channel",
    "start": START,
    "end": END,
    "lookback_seconds": 7 * 86400.0,
    "touch_from": datetime(2026, 10, 19, tzinfo=UTC),
    "convert_until": datetime(2026, 11, 9, tzinfo=UTC),
    "half_life_days": 7.0,
    "hash_from": 0,
    "hash_to": 2**64 - 1,
    "objective": "conversion",
    "run_id": "r1",
    "week": None,
    "period_start": START,
    "period_end": END,
}


def _statements() -> list[str]:
    from importlib import resources

    text = resources.files("upshot.sql").joinpath("touches.sql").read_text(encoding="utf-8")
    return list(re.findall(r"^-- name: ([\w-]+)", text, re.MULTILINE))


def _joins(con, name: str) -> list[str]:
    # incremental-conversions splices in the treated sends as `causal_column` does
    sql = query("touches", name).replace("/*sent*/", query("touches", "treated-per-class")[:-1])
    needed = set(re.findall(r"\$(\w+)", sql))
    params = {k: PARAMS.get(k) for k in needed}
    plan = "\n".join(row[1] for row in con.execute(f"EXPLAIN {sql}", params).fetchall())
    return re.findall(r"─ ([A-Za-z ]*Join) ─", plan)


@pytest.fixture
def tiny(tmp_path):
    sends, outcomes = make_logs(1, users=6)
    return make_warehouse(tmp_path / "w.duckdb", sends, outcomes)


def test_the_default_plan_of_a_tiny_warehouse_has_the_loop(tiny):
    # the premise: without merge_asof, DuckDB's estimate picks the nested loop here
    assert "Nested Loop Join" in _joins(tiny, "journey-aggregates")


@pytest.mark.parametrize("name", [n for n in _statements() if not n.startswith("insert")])
def test_no_touches_query_plans_a_nested_loop(tiny, name):
    with merge_asof(tiny):
        joins = _joins(tiny, name)
    assert "Nested Loop Join" not in joins


def test_merge_asof_restores_the_setting(tiny):
    tiny.execute("SET asof_loop_join_threshold = 17")
    with merge_asof(tiny):
        inside = tiny.execute("SELECT current_setting('asof_loop_join_threshold')").fetchone()
    after = tiny.execute("SELECT current_setting('asof_loop_join_threshold')").fetchone()
    assert (inside, after) == ((0,), (17,))
