"""One treatment arm against control: difference, relative lift, SE, CI, p-value.

- Welch's t (Satterthwaite degrees of freedom), or its large-sample normal version;
- two proportions: the unpooled (Wald) z statistic gives both the p-value and the CI, so
  they agree about significance (p < alpha exactly when the CI excludes 0);
- the relative lift treatment/control - 1 with its delta-method variance
  var_t / c**2 + t**2 var_c / c**4 (independent arms).

Inputs are `ArmEstimate`s, so the same code serves means, ratios and adjusted metrics;
arrays broadcast over a leading batch shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special

from upshot.experiments.estimates import ArmEstimate

Dist = Literal["t", "normal"]


@dataclass(frozen=True, slots=True, eq=False)
class Comparison:
    """Treatment minus control, arrays of the batch shape.

    `effect` in metric units; `rel` a fraction (0.02 = +2%); `statistic` is t or z; `df`
    is inf for normal tests; `pvalue` two-sided.
    """

    effect: np.ndarray
    se: np.ndarray
    statistic: np.ndarray
    df: np.ndarray
    pvalue: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    rel: np.ndarray
    rel_se: np.ndarray
    rel_ci_lower: np.ndarray
    rel_ci_upper: np.ndarray


def welch_df(var_t: np.ndarray, var_c: np.ndarray, n_t: np.ndarray, n_c: np.ndarray) -> np.ndarray:
    """Welch-Satterthwaite degrees of freedom from the variances of the two arm means."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (var_t + var_c) ** 2 / (var_t**2 / (n_t - 1.0) + var_c**2 / (n_c - 1.0))


def critical(alpha: float, df: np.ndarray) -> np.ndarray:
    """The two-sided critical value: t quantile for finite df, normal for inf (NaN df: NaN)."""
    df = np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore"):
        t = special.stdtrit(np.where(np.isfinite(df), df, 1.0), 1.0 - alpha / 2.0)
    return np.where(
        np.isinf(df), special.ndtri(1.0 - alpha / 2.0), np.where(np.isnan(df), np.nan, t)
    )


def _upper_tail(x: np.ndarray, df: np.ndarray) -> np.ndarray:
    """P(T >= x) for Student's t with `df` (normal where df is inf, NaN where df is NaN)."""
    # scipy.special's ufuncs: the rv_continuous methods cost ~100x more per scalar call
    df = np.asarray(df, dtype=float)
    x = np.asarray(x, dtype=float)
    with np.errstate(invalid="ignore"):
        t = special.stdtr(np.where(np.isfinite(df), df, 1.0), -x)
    return np.where(np.isinf(df), special.ndtr(-x), np.where(np.isnan(df), np.nan, t))


def two_sided_p(statistic: np.ndarray, df: np.ndarray) -> np.ndarray:
    return 2.0 * _upper_tail(np.abs(statistic), df)


def one_sided_p(statistic: np.ndarray, df: np.ndarray, greater: bool) -> np.ndarray:
    """P(T >= statistic) when `greater`, else P(T <= statistic)."""
    s = np.asarray(statistic, dtype=float)
    return _upper_tail(s if greater else -s, df)


def relative(control: ArmEstimate, treatment: ArmEstimate) -> tuple[np.ndarray, np.ndarray]:
    """treatment/control - 1 and its delta-method standard error (NaN if control is 0)."""
    c, t = control.value, treatment.value
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = c != 0
        rel = np.where(ok, t / c - 1.0, np.nan)
        var = np.where(ok, treatment.variance / c**2 + t**2 * control.variance / c**4, np.nan)
    return rel, np.sqrt(var)


def compare(
    control: ArmEstimate, treatment: ArmEstimate, *, alpha: float, dist: Dist
) -> Comparison:
    """Welch t (dist="t") or z (dist="normal") comparison of two arm estimates."""
    effect = treatment.value - control.value
    var = treatment.variance + control.variance
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(var)
        statistic = np.where(se > 0, effect / se, np.nan)
    if dist == "t":
        df = welch_df(treatment.variance, control.variance, treatment.n, control.n)
    else:
        df = np.full(np.shape(effect), np.inf)
    crit = critical(alpha, df)
    rel, rel_se = relative(control, treatment)
    return Comparison(
        effect=effect,
        se=se,
        statistic=statistic,
        df=df,
        pvalue=two_sided_p(statistic, df),
        ci_lower=effect - crit * se,
        ci_upper=effect + crit * se,
        rel=rel,
        rel_se=rel_se,
        rel_ci_lower=rel - crit * rel_se,
        rel_ci_upper=rel + crit * rel_se,
    )


def proportions(control: ArmEstimate, treatment: ArmEstimate, *, alpha: float) -> Comparison:
    """Two proportions: one z statistic, effect / unpooled SE, for the p-value and the CI.

    The pooled-variance z test and a Wald CI can disagree near the boundary (p < alpha
    with a CI that covers 0); one statistic for both cannot. The arms' variances are
    p(1 - p)/n (see `estimates.arm_estimates`).
    """
    return compare(control, treatment, alpha=alpha, dist="normal")
