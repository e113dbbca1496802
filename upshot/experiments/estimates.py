"""Per-arm estimates of one metric from the arms' sufficient statistics.

A `Target` says what the metric is (a mean, or a ratio of two variables) and which
covariates adjust it; `arm_estimates` turns each arm's `Moments` into an `ArmEstimate`:
the arm's (adjusted) value and the variance of that value. The arms are independent
given the slope, so a comparison needs only two estimates (see `effects`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from upshot.experiments import cuped
from upshot.experiments.ratio import value_and_gradient
from upshot.experiments.stats import Moments, missing_name

Adjust = Literal["none", "cuped", "lin"]


@dataclass(frozen=True, slots=True)
class Target:
    """A metric in terms of variables: numerator / denominator (None: a mean), covariates."""

    numerator: str
    denominator: str | None = None
    covariates: tuple[str, ...] = ()
    binary: bool = False  # a 0/1 mean without covariates is tested as a proportion
    indicators: bool = False  # adjust for each covariate's missing indicator too

    @property
    def adjusters(self) -> tuple[str, ...]:
        """The regressors of the adjustment: covariates, then their missing indicators."""
        if not self.indicators:
            return self.covariates
        return self.covariates + tuple(missing_name(c) for c in self.covariates)

    @property
    def case(self) -> tuple[str, tuple[str, ...]]:
        """(column prefix, required variables) of the complete case the metric is analysed
        on: the users whose numerator and denominator are both known."""
        required = tuple(v for v in (self.numerator, self.denominator) if v is not None)
        return f"cc({','.join(required)})::", required

    @property
    def variables(self) -> tuple[str, ...]:
        found: list[str] = []
        for v in (self.numerator, self.denominator, *self.adjusters):
            if v is not None and v not in found:
                found.append(v)
        return tuple(found)

    @property
    def kind(self) -> str:
        if self.denominator is not None:
            return "ratio"
        return "proportion" if self.binary else "mean"


@dataclass(frozen=True, slots=True, eq=False)
class ArmEstimate:
    """One arm's estimate; arrays of the batch shape.

    `value`: the arm's metric (adjusted when covariates were used), in metric units per
    user (a mean) or per denominator unit (a ratio); `variance`: the variance of `value`
    (per-unit variance / n); `raw`, `raw_variance`: the same without adjustment; `n` users.
    """

    value: np.ndarray
    variance: np.ndarray
    raw: np.ndarray
    raw_variance: np.ndarray
    n: np.ndarray


def arm_estimates(
    arms: Sequence[Moments],
    target: Target,
    adjust: Adjust,
    hc2: Sequence[np.ndarray] | None = None,
) -> list[ArmEstimate]:
    """Every arm's estimate of `target`; covariate slopes pooled over all the arms given.

    With `adjust="lin"`, `hc2` holds each arm's HC2 sum (`cuped.hc2_sum` over the units
    with the constants of `lin_arms`), which is then the variance of the arm's value. For
    a ratio with CUPED the variance is the larger of that sum (pooled slope) and the
    residual variance / n (the slope taken as known, as for CUPED on a mean, and what
    every adjusted variance is without `hc2`).
    """
    names = target.variables
    moments = [m.select(names) for m in arms]
    cov_idx = [names.index(c) for c in target.adjusters]
    parts = []
    for m in moments:
        mu = m.mean()
        value, grad = value_and_gradient(mu, names, target.numerator, target.denominator)
        s_gg, s_hg, s_hh = cuped.quadratic_terms(m.cov(), grad, cov_idx)
        parts.append((m, mu, value, s_gg, s_hg, s_hh))
    n = [np.asarray(m.n, dtype=float) for m in moments]
    if target.binary and not target.covariates:
        # a proportion's variance is p(1 - p)/n: the n - 1 of the sample variance is not used
        raw_var = [v * (1.0 - v) / nn for (_, _, v, *_), nn in zip(parts, n, strict=True)]
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            raw_var = [p[3] / nn for p, nn in zip(parts, n, strict=True)]
    if not cov_idx or adjust == "none":
        return [
            ArmEstimate(p[2], rv, p[2], rv, nn) for p, rv, nn in zip(parts, raw_var, n, strict=True)
        ]
    total = sum(moments[1:], moments[0])
    centre = total.mean()[..., cov_idx]
    pooled = (
        cuped.pooled_theta([p[5] for p in parts], [p[4] for p in parts], n)
        if adjust == "cuped"
        else None
    )
    out = []
    for i, ((_m, mu, value, s_gg, s_hg, s_hh), rv, nn) in enumerate(
        zip(parts, raw_var, n, strict=True)
    ):
        theta = pooled if pooled is not None else cuped.lin_theta(s_hh, s_hg)
        shift = np.einsum("...h,...h->...", theta, mu[..., cov_idx] - centre)
        with np.errstate(invalid="ignore", divide="ignore"):
            var = cuped.adjusted_variance(s_gg, s_hg, s_hh, theta) / nn
        if hc2 is not None and adjust == "lin":
            var = np.asarray(hc2[i], dtype=float)
        elif hc2 is not None and target.kind == "ratio":
            # CUPED on a ratio: the larger of the slope-as-known and the HC2 variance; with
            # heavy tails either alone is too small at a few hundred users per arm
            var = np.fmax(var, np.asarray(hc2[i], dtype=float))
        out.append(ArmEstimate(value - shift, var, value, rv, nn))
    return out


def lin_arms(arms: Sequence[Moments], target: Target, pooled: bool = False) -> list[cuped.LinArm]:
    """Each arm's constants for its HC2 sum (`cuped.hc2_sum`) when `target` is adjusted.

    Lin (`pooled=False`): the arm's own slope and scatter, weights toward the overall
    covariate mean; this is the interacted regression's HC2 exactly. Pooled slope
    (`pooled=True`, CUPED on a ratio): the pooled slope and the pooled within-arm scatter
    (the ANCOVA regression's leverages), weights toward the other arm's covariate mean,
    which is the ANCOVA treatment coefficient's HC2 exactly with two arms (with more, a
    third arm's pull on the pooled slope is left out, as for the slope-as-known variance).
    """
    names = target.variables
    moments = [m.select(names) for m in arms]
    cov_idx = [names.index(c) for c in target.adjusters]
    centre = sum(moments[1:], moments[0]).mean()[..., cov_idx]
    parts = []
    for m in moments:
        mu = m.mean()
        _, grad = value_and_gradient(mu, names, target.numerator, target.denominator)
        _, s_hg, s_hh = cuped.quadratic_terms(m.cov(), grad, cov_idx)
        parts.append((mu, grad, s_hg, s_hh, np.asarray(m.n, dtype=float)))
    if not pooled:
        return [
            cuped.lin_arm(mu, g, cov_idx, hh, cuped.lin_theta(hh, hg), centre, nn)
            for mu, g, hg, hh, nn in parts
        ]
    theta = cuped.pooled_theta([p[3] for p in parts], [p[2] for p in parts], [p[4] for p in parts])
    scatter = sum(
        np.nan_to_num(hh) * np.where(nn >= 2, nn - 1.0, 0.0)[..., None, None]
        for _, _, _, hh, nn in parts
    )
    s_inv = np.linalg.pinv(np.asarray(scatter))
    means = [p[0][..., cov_idx] for p in parts]
    out = []
    for i, (mu, g, _, _, nn) in enumerate(parts):
        ref = means[1 - i] if len(parts) == 2 else (means[0] if i else centre)
        toward = np.einsum("...hk,...k->...h", s_inv, ref - means[i])
        out.append(cuped.LinArm(mu, g, tuple(cov_idx), theta, s_inv, toward, nn))
    return out
