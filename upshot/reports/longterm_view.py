"""The report's long-term section data: each class's projected long-term effect beside
its 7-day effect, and the backtest rows that say where the projection holds.

Read from the week's uplift run (`longterm_estimates`, `longterm_backtest`, written by
`upshot uplift --week` or the weekly job's longterm stage). The 7-day effect shown beside
an outcome is that of its primary surrogate (`longterm.primary`, e.g. 7-day retention
beside retention_180d). k-anonymity: a class whose uplift cell of the week is hidden
loses its projected numbers too (the same users); the backtest rows are past windows
with at least `longterm.min_backtest_arm` decisions per arm, and when that floor is
below `report.k_anonymity` their numbers are hidden as well.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from upshot.config import surrogates_of
from upshot.reports.tables import Records, fetch, num, stable

if TYPE_CHECKING:
    import duckdb

    from upshot.config import Config

PROJECTED = ("estimate", "se", "ci_lower", "ci_upper", "short_effect", "short_ci_lower",
             "short_ci_upper")  # fmt: skip
BACKTEST = ("projected", "projected_ci_lower", "projected_ci_upper", "realized",
            "realized_se", "realized_ci_lower", "realized_ci_upper", "difference",
            "difference_se", "naive")  # fmt: skip


def longterm_section(
    con: duckdb.DuckDBPyConnection, config: Config, run_id: str | None, uplift: Records
) -> tuple[Records, Records, int]:
    """(projections, backtest rows, hidden cells) of the uplift run `run_id`."""
    if not run_id:
        return (), (), 0
    lt = config.longterm
    surrogates = surrogates_of(config)
    named = {n: config.objectives[n] for n in surrogates if n in config.objectives}
    short = {(r["message_class"], r["objective"]): r for r in uplift}
    hidden_classes = {r["message_class"] for r in uplift if r.get("suppressed")}
    projections, hidden = [], 0
    for r in fetch(con, "longterm-of-run", run_id=run_id):
        primary = lt.primary_of(r["outcome"], named) if r["outcome"] in lt.outcomes else None
        seven = short.get((r["message_class"], primary), {})
        row: dict[str, Any] = {
            "message_class": r["message_class"],
            "channel": r["channel"],
            "outcome": r["outcome"],
            **{k: stable(num(r[k])) for k in ("estimate", "se", "ci_lower", "ci_upper")},
            "n_history": r["n_history"],
            "status": r["status"],
            "backtest": r["backtest"],
            "short_objective": primary,
            "short_effect": num(seven.get("effect")),
            "short_ci_lower": num(seven.get("effect_ci_lower")),
            "short_ci_upper": num(seven.get("effect_ci_upper")),
        }
        small = r["message_class"] in hidden_classes
        if small:
            hidden += 1
            row.update(dict.fromkeys(PROJECTED))
        projections.append({**row, "suppressed": small})
    backtest = []
    from scipy.stats import norm

    z = float(norm.ppf(1 - lt.alpha / 2))
    small = lt.min_backtest_arm < config.report.k_anonymity
    for r in fetch(con, "longterm-backtest-of-run", run_id=run_id):
        row = {k: stable(num(v)) if isinstance(v, float) else v for k, v in r.items()}
        if row["realized"] is not None and row["realized_se"] is not None:
            row["realized_ci_lower"] = stable(row["realized"] - z * row["realized_se"])
            row["realized_ci_upper"] = stable(row["realized"] + z * row["realized_se"])
        else:
            row["realized_ci_lower"] = row["realized_ci_upper"] = None
        if small:
            hidden += 1
            row.update(dict.fromkeys(BACKTEST))
        backtest.append({**row, "suppressed": small})
    return tuple(projections), tuple(backtest), hidden
