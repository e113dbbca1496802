"""Spark reads a lake as it is, so a pass on Spark first refuses a lake that DuckDB's lake
views would read differently.

DuckDB's views (`upshot.lake`) leave out the rows `load` would quarantine and keep the
first row of a repeated key. Spark has no such views: it would count those rows. The two
faults that change numbers most and cost one aggregate per table to find are counted here
on Spark: a NULL in a required column and a repeated key (a user twice in `users`, a send
logged twice). The other checks of `load` (timestamps out of range, unknown channels,
values that do not parse, partition folders that contradict a file) are not repeated on
Spark: `upshot --lake DIR check` runs them all on DuckDB, once per lake snapshot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from upshot import contract
from upshot.errors import DataQualityError

if TYPE_CHECKING:
    from upshot.engines.spark import SparkEngine


def faults(engine: SparkEngine) -> list[str]:
    """`table: N rows <fault>` for each table of the engine with a NULL required value or a
    repeated key; empty when the lake reads as DuckDB's views read it."""
    found = []
    for table in engine.tables:
        spec = contract.TABLES.get(table)
        if spec is None:
            continue
        names = {name.lower(): name for name, _ in engine.table_columns(table)}
        parts = [
            f"sum(CASE WHEN {_tick(names[c])} IS NULL THEN 1 ELSE 0 END) AS {_tick('null ' + c)}"
            for c in spec.required
            if c in names
        ]
        keys = [_tick(names[k]) for k in spec.key if k in names]
        if keys:
            present = " AND ".join(f"{k} IS NOT NULL" for k in keys)
            # rows with a NULL key are not deduplicated, by `load` nor by the views
            parts.append(
                f"sum(CASE WHEN {present} THEN 1 ELSE 0 END) - count(DISTINCT {', '.join(keys)})"
                " AS `repeated key`"
            )
        if not parts:
            continue
        row = engine.session.sql(f"SELECT {', '.join(parts)} FROM {_tick(table)}").first()
        for fault, count in (row.asDict() if row is not None else {}).items():
            if count:
                found.append(f"{table}: {int(count):,} rows with a {fault}")
    return found


def _tick(name: str) -> str:
    """A Spark SQL identifier (Spark reads double quotes as a string)."""
    return "`" + name.replace("`", "``") + "`"


def refuse_dirty_lake(engine: SparkEngine, lake: str) -> None:
    """DataQualityError (exit 3) naming the first fault when the lake is not clean."""
    found = faults(engine)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise DataQualityError(
            f"{lake}: {found[0]}{more}; Spark reads a lake as it is, so these rows would "
            "count where DuckDB leaves them out: run `upshot --lake DIR check`, fix the lake, "
            "or use --engine duckdb"
        )
