"""Touch attribution kept: `touch_credits` rows written and read back."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from upshot.attribution.touches.attribute import row_dict
from upshot.attribution.touches.causal import check_by
from upshot.sql import query

if TYPE_CHECKING:
    import duckdb

    from upshot.attribution.touches.attribute import TouchAttribution


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def store_credits(con: duckdb.DuckDBPyConnection, result: TouchAttribution, run_id: str) -> int:
    """Append the result's rows to `touch_credits` under `run_id`; returns the row count."""
    details = json.dumps(
        {
            "source": result.source,
            "uplift_run_id": result.causal.uplift_run_id,
            "conversions_without_touch": result.without_touch,
        }
    )
    statement = query("touches", "insert-credit")
    rows = result.rows()
    for row in rows:
        con.execute(
            statement,
            {
                **row,
                "run_id": run_id,
                "week": result.span.week,
                "period_start": result.span.start,
                "period_end": result.span.end,
                "dimension": result.by,
                "total_conversions": result.table.total_conversions,
                "lookback": result.lookback,
                "details": details,
            },
        )
    return len(rows)


def stored_rows(
    con: duckdb.DuckDBPyConnection, *, by: str = "channel", week: str | None = None
) -> list[dict[str, Any]]:
    """The newest stored touch attribution (of `week` when given) as `rows()` dicts."""
    check_by(by)
    run = con.execute(
        query("touches", "latest-credits-run"), {"dimension": by, "week": week}
    ).fetchone()
    if not run:
        return []
    found = con.execute(
        query("touches", "credits-of-run"), {"run_id": run[0], "dimension": by}
    ).fetchall()
    # NaN is stored as NaN ("not estimated"); a NULL (a causal row's value) reads back as NaN
    return [row_dict(*(v if k in (0, 1, 8) else _num(v) for k, v in enumerate(r))) for r in found]
