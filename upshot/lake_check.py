"""`upshot check` in lake mode: what `load` would reject or dedupe, counted in place.

A lake is not ours to rewrite, so the rows `load` would quarantine are counted by table
and reason (with the file and row of a first example) over the `_lake_<table>` views of
`upshot.lake`, which carry each row's first failure from `load_checks.validating`; the
passes downstream read the views without those rows. A repeated key is a `duplicate`
(its first row is kept, as `load` keeps it). Over `load.max_reject_rate` of a table's rows
rejected is an error, as the same file would fail `load`'s gate; fewer is a warning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from upshot import contract, lake
from upshot.engines import on_engine, rows_of
from upshot.finding import Finding
from upshot.load_checks import naive_timestamps
from upshot.sql import ident

if TYPE_CHECKING:
    import duckdb

    from upshot.config import Config
    from upshot.engines import Engine
    from upshot.engines.spark import SparkEngine

    Con = duckdb.DuckDBPyConnection | Engine  # an engine: lake mode on Spark


def _present(con: Con, table: str) -> bool:
    if on_engine(con):  # Spark: the view exists when the lake has the table's files
        return bool(cast("SparkEngine", con).session.catalog.tableExists(f"_lake_{table}"))
    row = (
        cast("duckdb.DuckDBPyConnection", con)
        .execute(
            "SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = ?",
            [f"_lake_{table}"],
        )
        .fetchone()
    )
    return bool(row and row[0])


def table_counts(con: Con, table: str) -> dict[str, Any]:
    """rows, rejected, duplicates and `reasons` [{reason, column, count, example}] of one
    lake table; `example` is the first bad row's {file, row (from 1), value}. `con`: a
    DuckDB connection or the Spark engine (the same statements, transpiled)."""
    spec = contract.TABLES[table]
    view = ident(f"_lake_{table}")
    keys = [ident(k) for k in spec.key]
    # a struct, not a row value: both engines count and order it field by field
    key = "{" + ", ".join(f"'k{i}': {k}" for i, k in enumerate(keys)) + "}"
    keyed = " AND ".join(f"{k} IS NOT NULL" for k in keys)
    found = rows_of(
        con,
        f"SELECT count(*) AS n, count(_fail) AS bad, count(*) FILTER (WHERE _fail IS NULL AND "
        f"{keyed}) - count(DISTINCT {key}) FILTER (WHERE _fail IS NULL AND {keyed}) AS dup "
        f"FROM {view}",
        None,
        name=f"lake check {table}",
    )
    row = tuple(found[0].values()) if found else (0, 0, 0)
    rows, rejected, duplicates = (int(x or 0) for x in row)
    examples = rows_of(
        con,
        f"SELECT _fail.reason AS reason, _fail.column AS col, count(*) AS n, "
        f"arg_min({{'file': _file, 'row': _row + 1, 'value': _fail.raw}}, "
        f"{{'f': _file, 'r': _row}}) AS example FROM {view} "
        "WHERE _fail IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
        None,
        name=f"lake check {table} reasons",
    )
    reasons = [
        {
            "reason": r["reason"],
            "column": r["col"],
            "count": int(r["n"]),
            "example": dict(r["example"]),
        }
        for r in examples
    ]
    return {"rows": rows, "rejected": rejected, "duplicates": duplicates, "reasons": reasons}


def contract_finding(con: Con, config: Config) -> Finding:
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


def naive_finding(con: Con, config: Config) -> Finding:
    """Timestamps without a zone among the lake's good rows (read in load.naive_timezone):
    the lake's version of the check that reads the load journal for a warehouse."""
    import duckdb

    zone = config.load.naive_timezone
    root = lake.lake_tables(config.lake.path or "")
    per_table = {}
    # the column map from the files' footers: DuckDB reads them on the driver for Spark too
    footers = duckdb.connect() if on_engine(con) else cast("duckdb.DuckDBPyConnection", con)
    try:
        for table in lake.TABLES:
            if table not in root or not _present(con, table):
                continue
            src = lake.source(footers, config, table, root[table])
            if src is None:
                continue
            sql = naive_timestamps(contract.TABLES[table], src.mapping)
            found = rows_of(
                con, f"SELECT {sql} AS n FROM {ident(f'_lake_{table}')}", None, name="lake naive"
            )
            if found and found[0]["n"]:
                per_table[table] = int(found[0]["n"])
    finally:
        if footers is not con:
            footers.close()
    total = sum(per_table.values())
    facts = {"count": total, "tables": per_table, "naive_timezone": zone}
    if not total:
        return Finding("timestamps", "ok", "every timestamp in the lake carries its zone", facts)
    said = (
        f"{total:,} timestamps without a zone ({', '.join(per_table)}) are read as {zone}; "
        "if they are local times, set load.naive_timezone"
    )
    return Finding("timestamps", "warning" if zone == "UTC" else "ok", said, facts)
