"""`upshot load` on the simulator's dirty world: every injected fault is caught, exactly."""

from __future__ import annotations

import json

import duckdb
import polars as pl
import pytest

from tests.conftest import run_cli
from upshot.simulate import simulate


@pytest.fixture(scope="module")
def dirty_load(tmp_path_factory):
    out = tmp_path_factory.mktemp("dirty")
    simulate(out / "world", users=1500, weeks=2, seed=11, dirty=True)
    db = out / "w.duckdb"
    documents = {}
    for table in ("users", "assignments", "sends", "outcomes"):
        source = out / "world" / (table if table in ("sends", "outcomes") else f"{table}.parquet")
        # the small world's fixed fault count is over 1% of its rows: lift the gate here
        result = run_cli(
            "--db", str(db), "load", table, str(source), "--max-reject-rate", "1", "--json"
        )
        assert result.code == 0, result.err
        documents[table] = json.loads(result.out)
    truth = json.loads((out / "world" / "truth.json").read_text())
    return db, documents, truth


@pytest.mark.parametrize("table", ["sends", "outcomes"])
def test_quarantine_and_duplicates_match_the_injected_faults(dirty_load, table):
    _, documents, truth = dirty_load
    injected = truth["dirty"][table]
    totals = documents[table]["totals"]
    assert totals["quarantined_by_reason"] == dict(sorted(injected["expected_quarantine"].items()))
    assert totals["duplicates_skipped"] == injected["duplicates"]
    assert totals["rows_accepted"] == injected["clean_rows"]


def test_the_loaded_warehouse_equals_the_clean_world(dirty_load, tmp_path):
    db, _, _ = dirty_load
    from upshot.simulate import make_world

    clean = make_world(users=1500, weeks=2, seed=11)
    with duckdb.connect(str(db), read_only=True) as con:
        for name, frame in (("sends", clean.sends), ("outcomes", clean.outcomes)):
            loaded = con.sql(f"SELECT * EXCLUDE (load_id) FROM {name}").pl()
            key = "send_id" if name == "sends" else "event_id"
            # DuckDB labels the zone Etc/UTC, polars UTC: compare the instants
            utc = [pl.col(pl.Datetime).dt.convert_time_zone("UTC")]
            got = loaded.with_columns(utc).sort(key)
            want = frame.select(loaded.columns).with_columns(utc).sort(key)
            assert got.equals(want), name
