"""The weekly job: the stages in order for one ISO week, idempotent per week.

    load → check → uplift → longterm → experiments → weights → touches → report

`run` loads new input files from `load.sources` (the loader skips files it has seen),
estimates the uplift of the week's decisions, projects their long-term effects and
backtests the projection (`upshot.pipeline.stage_longterm`), analyses and decides the
experiments live that week, exports the weights of that uplift run, credits the week's
conversions to channels with the touch-based methods beside the causal column, and writes
`reports/<week>/`. Each stage reads what the previous one persisted (see
`upshot.pipeline.stages`).

Idempotent per week: every run of a week appends its own rows (its run ids) and then,
in one transaction, becomes the week's `current` row in `weekly_runs` together with its
alerts, while its report folder is swapped in whole. Earlier weeks are untouched unless
`restate`, which first reruns the earlier weeks that late data changed.

The job fails (exit 1) when a stage fails as a whole or more than
`report.max_failed_share` of the classes or experiments fail; otherwise it exits 3 when
an alert at or above `fail_on` fired, else 0. `check` (see `upshot.check`) runs before
any estimate: a check that is an error stops the job with exit 3 unless `fail_on` is
`never`, in which case the week goes on and the report's data health shows the finding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from upshot import period, store
from upshot.errors import EXIT_DATA_QUALITY, EXIT_ERROR, EXIT_OK, UsageError
from upshot.pipeline.stage_longterm import stage_longterm
from upshot.pipeline.stages import (
    Progress,
    Stage,
    stage_check,
    stage_experiments,
    stage_load,
    stage_touches,
    stage_uplift,
    stage_weights,
    timed,
)
from upshot.results import ResultsMixin, dumps
from upshot.sql import query

if TYPE_CHECKING:
    from upshot.config import Config
    from upshot.reports.alerts import Alerts
    from upshot.reports.weekly import WeeklyReport

FAIL_ON = ("critical", "warning", "never")


@dataclass(frozen=True, slots=True)
class WeekResult:
    """One week of the job; `problems` say why it counts as failed (empty otherwise)."""

    week: str
    run_id: str
    status: str  # ok | partial | failed
    stages: tuple[Stage, ...]
    problems: tuple[str, ...]
    report: WeeklyReport | None = None

    @property
    def alerts(self) -> Alerts | None:
        return self.report.alerts if self.report else None


@dataclass(frozen=True, slots=True)
class JobResult(ResultsMixin):
    """Every week the job ran (restated ones first) and the job's exit code."""

    weeks: tuple[WeekResult, ...]
    fail_on: str
    exit_code: int
    reason: str

    def to_dicts(self) -> list[dict[str, Any]]:
        return [
            {
                "week": w.week,
                "stage": s.stage,
                "status": s.status,
                "seconds": s.seconds,
                "detail": s.detail,
            }
            for w in self.weeks
            for s in w.stages
        ]

    def document(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "reason": self.reason,
            "fail_on": self.fail_on,
            "weeks": [
                {
                    "week": w.week,
                    "run_id": w.run_id,
                    "status": w.status,
                    "problems": list(w.problems),
                    "stages": [s.to_dict() for s in w.stages],
                    "report": w.report.document() if w.report else None,
                }
                for w in self.weeks
            ],
        }


def _register(config: Config, db_path: str, week: str) -> str:
    with store.writing(config, db_path, "upshot run") as con, store.transaction(con):
        run_id = store.start_run(
            con, "run", config, inputs_fingerprint=store.inputs_fingerprint(con)
        )
        con.execute(query("report", "insert-weekly-run"), {"week": week, "run_id": run_id})
    return run_id


def _problems(config: Config, stages: list[Stage]) -> list[str]:
    """Why the week counts as failed: a stage failed, or too many classes/experiments."""
    limit = config.report.max_failed_share
    out = [f"stage {s.stage} failed: {s.detail}" for s in stages if s.status == "failed"]
    for s in stages:
        if s.stage in ("uplift", "experiments") and s.attempted:
            share = len(s.failures) / s.attempted
            if share > limit:
                out.append(
                    f"{s.stage}: {len(s.failures)} of {s.attempted} failed "
                    f"({share:.0%} > report.max_failed_share {limit:.0%})"
                )
    return out


def _finish(
    config: Config,
    db_path: str,
    week: str,
    run_id: str,
    stages: list[Stage],
    report: WeeklyReport | None,
    status: str,
) -> None:
    """Record the run; when its report was written, make it the week's current one."""
    outputs: dict[str, Any] = {}
    for s in stages:
        outputs.update(s.outputs)
    with store.writing(config, db_path, "upshot run") as con, store.transaction(con):
        con.execute(
            query("report", "update-weekly-run"),
            {
                "run_id": run_id,
                "status": status,
                "uplift_run_id": outputs.get("uplift_run_id"),
                "experiment_runs": dumps(outputs.get("experiment_runs") or {}),
                "weights_version": outputs.get("weights_version"),
                "report_dir": str(report.directory) if report else None,
                "stages": dumps([s.to_dict() for s in stages]),
            },
        )
        if report is not None:
            for a in report.alerts:
                con.execute(
                    query("report", "insert-alert"),
                    {
                        "run_id": run_id,
                        "week": week,
                        **{
                            k: getattr(a, k)
                            for k in (
                                "rule",
                                "severity",
                                "subject",
                                "message",
                                "value",
                                "threshold",
                            )
                        },
                    },
                )
            con.execute(query("report", "make-current"), {"week": week, "run_id": run_id})
        store.finish_run(con, run_id, status, {"week": week, **outputs})


def run_week(
    config: Config,
    db_path: str,
    week: str,
    *,
    load: Stage,
    check: Stage | None = None,
    publish: bool = True,
    report_dir: Path | None = None,
    weights_dir: Path | None = None,
    progress: Progress | None = None,
    weeks: int = 1,
) -> WeekResult:
    """The stages after loading for one week (see the module docstring)."""
    from upshot.reports.weekly import build

    weights_dir = weights_dir or Path(config.governance.directory)
    run_id = _register(config, db_path, week)
    with store.writing(config, db_path, "upshot run") as con:
        con.execute(query("report", "set-data-as-of"), {"run_id": run_id})
    stages = [load] if check is None else [load, check]
    uplift = timed(
        "uplift", lambda: stage_uplift(config, db_path, week, progress, weeks=weeks), progress
    )
    stages.append(uplift)
    uplift_run = uplift.outputs.get("uplift_run_id")
    stages.append(
        timed(
            "longterm",
            lambda: stage_longterm(config, db_path, week, uplift_run, progress, weeks=weeks),
            progress,
        )
    )
    stages.append(timed("experiments", lambda: stage_experiments(config, db_path, week), progress))
    if publish:
        run = uplift.outputs.get("uplift_run_id")
        stages.append(
            timed("weights", lambda: stage_weights(config, db_path, run, weights_dir), progress)
        )
    else:
        stages.append(
            Stage(
                "weights",
                "skipped",
                detail="restated week: weights are published for the newest week only",
            )
        )
    stages.append(timed("touches", lambda: stage_touches(config, db_path, week), progress))
    outputs: dict[str, Any] = {}
    for s in stages:
        outputs.update(s.outputs)
    pins = {
        "uplift_run_id": outputs.get("uplift_run_id"),
        "experiment_runs": outputs.get("experiment_runs") or {},
        "weights_version": outputs.get("weights_version"),
    }
    built: list[WeeklyReport] = []

    def report_stage() -> Stage:
        with store.reading(config, db_path) as con:
            report = build(
                con,
                config,
                week,
                directory=report_dir,
                weights_dir=weights_dir,
                stages=[s.to_dict() for s in stages],
                pins=pins,
                provenance={"weekly_run_id": run_id},
            )
        built.append(report)
        counts = report.alerts.counts()
        return Stage(
            "report",
            "ok",
            detail=f"{report.directory} ({counts['critical']} critical, "
            f"{counts['warning']} warning alerts)",
        )

    stages.append(timed("report", report_stage, progress))
    problems = _problems(config, stages)
    partial = any(s.status == "partial" for s in stages)
    status = "failed" if problems else "partial" if partial else "ok"
    report = built[0] if built else None
    _finish(config, db_path, week, run_id, stages, report, status)
    return WeekResult(week, run_id, status, tuple(stages), tuple(problems), report)


def restatable(config: Config, db_path: str, week: str) -> list[str]:
    """Earlier reported weeks that gained rows after their report, oldest first."""
    from upshot.freshness import late_weeks

    with store.reading(config, db_path) as con:
        return sorted(r["week"] for r in late_weeks(con, config, week))


def run(
    config: Config,
    db_path: str,
    week: str | None = None,
    *,
    restate: bool = False,
    fail_on: str | None = None,
    load: bool = True,
    report_dir: Path | None = None,
    weights_dir: Path | None = None,
    progress: Progress | None = None,
    weeks: int = 1,
) -> JobResult:
    """The weekly job for `week` (default: the last complete ISO week in the business
    time zone); uplift and weights from the decisions of the `weeks` weeks ending with it.
    One job per warehouse at a time (`<db>.run.lock`)."""
    fail_on = fail_on or config.report.fail_on
    if fail_on not in FAIL_ON:
        raise UsageError(f"fail_on == {fail_on!r}, must be one of {', '.join(FAIL_ON)}")
    if db_path == ":memory:":
        raise UsageError("upshot run needs a warehouse file: its stages open it one by one")
    if weeks < 1:
        raise UsageError(f"--weeks == {weeks}, must be >= 1")
    zone = config.report.business_timezone
    week = period.parse_week(week) if week else period.last_complete(zone)
    with store.writer_lock(f"{db_path}.run", config.warehouse.lock_timeout, "upshot run"):
        loaded = (
            timed("load", lambda: stage_load(config, db_path), progress)
            if load
            else (Stage("load", "skipped", detail="--no-load"))
        )
        checked = timed("check", lambda: stage_check(config, db_path), progress)
        if checked.status == "failed" and fail_on != "never":
            return _stopped(week, loaded, checked, fail_on)
        if checked.status == "failed":  # fail_on never: go on, the report shows the findings
            checked = replace(checked, status="partial")
        earlier = restatable(config, db_path, week) if restate else []
        results = []
        for w in [*earlier, week]:
            stage = loaded if w == week else Stage("load", "skipped", detail="loaded once per job")
            if progress:
                progress(f"week {w}{' (restating)' if w != week else ''}")
            results.append(
                run_week(
                    config,
                    db_path,
                    w,
                    load=stage,
                    check=checked if w == week else None,
                    publish=w == week,
                    report_dir=report_dir,
                    weights_dir=weights_dir,
                    progress=progress,
                    weeks=weeks,
                )
            )
    return outcome(tuple(results), fail_on)


def _stopped(week: str, loaded: Stage, checked: Stage, fail_on: str) -> JobResult:
    """The job stopped by `upshot check` before any estimate: nothing was run or written."""
    reason = f"upshot check: {checked.detail} (run `upshot check`; --fail-on never goes on)"
    result = WeekResult(week, "", "failed", (loaded, checked), (reason,))
    return JobResult((result,), fail_on, EXIT_DATA_QUALITY, reason)


def outcome(results: tuple[WeekResult, ...], fail_on: str) -> JobResult:
    """The exit code: 1 when a week failed, else 3 when an alert reached `fail_on`."""
    failed = [w for w in results if w.status == "failed"]
    if failed:
        return JobResult(results, fail_on, EXIT_ERROR, "; ".join(failed[0].problems))
    fired = [a for w in results if w.alerts for a in w.alerts.at_or_above(fail_on)]
    if fired:
        reason = f"{len(fired)} alert(s) at or above {fail_on}: {fired[0].message}"
        return JobResult(results, fail_on, EXIT_DATA_QUALITY, reason)
    return JobResult(results, fail_on, EXIT_OK, "ok")


def weekly_runs(config: Config, db_path: str) -> list[dict[str, Any]]:
    """The current run of every reported week (for `upshot run --list` and tests)."""
    with store.reading(config, db_path) as con:
        cursor = con.execute(query("report", "current-runs"))
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    for r in rows:
        r["stages"] = json.loads(r["stages"]) if isinstance(r["stages"], str) else r["stages"]
    return rows
