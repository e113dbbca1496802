"""Empirical-Bayes shrinkage of noisy class values toward their group's mean.

The normal-normal model: an estimate `y_i` with standard error `s_i` measures a true value
`θ_i` drawn around the group's (a channel's) mean `μ` with second moment `μ2 = E(θ - μ)²`.
`μ` and `τ̂² ` are estimated from the group's own estimates, by REML (default) or the
DerSimonian–Laird method of moments. The shrunk value is `μ + w_i (y_i - μ)`, with
`w_i = μ2 / (μ2 + s_i²)` and `μ2 = max(τ̂², floor)`; `shrinkage` is `B_i = 1 - w_i`: 0 keeps
the estimate, 1 replaces it with the group mean. The floor is the posterior-mean
truncation of Armstrong, Kolesár and Plagborg-Møller (2022), `2 Σ s⁴ / (k Σ s²)`: when
`τ̂ = 0` (frequent with few classes even when they differ) the estimates are not pooled
into one number with an interval of width 0.

The interval is their robust EBCI (`ebci`): `θ̂_i ± cva(t_i) sd_i`, where `sd_i² =
w_i² s_i² + (1 - w_i)² Var(μ̂)` is the noise of `θ̂_i` and `t_i = (1 - w_i)² μ2 / sd_i²` the
second moment of its normalised bias `(1 - w_i)(θ_i - μ) / sd_i`. It covers the true values
of a group on average at 1 - α whatever their distribution, given `μ2`, unlike the posterior
interval, which covered 59–82% when `τ̂ = 0`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np

from upshot.attribution.weights.combine import z_value
from upshot.attribution.weights.ebci import cva

Method = Literal["reml", "moments"]
K = TypeVar("K", bound=Hashable)
_REML_TOL = 1e-12
_REML_MAX_ITER = 1000


@dataclass(frozen=True, slots=True)
class Prior:
    """The fitted group prior: mean `mean` (value units), spread `tau` (value units).

    `mean_se` is the standard error of `mean`, `tau2_var` the variance of `tau²`
    (value units⁴); `k` estimates entered the fit; `scope` names the group it was fitted on;
    `mu2_floor` the smallest second moment shrinkage assumes (value units², see the module).
    """

    mean: float
    mean_se: float
    tau: float
    k: int
    method: Method
    scope: str
    tau2_var: float = 0.0
    mu2_floor: float = 0.0

    @property
    def mu2(self) -> float:
        """The second moment of the true values about `mean` that shrinkage uses."""
        return max(self.tau * self.tau, self.mu2_floor)


@dataclass(frozen=True, slots=True)
class Shrunk:
    """One estimate after shrinkage: the shrunk value, the sd of its noise, its robust CI
    (wider than ± z·se: it allows for the shrinkage bias) and `shrinkage` in [0, 1]."""

    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    shrinkage: float


def tau2_moments(y: np.ndarray, v: np.ndarray) -> float:
    """DerSimonian–Laird τ²: `(Q - (k - 1)) / (Σw - Σw²/Σw)`, truncated at 0."""
    y, v = _arrays(y, v)
    w = 1 / v
    mu = float(w @ y / w.sum())
    q = float(w @ (y - mu) ** 2)
    denominator = float(w.sum() - (w @ w) / w.sum())
    if denominator <= 0:
        return 0.0
    return max(0.0, (q - (len(y) - 1)) / denominator)


def tau2_reml(y: np.ndarray, v: np.ndarray) -> float:
    """REML τ² by the fixed-point iteration of Viechtbauer (2005), truncated at 0."""
    y, v = _arrays(y, v)
    tau2 = tau2_moments(y, v)
    for _ in range(_REML_MAX_ITER):
        w = 1 / (v + tau2)
        mu = float(w @ y / w.sum())
        w2 = w * w
        updated = max(0.0, float(w2 @ ((y - mu) ** 2 - v) / w2.sum() + 1 / w.sum()))
        if abs(updated - tau2) <= _REML_TOL * max(1.0, tau2):
            return updated
        tau2 = updated
    return tau2


def fit_prior(y: np.ndarray, se: np.ndarray, method: Method = "reml", scope: str = "") -> Prior:
    """The prior `(μ, τ)` of one group from its estimates `y` and standard errors `se`."""
    y, v = _arrays(y, np.asarray(se, dtype=float) ** 2)
    if len(y) < 2:
        raise ValueError(f"{len(y)} estimates, need at least 2 to fit a prior")
    tau2 = tau2_reml(y, v) if method == "reml" else tau2_moments(y, v)
    w = 1 / (v + tau2)
    mean = float(w @ y / w.sum())
    # the REML information for τ²: ½ tr(P²), P = W - w wᵀ / Σw
    w2 = float(w @ w)
    information = 0.5 * (w2 - 2 * float((w**3).sum()) / w.sum() + (w2 / w.sum()) ** 2)
    tau2_var = 1 / information if information > 0 else math.inf
    floor = mu2_floor(y, v)
    return Prior(
        mean, math.sqrt(1 / w.sum()), math.sqrt(tau2), len(y), method, scope, tau2_var, floor
    )


def mu2_floor(y: np.ndarray, v: np.ndarray) -> float:
    """The flat-prior limited-information (FPLIB) estimate of `μ2` of AKP (2022): the mean
    of a normal truncated at 0, centred at the moment estimate `mean((y - ȳ)² - v)` with
    its sampling variance. Positive even when `τ̂ = 0`; never below the PMT floor
    `2 Σ v² / (k Σ v)`."""
    from scipy.stats import norm

    y, v = _arrays(y, v)
    k = len(y)
    excess = (y - y.mean()) ** 2 - v
    m = float(excess.mean())
    spread = math.sqrt(float(excess.var(ddof=1)) / k) if k > 1 else 0.0
    pmt = 2 * float((v * v).sum()) / (k * float(v.sum()))
    if spread == 0:
        return max(m, pmt)
    z = m / spread
    # E[X | X > 0] for X ~ N(m, spread²), through the log of the Mills ratio for stability
    tail = spread * math.exp(float(norm.logpdf(z) - norm.logcdf(z)))
    return max(m + tail, pmt)


def shrink(estimate: float, se: float, prior: Prior, *, alpha: float = 0.05) -> Shrunk:
    """The shrunk estimate and its robust EB interval under `prior`; NaN in, NaN out."""
    if not (math.isfinite(estimate) and math.isfinite(se)):
        return Shrunk(math.nan, math.nan, math.nan, math.nan, math.nan)
    v, mu2 = se * se, prior.mu2
    # an exact estimate (se 0) keeps its value; a degenerate prior (μ2 0) takes the mean
    w = 1.0 if v == 0 else mu2 / (mu2 + v)
    shrunk = prior.mean + w * (estimate - prior.mean)
    sd = math.sqrt(w * w * v + ((1 - w) * prior.mean_se) ** 2)
    if sd == 0:
        return Shrunk(shrunk, 0.0, shrunk, shrunk, 1 - w)
    t = (1 - w) ** 2 * mu2 / (sd * sd)  # E(normalised bias²)
    half = float(cva(t, alpha)) * sd
    return Shrunk(shrunk, sd, shrunk - half, shrunk + half, 1 - w)


def shrink_groups(
    estimates: Mapping[K, tuple[str, float, float]],
    *,
    method: Method = "reml",
    min_k: int = 3,
    alpha: float = 0.05,
) -> tuple[dict[K, Shrunk], dict[str, Prior]]:
    """Shrink each estimate `key -> (group, estimate, se)` toward its group's mean.

    Only finite estimates with a positive standard error enter a prior. A group with fewer
    than `min_k` of them has too little to estimate its spread, so it borrows the prior
    fitted on every estimate (scope `*`); with fewer than 2 in all, nothing is shrunk
    (shrinkage 0). Returns the shrunk estimates and the priors by group.
    """
    usable = {
        key: (group, y, se)
        for key, (group, y, se) in estimates.items()
        if math.isfinite(y) and math.isfinite(se) and se > 0
    }
    everything = _fit([(y, se) for _, y, se in usable.values()], method, "*")
    priors: dict[str, Prior] = {}
    for group in sorted({group for group, _, _ in estimates.values()}):
        members = [(y, se) for g, y, se in usable.values() if g == group]
        fitted = _fit(members, method, group) if len(members) >= min_k else None
        prior = fitted or everything
        if prior is not None:
            priors[group] = prior
    shrunk: dict[K, Shrunk] = {}
    z = z_value(alpha)
    for key, (group, y, se) in estimates.items():
        if group in priors:
            shrunk[key] = shrink(y, se, priors[group], alpha=alpha)
        elif math.isfinite(y) and math.isfinite(se):
            shrunk[key] = Shrunk(y, se, y - z * se, y + z * se, 0.0)
        else:
            shrunk[key] = Shrunk(math.nan, math.nan, math.nan, math.nan, math.nan)
    return shrunk, priors


def _fit(members: Sequence[tuple[float, float]], method: Method, scope: str) -> Prior | None:
    if len(members) < 2:
        return None
    y = np.array([m[0] for m in members])
    se = np.array([m[1] for m in members])
    return fit_prior(y, se, method, scope)


def _arrays(y: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float)
    v = np.asarray(v, dtype=float)
    if y.shape != v.shape or y.ndim != 1:
        raise ValueError(f"estimates {y.shape} and variances {v.shape} must be equal 1-d shapes")
    if not (np.isfinite(y).all() and np.isfinite(v).all() and (v > 0).all()):
        raise ValueError("estimates must be finite with positive variances")
    return y, v
