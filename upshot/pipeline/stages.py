"""The stages of the weekly job, each an adapter over another part of upshot.

Every stage function returns a `Stage`, never raises for a class or experiment that
fails (those are listed in `failures`), and reports `unavailable` when its part of
upshot is not installed rather than inventing a number. `timed` turns any error of a
stage as a whole into a `failed` stage, so the stages after it still run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from upshot import period, store
from upshot.errors import UpshotError, UsageError

if TYPE_CHECKING:
    from upshot.config import Config

Progress = Callable[[str], None]
LOAD_ORDER = ("users", "assignments", "sends", "outcomes")


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage of one week: `status` is ok | warning | partial | failed | skipped |
    unavailable | refused (the weights' circuit breaker). `warning`: it ran, but its output
    needs a person (e.g. weights published with no class weighted above 0).

    `failures` lists the classes, experiments or files that failed (`subject`, `status`);
    `attempted` how many there were; `outputs` the run ids or versions it produced.
    """

    stage: str
    status: str
    seconds: float = 0.0
    detail: str = ""
    attempted: int = 0
    failures: tuple[dict[str, str], ...] = ()
    over_gate: tuple[str, ...] = ()
    outputs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failures": list(self.failures), "over_gate": list(self.over_gate)}


def timed(name: str, body: Callable[[], Stage], progress: Progress | None) -> Stage:
    """Run one stage; any error becomes a `failed` stage with a one-line reason."""
    if progress:
        progress(f"[{name}] ...")
    began = time.perf_counter()
    try:
        result = body()
    except UpshotError as exc:
        result = Stage(name, "failed", detail=str(exc))
    except Exception as exc:  # a bug or a library error must not take the other stages down
        first = str(exc).splitlines()[0] if str(exc) else ""
        result = Stage(name, "failed", detail=f"{type(exc).__name__}: {first}")
    result = replace(result, seconds=round(time.perf_counter() - began, 3))
    if progress:
        progress(f"[{name}] {result.status} in {result.seconds:.1f}s {result.detail}".rstrip())
    return result


def stage_load(config: Config, db_path: str) -> Stage:
    """Load new files from `load.sources` (users, assignments, sends, outcomes, in order)."""
    from upshot.errors import DataQualityError
    from upshot.load import load

    if config.lake.path:  # the tables are read in place: nothing to load
        return Stage("load", "skipped", detail=f"lake mode: tables read from {config.lake.path}")
    sources = config.load.sources
    unknown = sorted(set(sources) - set(LOAD_ORDER))
    if unknown:
        raise UsageError(f"load.sources.{unknown[0]}: not a table ({', '.join(LOAD_ORDER)})")
    if not sources:
        return Stage("load", "skipped", detail="no load.sources configured")
    loaded = seen = quarantined = 0
    failures: list[dict[str, str]] = []
    over: list[str] = []
    for table in (t for t in LOAD_ORDER if t in sources):
        try:
            report = load(db_path, table, [sources[table]], config=config)
        except DataQualityError as exc:
            report = exc.report  # type: ignore[assignment]
            over += [f.source for f in report.over_gate]
        except UpshotError as exc:
            failures.append({"subject": table, "status": f"failed:{exc}"})
            continue
        loaded += sum(f.status == "loaded" for f in report.files)
        seen += sum(f.status == "already_loaded" for f in report.files)
        quarantined += sum(f.rows_quarantined for f in report.files)
    status = "failed" if len(failures) == len(sources) else "partial" if failures or over else "ok"
    detail = f"{loaded} new files, {seen} already loaded, {quarantined:,} rows quarantined"
    return Stage(
        "load",
        status,
        detail=detail,
        attempted=len(sources),
        failures=tuple(failures),
        over_gate=tuple(over),
    )


def stage_check(config: Config, db_path: str) -> Stage:
    """`upshot check` on what is loaded: `failed` when a check is an error (the job stops
    there unless fail_on is never), its findings in `outputs["checks"]` for the report."""
    from upshot.check import run_check

    report = run_check(config, db_path)
    status = "failed" if report.errors else "ok"
    return Stage(
        "check",
        status,
        detail=report.summary(),
        attempted=len(report.checks),
        # name, status and detail only: the facts hold example ids, which no report may
        outputs={"checks": report.to_dicts()},
    )


def _class_failures(documents: list[dict[str, Any]]) -> tuple[int, list[dict[str, str]]]:
    classes: dict[str, str | None] = {}
    for e in documents:
        if e["segment"] != "all":
            continue
        failed = str(e["status"]).startswith("failed")
        if failed or e["message_class"] not in classes:
            classes[e["message_class"]] = e["status"] if failed else classes.get(e["message_class"])
    failures = [{"subject": c, "status": s} for c, s in sorted(classes.items()) if s]
    return len(classes), failures


def stage_uplift(
    config: Config, db_path: str, week: str, progress: Progress | None, *, weeks: int = 1
) -> Stage:
    """Estimate the uplift of the decisions of the `weeks` ISO weeks ending with `week` and
    store it as one run of that week (the same steps as `upshot uplift --week`: the frame
    is read, the warehouse released while the models fit, then the estimates written in
    one transaction). The run's details record the window (`start`, `end`, `weeks`)."""
    try:
        # both parts are needed; either missing reads as "not installed"
        from upshot.attribution.uplift.estimate import estimate_frame, write_results  # noqa: F401
        from upshot.attribution.uplift.frames import frame_folder
    except ImportError:
        return Stage("uplift", "unavailable", detail="upshot.attribution is not installed")
    # the frame goes to a Parquet file, not into this process: fits read one class at a time
    with frame_folder(config) as folder:
        path = folder / "decisions.parquet"
        return _uplift_from_file(config, db_path, week, progress, path, weeks)


def trailing(week: str, weeks: int) -> tuple[Any, Any]:
    """`[start, end)` of the `weeks` ISO weeks ending with `week` (UTC)."""
    if weeks < 1:
        raise UsageError(f"--weeks == {weeks}, must be >= 1")
    return period.bounds(period.shift(week, 1 - weeks))[0], period.bounds(week)[1]


def _uplift_from_file(
    config: Config, db_path: str, week: str, progress: Progress | None, path: Path, weeks: int
) -> Stage:
    import polars as pl

    from upshot.attribution.uplift.estimate import estimate_frame, write_results
    from upshot.attribution.uplift.frames import covariate_columns, write_decision_frame

    start, end = trailing(week, weeks)
    span = week if weeks == 1 else f"the {weeks} weeks to {week}"
    settings = config.uplift
    with store.reading(config, db_path) as con:
        n = write_decision_frame(con, config, path, start=start, end=end)
        covariates = covariate_columns(con)
        fingerprint = store.inputs_fingerprint(con)
    if n == 0:
        return Stage("uplift", "skipped", detail=f"no decisions in {span}")
    with store.writing(config, db_path, "upshot run: uplift") as con:
        run_id = store.start_run(
            con, "uplift", config, inputs_fingerprint=fingerprint, seed=settings.seed
        )
    try:
        results = estimate_frame(
            pl.scan_parquet(path),
            config,
            covariates=covariates,
            settings=settings,
            progress=progress,
        )
        attempted, failures = _class_failures(results.documents())
        with store.writing(config, db_path, "upshot run: uplift") as con, store.transaction(con):
            write_results(con, results, run_id=run_id, week=week, seed=settings.seed)
            window = {"start": start.isoformat(), "end": end.isoformat(), "weeks": weeks}
            store.finish_run(con, run_id, "ok", {"week": week, "failed": len(failures), **window})
    except BaseException as exc:
        with store.writing(config, db_path, "upshot run: uplift") as con:
            store.finish_run(con, run_id, "failed", {"error": f"{type(exc).__name__}: {exc}"})
        raise
    detail = f"{attempted} classes, {n:,} decisions; {len(failures)} failed"
    if weeks > 1:
        detail += f" (trailing {weeks} weeks from {start:%Y-%m-%d})"
    return Stage(
        "uplift",
        "partial" if failures else "ok",
        detail=detail,
        attempted=attempted,
        failures=tuple(failures),
        outputs={"uplift_run_id": run_id},
    )


def stage_experiments(config: Config, db_path: str, week: str) -> Stage:
    """Analyse and decide every experiment live in the week; one run per experiment."""
    try:
        from upshot.experiments import analyze, decide, save
    except ImportError:
        return Stage("experiments", "unavailable", detail="upshot.experiments is not installed")
    from upshot.experiments.warehouse import live_experiments

    ex = config.experiments
    done, failures = [], []
    with store.reading(config, db_path) as con:
        names = [r["experiment_id"] for r in live_experiments(con, config, week)]
        fingerprint = store.inputs_fingerprint(con)
        for name in names:
            try:
                analysis = analyze(name, con=con, config=config)
                verdict = decide(
                    analysis, deterioration_alpha=ex.deterioration_alpha, min_sample=ex.min_sample
                )
                done.append((analysis, verdict))
            except (UpshotError, ValueError, ArithmeticError, LookupError) as exc:
                failures.append({"subject": name, "status": f"failed:{exc}"})
    if not names:
        return Stage("experiments", "skipped", detail=f"no experiment live in {week}")
    runs = {}
    with store.writing(config, db_path, "upshot run: experiments") as con, store.transaction(con):
        for analysis, verdict in done:
            run_id = store.start_run(
                con, "experiments decide", config, inputs_fingerprint=fingerprint
            )
            save(con, analysis, run_id, verdict)
            store.finish_run(con, run_id, "ok", {"experiment": analysis.experiment, "week": week})
            runs[analysis.experiment] = run_id
    verdicts = ", ".join(f"{a.experiment}: {v.verdict}" for a, v in done)
    return Stage(
        "experiments",
        "partial" if failures else "ok",
        detail=verdicts,
        attempted=len(names),
        failures=tuple(failures),
        outputs={"experiment_runs": runs},
    )


def stage_weights(
    config: Config, db_path: str, uplift_run_id: str | None, directory: Path
) -> Stage:
    """Export the weights of the week's uplift run (the circuit breaker may refuse)."""
    if not uplift_run_id:
        return Stage("weights", "skipped", detail="no uplift run for the week")
    try:
        from upshot.attribution.weights.export import export
    except ImportError:
        return Stage("weights", "unavailable", detail="the weights package is not installed")
    out = export(config, db_path, run_id=uplift_run_id, directory=directory)
    if out.refused or out.published is None:
        # a governance stop, not a breakage: the critical alert asks a person to decide
        return Stage(
            "weights",
            "refused",
            detail=f"the drift circuit breaker tripped ({out.drift.share_moved:.0%} of classes "
            "moved); nothing was published. Review, then `upshot weights export --run-id "
            f"{uplift_run_id} --force`",
        )
    version = out.published.weights_version
    classes = out.candidate.weights.classes
    if not any(c.weight > 0 for c in classes):
        return Stage(
            "weights",
            "warning",
            # no version in the detail: the alert quotes it, and a rerun of the week (new
            # estimates, new version) must give the same report
            detail=f"no class has a positive weight, the published weights send nothing: "
            f"{_why(classes)}",
            outputs={"weights_version": version},
        )
    return Stage(
        "weights", "ok", detail=f"published {version}", outputs={"weights_version": version}
    )


def _why(classes: Any) -> str:
    """Why no class is weighted above 0: the count of classes per status (an `ok` class
    has a value at or below 0), with one example reason each."""
    if not classes:
        return "the uplift run has no class"
    counts: dict[str, list[Any]] = {}
    for c in classes:
        key = "value <= 0" if c.status == "ok" else c.status
        counts.setdefault(key, []).append(c)
    parts = []
    for key, members in sorted(counts.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        first = members[0]
        example = f" ({first.message_class}: {first.reason})" if first.reason else ""
        parts.append(f"{len(members)} {key}{example}")
    return f"{len(classes)} classes: " + "; ".join(parts)


def stage_touches(config: Config, db_path: str, week: str) -> Stage:
    """Touch-based credit by channel for the week's conversions, beside the causal column
    of the week's uplift run (as `upshot touches --week`), for the report to show."""
    try:
        from upshot.attribution.touches.attribute import from_warehouse
        from upshot.attribution.touches.persist import store_credits
    except ImportError:
        return Stage("touches", "unavailable", detail="the touches package is not installed")
    with store.writing(config, db_path, "upshot run: touches") as con:
        run_id = store.start_run(
            con, "touches", config, inputs_fingerprint=store.inputs_fingerprint(con)
        )
        try:
            result = from_warehouse(con, config, by="channel", span=period.Period.of_week(week))
            with store.transaction(con):
                rows = store_credits(con, replace(result, run_id=run_id), run_id)
        except BaseException as exc:
            store.finish_run(con, run_id, "failed", {"error": f"{type(exc).__name__}: {exc}"})
            raise
        store.finish_run(con, run_id, "ok", {"by": "channel", "week": week, "rows": rows})
    conversions = result.table.total_conversions
    return Stage(
        "touches",
        "ok",
        detail=f"{conversions:,.0f} touched conversions credited by {len(result.credits)} methods",
        outputs={"touches_run_id": run_id},
    )
