"""The weekly job's long-term stage: every class's projected long-term effect and the
backtest that says where the projection holds (`upshot uplift`'s projected rows and
`upshot longterm validate` on the warehouse, as one stage after the uplift).

The projections and the backtest rows are stored under the week's uplift run
(`longterm_estimates`, `longterm_backtest`), as `upshot uplift --week` stores them, so the
report and the weights read them beside the 7-day estimates of the same run. The stage is
`skipped`, with the reason, when no `[longterm]` outcome is configured, when there is no
uplift run, or when the history (decisions old enough for the long-term outcomes) is
shorter than `longterm.min_history`. A class the backtest flags (surrogacy fails for
it) is named in the detail; the stage stays `ok` (it ran as it should) and the report's
`surrogacy_violated` alert asks a person to look.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from upshot import store
from upshot.pipeline.stages import Progress, Stage, trailing

if TYPE_CHECKING:
    from upshot.config import Config

NAME = "longterm"


def stage_longterm(
    config: Config,
    db_path: str,
    week: str,
    uplift_run_id: str | None,
    progress: Progress | None,
    *,
    weeks: int = 1,
) -> Stage:
    """Project the week's classes onto every `[longterm]` outcome and backtest them."""
    lt = config.longterm
    if not lt.outcomes:
        return Stage(NAME, "skipped", detail="no [longterm] outcome configured")
    if not uplift_run_id:
        return Stage(NAME, "skipped", detail="no uplift run for the week")
    try:
        from upshot.attribution.longterm.warehouse import (
            history_span,
            project_window,
            write_projections,
        )
    except ImportError:
        return Stage(NAME, "unavailable", detail="upshot.attribution is not installed")
    start, end = trailing(week, weeks)
    lo, hi = history_span(config, start)
    span = f"{lo:%Y-%m-%d} to {hi:%Y-%m-%d}"
    with store.reading(config, db_path) as con:
        results = project_window(con, config, start, end, progress=progress)
    n_history = results.n_history if results else 0
    if results is None or n_history < lt.min_history:
        return Stage(
            NAME,
            "skipped",
            detail=f"history too short: {n_history:,} decisions from {span} "
            f"(old enough for the {lt.horizon_days:.0f}-day outcomes), "
            f"longterm.min_history is {lt.min_history:,}",
        )
    with store.writing(config, db_path, "upshot run: longterm") as con, store.transaction(con):
        write_projections(con, results, run_id=uplift_run_id, week=week)
    classes = sorted({p.message_class for p in results.projections})
    projected = sorted({p.message_class for p in results.projections if p.status == "ok"})
    flagged = sorted(
        f"{name} ({outcome})"
        for outcome, bt in results.backtests.items()
        for name in (bt.flagged if bt else ())
    )
    tested = [o for o, bt in results.backtests.items() if bt is not None]
    backtest = (
        "not backtested"
        if not tested
        else f"backtest flags {', '.join(flagged)}"
        if flagged
        else "backtest flags no class"
    )
    detail = (
        f"{len(projected)} of {len(classes)} classes projected onto {len(lt.outcomes)} "
        f"outcomes from {n_history:,} history decisions; {backtest}"
    )
    return Stage(
        NAME,
        "ok",
        detail=detail,
        attempted=len(classes),
        outputs={"longterm_flagged": flagged},
    )
