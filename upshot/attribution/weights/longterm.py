"""Governance rates on long-term outcomes: a class's value read off its projection.

`governance.rates` may name a `[longterm]` outcome (e.g. `retention_180d = 0.2`, value per
day of the 180 days): its uplift is the class's projected long-term effect from the same
uplift run (`longterm_estimates`, the surrogate index), added to the run's estimates as
one more objective of segment `all`. The 7-day objective it grows from should then carry
no rate of its own (the projection already counts it).

A class the backtest flags (`surrogacy_violated`: its projection missed the long-term
effects realized in past windows) is *blocked*, not priced on a projection that failed:
its long-term row gets the status `failed:surrogacy_violated` (a status the weights
file's schema allows: `failed:<why>`), so the weights give it weight 0 with that status
and the reason "retention_180d: uplift status failed:surrogacy_violated". A projection
that could not be made (`insufficient_data`) blocks the same way; a class never
backtested (`not_backtested`) is priced on its projection.

The covariance of a projected effect with the 7-day estimates is not estimated: those
pairs count as independent (the weights file says `covariance: partial`). Segments have no
projection, so a rated long-term outcome leaves segment rows without a value
(`insufficient_data`, weight 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

FLAGGED = "surrogacy_violated"  # the backtest status of a flagged class
BLOCKED = f"failed:{FLAGGED}"
SQL = (
    "SELECT message_class, channel, outcome, week, estimate, se, ci_lower, ci_upper, "
    "n_treated, n_control, status, backtest, created_at FROM longterm_estimates "
    "WHERE run_id = $run_id ORDER BY message_class, outcome"
)


def projections(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    """The run's projected long-term rows (none before migration 010 or without any)."""
    import duckdb

    try:
        cursor = con.execute(SQL, {"run_id": run_id})
    except duckdb.CatalogException:
        return []
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def priced(
    estimates: Sequence[Mapping[str, Any]],
    projected: Sequence[Mapping[str, Any]],
    rates: Mapping[str, float],
) -> list[dict[str, Any]]:
    """`estimates` plus one row per class and projected outcome that `rates` prices, in
    the form of an uplift estimate (see the module doc for the statuses)."""
    out = [dict(r) for r in estimates]
    for p in projected:
        if not rates.get(p["outcome"]):
            continue
        status = BLOCKED if p["backtest"] == FLAGGED else str(p["status"])
        out.append(
            {
                "message_class": p["message_class"],
                "channel": p["channel"],
                "objective": p["outcome"],
                "segment": "all",
                "estimator": "surrogate_index",
                "week": p["week"],
                "ate": p["estimate"],
                "ate_se": p["se"],
                "ate_ci_lower": p["ci_lower"],
                "ate_ci_upper": p["ci_upper"],
                "n_treated": p["n_treated"],
                "n_control": p["n_control"],
                "refute_passed": None,
                "status": status,
                "created_at": p["created_at"],
            }
        )
    return out
