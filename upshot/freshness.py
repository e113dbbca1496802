"""Late data: earlier reported weeks that gained rows after their report read the data.

The weekly job reruns them with `--restate`; the report raises the `late_data` alert.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from upshot import period
from upshot.sql import query

if TYPE_CHECKING:
    import duckdb

    from upshot.config import Config


def late_weeks(
    con: duckdb.DuckDBPyConnection, config: Config, week: str
) -> tuple[dict[str, Any], ...]:
    """`{"week", "late_rows"}` per reported week before `week` with rows loaded after it
    was reported (decisions in it; outcomes in it or its objective windows)."""
    import duckdb

    window = timedelta(days=max((o.window_days for o in config.objectives.values()), default=0))
    try:
        reported = con.execute(
            query("freshness", "reported-weeks"),
            {"week": week, "weeks": config.report.history_weeks},
        ).fetchall()
    except duckdb.CatalogException:  # a warehouse from before the weekly job's tables
        return ()
    out = []
    for reported_week, data_as_of in reported:
        start, end = period.bounds(reported_week)
        row = con.execute(
            query("freshness", "late-rows"),
            {"start": start, "end": end, "until": end + window, "since": data_as_of},
        ).fetchone()
        if row and row[0]:
            out.append({"week": reported_week, "late_rows": row[0]})
    return tuple(out)
