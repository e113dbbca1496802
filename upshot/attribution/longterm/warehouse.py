"""The long-term projection of every message class in a window, from the warehouse.

`project_window` is what `upshot uplift` (warehouse path) and the weekly job call:

1. **History.** Decisions made in [cut − `longterm.history`, cut), cut = the window's
   start minus the longest outcome window, so every history outcome is complete before
   the window begins. One frame (`decision_frame`) holds their surrogates (the 7-day
   objectives, `longterm.surrogates`), covariates X (the users' columns, plus the
   `pre_<objective>` ones with `longterm.pre_period`) and each long-term outcome.
2. **Backtest** (`history_backtest`). Every class's history decisions, one ISO week at
   a time, are projected with h learned on the *other* classes' history (fitted once per
   class, shared by its weeks) and compared with their realized outcome
   (`backtest.check_outcomes`); a class flagged by `backtest.summarize` has the
   backtest status `surrogacy_violated` for that outcome, one without enough decisions
   per arm `not_backtested`, the others `ok`.
3. **Projection.** For each class and outcome, the surrogate index with h learned on the
   whole history and the class's decisions of the window as the experiment (the logged
   propensity as rho(x)); h is fitted once for all classes
   (`shared.surrogate_index_classes`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from upshot.config import surrogates_of
from upshot.results import ResultsMixin

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from upshot.attribution.longterm.backtest import Backtest
    from upshot.config import Config

ESTIMATOR = "surrogate_index"
BACKTEST_OK = "ok"
SURROGACY_VIOLATED = "surrogacy_violated"
NOT_BACKTESTED = "not_backtested"
INSUFFICIENT = "insufficient_data"
NAN = math.nan


@dataclass(frozen=True, slots=True)
class Projection:
    """The projected effect of one class on one long-term outcome, per decision, in the
    outcome's units (days for `distinct_days`, a probability for `any`), CI at 1 − alpha.
    `status` is `ok` or `insufficient_data` (NaN numbers); `backtest` is the class's
    backtest status for this outcome. `details` holds the short-term effects, the CI that
    would treat h as known, and the surrogates and covariates used."""

    message_class: str
    channel: str | None
    outcome: str
    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    n_treated: int
    n_control: int
    n_history: int
    status: str
    backtest: str
    details: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class LongTermResults(ResultsMixin):
    """Every projection of a window, and the backtest of each outcome (None when the
    history had too few decisions, or `longterm.backtest` is off)."""

    projections: tuple[Projection, ...]
    backtests: dict[str, Backtest | None]
    n_history: int
    history_start: str
    history_end: str

    def to_dicts(self) -> list[dict[str, Any]]:
        return [
            {f.name: getattr(p, f.name) for f in dataclasses.fields(p)[:-1]}
            for p in self.projections
        ]

    def uplift_rows(self) -> list[dict[str, Any]]:
        """The rows `upshot uplift` adds: the uplift estimate's fields, `projected: true`,
        the outcome as `objective`, its backtest status as `backtest`."""
        rows = []
        for p in self.projections:
            pvalue = NAN
            if p.se > 0 and math.isfinite(p.se):
                from scipy.stats import norm

                pvalue = float(2 * norm.sf(abs(p.estimate) / p.se))
            rows.append(
                {
                    "message_class": p.message_class,
                    "channel": p.channel,
                    "objective": p.outcome,
                    "segment": "all",
                    "estimator": ESTIMATOR,
                    "design": None,
                    "nuisance": "splines",
                    "ate": p.estimate,
                    "ate_se": p.se,
                    "ate_ci_lower": p.ci_lower,
                    "ate_ci_upper": p.ci_upper,
                    "pvalue": pvalue,
                    "naive_effect": NAN,
                    "n_treated": p.n_treated,
                    "n_control": p.n_control,
                    "clipped_share": NAN,
                    "method": "surrogate_index_eif",
                    "refute_placebo": NAN,
                    "refute_random_cause": NAN,
                    "refute_subset": NAN,
                    "refute_passed": None,
                    "qini": NAN,
                    "auuc": NAN,
                    "calibration": NAN,
                    "robustness_value": NAN,
                    "status": p.status,
                    "projected": True,
                    "backtest": p.backtest,
                    "details": {**p.details, "n_history": p.n_history},
                }
            )
        return rows


def history_span(config: Config, start: datetime) -> tuple[datetime, datetime]:
    """[cut − history, cut), cut = `start` minus the longest outcome window."""
    lt = config.longterm
    cut = start - timedelta(days=lt.horizon_days)
    return cut - timedelta(days=lt.history_days), cut


def history_frame(con: duckdb.DuckDBPyConnection, config: Config, start: datetime) -> pl.DataFrame:
    """The history decisions with their surrogates, covariates and long-term outcomes."""
    from upshot.attribution.uplift.frames import PRE, decision_frame

    lt = config.longterm
    lo, hi = history_span(config, start)
    both = dataclasses.replace(config, objectives={**config.objectives, **lt.outcomes})
    frame = decision_frame(
        con, both, start=lo, end=hi, objectives=[*surrogates_of(config), *lt.outcomes]
    )
    return frame.drop([PRE + name for name in lt.outcomes if PRE + name in frame.columns])


def _covariates(con: duckdb.DuckDBPyConnection, config: Config) -> list[str]:
    from upshot.attribution.uplift.frames import covariate_columns, pre_columns

    pre = pre_columns(config) if config.longterm.pre_period else []
    return [*covariate_columns(con), *pre]


def project_window(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    start: datetime,
    end: datetime,
    *,
    classes: Sequence[str] | None = None,
    progress: Any = None,
) -> LongTermResults | None:
    """Projections of every class (or `classes`) decided in [start, end); None when the
    warehouse holds no history decision yet (nothing to learn h from)."""
    from upshot.attribution.uplift.frames import decision_frame

    history = history_frame(con, config, start)
    lo, hi = history_span(config, start)
    if history.height == 0:
        return None
    experiment = decision_frame(
        con, config, classes=classes, start=start, end=end, objectives=list(surrogates_of(config))
    )
    return project_frames(
        history,
        experiment,
        config,
        _covariates(con, config),
        (lo.date().isoformat(), hi.date().isoformat()),
        progress,
    )


def _design(history: pl.DataFrame, experiment: pl.DataFrame, covariates: Sequence[str]) -> Any:
    """X of both frames, encoded together so the columns agree."""
    import polars as pl

    from upshot.attribution.uplift.frames import encode_covariates

    cols = list(covariates)
    both = pl.concat([history.select(cols), experiment.select(cols)], how="vertical_relaxed")
    x = encode_covariates(both, cols).X
    return x[: history.height], x[history.height :]


def _matrix(frame: pl.DataFrame, cols: Sequence[str]) -> np.ndarray:
    import polars as pl

    return frame.select([pl.col(c).cast(pl.Float64) for c in cols]).to_numpy()


def project_frames(
    history: pl.DataFrame,
    experiment: pl.DataFrame,
    config: Config,
    covariates: Sequence[str],
    span: tuple[str, str],
    progress: Any = None,
) -> LongTermResults:
    """Backtest and projections from a history frame and a window's frame (both as
    `decision_frame` returns them, the history with the outcome columns)."""
    import polars as pl

    from upshot.attribution.longterm.crossfit import indicator_learners
    from upshot.attribution.longterm.history_backtest import backtest_history
    from upshot.attribution.longterm.shared import ClassExperiment, surrogate_index_classes

    lt = config.longterm
    say = progress or (lambda _msg: None)
    surrogates = surrogates_of(config)
    outcomes = list(lt.outcomes)
    if lt.max_history < history.height:
        history = history.sample(lt.max_history, seed=lt.seed)
    x_h, x_e = _design(history, experiment, covariates)
    s_h, s_e = _matrix(history, surrogates), _matrix(experiment, surrogates)
    y_h = _matrix(history, outcomes)
    learners = indicator_learners()
    enough = history.height >= lt.min_history
    backtests: dict[str, Backtest | None] = dict.fromkeys(outcomes)
    if enough and lt.backtest:
        say(f"longterm: backtest on {history.height:,} history decisions")
        backtests = backtest_history(history, s_h, x_h, y_h, config, learners)
    least = 2 * lt.folds
    by_class = experiment.with_row_index("_row").partition_by("message_class", as_dict=True)
    parts = sorted(by_class.items(), key=lambda kv: str(kv[0][0]))
    fitted: dict[str, ClassExperiment] = {}
    for (cls,), part in parts:
        rows = part.get_column("_row").to_numpy()
        w = part.get_column("treated").cast(pl.Float64).to_numpy()
        p = part.get_column("propensity")
        propensity = None
        if p.null_count() == 0:
            propensity = np.clip(p.cast(pl.Float64).to_numpy(), 1e-3, 1 - 1e-3)
        if (
            enough
            and min(w.sum(), len(w) - w.sum()) >= least
            and len(w) >= config.uplift.min_decisions
        ):
            fitted[str(cls)] = ClassExperiment(w, s_e[rows], x_e[rows], propensity)
    estimated: dict[str, list[Any]] = {}
    if fitted:
        n_fitted = sum(e.w.size for e in fitted.values())
        say(f"longterm: projecting {len(fitted)} classes ({n_fitted:,} decisions)")
        results = surrogate_index_classes(
            s_h, x_h, y_h, list(fitted.values()), surrogate_names=surrogates,
            n_folds=lt.folds, seed=lt.seed, alpha=lt.alpha, learners=learners,
        )  # fmt: skip
        estimated = dict(zip(fitted, results, strict=True))
    projections = []
    for (cls,), part in parts:
        w = part.get_column("treated").cast(pl.Float64).to_numpy()
        n_t, n_c = int(w.sum()), int(len(w) - w.sum())
        estimates = estimated.get(str(cls), [None] * len(outcomes))
        for outcome, est in zip(outcomes, estimates, strict=True):
            projections.append(
                _projection(str(cls), part.get_column("channel")[0], outcome, est,
                            (n_t, n_c, history.height), _status(backtests[outcome], str(cls)))
            )  # fmt: skip
    return LongTermResults(tuple(projections), backtests, history.height, *span)


def _status(bt: Backtest | None, cls: str) -> str:
    check = {c.message_class: c for c in bt.classes} if bt else {}
    if cls not in check:
        return NOT_BACKTESTED
    return SURROGACY_VIOLATED if check[cls].flagged else BACKTEST_OK


def _projection(
    cls: str, channel: str | None, outcome: str, est: Any, sizes: tuple[int, int, int], bt: str
) -> Projection:
    n_t, n_c, n_h = sizes
    if est is None:
        return Projection(cls, channel, outcome, NAN, NAN, NAN, NAN, n_t, n_c, n_h,
                          INSUFFICIENT, bt)  # fmt: skip
    details = {"short_term": est.to_dict()["short_term"], "se_h_known": est.se_h_known}
    return Projection(cls, channel, outcome, est.estimate, est.se, est.ci_lower, est.ci_upper,
                      n_t, n_c, n_h, "ok", bt, details)  # fmt: skip


def write_projections(
    con: duckdb.DuckDBPyConnection, results: LongTermResults, *, run_id: str, week: str | None
) -> None:
    """Append a run's projections and backtest rows (call inside a transaction)."""
    import polars as pl

    from upshot.results import dumps
    from upshot.sql import query

    rows = [{**row, "details": dumps(p.details)} for row, p in
            zip(results.to_dicts(), results.projections, strict=True)]  # fmt: skip
    schema = {"channel": pl.String, "details": pl.String}
    projections = pl.DataFrame(rows, schema_overrides=schema, infer_schema_length=None)
    tested: list[dict[str, Any]] = []
    for outcome, bt in results.backtests.items():
        flagged = set(bt.flagged) if bt else set()
        tested.extend(
            {**r, "outcome": outcome, "flagged": r["message_class"] in flagged}
            for r in (bt.to_dicts() if bt else [])
        )
    backtest = pl.DataFrame(tested, infer_schema_length=None) if tested else None
    con.register("new_projections", projections.to_arrow())
    try:
        con.execute(query("longterm", "insert-estimates"), {"run_id": run_id, "week": week})
        if backtest is not None:
            con.register("new_backtest", backtest.to_arrow())
            con.execute(query("longterm", "insert-backtest"), {"run_id": run_id})
    finally:
        con.unregister("new_projections")
        if backtest is not None:
            con.unregister("new_backtest")
