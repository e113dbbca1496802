"""Pre-aggregated report data from the warehouse, with k-anonymity suppression.

`report_data` reads one ISO week's estimates and aggregates (never a user id, never a row
per user: see `upshot/sql/report.sql`) into `ReportData`, small JSON-ready tables that the
charts, the alerts, the HTML and the Markdown summary all read. Every table that counts
users passes through `suppress`: a cell about fewer than `k` users keeps its labels but
loses its numbers (None) and is marked `suppressed`.

A number that was not estimated is None with a `status` saying why, never a zero.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from upshot import period
from upshot.freshness import late_weeks
from upshot.reports import experiments_view, health
from upshot.reports.longterm_view import longterm_section
from upshot.reports.significance import decide
from upshot.reports.tables import Records, fetch
from upshot.reports.uplift_view import headline, objective_meta, uplift_rows
from upshot.reports.weights_view import weights_section

if TYPE_CHECKING:
    import duckdb

    from upshot.config import Config


# headline label, unit of the weekly total, unit of the per-send effect
@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything the weekly report shows for `week`, as tuples of JSON-ready dicts.

    - `objectives`: objective, label, unit (of weekly totals), per_send (unit of uplift),
      binary, higher_is_better, key.
    - `headline`: per objective, this week's total effect of messaging in its unit
      (Σ over classes of per-send uplift × this week's sends): effect, effect_se,
      effect_ci_lower/upper, pvalue, pvalue_adj, significant, classes_estimated,
      classes, status.
    - `uplift`: per class × objective, per send: effect, effect_ci_lower/upper, pvalue,
      naive_effect, n_treatment, n_control (decisions), users, treated_users and
      control_users (distinct users per arm), design, refute_passed, pvalue_adj,
      significant (-1, 0, 1) and, on the opt-out objective, guardrail_pvalue_adj and
      over_guardrail: all decided in one family by `significance.decide`; status,
      suppressed (fewer than `k` users in an arm).
    - `history`: the same per week for up to `history_weeks` weeks ending at `week`.
    - `weights` / `weights_info`: see `upshot.reports.weights_view`.
    - `reach`, `daily`, `late`, `coverage`: see `upshot.reports.health`; `loads`,
      `quarantine` and `over_gate`: the files behind the week (their loads, quarantined
      rows by reason, and those over `load.max_reject_rate`).
    - `experiments`: per experiment × arm × metric, the stored result rows.
    - `decompositions`: per experiment × arm, funnel and mix/rate rows (`kind`, `label`,
      `effect`, `ci_lower`/`ci_upper`, `share` of the total, `relative`, `status`).
    - `touches`: the week's stored touch attribution by channel, when there is one
      (`upshot touches --week`): credit per channel and method beside the causal
      incremental conversions (`upshot.attribution.touches.chart_data` rows).
    - `longterm` / `backtest`: each class's projected long-term effect beside its 7-day
      effect, and the backtest rows (see `upshot.reports.longterm_view`).
    - `stages`: the weekly job's per-stage status (empty when the report is made alone).
    - `sources`: which runs and versions the numbers came from.
    - `suppressed`: how many cells were hidden in all; `suppressed_by`: per section
      (`uplift`, `history` (earlier weeks), `experiments`, `reach`, `daily`, `touches`),
      for its visible note.
    """

    week: str
    k: int
    alpha: float
    objectives: Records
    headline: Records
    uplift: Records
    history: Records
    weights: Records
    weights_info: dict[str, Any]
    reach: Records
    experiments: Records
    decompositions: Records
    daily: Records
    touches: Records
    loads: Records
    quarantine: Records
    over_gate: Records
    late: Records
    coverage: dict[str, Any]
    stages: Records = ()
    longterm: Records = ()
    backtest: Records = ()
    sources: dict[str, Any] = field(default_factory=dict)
    suppressed: int = 0
    suppressed_by: dict[str, int] = field(default_factory=dict)

    def objective(self, name: str) -> dict[str, Any]:
        return next(o for o in self.objectives if o["objective"] == name)


def suppress(
    rows: Iterable[dict[str, Any]], count: str | Sequence[str], k: int, numbers: Sequence[str]
) -> tuple[Records, int]:
    """`rows` with the `numbers` of every row where a `count` of users is below `k` set to None.

    `count` names one user count or several (one per arm: a cell is as small as its
    smallest arm). Only user counts decide, never the size of an estimate. Returns new
    dicts (the input is not touched) with `suppressed` added, and how many rows were
    suppressed. A count that is None (unknown) suppresses too: privacy must not depend
    on a number being present.
    """
    if k < 1:
        raise ValueError(f"k == {k}, must be >= 1")
    names = (count,) if isinstance(count, str) else tuple(count)
    out, hidden = [], 0
    for row in rows:
        small = any(row.get(c) is None or row[c] < k for c in names)
        new = dict(row)
        if small:
            hidden += 1
            for name in (*numbers, *names):
                new[name] = None
        new["suppressed"] = small
        out.append(new)
    return tuple(out), hidden


def _uplift_runs(con: duckdb.DuckDBPyConnection, week: str, n: int) -> dict[str, str]:
    rows = fetch(con, "uplift-runs-by-week", week=week, weeks=n)
    return {r["week"]: r["run_id"] for r in rows if r["run_id"]}


def _pinned(con: duckdb.DuckDBPyConnection, week: str) -> dict[str, Any]:
    rows = fetch(con, "weekly-run-of-week", week=week)
    if not rows:
        return {}
    row = rows[0]
    for name in ("experiment_runs", "stages"):
        row[name] = json.loads(row[name]) if isinstance(row[name], str) else row[name]
    return row


def report_data(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    week: str,
    *,
    weights_dir: str | Path | None = None,
    stages: Sequence[dict[str, Any]] | None = None,
    pins: dict[str, Any] | None = None,
) -> ReportData:
    """Read `week`'s report data from the warehouse `con` (read-only is enough).

    The week's uplift run, experiment runs and weights version are `pins` when given
    (the weekly job, before its run becomes current), else those of the week's current
    weekly run, else the newest of each. Earlier weeks use their current runs.
    """
    week = period.parse_week(week)
    settings = config.report
    unknown = [o for o in settings.key_objectives if o not in config.objectives]
    if unknown:
        raise _usage(f"report.key_objectives names {unknown[0]!r}, not a configured objective")
    k, alpha = settings.k_anonymity, config.uplift.alpha
    first = period.shift(week, -(settings.history_weeks - 1))
    start, end = period.bounds(week)
    objectives = objective_meta(config)
    if pins is None:  # the week's current weekly run, when there is one, pins it exactly
        pins = _pinned(con, week) or None
    pinned = dict(pins or {})
    runs = _uplift_runs(con, week, settings.history_weeks)
    if pins is not None:
        runs.pop(week, None)
    if pinned.get("uplift_run_id"):
        runs[week] = pinned["uplift_run_id"]
    counts = {
        (r["week"], r["message_class"]): r
        for r in fetch(con, "class-users-by-week", start=period.bounds(first)[0], end=end)
    }
    estimates = fetch(con, "uplift-of-runs", runs=sorted(set(runs.values())))
    estimates = [e for e in estimates if runs.get(e["week"]) is not None]
    numbers = (
        "effect",
        "effect_se",
        "effect_ci_lower",
        "effect_ci_upper",
        "pvalue",
        "pvalue_adj",
        "naive_effect",
        "n_treatment",
        "n_control",
        "sends",
        "users",
    )
    # suppressed first: a hidden cell is neither tested nor counted in a total
    shown, hidden = suppress(
        uplift_rows(estimates, counts, alpha), ("treated_users", "control_users"), k, numbers
    )
    by_week: dict[str, list[dict[str, Any]]] = {}
    for r in shown:
        by_week.setdefault(r["week"], []).append(r)
    totals = [
        {**h, "week": w} for w, mine in by_week.items() for h in headline(mine, objectives, alpha)
    ]
    gov = config.governance
    rows, heads = decide(
        shown,
        totals,
        alpha=alpha,
        method=settings.correction,
        optout_objective=gov.optout_objective,
        guardrail=gov.max_optout_harm,
    )
    this_week = tuple(r for r in rows if r["week"] == week)
    history = tuple(r for r in rows if r["week"] >= first)
    hidden = sum(1 for r in this_week if r["suppressed"])
    experiments, parts, experiment_runs, hidden_exp = experiments_view.section(
        con, config, week, pinned.get("experiment_runs"), fallback=pins is None
    )
    suppressed_classes = {r["message_class"] for r in this_week if r["suppressed"]}
    weights, weights_info = weights_section(
        Path(weights_dir or config.governance.directory),
        week,
        pinned.get("weights_version"),
        con,
        suppressed_classes,
    )
    reach, hidden_reach = health.reach(con, config, first, week)
    daily, hidden_days = health.daily(con, start, end, k)
    touch_rows, hidden_touches = touches(con, week, k, start, end)
    longterm, backtest, hidden_long = longterm_section(con, config, runs.get(week), this_week)
    until = end + _max_window(config)
    return ReportData(
        week=week,
        k=k,
        alpha=alpha,
        objectives=objectives,
        headline=_headline_of(week, heads, this_week, objectives, alpha),
        uplift=this_week,
        history=history,
        weights=weights,
        weights_info=weights_info,
        reach=reach,
        experiments=experiments,
        decompositions=parts,
        daily=daily,
        touches=touch_rows,
        loads=tuple(fetch(con, "week-loads", start=start, end=end, until=until)),
        quarantine=tuple(fetch(con, "week-quarantine", start=start, end=end, until=until)),
        over_gate=tuple(
            fetch(
                con,
                "week-files-over-gate",
                start=start,
                end=end,
                until=until,
                gate=config.load.max_reject_rate,
            )
        ),
        late=late_weeks(con, config, week),
        coverage=health.coverage(con, until),
        stages=tuple(stages if stages is not None else (pinned.get("stages") or ())),
        longterm=longterm,
        backtest=backtest,
        sources={
            "uplift_run_id": runs.get(week),
            "experiment_runs": experiment_runs,
            "weights_version": weights_info.get("version"),
            "config_hash": config.fingerprint(),
        },
        suppressed=hidden + hidden_exp + hidden_reach + hidden_days + hidden_touches + hidden_long,
        suppressed_by={
            "uplift": hidden,
            "history": sum(1 for r in history if r["suppressed"] and r["week"] != week),
            "experiments": hidden_exp,
            "reach": hidden_reach,
            "daily": hidden_days,
            "touches": hidden_touches,
            "longterm": hidden_long,
        },
    )


def _headline_of(
    week: str,
    heads: list[dict[str, Any]],
    this_week: Records,
    objectives: Records,
    alpha: float,
) -> Records:
    """The week's decided headline rows (without their `week`); a week with no uplift
    rows at all still gets one row per objective saying `no_estimates`."""
    mine = [{k: v for k, v in h.items() if k != "week"} for h in heads if h["week"] == week]
    if mine:
        return tuple(mine)
    return tuple(
        {**h, "pvalue": None, "pvalue_adj": None, "significant": 0}
        for h in headline(this_week, objectives, alpha)
    )


def touches(
    con: duckdb.DuckDBPyConnection, week: str, k: int, start: Any = None, end: Any = None
) -> tuple[Records, int]:
    """The week's stored touch credits by channel (none when `upshot touches --week` was
    not run). A channel messaged to fewer than `k` distinct users in the week loses its
    numbers on every method: the user count decides, never the size of a credit."""
    import duckdb

    try:
        from upshot.attribution.touches.attribute import chart_data
        from upshot.attribution.touches.persist import stored_rows
    except ImportError:
        return (), 0
    try:
        rows = chart_data(stored_rows(con, by="channel", week=week))
    except duckdb.CatalogException:  # a warehouse from before the touches table
        return (), 0
    if start is None or end is None:
        start, end = period.bounds(week)
    users = {
        r["channel"]: r["users"] for r in fetch(con, "channel-users-of-week", start=start, end=end)
    }
    out, hidden = [], 0
    for r in rows:
        small = users.get(r["item"], 0) < k
        hidden += small
        blank = dict.fromkeys(("conversions", "share", "ci_lower", "ci_upper")) if small else {}
        out.append({**r, **blank, "suppressed": small})
    return tuple(out), hidden


def _max_window(config: Config) -> Any:
    from datetime import timedelta

    days = max((o.window_days for o in config.objectives.values()), default=0.0)
    return timedelta(days=days)


def _usage(message: str) -> Exception:
    from upshot.errors import UsageError

    return UsageError(message)
