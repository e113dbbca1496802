"""`upshot run` (the weekly job) and `upshot demo` (simulate, then run every week)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from upshot.cli.common import WeekOption, info, state
from upshot.cli.output import Format, FormatOption, JsonOption, emit, resolve

if TYPE_CHECKING:
    from upshot.pipeline import JobResult


class FailOn(StrEnum):
    critical = "critical"
    warning = "warning"
    never = "never"


def _summary(job: JobResult) -> dict[str, list[dict[str, Any]]]:
    """The tables people read at the end of a run: stages, then alerts, per week."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for w in job.weeks:
        tables[f"{w.week}: {w.status}"] = [
            {"stage": s.stage, "status": s.status, "seconds": s.seconds, "detail": s.detail}
            for s in w.stages
        ]
        if w.alerts is not None and len(w.alerts):
            tables[f"{w.week}: alerts"] = [
                {"severity": a.severity, "rule": a.rule, "message": a.message} for a in w.alerts
            ]
    return tables


def _finish(job: JobResult, fmt: Format) -> None:
    emit(fmt, job.document(), _summary(job))
    for w in job.weeks:
        if w.report:
            info(f"{w.week}: {w.report.directory / 'index.html'}")
    if job.exit_code:
        info(f"exit {job.exit_code}: {job.reason}")
        raise typer.Exit(job.exit_code)


def run(
    ctx: typer.Context,
    week: WeekOption = None,
    restate: Annotated[
        bool,
        typer.Option(
            "--restate",
            help="Also rerun, oldest first, the earlier weeks whose data changed after their "
            "report (late data; the late_data alert names them). Without it, earlier weeks "
            "are never touched.",
        ),
    ] = False,
    fail_on: Annotated[
        FailOn | None,
        typer.Option(
            "--fail-on",
            help="Exit 3 when an alert of this severity or worse fires: critical, warning or "
            "never. Default: report.fail_on (critical). A check error stops the job with "
            "exit 3 unless never.",
            show_default=False,
        ),
    ] = None,
    load: Annotated[
        bool,
        typer.Option("--load/--no-load", help="Load new files from load.sources first."),
    ] = True,
    reports: Annotated[
        Path | None,
        typer.Option(
            "--reports", help="Report folder. Default: report.directory.", show_default=False
        ),
    ] = None,
    weights_dir: Annotated[
        Path | None,
        typer.Option(
            "--weights-dir",
            help="Weights folder. Default: governance.directory.",
            show_default=False,
        ),
    ] = None,
    weeks: Annotated[
        int,
        typer.Option(
            "--weeks",
            help="Estimate uplift and weights from the decisions of the trailing N ISO weeks "
            "ending with the week (more decisions per class, slower to react). Default 1.",
            min=1,
            max=52,
        ),
    ] = 1,
    fmt: FormatOption = Format.table,
    as_json: JsonOption = False,
) -> None:
    """The weekly job for one ISO week: load, check, uplift, longterm, experiments, weights,
    touches, report.

    load appends new files from load.sources in upshot.toml (files loaded
    before are skipped). check runs `upshot check`: an error stops the job there
    with exit 3 unless --fail-on never. uplift estimates every message class on every
    objective from the week's decisions (with --weeks N, from the trailing N
    weeks' decisions). longterm projects each class onto the [longterm] outcomes
    and backtests the projection (skipped, with the reason, without [longterm]
    outcomes or a long enough history). experiments analyses and decides
    each experiment live that week. weights publishes the value weights of
    that uplift run (the drift circuit breaker may refuse). touches credits the
    week's conversions to channels by the touch-based methods, beside the causal column.
    report writes reports/WEEK/ (index.html, charts, summary.md, alerts.json).

    Idempotent per week: rerunning a week replaces its outputs in one step (its report
    folder is swapped in whole; the warehouse moves the week's `current` run in one
    transaction) and leaves earlier weeks alone unless --restate. A class or experiment
    that fails is reported and the job goes on.

    Exit codes: 0 ok; 1 a stage failed or more than report.max_failed_share of the
    classes or experiments failed; 3 a check error or an alert at or above --fail-on
    fired; 4 another job
    or writer holds the warehouse. --json prints one document with every stage.

    Schedule it for Monday morning, e.g. cron: 30 6 * * 1  cd /srv/upshot && upshot run
    """
    from upshot.pipeline import run as run_job

    st = state(ctx)
    job = run_job(
        st.config,
        st.db_path,
        week,
        restate=restate,
        fail_on=fail_on.value if fail_on else None,
        load=load,
        report_dir=reports,
        weights_dir=weights_dir,
        progress=info,
        weeks=weeks,
    )
    _finish(job, resolve(fmt, as_json))


def demo(
    out: Annotated[
        Path, typer.Option("--out", help="Demo folder (new, empty or a previous demo).")
    ] = Path("demo_out"),
    users: Annotated[
        int | None,
        typer.Option(
            "--users", help="Simulated users (default 10,000).", min=100, show_default=False
        ),
    ] = None,
    weeks: Annotated[
        int | None,
        typer.Option(
            "--weeks", help="Simulated weeks (default 4).", min=1, max=52, show_default=False
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulation.", min=0)] = 7,
    fmt: FormatOption = Format.table,
    as_json: JsonOption = False,
) -> None:
    """Simulate a messaging world, then run the weekly job on every simulated week.

    Writes into --out: data/ (the simulated logs and truth.json, the known true effects),
    upshot.toml (paths relative to the folder, uplift settings sized for a laptop),
    upshot.duckdb, reports/WEEK/index.html and weights/. Ends by printing where the
    latest report and weights are. One planted class harms reachability: expect a
    critical alert; alerts do not fail the demo. At the default size it takes a few
    minutes on 2 cores.

    Afterwards: cd demo_out && upshot status
    """
    from upshot.pipeline.demo import DEFAULT_USERS, DEFAULT_WEEKS
    from upshot.pipeline.demo import demo as run_demo

    result = run_demo(
        out,
        users=users or DEFAULT_USERS,
        weeks=weeks or DEFAULT_WEEKS,
        seed=seed,
        progress=info,
    )
    document = result.document()
    fmt = resolve(fmt, as_json)
    if fmt is Format.json:
        emit(fmt, document, {})
    else:
        emit(fmt, document, _summary(result.job))
    info(f"done in {result.seconds:.0f}s")
    info(f"latest report: {document['latest_report']}")
    info(f"weights:       {document['weights']}")
    info(f"config:        {document['config']} (cd {result.out} to use it)")
    if result.job.exit_code:
        raise typer.Exit(result.job.exit_code)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("demo")(demo)
