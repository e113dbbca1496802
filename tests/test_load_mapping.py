"""Bringing one's own files: column maps, all missing columns named at once, the spellings
of `treated`, users snapshots that replace, and users columns that would clash."""

from __future__ import annotations

import dataclasses
import json

import duckdb
import polars as pl
import pytest

from tests.conftest import run_cli
from upshot.config import Config, load_config
from upshot.errors import EXIT_ERROR, EXIT_OK, EXIT_USAGE, ConfigError, InputError
from upshot.load import load

SENDS = (
    "Send ID,uid,message_class,channel,sent_at,Treated\n"
    "s1,u1,a,push,2026-10-19T10:00:00Z,yes\n"
    "s2,u2,a,push,2026-10-19T11:00:00Z,N\n"
)


def rows(db, sql):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_file_missing_columns_names_them_all_with_its_columns_and_close_matches(tmp_path):
    src = tmp_path / "sends.csv"
    src.write_text(SENDS)
    result = run_cli("--db", str(tmp_path / "w.duckdb"), "load", "sends", str(src))
    assert result.code == EXIT_ERROR
    assert result.err == (
        f"Error: {src}: missing required column(s) user_id, decided_at for table sends; "
        "the file has Send ID, uid, message_class, channel, sent_at, Treated; perhaps "
        "--map user_id=uid --map decided_at=sent_at (or [load.columns.sends] in upshot.toml); "
        "nothing of this file was loaded\n"
    )


def test_map_on_the_command_line_and_in_the_config_load_the_same_rows(tmp_path):
    src = tmp_path / "sends.csv"
    src.write_text(SENDS)
    by_flag = tmp_path / "flag.duckdb"
    result = run_cli("--db", str(by_flag), "load", "sends", str(src), "--json",
                     "--map", "user_id=uid", "--map", "decided_at=sent_at")  # fmt: skip
    assert result.code == EXIT_OK, result.err
    assert json.loads(result.out)["totals"]["rows_accepted"] == 2
    toml = tmp_path / "upshot.toml"
    toml.write_text('[load.columns.sends]\nuser_id = "uid"\ndecided_at = "Sent At"\n')
    assert load_config(toml).load.columns == {"sends": {"user_id": "uid", "decided_at": "Sent At"}}
    by_config = tmp_path / "config.duckdb"
    result = run_cli("--config", str(toml), "--db", str(by_config), "load", "sends", str(src))
    assert result.code == EXIT_OK, result.err
    query = "SELECT send_id, user_id, decided_at, treated FROM sends ORDER BY 1"
    assert rows(by_flag, query) == rows(by_config, query)
    # yes / N read as booleans
    assert [r[3] for r in rows(by_flag, query)] == [True, False]


def test_a_map_to_a_column_the_table_lacks_is_a_usage_error(tmp_path):
    src = tmp_path / "sends.csv"
    src.write_text(SENDS)
    result = run_cli("--db", str(tmp_path / "w.duckdb"), "load", "sends", str(src),
                     "--map", "decided=sent_at")  # fmt: skip
    assert result.code == EXIT_USAGE
    assert "sends has no column 'decided' (did you mean 'decided_at'?)" in result.err
    bad = run_cli("--db", str(tmp_path / "w.duckdb"), "load", "sends", str(src), "--map", "x")
    assert bad.code == EXIT_USAGE
    assert "--map 'x', must look like decided_at=sent_at" in bad.err
    toml = tmp_path / "upshot.toml"
    toml.write_text('[load.columns.sendz]\nuser_id = "uid"\n')
    with pytest.raises(ConfigError, match=r"load\.columns\.sendz: not a table"):
        load_config(toml)


@pytest.mark.parametrize(
    ("spelling", "value"),
    [("yes", True), ("no", False), ("Y", True), ("n", False), ("1", True), ("0", False),
     ("true", True), ("FALSE", False)],
)  # fmt: skip
def test_treated_accepts_the_usual_spellings_on_load(tmp_path, spelling, value):
    src = tmp_path / "sends.csv"
    src.write_text(
        "send_id,user_id,message_class,channel,decided_at,treated\n"
        f"s1,u1,a,push,2026-10-19T10:00:00Z,{spelling}\n"
    )
    load(str(tmp_path / "w.duckdb"), "sends", [str(src)], config=Config())
    assert rows(tmp_path / "w.duckdb", "SELECT treated FROM sends") == [(value,)]


def test_treated_accepts_the_same_spellings_on_the_table_path():
    from upshot.attribution.uplift.estimate import estimate_uplift, spelled_boolean

    frame = pl.LazyFrame({"treated": ["yes", "No", " Y ", "n", "1", "0", "true", "F", "maybe"]})
    got = spelled_boolean(frame, frame.collect_schema(), "treated").collect()["treated"]
    assert got.to_list() == [True, False, True, False, True, False, True, False, None]
    # an unknown spelling is named by its row before anything is fitted
    bad = pl.DataFrame(
        {"message_class": ["a"] * 3, "treated": ["yes", "no", "maybe"], "y": [1.0, 0.0, 1.0]}
    )
    with pytest.raises(InputError, match=r"^frame row 3: treated must be 0/1 or true/false$"):
        estimate_uplift(bad, outcomes=["y"])


def test_users_replace_takes_the_snapshot_as_the_truth_and_is_journaled(tmp_path):
    db = tmp_path / "w.duckdb"
    first = tmp_path / "users1.csv"
    first.write_text("user_id,country,tier\nu1,DE,free\nu2,US,free\n")
    second = tmp_path / "users2.csv"
    second.write_text("user_id,country,tenure_days\nu1,FR,30\nu3,ES,5\n")
    load(str(db), "users", [str(first)], config=Config())
    # without --replace, known users keep their values and the new column stays NULL
    appended = tmp_path / "appended.duckdb"
    load(str(appended), "users", [str(first)], config=Config())
    load(str(appended), "users", [str(second)], config=Config())
    assert rows(appended, "SELECT country, tenure_days FROM users WHERE user_id = 'u1'") == [
        ("DE", None)
    ]
    result = run_cli("--db", str(db), "load", "users", str(second), "--replace", "--json")
    assert result.code == EXIT_OK, result.err
    (file,) = json.loads(result.out)["files"]
    assert (file["rows_accepted"], file["rows_replaced"], file["duplicates_skipped"]) == (2, 1, 0)
    table = "SELECT user_id, country, tier, tenure_days FROM users ORDER BY 1"
    expected = [("u1", "FR", "free", 30), ("u2", "US", "free", None), ("u3", "ES", None, 5)]
    assert rows(db, table) == expected
    journal = "SELECT source, mode FROM _loads ORDER BY loaded_at"
    assert [r[1] for r in rows(db, journal)] == ["append", "replace"]
    # idempotent: the same snapshot again changes nothing and is not journaled twice
    again = run_cli("--db", str(db), "load", "users", str(second), "--replace", "--json")
    assert json.loads(again.out)["files"][0]["status"] == "already_loaded"
    assert rows(db, table) == expected
    assert len(rows(db, journal)) == 2
    refused = run_cli("--db", str(db), "load", "sends", str(second), "--replace")
    assert refused.code == EXIT_USAGE
    assert "--replace is for users snapshots, not sends" in refused.err


@pytest.mark.parametrize(
    ("column", "what"), [("treated", "a decision column"), ("Conversion", "an objective")]
)
def test_a_users_column_named_like_a_decision_column_or_objective_is_refused(
    tmp_path, column, what
):
    src = tmp_path / "users.csv"
    src.write_text(f"user_id,{column}\nu1,1\n")
    db = tmp_path / "w.duckdb"
    result = run_cli("--db", str(db), "load", "users", str(src))
    assert result.code == EXIT_ERROR
    name = column.lower()
    assert result.err == (
        f"Error: {src}: users column {column!r} has the name of {what} ({name}); rename it, "
        f"e.g. --map {name}_user={column}; nothing of this file was loaded\n"
    )
    renamed = run_cli("--db", str(db), "load", "users", str(src), "--map", f"{name}_user={column}")
    assert renamed.code == EXIT_OK, renamed.err
    assert rows(db, f"SELECT {name}_user FROM users") == [(1,)]  # CSV reads 1 as a number


def test_objectives_are_taken_from_the_config_in_use(tmp_path):
    config = Config()
    config = dataclasses.replace(config, objectives={"tier": config.objectives["conversion"]})
    src = tmp_path / "users.csv"
    src.write_text("user_id,tier,conversion\nu1,free,1\n")
    with pytest.raises(InputError, match="'tier' has the name of an objective"):
        load(str(tmp_path / "w.duckdb"), "users", [str(src)], config=config)
