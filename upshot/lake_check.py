"""`upshot check` in lake mode: what `load` would reject or dedupe, counted in place.

A lake is not ours to rewrite, so the rows `load` would quarantine are counted by table
and reason (with the file and row of a first example) over the `_lake_<table>` views of
`upshot.lake`, which carry each row's first failure from `load_checks.validating`; the
passes downstream read the views without those rows. A repeated key is a `duplicate`
(its first row is kept, as `load` keeps it). Over `load.max_reject_rate` of a table's rows
rejected is an error, as the same file would fail `load`'s gate; fewer is a warning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from upshot import contract, lake
from upshot.finding import Finding
from upshot.load_checks import naive_timestamps
from upshot.sql import ident

if TYPE_CHECKING:
    import duckdb

    from upshot.config import Config


def _present(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = ?", [f"_lake_{table}"]
    ).fetchone()
    return bool(row and row[0])


def table_counts(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, Any]:
    """rows, rejected, duplicates and `reasons` [{reason, column, count, example}] of one
    lake table; `example` is the first bad row's {file, row (from 1), value}."""
    spec = contract.TABLES[table]
    view = ident(f"_lake_{table}")
    keys = [ident(k) for k in spec.key]
    key = f"({', '.join(keys)})" if len(keys) > 1 else keys[0]
    keyed = " AND ".join(f"{k} IS NOT NULL" for k in keys)
    row = con.execute(
        f"SELECT count(*), count(_fail), count(*) FILTER (WHERE _fail IS NULL AND {keyed}) - "
        f"count(DISTINCT {key}) FILTER (WHERE _fail IS NULL AND {keyed}) FROM {view}"
    ).fetchone()
    rows, rejected, duplicates = (int(x or 0) for x in (row or (0, 0, 0)))
    reasons = [
        {"reason": r, "column": c, "count": int(n), "example": dict(example)}
        for r, c, n, example in con.execute(
            f"SELECT _fail.reason, _fail.column, count(*), arg_min({{'file': _file, "
            f"'row': _row + 1, 'value': _fail.raw}}, (_file, _row)) FROM {view} "
            "WHERE _fail IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
    ]
    return {"rows": rows, "rejected": rejected, "duplicates": duplicates, "reasons": reasons}


def contract_finding(con: duckdb.DuckDBPyConnection, config: Config) -> Finding:
    """The `lake` finding: per table, the rows the views leave out and why."""
    tables = {t: table_counts(con, t) for t in lake.TABLES if _present(con, t)}
    gate = config.load.max_reject_rate
    over = [t for t, c in tables.items() if c["rows"] and c["rejected"] > gate * c["rows"]]
    facts = {"lake": config.lake.path, "max_reject_rate": gate, "tables": tables}
    bad = {t: c for t, c in tables.items() if c["rejected"] or c["duplicates"]}
    if not bad:
        said = f"every row of {', '.join(tables)} meets the contract"
        return Finding("lake", "ok", said, facts)
    parts = []
    for t, c in bad.items():
        why = ", ".join(f"{r['reason']} {r['count']:,}" for r in c["reasons"])
        dup = f"{c['duplicates']:,} duplicate keys" if c["duplicates"] else ""
        parts.append(f"{t}: " + "; ".join(p for p in (why, dup) if p))
    said = (
        f"rows left out of the passes ({' | '.join(parts)}); the lake is not changed, fix "
        "the writer"
    )
    if over:
        said = f"over load.max_reject_rate ({gate:.2%}) in {', '.join(over)}: " + said
    return Finding("lake", "error" if over else "warning", said, facts)


def naive_finding(con: duckdb.DuckDBPyConnection, config: Config) -> Finding:
    """Timestamps without a zone among the lake's good rows (read in load.naive_timezone):
    the lake's version of the check that reads the load journal for a warehouse."""
    zone = config.load.naive_timezone
    root = lake.lake_tables(config.lake.path or "")
    per_table = {}
    for table in lake.TABLES:
        if table not in root or not _present(con, table):
            continue
        src = lake.source(con, config, table, root[table])
        if src is None:
            continue
        sql = naive_timestamps(contract.TABLES[table], src.mapping)
        row = con.execute(f"SELECT {sql} FROM {ident(f'_lake_{table}')}").fetchone()
        if row and row[0]:
            per_table[table] = int(row[0])
    total = sum(per_table.values())
    facts = {"count": total, "tables": per_table, "naive_timezone": zone}
    if not total:
        return Finding("timestamps", "ok", "every timestamp in the lake carries its zone", facts)
    said = (
        f"{total:,} timestamps without a zone ({', '.join(per_table)}) are read as {zone}; "
        "if they are local times, set load.naive_timezone"
    )
    return Finding("timestamps", "warning" if zone == "UTC" else "ok", said, facts)
