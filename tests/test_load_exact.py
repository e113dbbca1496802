"""`upshot load` under hostile files: exact CSV at any row, numbers that do not parse,
duplicate headers, and one bad file among many (issue 15, items 2-6)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_cli
from tests.test_load import GOOD, HEADER, checksum, quarantine, write
from upshot.config import Config, Load
from upshot.errors import EXIT_ERROR, DataQualityError, InputError
from upshot.load import load


def test_csv_quoting_late_in_a_large_file_loads_every_row(tmp_path):
    # DuckDB sniffs the dialect from ~20,000 rows: quotes that first appear later must
    # still be quotes, and a quoted newline must not split a record or shift row numbers
    lines = [HEADER]
    for i in range(1, 100_001):
        klass = "promo"
        if i > 20_000 and i % 1000 == 0:
            klass = '"promo, big"'
        elif i > 20_000 and i % 1000 == 500:
            klass = '"promo\nsecond line"'
        channel = "fax" if i == 60_000 else "push"  # genuinely bad: an unknown channel
        line = f"s{i},u{i},{klass},{channel},2026-11-16 10:00:00,true,0.5,false"
        lines.append(line + (",extra" if i == 90_000 else ""))  # genuinely bad: 9 fields
    src = write(tmp_path / "sends.csv", "\n".join(lines) + "\n")
    db = tmp_path / "w.duckdb"
    report = load(str(db), "sends", [str(src)], config=Config())
    f = report.files[0]
    assert (f.rows_read, f.rows_accepted, f.rows_quarantined) == (100_000, 99_998, 2)
    assert [(r[0], r[2]) for r in quarantine(db)] == [
        (60_000, "unknown_channel"),
        (90_000, "malformed_row"),
    ]
    with duckdb.connect(str(db), read_only=True) as con:
        got = dict(
            con.execute(
                "SELECT send_id, message_class FROM sends WHERE send_id IN "
                "('s21000', 's21500', 's21501', 's99999')"
            ).fetchall()
        )
    assert got == {
        "s21000": "promo, big",
        "s21500": "promo\nsecond line",
        "s21501": "promo",
        "s99999": "promo",
    }


def test_users_covariate_types_come_from_every_row(tmp_path):
    # a column of numbers with one word at row 40,000 is text, not a malformed row
    lines = ["user_id,age"] + [f"u{i},{i % 90}" for i in range(1, 50_001)]
    lines[40_000] = "u40000,unknown"
    src = write(tmp_path / "users.csv", "\n".join(lines) + "\n")
    db = tmp_path / "w.duckdb"
    report = load(str(db), "users", [str(src)], config=Config())
    assert (report.files[0].rows_accepted, report.files[0].rows_quarantined) == (50_000, 0)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT age FROM users WHERE user_id = 'u40000'").fetchone() == (
            "unknown",
        )


def test_users_dates_whose_day_and_month_cannot_be_told_apart_are_refused(tmp_path):
    # DuckDB reads 05/06/2026 as 5 June; a month/day file would load with its days and
    # months swapped, and the covariate would be silently wrong. With no day above 12 the
    # order cannot be known: the file is refused, naming the column, nothing loaded.
    db = tmp_path / "w.duckdb"
    ambiguous = write(
        tmp_path / "a.csv", "user_id,signup,age\nu1,05/06/2026,30\nu2,11/12/2025,41\n"
    )
    with pytest.raises(InputError, match=r"a\.csv: column 'signup' holds dates such as 05/06"):
        load(str(db), "users", [str(ambiguous)], config=Config())
    result = run_cli("--db", str(db), "load", "users", str(ambiguous))
    assert result.code == EXIT_ERROR
    assert "column 'signup'" in result.err
    assert "nothing of this file was loaded" in result.err
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM users").fetchone() == (0,)
    # a day above 12 in any row tells the order (day/month here); ISO dates are never in doubt
    told = write(tmp_path / "b.csv", "user_id,signup\nu1,05/06/2026\nu2,25/08/2026\n")
    iso = write(tmp_path / "c.csv", "user_id,joined\nu3,2026-05-06\n")
    load(str(db), "users", [str(told), str(iso)], config=Config())
    with duckdb.connect(str(db), read_only=True) as con:
        got = con.execute(
            "SELECT user_id, CAST(signup AS VARCHAR), CAST(joined AS VARCHAR) FROM users ORDER BY 1"
        ).fetchall()
    assert got == [
        ("u1", "2026-06-05", None),
        ("u2", "2026-08-25", None),
        ("u3", None, "2026-05-06"),
    ]


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_a_value_that_is_not_a_number_is_quarantined_not_one(tmp_path, fmt):
    rows = [
        ("u1", "2026-11-16T10:00:00Z", "buy", "abc"),
        ("u2", "2026-11-16T10:00:00Z", "buy", ""),  # empty: the documented default of 1
        ("u3", "2026-11-16T10:00:00Z", "buy", "2.5"),
    ]
    if fmt == "csv":
        text = "user_id,occurred_at,event,value\n" + "\n".join(",".join(r) for r in rows)
    else:
        keys = ("user_id", "occurred_at", "event", "value")
        text = "\n".join(json.dumps(dict(zip(keys, r, strict=True))) for r in rows)
    src = write(tmp_path / f"outcomes.{fmt}", text + "\n")
    db = tmp_path / "w.duckdb"
    with pytest.raises(DataQualityError):
        load(str(db), "outcomes", [str(src)], config=Config())
    assert quarantine(db) == [(1, "value", "bad_number", "abc")]
    with duckdb.connect(str(db), read_only=True) as con:
        got = con.execute("SELECT user_id, value FROM outcomes ORDER BY 1").fetchall()
    assert got == [("u2", 1.0), ("u3", 2.5)]


def test_a_duplicate_header_column_fails_the_file_naming_it(tmp_path):
    src = write(
        tmp_path / "sends.csv",
        HEADER.replace("user_id", "user_id,user_id") + "\n"
        "s1,u1,u9,promo,push,2026-11-16 10:00:00,true,0.5,false\n",
    )
    db = tmp_path / "w.duckdb"
    with pytest.raises(InputError, match=r"sends\.csv: column 'user_id' appears twice"):
        load(str(db), "sends", [str(src)], config=Config())
    assert checksum(db, "sends")[0] == 0


def test_one_bad_file_in_a_batch_does_not_stop_the_others(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder / "a.csv", HEADER + "\n" + GOOD.format(i=1) + "\n")
    write(folder / "b.csv", "send_id,user_id\ns2,u2\n")  # no required columns
    write(folder / "c.csv", HEADER + "\n" + GOOD.format(i=3) + "\n")
    db = tmp_path / "w.duckdb"
    result = run_cli("--db", str(db), "load", "sends", str(folder), "--json")
    assert result.code == EXIT_ERROR
    document = json.loads(result.out)
    files = {Path(f["source"]).name: f for f in document["files"]}
    assert {n: f["status"] for n, f in files.items()} == {
        "a.csv": "loaded",
        "b.csv": "failed",
        "c.csv": "loaded",
    }
    assert "missing required column(s) message_class" in files["b.csv"]["error"]
    assert files["a.csv"]["error"] is None
    assert document["totals"]["files_failed"] == 1
    assert document["totals"]["rows_accepted"] == 2
    assert checksum(db, "sends")[0] == 2
    last = result.err.strip().splitlines()[-1]
    assert last.startswith("Error: ")
    assert "b.csv" in last
    table = run_cli("--db", "w2.duckdb", "load", "sends", "in", cwd=tmp_path)
    assert table.code == EXIT_ERROR
    assert "failed" in table.out
    assert "b.csv" in table.out


def test_symlinked_folders_are_followed_once_and_loops_end(tmp_path):
    data = tmp_path / "data"
    (data / "day1").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write(data / "day1" / "a.csv", HEADER + "\n" + GOOD.format(i=1) + "\n")
    write(elsewhere / "b.csv", HEADER + "\n" + GOOD.format(i=2) + "\n")
    (data / "linked").symlink_to(elsewhere, target_is_directory=True)
    (data / "day1" / "loop").symlink_to(data, target_is_directory=True)  # a cycle
    db = tmp_path / "w.duckdb"
    report = load(str(db), "sends", [str(data)], config=Config())
    assert sorted(Path(f.source).name for f in report.files) == ["a.csv", "b.csv"]
    assert checksum(db, "sends")[0] == 2


def test_a_glob_matching_only_unknown_file_types_is_a_usage_error(tmp_path):
    write(tmp_path / "notes.txt", "hello")
    write(tmp_path / "data.xlsx", "binary")
    result = run_cli("--db", str(tmp_path / "w.duckdb"), "load", "sends", str(tmp_path / "*"))
    assert result.code == 2
    assert "no .parquet, .csv or .ndjson file" in result.err


def test_a_huge_field_is_quarantined_and_the_rest_of_the_file_loads(tmp_path):
    huge = "x" * 10_000_000  # 10 MB: DuckDB's own line limit (2 MB) failed the whole file
    rows = [GOOD.format(i=i) for i in range(1, 8)]
    rows[0] = rows[0].replace("promo", huge)
    rows[4] = rows[4].replace("u5", huge)
    src = write(tmp_path / "sends.csv", "\n".join([HEADER, *rows]) + "\n")
    db = tmp_path / "w.duckdb"
    with pytest.raises(DataQualityError) as caught:
        load(str(db), "sends", [str(src)], config=Config())
    assert caught.value.report.files[0].rows_accepted == 5
    got = quarantine(db)
    assert [(r[0], r[1], r[2]) for r in got] == [
        (1, "message_class", "field_too_large"),
        (5, "user_id", "field_too_large"),
    ]
    assert all(len(r[3]) < 2000 for r in got)  # the quarantine keeps a prefix, not 10 MB
    # the limit is configurable
    row = GOOD.format(i=9).replace("promo", "p" * 1500)
    small = write(tmp_path / "small.csv", HEADER + "\n" + row + "\n")
    loose = load(str(tmp_path / "w2.duckdb"), "sends", [str(small)], config=Config())
    assert loose.files[0].rows_accepted == 1
    strict = Config(load=Load(max_field_size="1KB"))
    with pytest.raises(DataQualityError) as tight:
        load(str(tmp_path / "w3.duckdb"), "sends", [str(small)], config=strict)
    assert tight.value.report.reasons == {"field_too_large": 1}


def test_timestamps_outside_a_sane_range_are_quarantined(tmp_path):
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    stamps = [
        "1999-12-31 23:59:59",  # before 2000
        (now + timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S"),  # 2 days ahead
        (now + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S"),  # clock skew: fine
        "2000-01-01 00:00:00",
    ]
    rows = [f"s{i},u{i},promo,push,{t},true,0.5,false" for i, t in enumerate(stamps, 1)]
    src = write(tmp_path / "sends.csv", "\n".join([HEADER, *rows]) + "\n")
    db = tmp_path / "w.duckdb"
    with pytest.raises(DataQualityError):
        load(str(db), "sends", [str(src)], config=Config())
    assert [(r[0], r[1], r[2]) for r in quarantine(db)] == [
        (1, "decided_at", "timestamp_out_of_range"),
        (2, "decided_at", "timestamp_out_of_range"),
    ]
    wide = Config(load=Load(earliest_timestamp="1990-01-01", max_future="3d"))
    report = load(str(tmp_path / "w2.duckdb"), "sends", [str(src)], config=wide)
    assert report.files[0].rows_accepted == 4
