"""Ratio metrics (clicks per send, minutes per active day) by the delta method.

A ratio metric's arm value is sum(numerator) / sum(denominator) over the arm's users, a
smooth function of two means. Its variance is the gradient's quadratic form with the
covariance of the means, which is exactly the variance of the linearized per-user values
(num - R * den) / mean(den): the numbers need only the sufficient statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def value_and_gradient(
    mu: np.ndarray, names: Sequence[str], numerator: str, denominator: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """The metric's value and its gradient in the variables' means.

    `mu` has shape `batch + (k,)`; returns the value, shape `batch`, and the gradient,
    shape `batch + (k,)`. A mean metric (no denominator) has a unit gradient; a ratio
    num/den has d/dnum = 1/den and d/dden = -num/den**2 (NaN when the mean denominator
    is zero, which the caller reports as `zero_denominator`).
    """
    names = list(names)
    i = names.index(numerator)
    grad = np.zeros(mu.shape)
    if denominator is None:
        grad[..., i] = 1.0
        return mu[..., i], grad
    j = names.index(denominator)
    num, den = mu[..., i], mu[..., j]
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(den != 0, num / den, np.nan)
        grad[..., i] = np.where(den != 0, 1.0 / den, np.nan)
        grad[..., j] = np.where(den != 0, -num / den**2, np.nan)
    return value, grad


def linearized(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Per-unit influence values of sum(num)/sum(den): their mean's variance is the ratio's.

    For tests and diagnostics on unit-level data; the engine never sees unit-level rows.
    """
    ratio = num.sum() / den.sum()
    return (num - ratio * den) / den.mean()
