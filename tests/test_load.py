"""`upshot load`: the input contract, quarantine, idempotency, time zones and atomicity."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from tests.conftest import run_cli, run_subprocess
from upshot.config import Config, Load
from upshot.errors import EXIT_DATA_QUALITY, EXIT_ERROR, DataQualityError, InputError
from upshot.load import load

HEADER = "send_id,user_id,message_class,channel,decided_at,treated,propensity,randomized"
GOOD = "s{i},u{i},promo,push,2026-11-16 10:00:00,true,0.5,false"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def sends_frame(n: int, seed: int = 0) -> pl.DataFrame:
    import numpy as np

    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "send_id": [f"s{i}" for i in range(n)],
            "user_id": [f"u{i % 97}" for i in range(n)],
            "message_class": rng.choice(["a_push", "b_email"], n).tolist(),
            "channel": rng.choice(["push", "email"], n).tolist(),
            "decided_at": pl.datetime_range(
                pl.datetime(2026, 11, 16, time_zone="UTC"),
                pl.datetime(2026, 11, 16, time_zone="UTC") + pl.duration(seconds=n - 1),
                "1s",
                eager=True,
            ),
            "treated": (rng.random(n) < 0.7).tolist(),
            "propensity": np.round(rng.uniform(0.05, 0.95, n), 6).tolist(),
            "randomized": (rng.random(n) < 0.3).tolist(),
        }
    )


def checksum(db: Path, table: str) -> tuple[int, str]:
    """Row count and a digest of the table's content, ignoring the load id."""
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            f"SELECT count(*), md5(coalesce(string_agg(t::VARCHAR, '|' ORDER BY t::VARCHAR), '')) "
            f"FROM (SELECT * EXCLUDE (load_id) FROM {table}) t"
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def quarantine(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            "SELECT row_number, column_name, reason, raw_value FROM quarantine ORDER BY row_number"
        ).fetchall()


def test_each_bad_value_is_quarantined_with_its_reason(tmp_path):
    rows = [
        GOOD.format(i=1),
        "s2,u2,promo,fax,2026-11-16 10:00:00,true,0.5,false",
        "s3,u3,promo,push,not-a-date,true,0.5,false",
        "s4,,promo,push,2026-11-16 10:00:00,true,0.5,false",
        "s5,u5,promo,push,2026-11-16 10:00:00,maybe,0.5,false",
        "s6,u6,promo,push,2026-11-16 10:00:00,true,1.5,false",
        "s7,u7,promo,push,2026-11-16 10:00:00,true,0,false",
        "s8,u8,promo,push,2026-11-16 10:00:00,true,abc,false",
        "s9,u9,promo,push,2026-11-16 10:00:00,true,0.5,false,one-field-too-many",
        GOOD.format(i=10),
    ]
    src = write(tmp_path / "sends.csv", "\n".join([HEADER, *rows]) + "\n")
    db = tmp_path / "w.duckdb"
    with pytest.raises(DataQualityError) as caught:
        load(str(db), "sends", [str(src)], config=Config())
    report = caught.value.report
    assert report.files[0].rows_accepted == 2
    assert quarantine(db) == [
        (2, "channel", "unknown_channel", "fax"),
        (3, "decided_at", "bad_timestamp", "not-a-date"),
        (4, "user_id", "null_required", None),
        (5, "treated", "bad_boolean", "maybe"),
        (6, "propensity", "propensity_out_of_range", "1.5"),
        (7, "propensity", "propensity_out_of_range", "0"),
        (8, "propensity", "bad_number", "abc"),
        (9, None, "malformed_row", rows[8]),
    ]


def test_ndjson_faults_are_quarantined_and_gzip_is_read(tmp_path):
    lines = [
        {"user_id": "u1", "occurred_at": "2026-11-16T10:00:00Z", "event": "active_day"},
        "this is not json",
        {"user_id": "u2", "occurred_at": "2026-11-16T10:00:00Z", "event": "x", "value": "inf"},
        {"user_id": "u3", "occurred_at": "2026-11-16T10:00:00Z", "event": "x", "value": "NaN"},
        {"user_id": "u4", "occurred_at": "2026-11-16T10:00:00Z", "value": 2.5},
        {"User_ID": "u5", "OccurredAt": "2026-11-16T10:00:00+05:30", "Event": "x", "Value": 3},
    ]
    text = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    src = tmp_path / "outcomes.ndjson.gz"
    src.write_bytes(gzip.compress(text.encode()))
    db = tmp_path / "w.duckdb"
    with pytest.raises(DataQualityError):
        load(str(db), "outcomes", [str(src)], config=Config())
    assert [(r[0], r[2]) for r in quarantine(db)] == [
        (2, "malformed_json"),
        (3, "value_not_finite"),
        (4, "value_not_finite"),
        (5, "null_required"),
    ]
    with duckdb.connect(str(db), read_only=True) as con:
        got = con.execute(
            "SELECT user_id, value, strftime(occurred_at, '%H:%M') FROM outcomes ORDER BY 1"
        ).fetchall()
    # value defaults to 1; the +05:30 offset lands at 04:30 UTC
    assert got == [("u1", 1.0, "10:00"), ("u5", 3.0, "04:30")]


def test_missing_required_column_fails_the_file_and_loads_nothing(tmp_path):
    src = write(tmp_path / "sends.csv", "send_id,user_id,message_class,channel,decided_at\n")
    db = tmp_path / "w.duckdb"
    with pytest.raises(InputError, match=r"sends\.csv: missing required column\(s\) treated for"):
        load(str(db), "sends", [str(src)], config=Config())
    result = run_cli("--db", str(db), "load", "sends", str(src))
    assert result.code == EXIT_ERROR
    assert result.err.strip().splitlines()[-1].startswith("Error: ")
    assert "missing required column(s) treated for table sends" in result.err
    assert checksum(db, "sends")[0] == 0
    assert checksum(db, "_loads")[0] == 0


def test_csv_and_parquet_load_identically(tmp_path):
    frame = sends_frame(500)
    frame.write_parquet(tmp_path / "sends.parquet")
    frame.with_columns(pl.col("decided_at").dt.strftime("%Y-%m-%dT%H:%M:%S%z")).write_csv(
        tmp_path / "sends.csv"
    )
    for name in ("sends.parquet", "sends.csv"):
        load(str(tmp_path / f"{name}.duckdb"), "sends", [str(tmp_path / name)], config=Config())
    assert checksum(tmp_path / "sends.parquet.duckdb", "sends") == checksum(
        tmp_path / "sends.csv.duckdb", "sends"
    )
    assert checksum(tmp_path / "sends.csv.duckdb", "sends")[0] == 500


def test_loading_twice_or_renamed_changes_nothing(tmp_path):
    sends_frame(300).write_parquet(tmp_path / "a.parquet")
    db = tmp_path / "w.duckdb"
    first = load(str(db), "sends", [str(tmp_path / "a.parquet")], config=Config())
    before = checksum(db, "sends")
    again = load(str(db), "sends", [str(tmp_path / "a.parquet")], config=Config())
    shutil.copy(tmp_path / "a.parquet", tmp_path / "renamed.parquet")
    renamed = load(str(db), "sends", [str(tmp_path / "renamed.parquet")], config=Config())
    assert first.files[0].rows_accepted == 300
    assert again.files[0].status == renamed.files[0].status == "already_loaded"
    assert checksum(db, "sends") == before


def test_rows_seen_before_are_skipped_and_counted(tmp_path):
    frame = sends_frame(200)
    frame.head(150).write_parquet(tmp_path / "a.parquet")
    # overlapping file: 100 rows already loaded, 50 new, and one duplicate inside the file
    pl.concat([frame.slice(50, 150), frame.slice(199, 1)]).write_parquet(tmp_path / "b.parquet")
    db = tmp_path / "w.duckdb"
    load(str(db), "sends", [str(tmp_path / "a.parquet")], config=Config())
    report = load(str(db), "sends", [str(tmp_path / "b.parquet")], config=Config())
    f = report.files[0]
    assert (f.rows_read, f.rows_accepted, f.duplicates_skipped) == (151, 50, 101)
    assert checksum(db, "sends")[0] == 200


def test_naive_timestamps_follow_the_configured_zone(tmp_path):
    src = write(tmp_path / "s.csv", HEADER + "\n" + GOOD.format(i=1) + "\n")
    db = tmp_path / "w.duckdb"
    config = Config(load=Load(naive_timezone="Asia/Kolkata"))
    load(str(db), "sends", [str(src)], config=config)
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute("SELECT strftime(decided_at, '%H:%M') FROM sends").fetchone()
    assert row == ("04:30",)


def test_date_only_values_are_days_in_the_configured_zone_not_offsets(tmp_path):
    # a column mixing zoned and date-only values is read as text; "2026-11-16" must be
    # midnight in the configured zone, not 16:00 on the 16th taken as an offset of -16
    rows = [
        GOOD.format(i=1).replace("2026-11-16 10:00:00", "2026-11-16"),
        GOOD.format(i=2).replace("2026-11-16 10:00:00", "2026-11-16T10:00:00+02:00"),
    ]
    src = write(tmp_path / "s.csv", "\n".join([HEADER, *rows]) + "\n")
    db = tmp_path / "w.duckdb"
    load(str(db), "sends", [str(src)], config=Config(load=Load(naive_timezone="Asia/Kolkata")))
    with duckdb.connect(str(db), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        got = con.execute(
            "SELECT send_id, strftime(decided_at, '%Y-%m-%d %H:%M') FROM sends ORDER BY 1"
        ).fetchall()
        naive = con.execute("SELECT sum(naive_timestamps) FROM _loads").fetchone()
    assert got == [("s1", "2026-11-15 18:30"), ("s2", "2026-11-16 08:00")]
    assert naive == (1,)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris"])
def test_a_named_zone_is_honoured_and_trailing_text_is_not_dropped(tmp_path, zone):
    """DuckDB's TIMESTAMP cast ignores whatever follows the time ("10:00 PM" is 10:00,
    "10:00 America/New_York" 10:00 in the naive zone): named zones must convert, and a
    value with text it cannot read must be quarantined, whatever load.naive_timezone."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    values = {
        "s1": "2026-11-16 10:00:00 America/New_York",
        "s2": "2026-11-16T10:00:00 Asia/Kolkata",
        "s3": "2026-11-16 10:00:00 CET",
        "s4": "2026-11-16 10:00:00",
        "s5": "2026-11-16 10:00:00.250+05:30",
        "s6": "2026-11-16 10:00:00 PM",
        "s7": "2026-11-16 10:00:00 Not/AZone",
        "s8": "2026/11/16 10:00",  # naive too: DuckDB reads slashes as dashes
    }
    rows = [
        GOOD.format(i=i + 1).replace("2026-11-16 10:00:00", v)
        for i, v in enumerate(values.values())
    ]
    src = write(tmp_path / "s.csv", "\n".join([HEADER, *rows]) + "\n")
    db = tmp_path / "w.duckdb"
    with pytest.raises(DataQualityError) as caught:  # 2 of 8 rows: over the reject gate
        load(str(db), "sends", [str(src)], config=Config(load=Load(naive_timezone=zone)))
    # the instants by Python's zoneinfo (independent of DuckDB's ICU)
    at = datetime(2026, 11, 16, 10, 0)
    want = {
        "s1": at.replace(tzinfo=ZoneInfo("America/New_York")),
        "s2": at.replace(tzinfo=ZoneInfo("Asia/Kolkata")),
        "s3": at.replace(tzinfo=ZoneInfo("CET")),
        "s4": at.replace(tzinfo=ZoneInfo(zone)),
        "s5": datetime.fromisoformat("2026-11-16T10:00:00.250+05:30"),
        "s8": at.replace(tzinfo=ZoneInfo(zone)),
    }
    with duckdb.connect(str(db), read_only=True) as con:
        got = dict(con.execute("SELECT send_id, epoch_us(decided_at) FROM sends").fetchall())
        naive = con.execute("SELECT sum(naive_timestamps) FROM _loads").fetchone()
    assert got == {k: round(v.timestamp() * 1e6) for k, v in want.items()}
    assert naive == (2,)  # s4 and s8 only: a named zone is a zone
    assert caught.value.report.files[0].rows_accepted == 6
    assert quarantine(db) == [
        (6, "decided_at", "bad_timestamp", values["s6"]),
        (7, "decided_at", "bad_timestamp", values["s7"]),
    ]


def test_reject_gate_loads_good_rows_and_exits_3(tmp_path):
    rows = [GOOD.format(i=i) for i in range(98)] + ["x1,u,promo,fax,2026-11-16,true,0.5,false"]
    src = write(tmp_path / "s.csv", "\n".join([HEADER, *rows]) + "\n")
    db = tmp_path / "w.duckdb"
    result = run_cli("--db", str(db), "load", "sends", str(src), "--json")
    assert result.code == EXIT_DATA_QUALITY
    document = json.loads(result.out)
    assert document["totals"]["rows_accepted"] == 98
    assert document["gate_exceeded"] == [str(src)]
    assert "over the reject gate" in result.err
    # a looser gate passes the same kind of file
    other = [r.replace(",u", ",v", 1).replace("s", "t", 1) for r in rows]
    src2 = write(tmp_path / "s2.csv", "\n".join([HEADER, *other]) + "\n")
    assert (
        run_cli("--db", str(db), "load", "sends", str(src2), "--max-reject-rate", "0.05").code == 0
    )


def test_users_keep_every_covariate_and_check_types_across_files(tmp_path):
    db = tmp_path / "w.duckdb"
    write(tmp_path / "u1.csv", "user_id,Country,tenure_days\nu1,US,10\nu2,IN,400\n")
    write(tmp_path / "u2.csv", "user_id,tenure_days,platform\nu3,abc,ios\nu4,7,web\n")
    load(str(db), "users", [str(tmp_path / "u1.csv")], config=Config())
    with pytest.raises(DataQualityError):
        load(str(db), "users", [str(tmp_path / "u2.csv")], config=Config())
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT user_id, country, tenure_days, platform FROM users ORDER BY 1"
        ).fetchall()
    assert rows == [("u1", "US", 10, None), ("u2", "IN", 400, None), ("u4", None, 7, "web")]
    assert [(r[1], r[2]) for r in quarantine(db)] == [("tenure_days", "bad_number")]


def test_directories_and_globs_find_hive_partitions(tmp_path):
    frame = sends_frame(120)
    for day, part in enumerate(frame.iter_slices(40)):
        folder = tmp_path / "sends" / f"date=2026-11-1{day}"
        folder.mkdir(parents=True)
        part.write_parquet(folder / "part-0.parquet")
    db = tmp_path / "w.duckdb"
    report = load(str(db), "sends", [str(tmp_path / "sends")], config=Config())
    assert len(report.files) == 3
    assert checksum(db, "sends")[0] == 120
    glob_report = load(str(db), "sends", [str(tmp_path / "sends/*/*.parquet")], config=Config())
    assert {f.status for f in glob_report.files} == {"already_loaded"}
    assert run_cli("--db", str(db), "load", "sends", str(tmp_path / "nothing*.csv")).code == 2


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/Los_Angeles"])
def test_results_do_not_depend_on_the_machine_time_zone(tmp_path, zone):
    src = write(
        tmp_path / "s.csv",
        "\n".join(
            [
                HEADER,
                GOOD.format(i=1),
                "s2,u2,promo,push,2026-11-16T23:30:00-08:00,true,0.5,false",
                "s3,u3,promo,push,2026-03-08 02:30:00,true,0.5,false",
            ]
        )
        + "\n",
    )
    db = tmp_path / "w.duckdb"
    assert run_subprocess("--db", str(db), "load", "sends", str(src), env={"TZ": zone}).code == 0
    status = run_subprocess("--db", str(db), "status", "--json", env={"TZ": zone})
    document = json.loads(status.out)
    sends = next(t for t in document["tables"] if t["table"] == "sends")
    # the same instants whatever TZ says: the earliest is 02:30 UTC, the latest 07:30 UTC next day
    assert (sends["first"], sends["last"]) == (
        "2026-03-08T02:30:00+00:00",
        "2026-11-17T07:30:00+00:00",
    )


def test_seen_partitions_are_skipped_without_reading_them(tmp_path, monkeypatch):
    import os

    import upshot.load

    folder = tmp_path / "sends"
    for day, part in enumerate(sends_frame(90).iter_slices(30)):
        (folder / f"date=2026-11-1{day}").mkdir(parents=True)
        part.write_parquet(folder / f"date=2026-11-1{day}" / "part-0.parquet")
    db = tmp_path / "w.duckdb"
    load(str(db), "sends", [str(folder)], config=Config())
    sends_frame(120).slice(90, 30).write_parquet(tmp_path / "new.parquet")
    (folder / "date=2026-11-13").mkdir()
    (tmp_path / "new.parquet").rename(folder / "date=2026-11-13" / "part-0.parquet")

    hashed: list[str] = []
    real = upshot.load.fingerprint
    monkeypatch.setattr(
        upshot.load, "fingerprint", lambda path, con: hashed.append(path) or real(path, con)
    )
    report = load(str(db), "sends", [str(folder)], config=Config())
    assert [f.status for f in report.files] == ["already_loaded"] * 3 + ["loaded"]
    assert hashed == [str(folder / "date=2026-11-13" / "part-0.parquet")]
    # a touched file is read again, and its content recognised
    touched = folder / "date=2026-11-10" / "part-0.parquet"
    os.utime(touched, ns=(1, 1))
    again = load(str(db), "sends", [str(touched)], config=Config())
    assert again.files[0].status == "already_loaded"
    assert hashed[-1] == str(touched)
    assert checksum(db, "sends")[0] == 120
