"""Small helpers the report modules share: named queries as dicts, and clean numbers."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from upshot.sql import query

if TYPE_CHECKING:
    import duckdb

Records = tuple[dict[str, Any], ...]


def fetch(
    con: duckdb.DuckDBPyConnection,
    name: str,
    *,
    replace: Mapping[str, str] | None = None,
    **params: Any,
) -> list[dict[str, Any]]:
    """Rows of `report.sql` statement `name` as dicts; `replace` fills `{placeholders}`
    with already-quoted identifiers. A table that does not exist yet (a read-only
    warehouse from before a migration) gives no rows rather than an error."""
    import duckdb

    sql = query("report", name)
    for key, value in (replace or {}).items():
        sql = sql.replace("{" + key + "}", value)
    try:
        cursor = con.execute(sql, params or None)
    except duckdb.CatalogException:
        return []
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def num(value: Any) -> float | None:
    """A finite float, or None for NULL, NaN and infinities ("not estimated")."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


SIGNIFICANT_DIGITS = 10


def stable(value: Any) -> Any:
    """`value` with floats rounded to 10 significant digits: DuckDB's parallel sums differ
    in the last bits from run to run, and a report of the same data must be the same file."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    return value
