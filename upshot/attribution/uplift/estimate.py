"""From a per-decision frame to uplift estimates, and from the warehouse and back.

`estimate_uplift` takes any per-decision polars frame (a warehouse `decision_frame` or a
flat table), eager or lazy, checks its columns at the boundary, turns each message class
into a `ClassTask` of plain arrays (covariates encoded per class) and runs `fit_class` on
each through `backend.map_fits`. A lazy frame (`pl.scan_parquet` of a
`write_decision_frame` file) is read one class at a time, so no more than the largest
class is ever in memory. `uplift_from_warehouse` builds the frame with SQL first;
`write_results` stores a run's estimates and covariances.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

import numpy as np

from upshot.attribution.uplift.backend import map_fits, threads_per_fit
from upshot.attribution.uplift.classtask import (
    ClassOutcome,
    ClassTask,
    Segment,
    population,
    sample_class,
)
from upshot.attribution.uplift.frames import (
    FRAME_KEYS,
    covariate_columns,
    decision_frame,
    encode_covariates,
    pre_columns,
)
from upshot.attribution.uplift.results import UpliftResults
from upshot.attribution.uplift.worker import FIT_MODULES, fit_task, task_failed
from upshot.errors import InputError, UsageError
from upshot.results import dumps
from upshot.sql import query

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from upshot.config import Config, Uplift

MAX_SEGMENT_LEVELS = 50  # more distinct values than this is not a segment column


def _require(columns: Sequence[str], column: str | None, role: str, source: str) -> None:
    if column is not None and column not in columns:
        raise UsageError(f"{source}: no column {column!r} for {role}")


DEFAULT_CLASS_COL = "message_class"
ONE_CLASS = "all"  # the class of a table without a class column
TRUE_SPELLINGS = ("true", "t", "yes", "y", "1")  # as `upshot load` reads a BOOLEAN column
FALSE_SPELLINGS = ("false", "f", "no", "n", "0")


def spelled_boolean(frame: pl.LazyFrame, schema: pl.Schema, column: str) -> pl.LazyFrame:
    """A text `column` of yes/no, Y/N, 1/0 or true/false (any case) as Boolean; any other
    text becomes null, which the row checks then name."""
    import polars as pl

    if schema[column] not in (pl.String, pl.Categorical):
        return frame
    text = pl.col(column).cast(pl.String).str.strip_chars().str.to_lowercase()
    return frame.with_columns(
        pl.when(text.is_in(TRUE_SPELLINGS))
        .then(True)
        .when(text.is_in(FALSE_SPELLINGS))
        .then(False)
        .otherwise(None)
        .alias(column)
    )


def _check(
    frame: pl.LazyFrame,
    schema: pl.Schema,
    *,
    source: str,
    class_col: str,
    treatment_col: str,
    outcomes: Sequence[str],
    propensity_col: str | None,
) -> None:
    """Types from the schema, then every row condition in one pass over the frame (a lazy
    Parquet scan reads only these columns, once); the first failing check, in the order
    below, names its first bad row (1-based)."""
    import polars as pl

    dtype = schema[treatment_col]
    if dtype != pl.Boolean and not dtype.is_numeric():
        raise InputError(f"{source}: {treatment_col} must be 0/1 or true/false, not {dtype}")
    for name in outcomes:
        if not (schema[name].is_numeric() or schema[name] == pl.Boolean):
            raise InputError(f"{source}: outcome {name} must be numeric, not {schema[name]}")
    treatment = pl.col(treatment_col)
    checks = [
        (pl.col(class_col).is_null(), f"{class_col} is empty"),
        (
            treatment.is_null() | ~treatment.cast(pl.Float64).is_in([0.0, 1.0]),
            f"{treatment_col} must be 0/1 or true/false",
        ),
    ]
    checks += [
        (
            ~pl.col(name).cast(pl.Float64).is_finite().fill_null(False),
            f"outcome {name} is missing or not finite",
        )
        for name in outcomes
    ]
    if propensity_col is not None:
        p = pl.col(propensity_col).cast(pl.Float64)
        checks.append(
            (
                ((p <= 0) | (p > 1) | p.is_nan()).fill_null(False),
                f"{propensity_col} must be in (0, 1]",
            )
        )
    firsts = frame.select(
        cond.arg_true().first().alias(f"c{i}") for i, (cond, _) in enumerate(checks)
    ).collect()
    for i, (_, message) in enumerate(checks):
        hit = firsts.item(0, i)
        if hit is not None:
            raise InputError(f"{source} row {int(hit) + 1}: {message}")


def _is_binary(frame: pl.LazyFrame, column: str) -> bool:
    import polars as pl

    values = frame.select(pl.col(column).drop_nulls().unique()).collect().to_series()
    return set(values.to_list()) <= {0, 1}


def frame_height(frame: pl.DataFrame | pl.LazyFrame) -> int:
    """Rows of an eager or lazy frame (a Parquet scan counts them from its metadata)."""
    import polars as pl

    if isinstance(frame, pl.DataFrame):
        return frame.height
    return int(frame.select(pl.len()).collect().item())


def frame_classes(
    frame: pl.DataFrame | pl.LazyFrame, class_col: str = "message_class"
) -> list[str]:
    """The distinct classes of an eager or lazy frame, sorted."""
    import polars as pl

    values = frame.lazy().select(pl.col(class_col).cast(pl.String).unique()).collect()
    return sorted(values.to_series().drop_nulls().to_list())


def _segments(frame: pl.DataFrame, columns: Sequence[str]) -> tuple[Segment, ...]:
    import polars as pl

    out = []
    for column in columns:
        if column not in frame.columns:
            continue
        values = frame.get_column(column).cast(pl.String).fill_null("(null)")
        levels = values.unique().sort().to_list()
        if len(levels) <= MAX_SEGMENT_LEVELS:
            codes = values.replace_strict(levels, range(len(levels)), return_dtype=pl.Int32)
            out.append(Segment(column, codes.to_numpy(), tuple(levels)))
    return tuple(out)


def _tasks(
    frame: pl.LazyFrame,
    classes: Sequence[str],
    *,
    roles: dict[str, str | None],
    outcomes: Sequence[str],
    binary: Sequence[bool],
    covariates: Sequence[str],
    settings: Uplift,
    refute: bool,
    threads: int,
    pre_period: Sequence[str] | None = None,
) -> Iterator[ClassTask]:
    """One task per class, built only when asked for so a single class is in memory.

    A class larger than `max_rows_per_fit` is cut to its stratified sample here, before
    its covariates are encoded, so neither this process nor the worker holds more; its
    whole-class counts and naive effects are taken first.
    """
    import polars as pl

    for name in classes:
        part = frame.filter(pl.col(roles["class"]) == name).collect()  # type: ignore[arg-type]
        channel_col, p_col, r_col = roles["channel"], roles["propensity"], roles["randomized"]
        channel = None
        if channel_col is not None:
            modes = part.get_column(channel_col).drop_nulls().mode().sort()
            channel = str(modes[0]) if len(modes) else None
        T = part.get_column(roles["treatment"]).cast(pl.Int8).to_numpy()  # type: ignore[arg-type]
        Y = part.select([pl.col(o).cast(pl.Float64) for o in outcomes]).to_numpy()
        randomized = None
        if r_col is not None:
            randomized = part.get_column(r_col).cast(pl.Boolean).fill_null(False).to_numpy()
        segments = _segments(part, settings.segments)
        counts = population(T, Y, segments)
        rows, sampling = sample_class(T, randomized, settings)
        if rows is not None:
            part = part[rows]
            T, Y = T[rows], Y[rows]
            randomized = None if randomized is None else randomized[rows]
            segments = tuple(dataclasses.replace(s, codes=s.codes[rows]) for s in segments)
        logged = None
        if p_col is not None:
            logged = part.get_column(p_col).cast(pl.Float64).fill_null(np.nan).to_numpy()
        design = encode_covariates(part, covariates)
        yield ClassTask(
            message_class=str(name),
            channel=channel,
            T=T,
            Y=Y,
            X=design.X,
            logged=logged,
            randomized=randomized,
            objectives=tuple(outcomes),
            binary=tuple(binary),
            segments=segments,
            settings=settings,
            population=counts,
            sampling=sampling,
            refute=refute,
            threads=threads,
            pre_period=None if pre_period is None else _varies(design.names, pre_period),
        )


def _varies(names: Sequence[str], columns: Sequence[str]) -> bool:
    """Whether a design column (`c`, `c:missing`, `c=level`; constant ones are already
    dropped) comes from one of `columns`."""
    return any(n == c or n.startswith((f"{c}:", f"{c}=")) for n in names for c in columns)


def estimate_uplift(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    outcomes: Sequence[str],
    covariates: Sequence[str] | None = None,
    binary: Sequence[str] | None = None,
    class_col: str | None = None,
    treatment_col: str = "treated",
    propensity_col: str | None = "propensity",
    randomized_col: str | None = "randomized",
    channel_col: str | None = "channel",
    classes: Sequence[str] | None = None,
    settings: Uplift | None = None,
    refute: bool = True,
    jobs: int | None = None,
    source: str = "frame",
    progress: Callable[[str], None] | None = None,
    pre_period: Sequence[str] | None = None,
) -> UpliftResults:
    """The uplift of each message class on each outcome column of `frame` (not modified;
    a lazy frame is collected one class at a time).

    `outcomes` are numeric columns (binary ones, listed in `binary` or detected as 0/1,
    are fitted as discrete outcomes); `covariates` default to every other column except
    the roles and `FRAME_KEYS`. Optional role columns (`propensity_col`, `randomized_col`,
    `channel_col`) are used when present. `settings` default to `[uplift]` of the config
    the CLI reads (`$UPSHOT_CONFIG`, else ./upshot.toml, else the defaults), so the call
    matches `upshot uplift --table` in the same folder; `jobs` defaults to
    `settings.jobs`. `progress` receives one line per class.

    `class_col` None: `message_class`, or when the frame has no such column (a single
    campaign's table) every decision is one class, `all`.

    `pre_period` names the covariates that hold past behaviour (the warehouse's
    `pre_<objective>`): a class with a targeted design, no logged propensity and none of
    them varying gets status `confounding_risk`. None (the default): not judged.
    """
    import polars as pl

    from upshot.config import load_config

    # the settings of the config the CLI reads ($UPSHOT_CONFIG, else ./upshot.toml)
    settings = settings or load_config().uplift
    jobs = settings.jobs if jobs is None else jobs
    lazy = frame.lazy()
    schema = lazy.collect_schema()
    columns = schema.names()
    if not outcomes:
        raise UsageError("no outcomes: give at least one outcome column")
    if class_col is None:
        class_col = DEFAULT_CLASS_COL
        if class_col not in columns:
            lazy = lazy.with_columns(pl.lit(ONE_CLASS).alias(class_col))
            schema, columns = lazy.collect_schema(), [*columns, class_col]
            if progress:
                progress(
                    f"{source}: no {class_col} column: every decision is one class, {ONE_CLASS!r}"
                )
    for column, role in ((class_col, "the class"), (treatment_col, "the treatment")):
        _require(columns, column, role, source)
    for name in outcomes:
        _require(columns, name, "an outcome", source)
    lazy = spelled_boolean(lazy, schema, treatment_col)
    schema = lazy.collect_schema()
    optional = {"propensity": propensity_col, "randomized": randomized_col, "channel": channel_col}
    optional = {k: v if v in columns else None for k, v in optional.items()}
    roles = {"class": class_col, "treatment": treatment_col, **optional}
    used = {c for c in roles.values() if c} | set(outcomes)
    if covariates is None:
        covariates = [c for c in columns if c not in used and c not in FRAME_KEYS]
    for name in covariates:
        _require(columns, name, "a covariate", source)
        if name in used:
            raise UsageError(f"{source}: {name!r} cannot be both a covariate and another role")
    _check(
        lazy,
        schema,
        source=source,
        class_col=class_col,
        treatment_col=treatment_col,
        outcomes=outcomes,
        propensity_col=optional["propensity"],
    )
    present = frame_classes(lazy, class_col)
    wanted = list(classes) if classes else present
    missing = [c for c in wanted if c not in present]
    if missing:
        raise UsageError(
            f"{source}: no decisions of class {missing[0]!r} (classes: {', '.join(present)})"
        )
    flags = [(o in binary) if binary is not None else _is_binary(lazy, o) for o in outcomes]
    tasks = _tasks(
        lazy,
        wanted,
        roles=roles,
        outcomes=outcomes,
        binary=flags,
        covariates=covariates,
        settings=settings,
        refute=refute,
        threads=threads_per_fit(jobs),
        pre_period=pre_period,
    )
    done: list[int] = []

    def report(i: int, outcome: ClassOutcome) -> None:
        done.append(i)
        if progress:
            d = outcome.diagnostics
            progress(
                f"[{len(done)}/{len(wanted)}] {wanted[i]}: {d.get('n', 0):,} decisions, "
                f"{d.get('design') or '-'}, {d.get('status', 'ok')} ({d.get('seconds', 0):.1f}s)"
                + (f": {d['message']}" if d.get("message") else "")
            )

    outcomes_ = map_fits(
        fit_task,
        tasks,
        jobs,
        backend=settings.backend,
        on_result=report,
        address=settings.ray_address,
        on_failure=task_failed,
        memory_per_task=settings.memory_per_task_bytes,
        preload=FIT_MODULES,
    )
    return UpliftResults(
        estimates=tuple(e for o in outcomes_ for e in o.estimates),
        covariance=tuple(c for o in outcomes_ for c in o.covariance),
        classes={name: o.diagnostics for name, o in zip(wanted, outcomes_, strict=True)},
    )


def uplift_from_warehouse(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    *,
    classes: Sequence[str] | None = None,
    objectives: Sequence[str] | None = None,
    start: datetime | date | str | None = None,
    end: datetime | date | str | None = None,
    settings: Uplift | None = None,
    refute: bool = True,
    jobs: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> UpliftResults:
    """`estimate_uplift` on the warehouse's decisions of `classes` in [start, end)."""
    frame = decision_frame(
        con, config, classes=classes, start=start, end=end, objectives=objectives
    )
    return estimate_frame(
        frame,
        config,
        covariates=covariate_columns(con),
        objectives=objectives,
        settings=settings,
        refute=refute,
        jobs=jobs,
        progress=progress,
    )


def estimate_frame(
    frame: pl.DataFrame | pl.LazyFrame,
    config: Config,
    *,
    covariates: Sequence[str],
    objectives: Sequence[str] | None = None,
    settings: Uplift | None = None,
    refute: bool = True,
    jobs: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> UpliftResults:
    """`estimate_uplift` on a `decision_frame` with its `covariates` (`covariate_columns`)
    and its pre-period covariates (`pre_columns`), which are judged as past behaviour.

    Objectives are binary when their aggregation is `any`.
    """
    if frame_height(frame) == 0:
        raise UsageError("no send decisions in the warehouse for the classes and period asked")
    names = list(objectives) if objectives else list(config.objectives)
    present = set(frame.lazy().collect_schema().names())
    pre = [c for c in pre_columns(config) if c in present]
    return estimate_uplift(
        frame,
        outcomes=names,
        covariates=[*covariates, *(c for c in pre if c not in covariates)],
        pre_period=pre,
        binary=[n for n in names if config.objectives[n].binary],
        settings=settings or config.uplift,
        refute=refute,
        jobs=jobs,
        source="warehouse",
        progress=progress,
    )


def write_results(
    con: duckdb.DuckDBPyConnection,
    results: UpliftResults,
    *,
    run_id: str,
    week: str | None,
    seed: int,
) -> None:
    """Append the run's estimates and covariances (call inside a transaction)."""
    import polars as pl

    rows = [{**e.row(), "details": dumps(e.details)} for e in results.estimates]
    schema = {"refute_passed": pl.Boolean, "channel": pl.String, "design": pl.String}
    estimates = pl.DataFrame(rows, schema_overrides=schema, infer_schema_length=None)
    covariance = pl.DataFrame(
        [dataclasses.asdict(c) for c in results.covariance],
        schema={
            "message_class": pl.String,
            "segment": pl.String,
            "objective_a": pl.String,
            "objective_b": pl.String,
            "covariance": pl.Float64,
        },
    )
    params = {"run_id": run_id, "week": week, "seed": seed}
    con.register("new_estimates", estimates.to_arrow())
    con.register("new_covariance", covariance.to_arrow())
    try:
        con.execute(query("uplift", "insert-estimates"), params)
        con.execute(query("uplift", "insert-covariance"), {"run_id": run_id})
    finally:
        con.unregister("new_estimates")
        con.unregister("new_covariance")
