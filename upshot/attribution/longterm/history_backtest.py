"""The warehouse backtest: each class's history decisions, per ISO week, projected with h
learned on the other classes and compared with their realized long-term outcome.

h of the other classes does not depend on the week, so it is fitted once per class and
shared by its weeks (`_class_h`). A backtest is a deterministic function of the history
arrays and `[longterm]`: the last few are kept in memory by a digest of those inputs, so
a process that projects several windows on the same history (`upshot demo` runs four
weeks whose histories are the same cohort) backtests it once.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

from upshot.config import surrogates_of

if TYPE_CHECKING:
    import polars as pl

    from upshot.attribution.longterm.backtest import Backtest
    from upshot.config import Config

_KEPT = 4  # backtests remembered per process (a few small result objects)
_DONE: dict[str, dict[str, Backtest | None]] = {}


def _digest(arrays: list[np.ndarray], config: Config, learners: Any) -> str:
    h = hashlib.sha256(repr(config.longterm).encode())
    h.update(repr(learners).encode())
    h.update(repr(config.objectives).encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes() if a.dtype != object else repr(a.tolist()).encode())
    return h.hexdigest()


def backtest_history(
    history: pl.DataFrame,
    s_h: np.ndarray,
    x_h: np.ndarray,
    y_h: np.ndarray,
    config: Config,
    learners: Any,
) -> dict[str, Backtest | None]:
    """Per outcome: each class's history decisions, per ISO week, projected with h learned
    on the other classes and compared with their realized outcome (see the module doc)."""
    import polars as pl

    cls = history.get_column("message_class").to_numpy()
    week = history.get_column("decided_at").dt.strftime("%G-W%V").to_numpy()
    w = history.get_column("treated").cast(pl.Float64).to_numpy()
    p = history.get_column("propensity")
    prop = np.clip(p.fill_null(0.5).cast(pl.Float64).to_numpy(), 1e-3, 1 - 1e-3)
    logged = p.null_count() == 0
    key = _digest([s_h, x_h, y_h, cls, week, w, prop, np.array(logged)], config, learners)
    if key not in _DONE:
        while len(_DONE) >= _KEPT:
            _DONE.pop(next(iter(_DONE)))
        _DONE[key] = _backtest(s_h, x_h, y_h, cls, week, w, prop if logged else None,
                               config, learners)  # fmt: skip
    return _DONE[key]


def _backtest(
    s_h: np.ndarray,
    x_h: np.ndarray,
    y_h: np.ndarray,
    cls: np.ndarray,
    week: np.ndarray,
    w: np.ndarray,
    prop: np.ndarray | None,
    config: Config,
    learners: Any,
) -> dict[str, Backtest | None]:
    from upshot.attribution.longterm.backtest import PastWindow, check_outcomes, summarize
    from upshot.attribution.longterm.crossfit import SHARE_RATIO

    lt = config.longterm
    outcomes = list(lt.outcomes)
    surrogates = surrogates_of(config)
    named = {name: config.objectives[name] for name in surrogates}
    primary = tuple(surrogates.index(lt.primary_of(o, named)) for o in outcomes)
    rows: list[list[Any]] = [[] for _ in outcomes]
    sx = np.hstack([s_h, x_h]).astype(float)
    h_of: dict[str, np.ndarray] = {}
    for i, (name, wk) in enumerate(sorted(set(zip(cls, week, strict=True)))):
        mine = (cls == name) & (week == wk)
        if min(w[mine].sum(), (1 - w[mine]).sum()) < lt.min_backtest_arm:
            continue
        other = cls != name
        if name not in h_of:  # h of the other classes, the same for every week of `name`
            h_of[name] = _class_h(sx, y_h, other, lt.folds, lt.seed + i, learners)
        past = PastWindow(
            window=str(wk), message_class=str(name), s_h=s_h[other], x_h=x_h[other],
            y_h=y_h[other], w=w[mine], s=s_h[mine], x=x_h[mine], y=y_h[mine],
            propensity=None if prop is None else prop[mine], primary=primary,
        )  # fmt: skip
        checked = check_outcomes(
            past, n_folds=lt.folds, seed=lt.seed + i, alpha=lt.alpha, learners=learners,
            nu=np.vstack([h_of[name][mine], h_of[name][other]]), share_ratio=SHARE_RATIO,
        )  # fmt: skip
        for j, row in enumerate(checked):
            rows[j].append(row)
    return {
        outcome: summarize(rows[j], lt.alpha) if rows[j] else None
        for j, outcome in enumerate(outcomes)
    }


def _class_h(
    sx: np.ndarray, y_h: np.ndarray, other: np.ndarray, n_folds: int, seed: int, learners: Any
) -> np.ndarray:
    """h learned on the `other` rows, cross-fitted on them (their own folds) and fit on
    all of them for the rest: one fit serves every backtest window of a class, where
    refitting it per window (its history does not change) cost windows x folds fits."""
    from upshot.attribution.longterm.crossfit import crossfit, fold_ids

    folds = fold_ids(int(other.sum()), n_folds, np.random.default_rng(seed))
    return crossfit(learners.regressor, sx, y_h, other, folds, classifier=False)
