"""A CSV or Parquet file is read once, by an insert that counts (issue 15, item 15): the rows read
and the naive timestamps come from DuckDB's profile of the insert, a repeated key found
among the rows just appended rolls the file back to the surveyed load, and every count,
quarantined row and kept row equals what the surveyed load gives."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

import upshot.load
import upshot.load_counted
from tests.test_load import GOOD, HEADER, quarantine, write
from tests.test_load_passes import journal
from upshot.config import Config, Load
from upshot.load import load

GATE = {"max_reject_rate": 1.0}  # the mixed file has 11 of 300 rows quarantined


def mixed(rows: int = 300, unsplittable: bool = True) -> list[str]:
    """Zoned and naive timestamps, failing rows of several kinds, an unsplittable record."""
    out = [HEADER]
    for i in range(1, rows + 1):
        line = GOOD.format(i=i)
        if i % 3 == 0:
            line = line.replace("10:00:00,", "10:00:00+02:00,")
        elif i % 7 == 0:
            line = line.replace("10:00:00,", "10:00:00Z,")
        if i % 50 == 0:
            line = line.replace(",push,", ",fax,")  # unknown_channel
        if i % 71 == 0:
            line = line.replace("2026-11-16 10:00:00", "not a time")  # bad_timestamp
        if i == 123 and unsplittable:
            line = "s123,u123,promo"  # too few fields: the CSV reader rejects the record
        out.append(line)
    return out


def surveyed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Force the surveyed load, as before the one-read path."""

    def survey_instead(*args: object, **kwargs: object) -> None:
        raise upshot.load_counted.NeedsSurveyError("forced")

    monkeypatch.setattr(upshot.load, "_insert_counted", survey_instead)


def outcome(db: object) -> tuple:
    with duckdb.connect(str(db), read_only=True) as con:
        table = con.execute(
            "SELECT send_id, user_id, message_class, channel, decided_at, treated, propensity "
            "FROM sends ORDER BY send_id"
        ).fetchall()
        loads = con.execute("SELECT count(DISTINCT load_id) FROM sends").fetchone()
    return journal(db), quarantine(db), table, loads


def source(tmp_path: Path, fmt: str, rows: list[str]) -> Path:
    """The rows as CSV, or as Parquet with text columns, or with typed naive timestamps."""
    src = write(tmp_path / "sends.csv", "\n".join(rows) + "\n")
    if fmt == "csv":
        return src
    parquet = tmp_path / "sends.parquet"
    typed = "* REPLACE (TRY_CAST(decided_at AS TIMESTAMP) AS decided_at)" if "typed" in fmt else "*"
    with duckdb.connect() as con:  # through a table: DuckDB would push the cast into the reader
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{src}', all_varchar = true)")
        con.execute(f"COPY (SELECT {typed} FROM t) TO '{parquet}'")
    src.unlink()
    return parquet


@pytest.mark.parametrize("tz", ["UTC", "Europe/Paris"])
@pytest.mark.parametrize("fmt", ["csv", "parquet", "parquet typed"])
def test_one_read_counts_equal_the_surveyed_load(tmp_path, monkeypatch, tz, fmt):
    src = source(tmp_path, fmt, mixed(unsplittable=fmt == "csv"))
    config = Config(load=Load(naive_timezone=tz))

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("a file without repeated keys is not surveyed")

    with monkeypatch.context() as m:
        m.setattr(upshot.load, "_survey", never)
        fast = load(str(tmp_path / "a.duckdb"), "sends", [str(src)], config=config, **GATE)
    surveyed(monkeypatch)
    slow = load(str(tmp_path / "b.duckdb"), "sends", [str(src)], config=config, **GATE)
    assert fast.files == slow.files  # every count and reason of the report
    a, b = outcome(tmp_path / "a.duckdb"), outcome(tmp_path / "b.duckdb")
    assert a == b  # journal, quarantine (row numbers, reasons, raw values), rows kept
    if fmt == "parquet typed":  # the zoned texts did not cast: only the equality holds
        assert a[0][4] > 0
        return
    # and independently of either path: 300 data rows, record 123 unsplittable in the
    # CSV, failing rows every 50th and 71st; the naive timestamps are the good rows' that
    # are neither %3 nor %7
    failing = {i for i in range(1, 301) if i % 50 == 0 or i % 71 == 0}
    good = set(range(1, 301)) - failing - ({123} if fmt == "csv" else set())
    naive = sum(1 for i in good if i % 3 and i % 7)
    assert a[0] == (300, len(good), 0, 300 - len(good), naive)
    reasons = {r[0]: r[2] for r in a[1]}
    assert reasons == {
        **dict.fromkeys(range(50, 301, 50), "unknown_channel"),
        **dict.fromkeys(range(71, 301, 71), "bad_timestamp"),
        **({123: "malformed_row"} if fmt == "csv" else {}),
    }


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_key_repeated_late_rolls_back_to_the_surveyed_load(tmp_path, monkeypatch, fmt):
    rows = mixed(unsplittable=fmt == "csv")
    rows.append(GOOD.format(i=7).replace(",promo,", ",later,"))  # s7 again, last line
    src = source(tmp_path, fmt, rows)
    calls: list[str] = []
    real = upshot.load._insert_counted

    def spy(*args: object, **kwargs: object) -> object:
        calls.append("one read")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(upshot.load, "_insert_counted", spy)
    f = load(str(tmp_path / "a.duckdb"), "sends", [str(src)], config=Config(), **GATE).files[0]
    assert calls == ["one read"]  # tried once, rolled back, then surveyed
    assert (f.rows_read, f.duplicates_skipped) == (301, 1)
    a = outcome(tmp_path / "a.duckdb")
    assert a[3] == (1,)  # one load id: nothing of the rolled-back attempt is left
    with duckdb.connect(str(tmp_path / "a.duckdb"), read_only=True) as con:
        kept = con.execute("SELECT message_class FROM sends WHERE send_id = 's7'").fetchall()
        journals = con.execute("SELECT count(*) FROM _loads").fetchone()
    assert kept == [("promo",)]  # the first occurrence wins
    assert journals == (1,)
    surveyed(monkeypatch)
    load(str(tmp_path / "b.duckdb"), "sends", [str(src)], config=Config(), **GATE)
    assert a == outcome(tmp_path / "b.duckdb")


def test_keys_already_in_the_table_are_skipped_in_one_read(tmp_path, monkeypatch):
    first = write(
        tmp_path / "a.csv", "\n".join([HEADER] + [GOOD.format(i=i) for i in range(1, 21)])
    )
    second = write(
        tmp_path / "b.csv", "\n".join([HEADER] + [GOOD.format(i=i) for i in range(11, 41)]) + "\n"
    )
    db = tmp_path / "w.duckdb"

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("no key repeats inside either file")

    monkeypatch.setattr(upshot.load, "_survey", never)
    report = load(str(db), "sends", [str(first), str(second)], config=Config())
    got = [
        (f.rows_read, f.rows_accepted, f.duplicates_skipped, f.naive_timestamps)
        for f in report.files
    ]
    assert got == [(20, 20, 0, 20), (30, 20, 10, 30)]


def test_the_profile_of_an_insert_inserts_and_counts_every_operator(tmp_path):
    """What the one-read path relies on, pinned for the installed DuckDB: `EXPLAIN (ANALYZE,
    FORMAT JSON)` of an INSERT executes it, and reports the rows each operator produced,
    with a filter kept above an UNNEST when filter pushdown is off."""
    src = write(tmp_path / "t.csv", "a,b\n" + "".join(f"{i},{i % 3}\n" for i in range(1, 5001)))
    con = duckdb.connect()
    con.execute("CREATE TABLE t (a INTEGER, b INTEGER)")
    con.execute("SET disabled_optimizers = 'filter_pushdown'")
    plan = con.execute(
        f"EXPLAIN (ANALYZE, FORMAT JSON) INSERT INTO t SELECT a, b FROM (SELECT * FROM "
        f"(SELECT unnest(range(1 + CAST(b = 0 AS INTEGER))) AS _copy, * FROM (SELECT * FROM "
        f"read_csv('{src}') WHERE a % 10 <> 0)) WHERE _copy = 0)"
    ).fetchall()
    assert con.execute("SELECT count(*), count(*) FILTER (WHERE b = 0) FROM t").fetchone() == (
        4500,
        1500,
    )
    counts = upshot.load_counted._counts(plan[0][1], flagged=True)
    assert counts == (5000, 1500)  # rows read; rows that came out twice (b = 0)
    # a scan that filtered (as Parquet's would, with filter pushdown on) counts only the
    # rows that passed: such a profile is refused, not read as the rows of the file
    profile = json.loads(plan[0][1])
    scan = next(n for n in _nodes(profile) if n.get("name") == "READ_CSV")
    scan["extra_info"]["Filters"] = "(a % 10 <> 0)"
    assert upshot.load_counted._counts(json.dumps(profile), flagged=True) is None


def _nodes(node: dict) -> list[dict]:
    found = [node] if "name" in node else []
    for child in node.get("operator", []) + node.get("children", []):
        found += _nodes(child)
    return found


def test_an_unreadable_profile_falls_back_to_the_surveyed_load(tmp_path, monkeypatch):
    src = write(tmp_path / "sends.csv", "\n".join(mixed()) + "\n")
    monkeypatch.setattr(upshot.load_counted, "_counts", lambda profile, flagged: None)
    load(str(tmp_path / "a.duckdb"), "sends", [str(src)], config=Config(), **GATE)
    monkeypatch.undo()
    load(str(tmp_path / "b.duckdb"), "sends", [str(src)], config=Config(), **GATE)
    assert outcome(tmp_path / "a.duckdb") == outcome(tmp_path / "b.duckdb")
