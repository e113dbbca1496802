"""From two tables to the surrogate index: checks the columns, encodes, calls the estimator.

The history has the surrogates S, the covariates X and the long-term outcome Y; the
experiment has the treatment W, S, X and optionally the logged propensity. Every problem
is one `UsageError` naming the table and the column, before any model is fitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from upshot.errors import UsageError

if TYPE_CHECKING:
    import polars as pl

    from upshot.attribution.longterm.backtest import Backtest
    from upshot.attribution.longterm.crossfit import Learners
    from upshot.attribution.longterm.surrogate import SurrogateEstimate

MIN_PER_FOLD = 2  # rows of each arm (and of the history) per fold, at the very least


def _require(frame: pl.DataFrame, name: str, columns: Sequence[str]) -> None:
    for col in columns:
        if col not in frame.columns:
            raise UsageError(f"{name}: no column {col!r} (columns: {', '.join(frame.columns)})")
        nulls = frame[col].null_count()
        if nulls:
            raise UsageError(f"{name}: column {col!r} has {nulls} missing values")


def _numeric(frame: pl.DataFrame, name: str, col: str) -> np.ndarray:
    import polars as pl

    series = frame[col]
    if series.dtype == pl.Boolean:
        series = series.cast(pl.Float64)
    if not series.dtype.is_numeric():
        raise UsageError(f"{name}: column {col!r} must be numeric, not {series.dtype}")
    values = series.cast(pl.Float64).to_numpy()
    if not np.isfinite(values).all():
        raise UsageError(f"{name}: column {col!r} has non-finite values")
    return values


def _dummy(frame: pl.DataFrame, col: str, level: str) -> np.ndarray:
    import polars as pl

    return (frame[col].cast(pl.String) == level).cast(pl.Float64).to_numpy()


def _covariates(
    history: pl.DataFrame, experiment: pl.DataFrame, names: tuple[str, str], cols: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Numeric covariates as they are; text ones one-hot encoded on the categories of both
    tables (the first, in sorted order, left out)."""
    import polars as pl

    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for col in cols:
        if history[col].dtype in (pl.String, pl.Categorical, pl.Enum):
            levels = sorted(
                set(history[col].cast(pl.String)) | set(experiment[col].cast(pl.String))
            )

            parts.extend(
                (_dummy(history, col, lv), _dummy(experiment, col, lv)) for lv in levels[1:]
            )
        else:
            parts.append((_numeric(history, names[0], col), _numeric(experiment, names[1], col)))
    if not parts:
        return np.empty((history.height, 0)), np.empty((experiment.height, 0))
    return (
        np.column_stack([p[0] for p in parts]),
        np.column_stack([p[1] for p in parts]),
    )


def surrogate_index_tables(
    history: pl.DataFrame,
    experiment: pl.DataFrame,
    *,
    treatment_col: str,
    surrogates: Sequence[str],
    long_term_col: str,
    covariates: Sequence[str] = (),
    propensity_col: str | None = None,
    names: tuple[str, str] = ("history", "experiment"),
    n_folds: int = 5,
    seed: int = 0,
    alpha: float = 0.05,
    learners: Learners | None = None,
) -> SurrogateEstimate:
    """The surrogate-index estimate from a history table and an experiment table.

    `names` label the two tables in error messages (file paths at the CLI).
    """
    from upshot.attribution.longterm.surrogate import surrogate_index

    hist_name, exp_name = names
    if not surrogates:
        raise UsageError("--surrogates: name at least one surrogate column")
    dupes = set(surrogates) & set(covariates)
    if dupes:
        raise UsageError(f"column {sorted(dupes)[0]!r} is both a surrogate and a covariate")
    _require(history, hist_name, [*surrogates, *covariates, long_term_col])
    extra = [propensity_col] if propensity_col else []
    _require(experiment, exp_name, [treatment_col, *surrogates, *covariates, *extra])
    w = _numeric(experiment, exp_name, treatment_col)
    if not np.isin(w, (0.0, 1.0)).all():
        raise UsageError(f"{exp_name}: column {treatment_col!r} must be 0/1 or true/false")
    least = MIN_PER_FOLD * n_folds
    arms = int(w.sum()), int((1 - w).sum())
    if min(arms) < least:
        raise UsageError(
            f"{exp_name}: column {treatment_col!r} has {arms[0]} treated and {arms[1]} "
            f"control rows; each arm needs at least {least}"
        )
    if history.height < least:
        raise UsageError(f"{hist_name}: {history.height} rows; the history needs at least {least}")
    propensity = None
    if propensity_col:
        propensity = _numeric(experiment, exp_name, propensity_col)
        if not ((propensity > 0) & (propensity < 1)).all():
            raise UsageError(f"{exp_name}: column {propensity_col!r} must be in (0, 1)")
    x_h, x_e = _covariates(history, experiment, names, covariates)
    return surrogate_index(
        np.column_stack([_numeric(history, hist_name, c) for c in surrogates]),
        x_h,
        _numeric(history, hist_name, long_term_col),
        w,
        np.column_stack([_numeric(experiment, exp_name, c) for c in surrogates]),
        x_e,
        propensity=propensity,
        surrogate_names=tuple(surrogates),
        n_folds=n_folds,
        seed=seed,
        alpha=alpha,
        learners=learners,
    )


def backtest_tables(
    history: pl.DataFrame,
    past: pl.DataFrame,
    *,
    window_col: str,
    class_col: str,
    treatment_col: str,
    surrogates: Sequence[str],
    long_term_col: str,
    covariates: Sequence[str] = (),
    propensity_col: str | None = None,
    names: tuple[str, str] = ("history", "past"),
    n_folds: int = 5,
    seed: int = 0,
    alpha: float = 0.05,
    learners: Learners | None = None,
) -> Backtest:
    """The backtest from a history table and a table of past experiments whose long-term
    column is now observed: one check per (window, class) of `past`, h learned on
    `history` each time."""
    import polars as pl

    from upshot.attribution.longterm.backtest import PastWindow, backtest

    hist_name, past_name = names
    if not surrogates:
        raise UsageError("--surrogates: name at least one surrogate column")
    _require(history, hist_name, [*surrogates, *covariates, long_term_col])
    extra = [propensity_col] if propensity_col else []
    needed = [window_col, class_col, treatment_col, *surrogates, *covariates, long_term_col]
    _require(past, past_name, [*needed, *extra])
    x_h, x_all = _covariates(history, past, names, covariates)
    s_h = np.column_stack([_numeric(history, hist_name, c) for c in surrogates])
    y_h = _numeric(history, hist_name, long_term_col)
    keys = past.select(window_col, class_col).unique(maintain_order=True).sort(window_col)
    least = MIN_PER_FOLD * n_folds
    windows = []
    row = pl.int_range(pl.len()).alias("_row")
    indexed = past.with_columns(row)
    for window, cls in keys.iter_rows():
        part = indexed.filter((pl.col(window_col) == window) & (pl.col(class_col) == cls))
        w = _numeric(part, past_name, treatment_col)
        label = f"{past_name}: {window_col} {window!r}, {class_col} {cls!r}"
        if not np.isin(w, (0.0, 1.0)).all():
            raise UsageError(f"{label}: column {treatment_col!r} must be 0/1 or true/false")
        if min(int(w.sum()), int((1 - w).sum())) < least:
            raise UsageError(f"{label}: each arm of {treatment_col!r} needs {least} rows")
        p = _numeric(part, past_name, propensity_col) if propensity_col else None
        if p is not None and not ((p > 0) & (p < 1)).all():
            raise UsageError(f"{label}: column {propensity_col!r} must be in (0, 1)")
        windows.append(
            PastWindow(
                window=str(window),
                message_class=str(cls),
                s_h=s_h,
                x_h=x_h,
                y_h=y_h,
                w=w,
                s=np.column_stack([_numeric(part, past_name, c) for c in surrogates]),
                x=x_all[part["_row"].to_numpy()],
                y=_numeric(part, past_name, long_term_col),
                propensity=p,
            )
        )
    return backtest(windows, n_folds=n_folds, seed=seed, alpha=alpha, learners=learners)
