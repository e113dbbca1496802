"""The causal column of touch attribution: incremental conversions from the uplift run.

Beside every touch-based method, each channel or class gets the conversions its treated
sends caused: the newest uplift run's effect on the treated (ATT, per send, on the
conversion objective) times the treated sends of the period, with a CI
(`incremental-conversions` in `touches.sql`). The ATT, not the ATE: sends are targeted,
and the effect of the sends that were made is the effect on the users they went to (the
two differed by 32% in a targeted world). A run that stored no ATT falls back to the ATE
and says so in `estimand` and `note`.

`observed` are the conversions of the journeys the item touched: the sends cannot have
caused more. A causal estimate above them gets a `warning`. `rel_effect` is the lift over
the conversions those journeys would have had without the sends, `effect / (observed -
effect)`, which maps the CI monotonically and never below -100%.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from upshot.errors import UsageError
from upshot.sql import query

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from upshot.engines import Engine
    from upshot.period import Period

DIMENSIONS = ("channel", "class")
_SENT = "upshot_treated_per_class"  # the engine's per-class counts, registered on `con`


def check_by(by: str) -> None:
    if by not in DIMENSIONS:
        raise UsageError(f"--by == {by!r}, must be channel or class")


@dataclass(frozen=True, slots=True)
class CausalRow:
    """Incremental conversions of one channel or class: ATT × treated sends.

    `effect` and its 95% CI are conversions; `uplift` is the per-send effect on the
    treated (for a channel: `effect / n_treatment`); NaN when `status` is not `ok`.
    `estimand` is `att`, or `ate` (or `mixed`) where the run stored no ATT. `observed`
    are the conversions of the journeys the item touched (NaN: not known), `rel_effect*`
    the lift over what they would have been without the sends (see the module);
    `warning` says when the estimate is above `observed`.
    """

    item: str
    effect: float
    effect_ci_lower: float
    effect_ci_upper: float
    uplift: float
    n_treatment: int
    status: str
    note: str = ""
    estimand: str = "att"
    observed: float = math.nan
    rel_effect: float = math.nan
    rel_effect_ci_lower: float = math.nan
    rel_effect_ci_upper: float = math.nan
    warning: str = ""


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
    observed: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    engine: Engine | None = None,
) -> Causal:
    """Incremental conversions per channel or class from the newest uplift run (its
    `segment='all'` estimates of `objective`, preferring one of `span.week`); see
    `incremental-conversions` in `touches.sql` for the arithmetic and the CIs.
    `observed[item]` are the conversions of the journeys the item touched. The estimates
    are read from `con`; the treated sends from `engine` when given (else `con`)."""
    import duckdb
    from scipy.stats import norm

    check_by(by)
    try:
        run = con.execute(
            query("touches", "latest-uplift-run"), {"objective": objective, "week": span.week}
        ).fetchone()
    except duckdb.CatalogException:  # a warehouse from before the uplift tables
        run = None
    params: dict[str, object] = {
        "by": by,
        "start": span.start,
        "end": span.end,
        "objective": objective,
        "z": float(norm.isf(alpha / 2)),
    }
    sent = query("touches", "treated-per-class").rstrip(";")
    statement = query("touches", "incremental-conversions")
    bound = params | {"run_id": run[0] if run else None}
    if engine is None:
        found = con.execute(statement.replace("/*sent*/", sent), bound).fetchall()
    else:
        # the pass over the sends runs where they are; its per-class rows join the
        # estimates here (a relation registered on this connection for the statement)
        span_only = {k: params[k] for k in ("start", "end")}
        counted = engine.fetch(sent, span_only, "sends", name="touches treated-per-class")
        con.register(_SENT, _sent_table(counted))
        try:
            relation = f"SELECT message_class, channel, n FROM {_SENT}"
            rest = {k: v for k, v in bound.items() if k not in span_only}  # bound in `sent`
            found = con.execute(statement.replace("/*sent*/", relation), rest).fetchall()
        finally:
            con.unregister(_SENT)
    rows = {}
    seen = observed or {}
    for item, n, classes, effect, lower, upper, half, bad, note, ate_only in found:
        if run is None or bad is not None:
            rows[item] = missing_row(item, n, "no_uplift_run" if run is None else bad, note or "")
            continue
        if classes > 1:
            lower, upper = effect - half, effect + half
        estimand = "att" if ate_only == 0 else "ate" if ate_only == classes else "mixed"
        basis = "" if estimand == "att" else f"ATE × sends for {ate_only} of {classes} classes"
        row = CausalRow(item, effect, lower, upper, effect / n, n, "ok", basis, estimand)
        rows[item] = against_observed(row, seen.get(item, math.nan))
    for item in set(items) - set(rows):
        rows[item] = missing_row(item, 0, "insufficient_data", "no treated sends in the period")
    return Causal(
        tuple(rows[k] for k in sorted(rows)),
        run[0] if run else None,
        run[1] if run else None,
        "ok" if run else "no_uplift_run",
    )


def _sent_table(rows: Sequence[Mapping[str, object]]) -> pa.Table:
    """The per-class rows of `treated-per-class` as an Arrow table of fixed types (an
    empty period too)."""
    import pyarrow as pa

    return pa.table(
        {
            "message_class": pa.array([r["message_class"] for r in rows], pa.string()),
            "channel": pa.array([r["channel"] for r in rows], pa.string()),
            "n": pa.array([r["n"] for r in rows], pa.int64()),
        }
    )


def missing_row(item: str, n: int, status: str, note: str) -> CausalRow:
    return CausalRow(item, math.nan, math.nan, math.nan, math.nan, n, status, note, "")


def against_observed(row: CausalRow, observed: float) -> CausalRow:
    """`row` with its observed conversions, its relative effect and, when the causal
    estimate is above what was observed, a warning."""
    from dataclasses import replace

    if not (math.isfinite(observed) and observed > 0):
        return replace(row, observed=observed)
    warning = ""
    if row.effect > observed:
        warning = (
            f"causal conversions {row.effect:.4g} above the {observed:.4g} observed in the "
            "journeys it touched: the uplift estimate is too high for this period"
        )
    return replace(
        row,
        observed=observed,
        rel_effect=relative(row.effect, observed),
        rel_effect_ci_lower=relative(row.effect_ci_lower, observed),
        rel_effect_ci_upper=relative(row.effect_ci_upper, observed),
        warning=warning,
    )


def relative(effect: float, observed: float) -> float:
    """Lift over the counterfactual `observed - effect`: in (-1, ∞), ∞ from `observed` on."""
    if not math.isfinite(effect):
        return math.nan
    if effect >= observed:
        return math.inf
    return effect / (observed - effect)
