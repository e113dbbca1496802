"""The value of sending a message: Σ rate × uplift over objectives, with an honest CI.

The objective uplifts of one class are estimated on the same decisions, so they are
correlated (a send that converts a user also adds streamed minutes). The variance of the
value is therefore `rᵀ Σ r` with Σ the joint covariance of the ATE estimates, not the sum
of the per-objective variances. When the joint covariance is missing, the value falls back
to independence and says so in `covariance`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np

CovarianceSource = Literal["joint", "partial", "independent"]


def z_value(alpha: float) -> float:
    """The two-sided normal critical value for a `1 - alpha` interval."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha == {alpha}, must be in (0, 1)")
    return NormalDist().inv_cdf(1 - alpha / 2)


@dataclass(frozen=True, slots=True)
class Component:
    """One objective's part of a value.

    `uplift*` are in the objective's own units per decision (a probability for `any`
    objectives, minutes or days for sums); `rate` is value units per unit of uplift and
    `contribution = rate × uplift` is value units per decision.
    """

    objective: str
    rate: float
    uplift: float
    uplift_se: float
    uplift_ci_lower: float
    uplift_ci_upper: float
    contribution: float


@dataclass(frozen=True, slots=True)
class Value:
    """Σ rate × uplift for one class (or class × segment), in value units per decision.

    `covariance` says how `value_se` was obtained: `joint` (every pair of rated objectives
    had a covariance), `partial` (some pairs missing, taken as 0) or `independent` (no
    pairs: the off-diagonal terms are taken as 0, which is usually too narrow when the
    objectives move together). NaN with a non-ok `status` when it cannot be computed.
    """

    value: float
    value_se: float
    value_ci_lower: float
    value_ci_upper: float
    components: tuple[Component, ...]
    covariance: CovarianceSource
    status: str
    reason: str | None = None

    def __post_init__(self) -> None:
        # a decomposition must add up to its total, or one of them is wrong
        if self.status == "ok":
            total = math.fsum(c.contribution for c in self.components)
            if not math.isclose(total, self.value, rel_tol=1e-9, abs_tol=1e-12):
                raise ValueError(f"components add up to {total}, value is {self.value}")


def combine(
    rates: Mapping[str, float],
    uplift: Mapping[str, float],
    uplift_se: Mapping[str, float],
    covariance: Mapping[tuple[str, str], float] | None = None,
    *,
    alpha: float = 0.05,
) -> Value:
    """The value `Σ_k rates[k] × uplift[k]` with its `1 - alpha` normal CI.

    `covariance` maps objective pairs `(a, b)` to the covariance of their ATE estimates;
    either order counts, and the diagonal comes from `uplift_se` when it is absent.
    Objectives with a zero rate drop out. A rated objective without a finite uplift and
    standard error makes the value NaN with status `insufficient_data`.
    """
    z = z_value(alpha)
    rated = [k for k in sorted(rates) if rates[k] != 0]
    missing = [k for k in rated if not _finite(uplift.get(k)) or not _finite(uplift_se.get(k))]
    components = tuple(
        _component(k, rates[k], uplift.get(k, math.nan), uplift_se.get(k, math.nan), z)
        for k in rated
    )
    if missing:
        return Value(
            *(math.nan,) * 4,
            components,
            "independent",
            "insufficient_data",
            f"no estimate for objective {', '.join(missing)}",
        )
    r = np.array([rates[k] for k in rated], dtype=float)
    sigma, source = covariance_matrix(rated, uplift_se, covariance or {})
    variance = float(r @ sigma @ r)
    if variance < -1e-12 * float(np.abs(r) @ np.abs(sigma) @ np.abs(r)):
        return Value(
            *(math.nan,) * 4,
            components,
            source,
            "failed:covariance_not_psd",
            "the joint covariance gives a negative variance",
        )
    value = math.fsum(c.contribution for c in components)
    se = math.sqrt(max(variance, 0.0))
    return Value(value, se, value - z * se, value + z * se, components, source, "ok")


def covariance_matrix(
    objectives: list[str],
    uplift_se: Mapping[str, float],
    covariance: Mapping[tuple[str, str], float],
) -> tuple[np.ndarray, CovarianceSource]:
    """The k × k covariance of the ATE estimates of `objectives`, and where it came from."""
    k = len(objectives)
    sigma = np.zeros((k, k))
    found = 0
    for i, a in enumerate(objectives):
        sigma[i, i] = _pair(covariance, a, a, uplift_se[a] ** 2)
        for j in range(i + 1, k):
            b = objectives[j]
            cov = _pair(covariance, a, b, math.nan)
            if math.isfinite(cov):
                found += 1
                sigma[i, j] = sigma[j, i] = cov
    pairs = k * (k - 1) // 2
    source: CovarianceSource = "joint" if found == pairs else "partial" if found else "independent"
    return sigma, source


def _pair(covariance: Mapping[tuple[str, str], float], a: str, b: str, default: float) -> float:
    value = covariance.get((a, b), covariance.get((b, a)))
    return float(value) if value is not None and _finite(value) else default


def _component(objective: str, rate: float, uplift: float, se: float, z: float) -> Component:
    return Component(
        objective=objective,
        rate=float(rate),
        uplift=float(uplift),
        uplift_se=float(se),
        uplift_ci_lower=float(uplift - z * se),
        uplift_ci_upper=float(uplift + z * se),
        contribution=float(rate * uplift),
    )


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
