"""Lake mode on hostile lakes: what `upshot --lake` reads, refuses and `check` counts.

The reference for every count is `upshot load` itself: the same files loaded into a
warehouse quarantine rows by the same reasons, and keep the same good rows, as the lake
views leave in (and `check` counts out), besides a hand count of the rows planted.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from tests.conftest import run_cli
from upshot import lake
from upshot.config import Config, Lake
from upshot.errors import EXIT_ERROR, EXIT_OK, EXIT_USAGE
from upshot.store import reading

GOOD_SEND = {
    "send_id": "s0",
    "user_id": "u0",
    "message_class": "c",
    "channel": "push",
    "decided_at": "2026-10-20T10:00:00Z",
    "treated": "true",
    "propensity": "0.5",
}
# one bad row per reason `load` quarantines sends for (the first failure of each row)
DIRTY_SENDS = [
    ({"user_id": None}, "null_required", "user_id"),
    ({"decided_at": "not a time"}, "bad_timestamp", "decided_at"),
    ({"treated": "maybe"}, "bad_boolean", "treated"),
    ({"propensity": "abc"}, "bad_number", "propensity"),
    ({"channel": "pigeon"}, "unknown_channel", "channel"),
    ({"propensity": "1.5"}, "propensity_out_of_range", "propensity"),
    ({"decided_at": "1990-01-01T00:00:00Z"}, "timestamp_out_of_range", "decided_at"),
]
GOOD_OUTCOME = {
    "user_id": "u0",
    "occurred_at": "2026-10-21T10:00:00Z",
    "event": "subscription_start",
    "value": "1",
    "event_id": "e0",
}


def _write(path: Path, rows: list[dict[str, str | None]]) -> None:
    """Rows as a Parquet file of text columns (the writer's own types are the test)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    pl.DataFrame(
        {c: [row.get(c) for row in rows] for c in columns}, schema=dict.fromkeys(columns, pl.String)
    ).write_parquet(path)


def _dirty_lake(root: Path) -> Path:
    """sends: 3 good rows, one of each bad reason, one repeated send_id, in a file whose
    name has a space and quotes under a folder with a hostile partition value; outcomes:
    good rows, a non-finite value and a repeated event_id."""
    sends = [dict(GOOD_SEND, send_id=f"s{i}", user_id=f"u{i}") for i in range(3)]
    for i, (change, _reason, _col) in enumerate(DIRTY_SENDS):
        sends.append({**GOOD_SEND, "send_id": f"bad{i}", **change})
    sends.append(dict(GOOD_SEND, send_id="s1", user_id="u-dup"))  # a repeat of s1
    _write(root / "lake" / "sends" / "week=2026-W43 x'y%2Fz" / "part 0 'o\"k.parquet", sends)
    outcomes = [dict(GOOD_OUTCOME, event_id=f"e{i}", user_id=f"u{i}") for i in range(3)]
    outcomes += [dict(GOOD_OUTCOME, event_id="e9", value="inf"), dict(GOOD_OUTCOME, event_id="e0")]
    _write(root / "lake" / "outcomes" / "week=__HIVE_DEFAULT_PARTITION__" / "o.parquet", outcomes)
    return root / "lake"


def _config(root: Path, lake_dir: Path | None) -> Config:
    base = Config()
    return dataclasses.replace(
        base,
        warehouse=dataclasses.replace(base.warehouse, temp_directory=str(root / "tmp")),
        lake=Lake(path=str(lake_dir) if lake_dir else None),
    )


def test_check_counts_each_reason_as_load_quarantines_it(tmp_path):
    lake_dir = _dirty_lake(tmp_path)
    db = str(tmp_path / "lake.duckdb")
    result = run_cli("--db", db, "--lake", str(lake_dir), "check", "--json")
    # 7 of 11 sends rejected is over the 1% gate: an error, exit 3
    assert result.code == 3, result.err
    (found,) = [c for c in json.loads(result.out)["checks"] if c["name"] == "lake"]
    assert found["status"] == "error"
    sends = found["tables"]["sends"]
    assert (sends["rows"], sends["rejected"], sends["duplicates"]) == (11, 7, 1)
    by_reason = {r["reason"]: r for r in sends["reasons"]}
    assert {(r, c) for _, r, c in DIRTY_SENDS} == {(r, v["column"]) for r, v in by_reason.items()}
    assert all(v["count"] == 1 for v in by_reason.values())
    example = by_reason["bad_boolean"]["example"]
    assert example["value"] == "maybe"
    assert example["row"] == 6
    assert example["file"].endswith("part 0 'o\"k.parquet")
    outcomes = found["tables"]["outcomes"]
    assert (outcomes["rows"], outcomes["rejected"], outcomes["duplicates"]) == (5, 1, 1)
    assert outcomes["reasons"][0]["reason"] == "value_not_finite"
    assert "users" not in found["tables"]  # an optional table the lake lacks

    # the reference: `load` of the same files quarantines the same reasons, keeps the same rows
    wh = str(tmp_path / "loaded.duckdb")
    for table in ("sends", "outcomes"):
        assert run_cli("--db", wh, "load", table, str(lake_dir / table)).code != 2
    loaded = duckdb.connect(wh, read_only=True)
    quarantined = dict(
        loaded.execute(
            "SELECT reason, count(*) FROM quarantine WHERE table_name = 'sends' GROUP BY 1"
        ).fetchall()
    )
    assert quarantined == {r: v["count"] for r, v in by_reason.items()}
    want = {
        t: loaded.execute(f"SELECT * EXCLUDE (load_id) FROM {t} ORDER BY ALL").fetchall()
        for t in ("sends", "outcomes")
    }
    loaded.close()
    config = _config(tmp_path, lake_dir)
    with reading(config, db) as con:
        for table in ("sends", "outcomes"):
            got = con.execute(f"SELECT * EXCLUDE (load_id) FROM {table} ORDER BY ALL").fetchall()
            assert got == want[table], table
        # the repeat of s1 came after it: the first row is kept, as load keeps it
        assert con.execute("SELECT user_id FROM sends WHERE send_id = 's1'").fetchall() == [("u1",)]
        # a missing optional table reads as empty, with the contract's columns
        assert con.execute("SELECT count(*) FROM users").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM assignments").fetchone() == (0,)
    assert {p.name for p in lake_dir.rglob("*") if p.is_file()} == {
        "part 0 'o\"k.parquet",
        "o.parquet",
    }


def test_a_clean_lake_checks_ok_and_partition_folders_fill_missing_columns(tmp_path):
    root = tmp_path / "lake"
    sends = [{k: v for k, v in GOOD_SEND.items() if k != "channel"}]
    _write(root / "sends" / "channel=email" / "date=2026-10-20" / "a.parquet", sends)
    _write(root / "outcomes" / "o.parquet", [GOOD_OUTCOME])  # flat, no partitions
    result = run_cli("--db", str(tmp_path / "w.duckdb"), "--lake", str(root), "check", "--json")
    (found,) = [c for c in json.loads(result.out)["checks"] if c["name"] == "lake"]
    assert found["status"] == "ok", found
    with reading(_config(tmp_path, root), str(tmp_path / "w.duckdb")) as con:
        assert con.execute("SELECT channel, decided_at::VARCHAR FROM sends").fetchall() == [
            ("email", "2026-10-20 10:00:00+00")
        ]


def test_a_missing_required_table_dir_is_one_line_naming_it(tmp_path):
    root = tmp_path / "lake"
    _write(root / "sends" / "a.parquet", [GOOD_SEND])
    result = run_cli("--db", str(tmp_path / "w.duckdb"), "--lake", str(root), "check")
    assert result.code == EXIT_USAGE
    assert result.err == (
        f"Error: {root / 'outcomes'}: no such directory; a lake needs sends/ and outcomes/ "
        "(users/ and assignments/ are optional)\n"
    )
    missing = run_cli("--lake", str(tmp_path / "nowhere"), "check")
    assert missing.code == EXIT_USAGE
    assert missing.err == f"Error: --lake {tmp_path / 'nowhere'}: no such directory\n"


def test_a_required_column_missing_names_the_table_and_column(tmp_path):
    root = tmp_path / "lake"
    _write(root / "sends" / "a.parquet", [{k: v for k, v in GOOD_SEND.items() if k != "treated"}])
    _write(root / "outcomes" / "o.parquet", [GOOD_OUTCOME])
    result = run_cli("--db", str(tmp_path / "w.duckdb"), "--lake", str(root), "check")
    assert result.code == EXIT_ERROR
    assert result.err.startswith(
        f"Error: {root / 'sends'}: missing required column(s) treated for table sends"
    )
    assert result.err.count("\n") == 1
    (root / "sends" / "a.parquet").write_text("send_id,user_id\n", encoding="utf-8")
    not_parquet = run_cli("--db", str(tmp_path / "w.duckdb"), "--lake", str(root), "check")
    assert not_parquet.code == EXIT_ERROR
    assert not_parquet.err.startswith(f"Error: {root / 'sends'}: cannot read as Parquet: ")
    assert not_parquet.err.count("\n") == 1


def test_wrong_types_are_typed_like_load_or_rejected(tmp_path):
    """Native Parquet types (a BIGINT treated, a DOUBLE propensity, a naive TIMESTAMP)
    load as the contract's; an integer decided_at is no timestamp."""
    root = tmp_path / "lake"
    (root / "sends").mkdir(parents=True)
    _write(root / "outcomes" / "o.parquet", [GOOD_OUTCOME])
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT 's' || i AS send_id, 'u' AS user_id, 'c' AS message_class, "
        "'PUSH ' AS channel, CASE WHEN i = 0 THEN TIMESTAMP '2026-10-20 10:00' END AS decided_at, "
        "i AS treated, 0.25 AS propensity FROM range(2) r(i)) "
        f"TO '{root / 'sends' / 'a.parquet'}' (FORMAT parquet)"
    )
    con.execute(
        "COPY (SELECT 's9' AS send_id, 'u' AS user_id, 'c' AS message_class, 'push' AS channel, "
        "1700000000 AS decided_at, true AS treated) "
        f"TO '{root / 'sends' / 'b.parquet'}' (FORMAT parquet)"
    )
    result = run_cli("--db", str(tmp_path / "w.duckdb"), "--lake", str(root), "check", "--json")
    checks = {c["name"]: c for c in json.loads(result.out)["checks"]}
    reasons = {r["reason"]: r["count"] for r in checks["lake"]["tables"]["sends"]["reasons"]}
    # s1 has a NULL decided_at, s9 an integer one (union_by_name makes the column text)
    assert reasons == {"null_required": 1, "bad_timestamp": 1}
    assert checks["timestamps"]["count"] == 1  # s0's naive TIMESTAMP, read as UTC
    with reading(_config(tmp_path, root), str(tmp_path / "w.duckdb")) as con:
        row = con.execute("SELECT channel, treated, propensity FROM sends").fetchall()
    assert row == [("push", False, 0.25)]


def test_delta_and_iceberg_tables_need_their_extension(tmp_path):
    root = tmp_path / "lake"
    (root / "sends" / "_delta_log").mkdir(parents=True)
    _write(root / "outcomes" / "o.parquet", [GOOD_OUTCOME])
    assert lake.table_format(str(root / "sends")) == "delta"
    installed = (
        duckdb.connect()
        .execute("SELECT installed FROM duckdb_extensions() WHERE extension_name = 'delta'")
        .fetchone()
    )
    if installed and installed[0]:
        pytest.skip("the delta extension is installed here: the error path does not apply")
    result = run_cli("--db", str(tmp_path / "w.duckdb"), "--lake", str(root), "check")
    assert result.code == EXIT_ERROR
    assert "a Delta table; reading it needs DuckDB's delta extension" in result.err


def test_lake_tables_is_the_shared_resolution(tmp_path):
    root = _dirty_lake(tmp_path)
    assert lake.lake_tables(str(root)) == {
        "sends": str(root / "sends"),
        "outcomes": str(root / "outcomes"),
    }
    (root / "sends" / "_SUCCESS").write_text("")
    (root / "sends" / ".part.crc").write_text("")
    assert [Path(f).name for f in lake.files(str(root / "sends"))] == ["part 0 'o\"k.parquet"]


def test_export_refuses_to_mix_into_a_lake_unless_overwrite(tmp_path):
    root = _dirty_lake(tmp_path)
    db = str(tmp_path / "w.duckdb")
    out = tmp_path / "copy"
    first = run_cli("--db", db, "--lake", str(root), "lake", "export", str(out), "--json")
    assert first.code == EXIT_OK, first.err
    rows = {t["table"]: t["rows"] for t in json.loads(first.out)["tables"]}
    # the good rows only, deduped: 3 sends, 3 outcomes
    assert rows == {"sends": 3, "outcomes": 3, "users": 0, "assignments": 0}
    again = run_cli("--db", db, "--lake", str(root), "lake", "export", str(out))
    assert again.code == EXIT_USAGE
    assert again.err == (
        f"Error: {out / 'sends'}: already holds Parquet files; give --overwrite to replace them\n"
    )
    assert (
        run_cli("--db", db, "--lake", str(root), "lake", "export", str(out), "--overwrite").code
        == 0
    )
    assert len(lake.files(str(out / "sends"))) == 1


def test_config_path_turns_it_on_the_flag_wins_and_run_loads_nothing(tmp_path):
    from upshot.pipeline.stages import stage_load
    from upshot.store import inputs_fingerprint

    root = _dirty_lake(tmp_path)
    other = tmp_path / "other"
    _write(other / "sends" / "a.parquet", [GOOD_SEND])
    _write(other / "outcomes" / "o.parquet", [GOOD_OUTCOME])
    (tmp_path / "upshot.toml").write_text(f'[lake]\npath = "{root}"\n', encoding="utf-8")
    by_config = run_cli("--db", "w.duckdb", "check", "--json", cwd=tmp_path)
    by_flag = run_cli("--db", "w.duckdb", "--lake", str(other), "check", "--json", cwd=tmp_path)
    lakes = [json.loads(r.out)["checks"][0] for r in (by_config, by_flag)]
    assert [c["tables"]["sends"]["rows"] for c in lakes] == [11, 1]
    config = _config(tmp_path, root)
    stage = stage_load(config, str(tmp_path / "w.duckdb"))
    assert (stage.status, stage.detail) == ("skipped", f"lake mode: tables read from {root}")
    # the runs of a lake record its files, not the (empty) load journal
    with reading(config, str(tmp_path / "w.duckdb")) as con:
        first = inputs_fingerprint(con)
    _write(root / "sends" / "week=2026-W44" / "more.parquet", [GOOD_SEND])
    with reading(config, str(tmp_path / "w.duckdb")) as con:
        assert inputs_fingerprint(con) != first
    # a file beside the partition folders is read as well, as `load` of the folder reads it
    _write(root / "sends" / "stray.parquet", [dict(GOOD_SEND, send_id="stray")])
    with reading(config, str(tmp_path / "w.duckdb")) as con:
        assert con.execute("SELECT count(*) FROM sends WHERE send_id = 'stray'").fetchone() == (1,)
    with reading(_config(tmp_path, None), str(tmp_path / "w.duckdb")) as con:
        assert inputs_fingerprint(con) not in (first, None)


def test_a_folder_that_contradicts_its_file_is_a_partition_mismatch_as_in_load(tmp_path):
    """sends/channel=push/ holding a row whose own channel is email: `load` quarantines it
    (partition_mismatch); the lake leaves it out and counts it, rather than read either."""
    root = tmp_path / "lake"
    rows = [dict(GOOD_SEND, send_id="s0"), dict(GOOD_SEND, send_id="s1", channel="email")]
    _write(root / "sends" / "Channel=push" / "a.parquet", rows)
    _write(root / "outcomes" / "o.parquet", [GOOD_OUTCOME])
    result = run_cli("--db", str(tmp_path / "w.duckdb"), "--lake", str(root), "check", "--json")
    (found,) = [c for c in json.loads(result.out)["checks"] if c["name"] == "lake"]
    reasons = found["tables"]["sends"]["reasons"]
    assert [(r["reason"], r["column"], r["count"]) for r in reasons] == [
        ("partition_mismatch", "channel", 1)
    ]
    assert reasons[0]["example"]["value"] == "email"
    wh = str(tmp_path / "loaded.duckdb")
    run_cli("--db", wh, "load", "sends", str(root / "sends"))
    with duckdb.connect(wh, read_only=True) as loaded:
        assert loaded.execute("SELECT reason, raw_value FROM quarantine").fetchall() == [
            ("partition_mismatch", "email")
        ]
    with reading(_config(tmp_path, root), str(tmp_path / "w.duckdb")) as con:
        assert con.execute("SELECT send_id, channel FROM sends").fetchall() == [("s0", "push")]
