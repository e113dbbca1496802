"""How a load reads a file (issue 15, item 15): only the failing rows are stored beside
the target table, the good rows go straight from the file; repeated keys inside a file
are found by their hash and settled exactly, first occurrence winning."""

from __future__ import annotations

import duckdb
import pytest

import upshot.load
from tests.test_load import GOOD, HEADER, quarantine, write
from upshot.config import Config
from upshot.load import load

ROWS = 500
BAD = {17: "unknown_channel", 250: "propensity_out_of_range", 499: "null_required"}


def lines() -> list[str]:
    out = [HEADER]
    for i in range(1, ROWS + 1):
        line = GOOD.format(i=i)
        if BAD.get(i) == "unknown_channel":
            line = line.replace(",push,", ",fax,")
        elif BAD.get(i) == "propensity_out_of_range":
            line = line.replace(",0.5,", ",1.5,")
        elif BAD.get(i) == "null_required":
            line = line.replace(f"s{i},", ",", 1)
        out.append(line)
    out.append(GOOD.format(i=3).replace(",promo,", ",later,"))  # a repeated key, after s3
    return out


def journal(db: object) -> tuple:
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "SELECT rows_read, rows_accepted, duplicates_skipped, rows_quarantined, "
            "naive_timestamps FROM _loads"
        ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_only_failing_rows_are_stored_and_the_first_repeat_wins(tmp_path, monkeypatch, fmt):
    src = write(tmp_path / "sends.csv", "\n".join(lines()) + "\n")
    if fmt == "parquet":
        parquet = tmp_path / "sends.parquet"
        duckdb.execute(f"COPY (SELECT * FROM read_csv('{src}', all_varchar = true)) TO '{parquet}'")
        src.unlink()
        src = parquet
    stored: list[dict[str, int]] = []
    real_insert, real_bad = upshot.load._insert, upshot.load._store_bad

    def temp_tables(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
        sql = "SELECT table_name FROM duckdb_tables() WHERE temporary"
        names = [r[0] for r in con.execute(sql).fetchall()]
        count = 'SELECT count(*) FROM temp."{}"'
        return {n: int(con.execute(count.format(n)).fetchall()[0][0]) for n in names}

    def spy_insert(con: duckdb.DuckDBPyConnection, *args: object, **kwargs: object) -> int:
        stored.append(temp_tables(con))  # when the good rows are about to be appended
        return real_insert(con, *args, **kwargs)  # type: ignore[arg-type]

    def spy_bad(con: duckdb.DuckDBPyConnection, *args: object, **kwargs: object) -> object:
        bad = real_bad(con, *args, **kwargs)  # type: ignore[arg-type]
        stored.append(temp_tables(con))
        return bad

    monkeypatch.setattr(upshot.load, "_insert", spy_insert)
    monkeypatch.setattr(upshot.load, "_store_bad", spy_bad)
    db = tmp_path / "w.duckdb"
    f = load(str(db), "sends", [str(src)], config=Config()).files[0]
    assert (f.rows_read, f.rows_quarantined, f.duplicates_skipped) == (ROWS + 1, 3, 1)
    assert f.rows_accepted == ROWS - 3
    # the good rows go straight from the file, nothing is copied before the insert (CSV is
    # parsed by it, not into a staging table); then only the 3 failing rows are stored
    assert len(stored) == 2
    assert all(count == 0 for count in stored[0].values()), stored
    assert stored[1].pop("_bad") == 3
    assert all(count == 0 for count in stored[1].values()), stored
    assert sorted((r[0], r[2]) for r in quarantine(db)) == sorted(BAD.items())
    # every timestamp of GOOD is naive: the good rows' count, the repeated row included (it
    # passed the checks), the 3 failing rows' not
    assert journal(db) == (ROWS + 1, ROWS - 3, 1, 3, ROWS + 1 - 3)
    con = duckdb.connect(str(db), read_only=True)
    kept = con.execute("SELECT message_class FROM sends WHERE send_id = 's3'").fetchall()
    assert kept == [("promo",)]  # the first occurrence, not the later one


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_clean_file_is_read_by_the_insert_alone(tmp_path, monkeypatch, fmt):
    zoned = [HEADER] + [GOOD.format(i=i).replace(":00,", ":00+02,", 1) for i in range(1, 101)]
    zoned[40] = GOOD.format(i=40)  # one naive timestamp among zoned ones
    src = write(tmp_path / "sends.csv", "\n".join(zoned) + "\n")
    if fmt == "parquet":
        parquet = tmp_path / "sends.parquet"
        duckdb.execute(f"COPY (SELECT * FROM read_csv('{src}', all_varchar = true)) TO '{parquet}'")
        src = parquet

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("a file whose rows all load is not read again for failing rows")

    monkeypatch.setattr(upshot.load, "_store_bad", never)
    db = tmp_path / "w.duckdb"
    load(str(db), "sends", [str(src)], config=Config())
    assert journal(db) == (100, 100, 0, 0, 1)
    with duckdb.connect(str(db), read_only=True) as con:
        hour = con.execute("SELECT hour(decided_at) FROM sends WHERE send_id = 's41'").fetchone()
    assert hour == (8,)  # 10:00+02 in UTC: the offset was honoured


def test_a_record_only_the_full_read_rejects_is_counted_once(tmp_path):
    """The light pass reads the key and timestamp columns only, so DuckDB does not check
    the encoding of the others; the insert does and rejects the record. It must count as
    one malformed row, not also as a row read, and its timestamp not as naive."""
    rows = [HEADER] + [GOOD.format(i=i).replace(":00,", ":00Z,", 1) for i in range(1, 11)]
    rows[3] = GOOD.format(i=3).replace(",u3,", ",u\udcff3,")  # invalid UTF-8, naive timestamp
    rows[6] = GOOD.format(i=6).replace(",push,", ",fax,")  # a failing row after it
    rows[8] = GOOD.format(i=8)  # a good naive timestamp
    src = tmp_path / "sends.csv"
    src.write_bytes(("\n".join(rows) + "\n").encode("utf-8", "surrogateescape"))
    db = tmp_path / "w.duckdb"
    f = load(str(db), "sends", [str(src)], config=Config(), max_reject_rate=1).files[0]
    assert (f.rows_read, f.rows_accepted, f.duplicates_skipped, f.rows_quarantined) == (
        10,
        8,
        0,
        2,
    )
    assert f.naive_timestamps == 1
    assert journal(db) == (10, 8, 0, 2, 1)
    # data rows 3 (the reject) and 6 (the unknown channel, numbered across the reject)
    assert [(r[0], r[2]) for r in quarantine(db)] == [(3, "malformed_row"), (6, "unknown_channel")]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_failing_row_does_not_make_a_later_good_row_a_duplicate(tmp_path, fmt):
    """The light pass sees every row's key, the failing rows' too: a failing s5 before a good
    s5 makes the hashes collide, and the exact count over the good rows must clear it."""
    rows = [HEADER] + [GOOD.format(i=i) for i in range(1, 11)]
    rows.insert(5, GOOD.format(i=5).replace(",push,", ",fax,"))  # data row 5, fails
    src = write(tmp_path / "sends.csv", "\n".join(rows) + "\n")
    if fmt == "parquet":
        parquet = tmp_path / "sends.parquet"
        duckdb.execute(f"COPY (SELECT * FROM read_csv('{src}', all_varchar = true)) TO '{parquet}'")
        src = parquet
    db = tmp_path / "w.duckdb"
    load(str(db), "sends", [str(src)], config=Config(), max_reject_rate=1)
    assert journal(db)[:4] == (11, 10, 0, 1)
    assert [(r[0], r[2]) for r in quarantine(db)] == [(5, "unknown_channel")]
    with duckdb.connect(str(db), read_only=True) as con:
        kept = con.execute("SELECT channel FROM sends WHERE send_id = 's5'").fetchall()
    assert kept == [("push",)]
