"""Per-decision frames: one row per send decision, built in DuckDB, handed over as polars.

`decision_frame` joins the decisions of the classes and period asked to their users'
covariates and to every objective's outcome in one pass: a single join of decisions to
outcome events (same user, from `uplift.pre_window` before `decided_at` to the longest
window after it) with one conditional aggregate per objective (`any` → 0/1, `sum` of
values, `count` of events, `distinct_days`: distinct UTC dates) over the events strictly
after the decision, and, unless `pre_window` is "0d", the same aggregate of every
configured objective over the events strictly before it and less than `pre_window` earlier:
`pre_<objective>`, the user's past behaviour as a covariate (as CUPED does for
experiments), measured without any post-decision outcome. Columns, in order:

    send_id, user_id, message_class, channel, decided_at, treated, propensity, randomized,
    <every non-id column of users>, <pre_<objective> per configured objective>,
    <one Float64 column per objective asked, named after it>

`encode_covariates` turns the raw covariates of a frame into the numeric design matrix the
estimators need (categoricals one-hot, missing values imputed with an indicator).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from upshot.errors import UsageError
from upshot.period import as_instant
from upshot.sql import ident, query

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from upshot.config import Config, Objective
    from upshot.engines import Engine

FRAME_KEYS = (
    "send_id",
    "user_id",
    "message_class",
    "channel",
    "decided_at",
    "treated",
    "propensity",
    "randomized",
)
# a categorical with more levels keeps the most frequent ones and pools the rest
MAX_LEVELS = 20
PRE = "pre_"  # the pre-period covariate of objective o is the column pre_<o>


def known_classes(con: duckdb.DuckDBPyConnection | Engine) -> list[str]:
    """Every message class in sends, for an error about one that is not there."""
    if _on_engine(con):
        found = cast("Engine", con).fetch(query("frames", "class-names"), {}, "sends")
        return [str(r["message_class"]) for r in found]
    duck = cast("duckdb.DuckDBPyConnection", con)
    return [r[0] for r in duck.execute(query("frames", "class-names")).fetchall()]


def covariate_columns(con: duckdb.DuckDBPyConnection | Engine) -> list[str]:
    """Every column of `users` except identifiers (`user_id`, `load_id`, `*_id`)."""
    if _on_engine(con):
        rows = cast("Engine", con).table_columns("users")
    else:
        duck = cast("duckdb.DuckDBPyConnection", con)
        rows = duck.execute(query("frames", "user-columns")).fetchall()
    return [
        name for name, _ in rows if name not in ("user_id", "load_id") and not name.endswith("_id")
    ]


def pre_columns(config: Config) -> list[str]:
    """The pre-period covariates a warehouse frame holds: `pre_<objective>` for every
    configured objective, none when `uplift.pre_window` is "0d"."""
    if config.uplift.pre_window_days <= 0:
        return []
    return [PRE + name for name in config.objectives]


def _objective_sql(index: int, objective: Objective, *, pre: bool = False) -> str:
    """The aggregate of objective `index`: after the decision, or before it when `pre`."""
    if pre:
        inside = query("frames", "pre-inside").replace("{events}", f"$pre_events_{index}")
    else:
        inside = (
            query("frames", "objective-inside")
            .replace("{events}", f"$events_{index}")
            .replace("{window}", f"$window_{index}")
        )
    return query("frames", f"objective-{objective.aggregation}").replace("{inside}", inside)


def decision_frame(
    con: duckdb.DuckDBPyConnection | Engine,
    config: Config,
    *,
    classes: Sequence[str] | None = None,
    start: datetime | date | str | None = None,
    end: datetime | date | str | None = None,
    objectives: Sequence[str] | None = None,
) -> pl.DataFrame:
    """One row per decision of `classes` (default all) decided in [start, end) (default all).

    Objective columns hold each objective of `config.objectives` (or the `objectives`
    named) measured after the decision: only events strictly after `decided_at` and no
    later than `decided_at + window` count. `pre_<objective>` columns (`pre_columns`) hold
    every configured objective over (decided_at − uplift.pre_window, decided_at): only
    events strictly before the decision count. Rows are ordered by class, time and send_id.
    `con` is a DuckDB connection or another engine (`upshot.engines`) whose `sends`,
    `outcomes` and `users` tables the same statement reads.
    """
    if _on_engine(con):
        engine = cast("Engine", con)
        sql, params = frame_sql(config, covariate_columns(engine), classes, start, end, objectives)
        return engine.frame(sql, params, name="frames decision-frame")
    return _frame_relation(
        cast("duckdb.DuckDBPyConnection", con), config, classes, start, end, objectives
    ).pl()


def write_decision_frame(
    con: duckdb.DuckDBPyConnection | Engine,
    config: Config,
    path: str | Path,
    *,
    classes: Sequence[str] | None = None,
    start: datetime | date | str | None = None,
    end: datetime | date | str | None = None,
    objectives: Sequence[str] | None = None,
) -> int:
    """`decision_frame` written by DuckDB to the Parquet file `path`; its number of rows.

    DuckDB builds it within `memory_limit`, spilling past it, and never hands it to Python
    whole: a reader takes one class at a time (`pl.scan_parquet(path)` filtered on the
    class reads only that class's row groups, as the rows are ordered by class), so the
    fitting process holds the largest class, not every decision. On another engine the
    engine's workers write `path` as a folder of ordered Parquet parts (`frame_files`
    reads it); the frame never passes through this process.
    """
    if _on_engine(con):
        engine = cast("Engine", con)
        sql, params = frame_sql(config, covariate_columns(engine), classes, start, end, objectives)
        return engine.write(sql, params, str(path), name="frames decision-frame")
    duck = cast("duckdb.DuckDBPyConnection", con)
    relation = _frame_relation(duck, config, classes, start, end, objectives)
    relation.write_parquet(str(path))
    row = duck.execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchone()
    return int(row[0]) if row else 0


def frame_files(path: str | Path) -> str:
    """What `pl.scan_parquet` reads of `write_decision_frame`'s `path`: the file, or the
    parts of the folder another engine wrote, in order."""
    p = Path(path)
    return str(p / "*.parquet") if p.is_dir() else str(p)


def _on_engine(con: Any) -> bool:
    return getattr(con, "kind", "duckdb") != "duckdb"


@contextlib.contextmanager
def frame_folder(config: Config) -> Iterator[Path]:
    """A private folder for one run's `write_decision_frame` file, under
    `warehouse.temp_directory` (where DuckDB spills too: the disk meant for large temporary
    data); removed with everything in it when the block ends."""
    base = Path(config.warehouse.temp_directory)
    try:
        base.mkdir(parents=True, exist_ok=True)
        context = tempfile.TemporaryDirectory(dir=base, prefix="frame-")
    except OSError as exc:
        raise UsageError(
            f"warehouse.temp_directory == {str(base)!r}: cannot write there ({exc.strerror})"
        ) from None
    with context as folder:
        yield Path(folder)


def _frame_relation(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    classes: Sequence[str] | None,
    start: datetime | date | str | None,
    end: datetime | date | str | None,
    objectives: Sequence[str] | None,
) -> duckdb.DuckDBPyRelation:
    sql, params = frame_sql(config, covariate_columns(con), classes, start, end, objectives)
    return con.sql(sql, params=params)


def frame_sql(
    config: Config,
    covariates: Sequence[str],
    classes: Sequence[str] | None,
    start: datetime | date | str | None,
    end: datetime | date | str | None,
    objectives: Sequence[str] | None,
) -> tuple[str, dict[str, Any]]:
    """The decision-frame statement (DuckDB SQL, every engine's source) and its values."""
    names = list(objectives) if objectives is not None else list(config.objectives)
    unknown = [n for n in names if n not in config.objectives]
    if unknown:
        known = ", ".join(config.objectives)
        raise UsageError(f"objective {unknown[0]!r} is not configured (known: {known})")
    if not names:
        raise UsageError("no objectives to measure: configure [objectives] in upshot.toml")
    pre = pre_columns(config)
    clash = sorted(set(covariates) & (set(FRAME_KEYS) | set(names) | set(pre)))
    if clash:
        what = "pre-period covariate" if clash[0] in pre else "decision column or objective name"
        raise UsageError(
            f"users.{clash[0]} clashes with a {what}: rename it"
            + (' or set [uplift] pre_window = "0d"' if clash[0] in pre else "")
        )
    inner = sorted(set(pre) & set(names))
    if inner:
        raise UsageError(f"objective {inner[0]!r} clashes with a pre-period covariate: rename it")
    chosen = [config.objectives[n] for n in names]
    before = [config.objectives[n] for n in config.objectives] if pre else []
    params: dict[str, Any] = {
        "classes": list(classes) if classes else None,
        "start": as_instant(start, "--start"),
        "end": as_instant(end, "--end"),
        "events": sorted({e for o in [*chosen, *before] for e in o.events}),
        "max_window": max(o.window_days for o in chosen) * 86400.0,
        "pre_window": config.uplift.pre_window_days * 86400.0,
    }
    aggregates = []
    for i, (name, objective) in enumerate(zip(pre, before, strict=True)):
        params[f"pre_events_{i}"] = list(objective.events)
        aggregates.append(f"{_objective_sql(i, objective, pre=True)} AS {ident(name)}")
    for i, (name, objective) in enumerate(zip(names, chosen, strict=True)):
        params[f"events_{i}"] = list(objective.events)
        params[f"window_{i}"] = objective.window_days * 86400.0
        aggregates.append(f"{_objective_sql(i, objective)} AS {ident(name)}")
    rest = "".join(f", u.{ident(c)}" for c in covariates)
    rest += "".join(f", p.{ident(n)}" for n in [*pre, *names])
    sql = (
        query("frames", "decision-frame")
        .replace("{objectives}", ",\n        ".join(aggregates))
        .replace("{rest}", rest)
    )
    return sql, params


@dataclass(frozen=True, slots=True)
class Design:
    """A numeric design matrix: `X` is (n, k) float64 and `names` its k column names.

    Numeric and boolean covariates keep their values (a missing value becomes the column
    mean plus a `<name>:missing` indicator); temporal ones become days since 1970;
    categorical ones become `<name>=<level>` indicators without their most frequent level
    (the reference). Columns constant over the rows are dropped: they carry no
    information and make the final-stage regression singular.
    """

    X: np.ndarray
    names: tuple[str, ...]


def encode_covariates(frame: pl.DataFrame, columns: Sequence[str]) -> Design:
    """The design matrix of `columns` of `frame` (which is not modified)."""
    import polars as pl

    blocks: list[np.ndarray] = []
    names: list[str] = []
    for name in columns:
        series = frame.get_column(name)
        dtype = series.dtype
        if dtype.is_temporal():
            if dtype == pl.Duration:
                series = series.dt.total_seconds() / 86400.0
            else:
                series = series.cast(pl.Datetime("us")).dt.epoch("s") / 86400.0
            dtype = series.dtype
        if dtype.is_numeric() or dtype == pl.Boolean:
            _numeric(series.cast(pl.Float64), name, blocks, names)
        else:
            _categorical(series.cast(pl.String), name, blocks, names)
    if not blocks:
        return Design(np.empty((frame.height, 0)), ())
    return Design(np.ascontiguousarray(np.column_stack(blocks)), tuple(names))


def _numeric(series: pl.Series, name: str, blocks: list[np.ndarray], names: list[str]) -> None:
    values = series.to_numpy().astype(np.float64, copy=True)
    missing = ~np.isfinite(values)
    if missing.all():
        return
    if missing.any():
        values[missing] = values[~missing].mean()
        blocks.append(missing.astype(np.float64))
        names.append(f"{name}:missing")
    if np.ptp(values) > 0:
        blocks.append(values)
        names.append(name)


def _categorical(series: pl.Series, name: str, blocks: list[np.ndarray], names: list[str]) -> None:
    import polars as pl

    values = series.fill_null("(null)")
    counts = values.value_counts(name="n").rows()
    # most frequent first, ties by name, so the reference level is stable across runs
    levels = [level for level, _ in sorted(counts, key=lambda r: (-r[1], r[0]))]
    kept = levels[: MAX_LEVELS - 1]
    if len(levels) > MAX_LEVELS - 1:
        values = values.set(~values.is_in(kept), "(other)")
        kept.append("(other)")
    for level in kept[1:]:
        column = (values == level).cast(pl.Float64).to_numpy()
        if column.any():
            blocks.append(column)
            names.append(f"{name}={level}")
