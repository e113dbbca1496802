"""`upshot uplift`: the causal effect of every message class on every objective."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from upshot.cli.common import info, read_frame, state
from upshot.cli.output import Format, FormatOption, JsonOption, emit, resolve
from upshot.errors import ConfigError, UsageError
from upshot.results import format_value

if TYPE_CHECKING:
    from upshot.attribution.longterm.warehouse import LongTermResults
    from upshot.attribution.uplift.results import UpliftResults
    from upshot.config import Config, Uplift


class EstimatorChoice(StrEnum):
    linear_dml = "linear_dml"
    dr_learner = "dr_learner"
    causal_forest = "causal_forest"


class BackendChoice(StrEnum):
    local = "local"
    ray = "ray"


class NuisanceChoice(StrEnum):
    lightgbm = "lightgbm"
    linear = "linear"


# the columns people see in the terminal; --json / --format csv carry every field
# --wide: every per-class column; the default fits 100 columns (the CI in one cell)
_WIDE = (
    "message_class",
    "objective",
    "design",
    "ate",
    "ate_ci_lower",
    "ate_ci_upper",
    "naive_effect",
    "n_treated",
    "n_control",
    "clipped_share",
    "refute_passed",
    "qini",
    "status",
)


def _compact(row: dict[str, Any]) -> dict[str, Any]:
    """class, objective, ATE, CI, naive, status: what a terminal of 100 columns can hold."""
    lo, hi = row["ate_ci_lower"], row["ate_ci_upper"]
    ci = "" if lo is None or hi is None else f"[{format_value('', lo)}, {format_value('', hi)}]"
    return {
        "class": row["message_class"],
        "objective": row["objective"],
        "ate": row["ate"],
        "ci": ci,
        "naive": row["naive_effect"],
        "status": row["status"],
    }


def _run_id() -> str:
    import uuid
    from datetime import UTC, datetime

    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def _settings(
    config: Config,
    estimator: EstimatorChoice | None,
    nuisance: NuisanceChoice | None,
    seed: int | None,
    jobs: int | None,
    backend: BackendChoice | None = None,
    ray_address: str | None = None,
    memory_per_task: str | None = None,
) -> Uplift:
    from upshot.config import parse_size  # not at import: `--help` never reads a config

    changes: dict[str, Any] = {}
    if memory_per_task is not None:
        try:
            parse_size(memory_per_task, "--memory-per-task")
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        changes["memory_per_task"] = memory_per_task
    if backend is not None:
        changes["backend"] = backend.value
    if ray_address is not None:
        changes["ray_address"] = ray_address
        changes.setdefault("backend", "ray")  # an address means Ray
    if estimator is not None:
        changes["estimator"] = estimator.value
    if nuisance is not None:
        changes["nuisance"] = nuisance.value
    if seed is not None:
        changes["seed"] = seed
    if jobs is not None:
        if jobs < 1:
            raise UsageError(f"--jobs == {jobs}, must be >= 1")
        changes["jobs"] = jobs
    return dataclasses.replace(config.uplift, **changes)


def _method(s: Uplift) -> str:
    return f"{s.estimator} with {s.nuisance} nuisances, {s.folds} folds, seed {s.seed}"


def _document(
    run_id: str,
    week: str | None,
    source: str,
    results: UpliftResults,
    s: Uplift,
    longterm: LongTermResults | None = None,
) -> dict[str, Any]:
    from upshot.attribution.uplift.results import DR_SCORE_MEAN

    estimates = [{**d, "projected": False, "backtest": None} for d in results.documents()]
    if longterm is not None:
        estimates += longterm.uplift_rows()
    return {
        "run_id": run_id,
        "week": week,
        "source": source,
        "estimator": s.estimator,
        "nuisance": s.nuisance,
        "seed": s.seed,
        # how every `ate` (overall and per segment) is computed, whatever the estimator
        "method": DR_SCORE_MEAN,
        "estimates": estimates,
        "covariance": results.covariance_dicts(),
        "classes": results.classes,
    }


def _emit(
    fmt: Format,
    document: dict[str, Any],
    results: UpliftResults,
    wide: bool = False,
    longterm: LongTermResults | None = None,
) -> None:
    rows = [{**r, "projected": False, "backtest": None} for r in results.to_dicts()]
    if longterm is not None:
        rows += [{k: v for k, v in r.items() if k != "details"} for r in longterm.uplift_rows()]
    if fmt is Format.table:
        overall = [
            {k: r[k] for k in _WIDE} if wide else _compact(r) for r in rows if r["segment"] == "all"
        ]
        tables = {f"uplift per decision (run {document['run_id']})": overall}
        segments = sum(r["segment"] != "all" for r in rows)
        emit(fmt, document, tables)
        if segments:
            info(f"{segments} segment rows not shown: use --json or --format csv to see them")
        return
    emit(fmt, document, {"estimates": rows}, main="estimates")


def uplift(
    ctx: typer.Context,
    week: Annotated[
        str | None,
        typer.Option("--week", help="Only decisions of this ISO week, e.g. 2026-W47 (UTC)."),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="Only decisions on or after this date (UTC).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="Only decisions before this date (UTC).")
    ] = None,
    classes: Annotated[
        list[str] | None,
        typer.Option(
            "--class", help="A message class to estimate; repeat for several. Default: all."
        ),
    ] = None,
    objectives: Annotated[
        list[str] | None,
        typer.Option("--objective", help="An objective of upshot.toml; repeat. Default: all."),
    ] = None,
    estimator: Annotated[
        EstimatorChoice | None,
        typer.Option(
            "--estimator",
            help="EconML estimator: linear_dml (default: fast, linear CATE), "
            "dr_learner (doubly robust), causal_forest (nonparametric CATE, slower).",
            show_default=False,
        ),
    ] = None,
    nuisance: Annotated[
        NuisanceChoice | None,
        typer.Option(
            "--nuisance",
            help="Outcome/propensity models: lightgbm (default) or linear (fast).",
            show_default=False,
        ),
    ] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", help="Classes fitted in parallel (processes).")
    ] = None,
    backend: Annotated[
        BackendChoice | None,
        typer.Option(
            "--backend",
            help="Where the per-class fits run: local (this machine, --jobs processes) "
            "or ray (one Ray task per class; same seed, same results).",
            show_default=False,
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="With --backend ray: the cluster (host:port, ray://host:port or auto). "
            "Default: a private local Ray for this run.",
        ),
    ] = None,
    memory_per_task: Annotated[
        str | None,
        typer.Option(
            "--memory-per-task",
            help="The most memory one class's fit may use, e.g. 6GB (its worker's whole "
            "data segment, ~0.5GB of imports included). A class over it gets the status "
            "failed:memory_budget and the others go on. Default: uplift.memory_per_task.",
            show_default=False,
        ),
    ] = None,
    refute: Annotated[
        bool,
        typer.Option(
            "--refute/--no-refute",
            help="Refute each estimate: our estimator re-run with a placebo treatment, a "
            "random common cause and a data subset (--no-refute: faster).",
        ),
    ] = True,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of folds, subsamples and models.")
    ] = None,
    table: Annotated[
        Path | None,
        typer.Option(
            "--table",
            help="Estimate from a flat per-decision file (.parquet/.csv/.ndjson) instead of "
            "the warehouse; nothing is written.",
        ),
    ] = None,
    class_col: Annotated[
        str | None,
        typer.Option(
            "--class-col",
            help="With --table: the message class column. Default: message_class, or, when "
            "the table has none, every decision is one class 'all'.",
        ),
    ] = None,
    treatment_col: Annotated[
        str,
        typer.Option(
            "--treatment-col", help="With --table: 1/true/yes/Y = sent, 0/false/no/N = held out."
        ),
    ] = "treatment",
    outcome_cols: Annotated[
        list[str] | None,
        typer.Option("--outcome-col", help="With --table: an outcome column; repeat for several."),
    ] = None,
    covariates: Annotated[
        str | None,
        typer.Option(
            "--covariates",
            help="With --table: comma-separated covariates (text columns are one-hot "
            "encoded). Default: every other column.",
        ),
    ] = None,
    propensity_col: Annotated[
        str | None,
        typer.Option(
            "--propensity-col",
            help="With --table: the logged P(sent). Without it, P(sent) is estimated from "
            "the covariates.",
        ),
    ] = None,
    longterm: Annotated[
        bool,
        typer.Option(
            "--longterm/--no-longterm",
            help="Warehouse path with --week (or --start and --end): add the projected "
            "effect of each class on each [longterm] outcome (projected: true rows, "
            "surrogate index) and backtest it on past decisions (--no-longterm: skip).",
        ),
    ] = True,
    wide: Annotated[
        bool,
        typer.Option(
            "--wide",
            help="Table output: every column (design, arms, refutation, Qini), not the compact "
            "class, objective, ATE, CI, naive, status.",
        ),
    ] = False,
    fmt: FormatOption = Format.table,
    as_json: JsonOption = False,
) -> None:
    """Estimate what sending a message of each class does to each objective.

    For every message class and objective: the average effect per decision (ate,
    sent minus held out, causal) with a 95% CI, beside the naive_effect (plain
    difference of means, biased when active users are targeted more), then per segment
    (uplift.segments in upshot.toml). The propensity follows the design: a randomized
    holdout's known propensity, the logged one for targeted sends, or one estimated from
    the covariates. The same estimator, re-run under a placebo treatment, a random common
    cause and data subsets, refutes each estimate, and held-out Qini/AUUC/calibration say
    whether the heterogeneity is real.
    A class without both arms, overlap or enough decisions gets a status instead of
    numbers, and the others go on. With --week (or --start and --end), each class also
    gets one row per [longterm] outcome with projected: true, its surrogate-index
    projection and backtest status, once the warehouse holds old enough decisions.
    Progress goes to stderr.

    Examples (the warehouse, rows stored with a run id; then a flat file, nothing stored):

    \b
      upshot uplift --week 2026-W47 --json
      upshot uplift --table decisions.parquet --class-col message_class
        --treatment-col treatment --outcome-col converted
        --covariates activity,tenure_years,platform --json
    """
    import polars as pl

    from upshot import period
    from upshot.attribution.longterm.warehouse import project_window, write_projections
    from upshot.attribution.uplift.estimate import (
        estimate_frame,
        estimate_uplift,
        frame_classes,
        write_results,
    )
    from upshot.attribution.uplift.frames import (
        covariate_columns,
        frame_files,
        frame_folder,
        known_classes,
        write_decision_frame,
    )
    from upshot.store import (
        finish_run,
        inputs_fingerprint,
        reading,
        start_run,
        transaction,
        writing,
    )

    st = state(ctx)
    config = st.config
    settings = _settings(
        config, estimator, nuisance, seed, jobs, backend, ray_address, memory_per_task
    )
    out_format = resolve(fmt, as_json)
    if table is not None:
        if week or start or end:
            raise UsageError("--week/--start/--end select warehouse decisions; not with --table")
        if not outcome_cols:
            raise UsageError("--table needs at least one --outcome-col")
        if objectives:
            raise UsageError(
                "--objective names warehouse objectives; with --table use --outcome-col"
            )
        frame = read_frame(table, "--table")
        covs = [c.strip() for c in covariates.split(",") if c.strip()] if covariates else None
        info(f"{table}: {frame.height:,} decisions; {_method(settings)}")
        results = estimate_uplift(
            frame,
            outcomes=outcome_cols,
            covariates=covs,
            class_col=class_col,
            treatment_col=treatment_col,
            propensity_col=propensity_col,
            randomized_col=None,
            channel_col=None,
            classes=classes,
            settings=settings,
            refute=refute,
            source=str(table),
            progress=info,
        )
        document = _document(_run_id(), None, str(table), results, settings)
        _emit(out_format, document, results, wide)
        return
    span = period.parse(week, start, end)
    week, lo, hi = span.week, span.start, span.end
    db = st.db_path
    # the frame goes to a Parquet file, not into this process: fits read one class at a time
    engine = st.lake_engine("uplift")
    with frame_folder(config) as folder:
        path = folder / "decisions.parquet"
        with reading(config, db) as con:
            fingerprint = inputs_fingerprint(con)
            source = con if engine is None else engine
            n = write_decision_frame(
                source, config, path, classes=classes, start=lo, end=hi, objectives=objectives
            )
            covs = covariate_columns(source)
            known = ", ".join(known_classes(source)) or "none"
        if n == 0:
            raise UsageError(
                f"{db}: no send decisions for the classes and period asked (classes: {known})"
            )
        decisions = pl.scan_parquet(frame_files(path))
        missing = sorted(set(classes or ()) - set(frame_classes(decisions)))
        if missing:
            raise UsageError(
                f"{db}: no send decisions of class {missing[0]!r} in the period asked "
                f"(classes: {known})"
            )
        info(f"{db}: {n:,} decisions; {_method(settings)}")
        with writing(config, db, "uplift") as con:
            run_id = start_run(
                con, "uplift", config, inputs_fingerprint=fingerprint, seed=settings.seed
            )
        try:
            results = estimate_frame(
                decisions,
                config,
                covariates=covs,
                objectives=objectives,
                settings=settings,
                refute=refute,
                progress=info,
            )
            not_ok = sum(e.status != "ok" for e in results.estimates if e.segment == "all")
            projections = None
            if longterm and lo is not None and hi is not None and config.longterm.outcomes:
                with reading(config, db) as con:
                    projections = project_window(
                        con, config, lo, hi, classes=classes, progress=info
                    )
                if projections is None:
                    info("longterm: no history decision old enough yet; no projection")
            with writing(config, db, "uplift") as con, transaction(con):
                write_results(con, results, run_id=run_id, week=week, seed=settings.seed)
                if projections is not None:
                    write_projections(con, projections, run_id=run_id, week=week)
                details = {"estimates": len(results.estimates), "not_ok": not_ok, "week": week}
                finish_run(con, run_id, "ok", details)
        except BaseException as exc:
            with writing(config, db, "uplift") as con:
                finish_run(con, run_id, "failed", {"error": f"{type(exc).__name__}: {exc}"})
            raise
    document = _document(run_id, week, "warehouse", results, settings, projections)
    _emit(out_format, document, results, wide, projections)


def register(app: typer.Typer) -> None:
    app.command("uplift")(uplift)
