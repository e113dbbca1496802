"""`upshot load` under hostile files: exact CSV at any row, numbers that do not parse,
duplicate headers, and one bad file among many (issue 15, items 2-6)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_cli
from tests.test_load import GOOD, HEADER, checksum, quarantine, write
from upshot.config import Config
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
    assert "missing required column 'message_class'" in files["b.csv"]["error"]
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
