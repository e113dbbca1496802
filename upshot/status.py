"""What the warehouse holds: rows, time ranges, classes, experiments, quarantine, loads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from upshot.sql import query
from upshot.store import SCHEMA_VERSION

if TYPE_CHECKING:
    import duckdb


def _rows(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> list[dict[str, Any]]:
    cursor = con.execute(query("status", name), params or None)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def status(con: duckdb.DuckDBPyConnection, *, loads: int = 10) -> dict[str, Any]:
    """One document describing the warehouse, in the shape `upshot status --json` prints."""
    return {
        "schema_version": SCHEMA_VERSION,
        "tables": _rows(con, "table-rows"),
        "classes": _rows(con, "classes"),
        "experiments": _rows(con, "experiments"),
        "quarantine": _rows(con, "quarantine"),
        "loads": _rows(con, "last-loads", limit=loads),
    }
