"""The causal column of touch attribution: incremental conversions from the uplift run.

Beside every touch-based method, each channel or class gets the conversions its treated
sends caused: the newest uplift run's per-send effect on the conversion objective times
the treated sends of the period, with a CI (`incremental-conversions` in `touches.sql`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from upshot.errors import UsageError
from upshot.sql import query

if TYPE_CHECKING:
    import duckdb

    from upshot.period import Period

DIMENSIONS = ("channel", "class")


def check_by(by: str) -> None:
    if by not in DIMENSIONS:
        raise UsageError(f"--by == {by!r}, must be channel or class")


@dataclass(frozen=True, slots=True)
class CausalRow:
    """Incremental conversions of one channel or class: uplift × treated sends.

    `effect` and its 95% CI are conversions; `uplift` is the per-send effect of the
    uplift run (for a channel: `effect / n_treatment`); NaN when `status` is not `ok`.
    """

    item: str
    effect: float
    effect_ci_lower: float
    effect_ci_upper: float
    uplift: float
    n_treatment: int
    status: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Causal:
    rows: tuple[CausalRow, ...]
    uplift_run_id: str | None
    uplift_week: str | None
    status: str  # ok | no_uplift_run | no_warehouse


def causal_column(
    con: duckdb.DuckDBPyConnection,
    *,
    by: str,
    span: Period,
    items: Sequence[str],
    objective: str = "conversion",
) -> Causal:
    """Incremental conversions per channel or class from the newest uplift run (its
    `segment='all'` estimates of `objective`, preferring one of `span.week`); see
    `incremental-conversions` in `touches.sql` for the arithmetic and the CIs."""
    import duckdb

    check_by(by)
    try:
        run = con.execute(
            query("touches", "latest-uplift-run"), {"objective": objective, "week": span.week}
        ).fetchone()
    except duckdb.CatalogException:  # a warehouse from before the uplift tables
        run = None
    params = {"by": by, "start": span.start, "end": span.end, "objective": objective}
    found = con.execute(
        query("touches", "incremental-conversions"), params | {"run_id": run[0] if run else None}
    ).fetchall()
    rows = {}
    for item, n, classes, effect, lower, upper, half, bad, note in found:
        if run is None or bad is not None:
            rows[item] = missing_row(item, n, "no_uplift_run" if run is None else bad, note or "")
        elif classes == 1:
            rows[item] = CausalRow(item, effect, lower, upper, effect / n, n, "ok")
        else:
            rows[item] = CausalRow(item, effect, effect - half, effect + half, effect / n, n, "ok")
    for item in set(items) - set(rows):
        rows[item] = missing_row(item, 0, "insufficient_data", "no treated sends in the period")
    return Causal(
        tuple(rows[k] for k in sorted(rows)),
        run[0] if run else None,
        run[1] if run else None,
        "ok" if run else "no_uplift_run",
    )


def missing_row(item: str, n: int, status: str, note: str) -> CausalRow:
    return CausalRow(item, math.nan, math.nan, math.nan, math.nan, n, status, note)
