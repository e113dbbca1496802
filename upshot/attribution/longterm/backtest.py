"""The surrogacy check: projected long-term effects against the realized ones, per class.

For every past window whose long-term outcome is now observed, the experiment of each
class is projected with the surrogate index (h learned on the history before it, Y of the
window hidden) and its realized long-term effect is measured directly (AIPW on Y with the
same propensity and folds). Both are means over the same units, so the standard error of
their difference comes from the difference of their influence scores:

    se_diff^2 = var(A - R)/n_e + n_h var(B)/n_e^2

(A, B the projection's experiment and history scores, R the realized AIPW score). A
window misses when |projected - realized| > z se_diff. A class is flagged when its
inverse-variance pooled difference over windows is beyond z at alpha / (number of
classes) (Bonferroni: a clean set of classes is flagged with chance <= alpha).

Beside it, a naive projection "long-term = short-term effect x constant": the short-term
effect on the outcome's *primary* surrogate (`PastWindow.primary`; the warehouse names it
per outcome in `longterm.primary`, e.g. 7-day retention for retention_180d; the first
surrogate when not named) times the OLS slope of Y on that surrogate in the history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from upshot.attribution.longterm.crossfit import Learners, default_learners, fit_history_share
from upshot.attribution.longterm.surrogate import (
    FoldPlan,
    aipw_scores,
    fit_nuisances,
    history_scores,
)
from upshot.results import ResultsMixin


@dataclass(frozen=True)
class PastWindow:
    """One class in one past window: its history (s_h (n_h, k), x_h (n_h, p), y_h) and
    its experiment (w, s (n_e, k), x (n_e, p), the now realized y, and the logged
    propensity of a targeted design or None). `primary` is, per outcome, the column of s
    the naive projection scales (None: the first for every outcome)."""

    window: str
    message_class: str
    s_h: np.ndarray
    x_h: np.ndarray
    y_h: np.ndarray
    w: np.ndarray
    s: np.ndarray
    x: np.ndarray
    y: np.ndarray
    propensity: np.ndarray | None = None
    primary: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class BacktestRow:
    """Projected and realized long-term effect of one class in one window (units of Y);
    `naive` is short-term effect x constant; `missed` when the difference is beyond its
    CI."""

    window: str
    message_class: str
    projected: float
    projected_ci_lower: float
    projected_ci_upper: float
    realized: float
    realized_se: float
    difference: float
    difference_se: float
    naive: float
    missed: bool


@dataclass(frozen=True, slots=True)
class ClassCheck:
    """One class over its windows: the pooled (inverse-variance) difference projected -
    realized, its se, and whether it is flagged (surrogacy fails for this class)."""

    message_class: str
    n_windows: int
    difference: float
    difference_se: float
    flagged: bool


@dataclass(frozen=True, slots=True)
class Backtest(ResultsMixin):
    """Every window x class (`rows`), every class (`classes`) and the calibration:
    `calibration_slope` (OLS slope of realized on projected over rows; 1 is ideal,
    attenuated by the noise of the projections), `coverage` (share of rows not missed),
    and the root mean squared gap to the realized effect of the surrogate index
    (`rmse_projected`) and of the naive projection (`rmse_naive`)."""

    rows: tuple[BacktestRow, ...]
    classes: tuple[ClassCheck, ...]
    calibration_slope: float
    coverage: float
    rmse_projected: float
    rmse_naive: float

    def to_dicts(self) -> list[dict[str, Any]]:
        return [{f: getattr(r, f) for f in BacktestRow.__dataclass_fields__} for r in self.rows]

    @property
    def flagged(self) -> tuple[str, ...]:
        return tuple(c.message_class for c in self.classes if c.flagged)


def _z(alpha: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - alpha / 2))


def check_window(
    past: PastWindow, *, n_folds: int, seed: int, alpha: float, learners: Learners
) -> BacktestRow:
    """Project one class's past window and compare with what was realized."""
    (row,) = check_outcomes(past, n_folds=n_folds, seed=seed, alpha=alpha, learners=learners)
    return row


def check_outcomes(
    past: PastWindow,
    *,
    n_folds: int,
    seed: int,
    alpha: float,
    learners: Learners,
    nu: np.ndarray | None = None,
    share_ratio: float | None = None,
) -> list[BacktestRow]:
    """`check_window` for m outcomes at once: `y_h` (n_h, m) and `y` (n_e, m) (or 1-D
    for one), one row per outcome. Every nuisance but h and its arm means is shared.
    `nu` (n_e + n_h, m), experiment rows first, is h already cross-fitted on this history
    (`warehouse.backtest_history` fits it once per class for all its windows).
    `share_ratio` caps the history rows the history share learns from at that many per
    window row (`crossfit.fit_history_share`; None: all of them)."""
    y_h = past.y_h.reshape(past.y_h.shape[0], -1).astype(float)
    y_e = past.y.reshape(past.y.shape[0], -1).astype(float)
    n_e, n_h, m = past.w.shape[0], y_h.shape[0], y_h.shape[1]
    w = np.asarray(past.w, dtype=float)
    s = np.vstack([past.s, past.s_h]).astype(float)
    x = np.vstack([past.x, past.x_h]).astype(float)
    y = np.vstack([np.zeros((n_e, m)), y_h])
    plan = FoldPlan.shared(n_e, n_h, n_folds, np.random.default_rng(seed))
    primary = list(past.primary or (0,) * m)
    if len(primary) != m:
        raise ValueError(f"{len(primary)} primary surrogates for {m} outcomes")
    extra = np.column_stack([past.s[:, primary], y_e])
    gamma = None
    if share_ratio is not None:
        sx = np.hstack([s, x])
        gamma = fit_history_share(
            learners.classifier, sx, n_e, plan.pooled, ratio=share_ratio, seed=seed
        )
    nuis = fit_nuisances(
        w, s, x, y, n_e, plan, learners, propensity=past.propensity, extra_targets=extra,
        nu=nu, gamma=gamma,
    )  # fmt: skip
    rho = nuis.rho_x[:n_e]
    a = aipw_scores(w, nuis.nu[:n_e], nuis.mu1[:, :m], nuis.mu0[:, :m], rho)
    b = history_scores(y_h, nuis, n_e)
    scores = aipw_scores(w, extra, nuis.mu1[:, m:], nuis.mu0[:, m:], rho)
    short, realized = scores[:, :m], scores[:, m:]
    z = _z(alpha)
    rows = []
    for j in range(m):
        projected = float(a[:, j].mean() + b[:, j].sum() / n_e)
        var_b = n_h * float(np.var(b[:, j], ddof=1)) / n_e**2
        se = float(np.sqrt(np.var(a[:, j], ddof=1) / n_e + var_b))
        diff_se = float(np.sqrt(np.var(a[:, j] - realized[:, j], ddof=1) / n_e + var_b))
        s_j = past.s_h[:, primary[j]]
        constant = float(np.cov(s_j, y_h[:, j])[0, 1] / np.var(s_j, ddof=1))
        diff = projected - float(realized[:, j].mean())
        rows.append(
            BacktestRow(
                window=past.window,
                message_class=past.message_class,
                projected=projected,
                projected_ci_lower=projected - z * se,
                projected_ci_upper=projected + z * se,
                realized=float(realized[:, j].mean()),
                realized_se=float(realized[:, j].std(ddof=1) / np.sqrt(n_e)),
                difference=diff,
                difference_se=diff_se,
                naive=constant * float(short[:, j].mean()),
                missed=abs(diff) > z * diff_se,
            )
        )
    return rows


def summarize(rows: Sequence[BacktestRow], alpha: float) -> Backtest:
    """Per-class flags and the calibration of a set of checked windows."""
    names = sorted({r.message_class for r in rows})
    z = _z(alpha / max(len(names), 1))
    classes = []
    for name in names:
        mine = [r for r in rows if r.message_class == name]
        weights = np.array([1 / r.difference_se**2 for r in mine])
        diff = float(np.sum(weights * [r.difference for r in mine]) / weights.sum())
        se = float(1 / np.sqrt(weights.sum()))
        classes.append(ClassCheck(name, len(mine), diff, se, abs(diff) > z * se))
    projected = np.array([r.projected for r in rows])
    realized = np.array([r.realized for r in rows])
    naive = np.array([r.naive for r in rows])
    slope = (
        float(np.cov(projected, realized)[0, 1] / np.var(projected, ddof=1))
        if len(rows) > 1 and np.var(projected) > 0
        else float("nan")
    )
    return Backtest(
        rows=tuple(rows),
        classes=tuple(classes),
        calibration_slope=slope,
        coverage=float(np.mean([not r.missed for r in rows])) if rows else float("nan"),
        rmse_projected=float(np.sqrt(np.mean((projected - realized) ** 2))),
        rmse_naive=float(np.sqrt(np.mean((naive - realized) ** 2))),
    )


def backtest(
    windows: Sequence[PastWindow],
    *,
    n_folds: int = 5,
    seed: int = 0,
    alpha: float = 0.05,
    learners: Learners | None = None,
) -> Backtest:
    """Check every past window of every class, then summarize (see the module doc)."""
    learners = learners or default_learners()
    rows = [
        check_window(p, n_folds=n_folds, seed=seed + i, alpha=alpha, learners=learners)
        for i, p in enumerate(windows)
    ]
    return summarize(rows, alpha)
