"""Reachability and data health of one week, as aggregates; the `upshot check` findings.

Reachable users of a channel at the end of a week are the users opted in at the start
(the `users` column named in `report.reach_opt_in`) who have not yet had one of the
channel's opt-out events (`report.reach_opt_out`). Only per-week counts leave DuckDB.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from upshot import period
from upshot.reports.tables import Records, fetch
from upshot.sql import ident

if TYPE_CHECKING:
    import duckdb

    from upshot.config import Config


def _user_columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    # DESCRIBE resolves `users` as queries do (the lake's view in lake mode)
    rows = con.execute("SELECT column_name FROM (DESCRIBE users)").fetchall()
    return {r[0] for r in rows}


def reach(
    con: duckdb.DuckDBPyConnection, config: Config, first: str, last: str
) -> tuple[Records, int]:
    """Per channel and week from `first` to `last`: users, reachable users, the rate and
    the week's opt-outs. A channel whose column is missing gets one row with `status`
    `no_opt_in_column`. Counts under k are suppressed (the week's `exits` alone when only
    they are small)."""
    settings = config.report
    k = settings.k_anonymity
    columns = _user_columns(con)
    _, end = period.bounds(last)
    oldest = (fetch(con, "first-outcome") or [{}])[0].get("first_outcome")
    if oldest is None:
        return (), 0
    first = max(first, min(period.week_of(oldest), last))
    rows: list[dict[str, Any]] = []
    hidden = 0
    for channel, column in sorted(settings.reach_opt_in.items()):
        if column not in columns:
            rows.append({"channel": channel, "week": last, "status": "no_opt_in_column"})
            continue
        opt_in = f"TRY_CAST({ident(column)} AS BOOLEAN)"
        base = fetch(con, "reach-base", replace={"opt_in": opt_in})[0]
        events = list(settings.reach_opt_out.get(channel, ()))
        exits = {
            r["week"]: r["exits"]
            for r in fetch(con, "reach-exits", replace={"opt_in": opt_in}, events=events, end=end)
        }
        gone = sum(n for w, n in exits.items() if w < first)
        for week in period.weeks_between(first, last):
            gone += exits.get(week, 0)
            users, opted = base["users"], base["opted_in"]
            row = {
                "channel": channel,
                "week": week,
                "users": users,
                "opted_in_start": opted,
                "reachable": opted - gone,
                "rate": (opted - gone) / users if users else None,
                "exits": exits.get(week, 0),
                "status": "ok",
                "suppressed": False,
            }
            if users < k or opted < k:
                row.update(users=None, opted_in_start=None, reachable=None, rate=None, exits=None)
                row["suppressed"] = True
                hidden += 1
            elif 0 < row["exits"] < k:
                row["exits"] = None
                row["suppressed"] = True
                hidden += 1
            rows.append(row)
    return tuple(rows), hidden


def daily(
    con: duckdb.DuckDBPyConnection, start: datetime, end: datetime, k: int
) -> tuple[Records, int]:
    """Per UTC day: sends and outcome events. A count from fewer than `k` users (but not
    zero: a day without data is what the gap alert looks for) is suppressed."""
    rows, hidden = [], 0
    for r in fetch(con, "daily-counts", start=start, end=end):
        row = {"day": r["day"].isoformat(), "sends": r["sends"], "outcomes": r["outcomes"]}
        row["suppressed"] = False
        for name, users in (("sends", r["send_users"]), ("outcomes", r["outcome_users"])):
            if 0 < users < k:
                row[name] = None
                row["suppressed"] = True
                hidden += 1
        rows.append(row)
    return tuple(rows), hidden


def coverage(con: duckdb.DuckDBPyConnection, until: datetime) -> dict[str, Any]:
    """How far sends and outcomes reach, and whether the week's outcome windows are
    complete (outcomes through `until`, the week's end plus the longest window)."""
    rows = fetch(con, "coverage")
    last_send = rows[0]["last_send"] if rows else None
    last_outcome = rows[0]["last_outcome"] if rows else None
    return {
        "last_send": last_send.isoformat() if last_send else None,
        "last_outcome": last_outcome.isoformat() if last_outcome else None,
        "windows_complete_at": until.isoformat(),
        # a day of slack: the last event of a complete day can be hours before midnight
        "windows_complete": bool(last_outcome and last_outcome >= until - timedelta(days=1)),
    }


def findings(stages: Records) -> Records:
    """The `upshot check` findings the weekly job recorded in its `check` stage (name,
    status, detail), errors first; none when the report was made without the job."""
    order = {"error": 0, "warning": 1, "ok": 2}
    for stage in stages:
        if stage.get("stage") == "check":
            checks = (stage.get("outputs") or {}).get("checks") or ()
            rows = [{k: c.get(k) for k in ("name", "status", "detail")} for c in checks]
            return tuple(sorted(rows, key=lambda r: order.get(str(r["status"]), 3)))
    return ()
