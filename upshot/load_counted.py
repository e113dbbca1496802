"""A CSV or Parquet file's load in one read: the insert itself counts the rows read and
the naive timestamps.

The light pass over a file (`load_append.survey`) exists to count its rows and naive
timestamps and to prove that no key repeats before the insert; for a CSV file it parses
the whole file a second time. Here the insert runs first, under `EXPLAIN ANALYZE`, which
executes it and reports how many rows each operator produced: the scan's count is the
rows read (a scan that filtered is refused), and the naive timestamps are counted by an
UNNEST that emits each good row once plus once more per naive timestamp, right below a
filter that keeps the first copy (the difference of the two counts). Then the rows just
inserted are looked up by their load id for a repeated key; if one repeats, or the plan
does not have the expected shape, `NeedsSurveyError` is raised and the caller rolls the
file's transaction back and loads it the surveyed way. Only files with a repeated key pay
for both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from upshot.contract import Column, TableSpec
from upshot.load_append import appending, key_repeats, whole_rows
from upshot.load_checks import Checked, naive_flags
from upshot.sql import ident

if TYPE_CHECKING:
    import duckdb

COPY = "_copy"
# the operators of an insert's profile: the file's scan, the row-doubling UNNEST and the
# filter that keeps each row's first copy (found by the column it tests)
SCANS = ("READ_CSV", "READ_CSV_AUTO", "READ_PARQUET")


class NeedsSurveyError(Exception):
    """The one-read load cannot vouch for its result: roll the file back, survey it."""


@dataclass(frozen=True, slots=True)
class Counted:
    """What the insert counted: the rows appended, the rows the scan produced (records
    the CSV reader rejected aside), and the naive timestamps among the good rows."""

    accepted: int
    read: int
    naive: int


def insert(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    columns: tuple[Column, ...],
    load_id: str,
    views: Checked,
    mapping: dict[str, tuple[str, str]],
) -> Counted:
    """Append the file's good rows whose key the table lacks, assuming that no key repeats
    in the file, and count; raise `NeedsSurveyError` (inside the file's transaction) when a key does
    repeat among the rows appended or the profile cannot be read."""
    rows = f"SELECT * FROM {views.data} WHERE _ok"
    flags = naive_flags(spec, mapping)
    if flags:
        # a row with n naive timestamps comes out n + 1 times; the filter above keeps one.
        # One column (every table's case) takes constant lists: cheaper than `range`
        # (measured at 2M rows: 0.1 s of CPU against 0.25)
        extra = " + ".join(f"coalesce(CAST({f} AS INTEGER), 0)" for f in flags)
        copies = (
            f"CASE WHEN {flags[0]} THEN [0, 1] ELSE [0] END"
            if len(flags) == 1
            else f"range(1 + {extra})"
        )
        rows = f"SELECT * FROM (SELECT unnest({copies}) AS {COPY}, * FROM ({rows}))"
        rows += f" WHERE {COPY} = 0"
    sql = appending(con, spec, columns, views, rows)
    with whole_rows(con):  # also keeps the filter above the UNNEST it counts against
        plan = con.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", {"load_id": load_id})
        found = plan.fetchall()
    counts = _counts(found[0][1] if found else "{}", bool(flags))
    if counts is None:
        raise NeedsSurveyError("the insert's profile does not show its counts")
    read, naive = counts
    accepted = _appended(con, spec, load_id)
    return Counted(accepted, read, naive)


def _appended(con: duckdb.DuckDBPyConnection, spec: TableSpec, load_id: str) -> int:
    """The rows this load appended; `NeedsSurveyError` if a key repeats among them. As many distinct
    hashes as keyed rows proves that none does; fewer is settled by an exact count."""
    table = ident(spec.name)
    keys = [ident(k) for k in spec.key]
    keyed = " AND ".join(f"{k} IS NOT NULL" for k in keys)
    mine = f"FROM {table} WHERE load_id = $load_id"
    row = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {keyed}), "
        f"count(DISTINCT hash({', '.join(keys)})) FILTER (WHERE {keyed}) {mine}",
        {"load_id": load_id},
    ).fetchone()
    appended, keyed_rows, hashes = (int(x or 0) for x in (row or (0, 0, 0)))
    if hashes < keyed_rows and key_repeats(con, spec, mine, {"load_id": load_id}):
        raise NeedsSurveyError("a key repeats in the file")
    return appended


def _counts(profile: str, flagged: bool) -> tuple[int, int] | None:
    """(rows the file's scan produced, naive timestamps) from the JSON profile of the insert,
    or None unless it holds exactly one scan, filtering nothing (and, if `flagged`, one
    UNNEST and one filter on its copies), with their row counts."""
    nodes = list(_walk(json.loads(profile)))
    scans = [n for n in nodes if n.get("name") in SCANS]
    unnests = [n for n in nodes if n.get("name") == "UNNEST"]
    filters = [
        n
        for n in nodes
        if n.get("name") == "FILTER" and COPY in str(n.get("extra_info", {}).get("Expression"))
    ]
    if len(scans) != 1 or (len(unnests), len(filters)) != ((1, 1) if flagged else (0, 0)):
        return None
    if any("filter" in key.lower() for key in scans[0].get("extra_info", {})):
        return None  # a filter pushed into the scan: it counts the rows that passed only
    read = _rows(scans[0])
    if not flagged:
        return None if read is None else (read, 0)
    doubled, kept = _rows(unnests[0]), _rows(filters[0])
    if read is None or doubled is None or kept is None or doubled < kept:
        return None
    return read, doubled - kept


def _rows(node: dict[str, Any]) -> int | None:
    """An operator's output row count, as DuckDB 2.0's profile names it."""
    rows = node.get("intermediate_rows")
    return rows if isinstance(rows, int) else None


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "name" in node:
            yield node
        for key in ("operator", "children"):
            for child in node.get(key) or ():
                yield from _walk(child)
