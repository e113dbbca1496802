"""Appending one checked file's good rows: the survey pass that counts rows, failures and
repeated keys, and the insert (or users `--replace` update) with its dedupe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from upshot.contract import Column, TableSpec
from upshot.load_checks import Checked, naive_timestamps
from upshot.sql import ident

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True, slots=True)
class Survey:
    """One aggregate pass over the checked file: rows, failing rows, naive timestamps,
    and whether a key repeats among the good rows."""

    read: int
    bad: int
    naive: int
    repeats: bool


def survey(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    mapping: dict[str, tuple[str, str]],
    views: Checked,
) -> Survey:
    """Count what the load needs in one pass. Repeated keys are looked for by their hash:
    as many distinct hashes as keyed rows proves no key repeats; fewer (a repeat, or a
    collision) is settled by an exact count of distinct keys, a pass only such files pay."""
    keys = [ident(k) for k in spec.key]
    keyed = " AND ".join(f"{k} IS NOT NULL" for k in keys)
    good = f"_fail IS NULL AND {keyed}"
    row = con.execute(
        f"SELECT count(*), count(_fail), count(*) FILTER (WHERE {good}), "
        f"count(DISTINCT hash({', '.join(keys)})) FILTER (WHERE {good}), "
        f"{naive_timestamps(spec, mapping)} FROM {views.data}"
    ).fetchall()  # not fetchone: the CSV reader writes its rejects table when drained
    read, bad, keyed_rows, hashes, naive = (int(x or 0) for x in row[0])
    repeats = False
    if hashes < keyed_rows:
        key_tuple = f"({', '.join(keys)})" if len(keys) > 1 else keys[0]
        exact = con.execute(
            f"SELECT count(*) - count(DISTINCT {key_tuple}) FROM {views.data} WHERE {good}"
        ).fetchone()
        repeats = bool(exact and exact[0])
    return Survey(read, bad, naive, repeats)


def insert(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    columns: tuple[Column, ...],
    load_id: str,
    views: Checked,
    survey: Survey,
) -> int:
    """Append the good rows whose key is new (first occurrence in the file wins), read
    from the file itself: no copy of the good rows is staged.

    Dedupe is the costly part of a load, so each step runs only when it can matter: the
    window only when the file repeats a key, the anti-join only when the table has rows;
    and the rows are tested again only if the survey found a failing one.
    """
    table = ident(spec.name)
    keys = [ident(k) for k in spec.key]
    keyed = " AND ".join(f"{k} IS NOT NULL" for k in keys)
    has_rows = con.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()
    rows = f"SELECT * FROM {views.data}" + (" WHERE _fail IS NULL" if survey.bad else "")
    if survey.repeats:
        rows = (
            f"SELECT * FROM {views.rows} WHERE _fail IS NULL QUALIFY NOT ({keyed}) OR "
            f"row_number() OVER (PARTITION BY {', '.join(keys)} ORDER BY _row) = 1"
        )
    where = ""
    if has_rows and has_rows[0]:
        same_key = " AND ".join(f"t.{k} = f.{k}" for k in keys)
        typed = ", ".join(f"{views.keys[k]} AS {ident(k)}" for k in spec.key)
        # The file's keys already in the table, by an inner join: DuckDB builds its hash
        # table on the smaller side (a day's file, not years of history) and prunes the
        # table's row groups by the file's key range, where an anti-join against the
        # table would hash all of it for every file. A bad row's key may be among them:
        # harmless, bad rows are not inserted anyway.
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _known AS SELECT DISTINCT "
            f"{', '.join(f't.{k}' for k in keys)} FROM {table} t "
            f"JOIN (SELECT {typed} FROM {views.source}) f ON {same_key}"
        )
        where = f" WHERE NOT EXISTS (SELECT 1 FROM _known t WHERE {same_key})"
    cols = ", ".join(ident(c.name) for c in columns)
    picked = ", ".join(f"f.{ident(c.name)}" for c in columns)
    sql = f"INSERT INTO {table} ({cols}, load_id) SELECT {picked}, $load_id FROM ({rows}) f{where}"
    row = con.execute(sql, {"load_id": load_id}).fetchone()
    return int(row[0]) if row else 0


def replace_users(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, columns: tuple[Column, ...], load_id: str
) -> int:  # users snapshots are small: the row-numbered view serves
    """`load users --replace`: the file's values overwrite, for the user_ids already in the
    table, every column the file holds (first row of a repeated id wins, as on append);
    columns the file lacks keep their values. New user_ids are appended after this."""
    key = ident(spec.key[0])
    sets = [f"{ident(c.name)} = f.{ident(c.name)}" for c in columns if c.name != spec.key[0]]
    sets.append("load_id = $load_id")
    row = con.execute(
        f"UPDATE {ident(spec.name)} AS t SET {', '.join(sets)} FROM (SELECT * FROM _checked "
        f"WHERE _fail IS NULL AND {key} IS NOT NULL "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY _row) = 1) AS f "
        f"WHERE t.{key} = f.{key}",
        {"load_id": load_id},
    ).fetchone()
    return int(row[0]) if row else 0
