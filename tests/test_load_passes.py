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


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_only_failing_rows_are_stored_and_the_first_repeat_wins(tmp_path, monkeypatch, fmt):
    src = write(tmp_path / "sends.csv", "\n".join(lines()) + "\n")
    if fmt == "parquet":
        parquet = tmp_path / "sends.parquet"
        duckdb.execute(f"COPY (SELECT * FROM read_csv('{src}', all_varchar = true)) TO '{parquet}'")
        src.unlink()
        src = parquet
    stored: list[dict[str, int]] = []
    real = upshot.load._insert

    def spy(con: duckdb.DuckDBPyConnection, *args: object, **kwargs: object) -> int:
        # every temporary table when the good rows are about to be appended
        sql = "SELECT table_name FROM duckdb_tables() WHERE temporary"
        names = [r[0] for r in con.execute(sql).fetchall()]
        count = 'SELECT count(*) FROM temp."{}"'
        stored.append({n: int(con.execute(count.format(n)).fetchall()[0][0]) for n in names})
        return real(con, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(upshot.load, "_insert", spy)
    db = tmp_path / "w.duckdb"
    f = load(str(db), "sends", [str(src)], config=Config()).files[0]
    assert (f.rows_read, f.rows_quarantined, f.duplicates_skipped) == (ROWS + 1, 3, 1)
    assert f.rows_accepted == ROWS - 3
    # beside the target, only the 3 failing rows were kept: a Parquet file is read again
    # rather than copied; a CSV file is parsed once, into one copy (`_staged`)
    assert len(stored) == 1
    assert stored[0].pop("_bad") == 3
    if fmt == "csv":
        assert stored[0].pop("_staged") == ROWS + 1
    assert all(count == 0 for count in stored[0].values()), stored
    assert sorted((r[0], r[2]) for r in quarantine(db)) == sorted(BAD.items())
    con = duckdb.connect(str(db), read_only=True)
    kept = con.execute("SELECT message_class FROM sends WHERE send_id = 's3'").fetchall()
    assert kept == [("promo",)]  # the first occurrence, not the later one
