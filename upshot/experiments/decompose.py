"""Why did a metric move? Funnel and mix/rate decompositions of an effect, with CIs.

**Funnel** (a metric that is a product of steps): conversions per user = opens per user
x conversions per open, so log(treatment / control) is the sum of the steps' log-ratios.
Each step's effect and its share of the total log-effect come with delta-method CIs from
the *joint* covariance of all steps (they share numerators and denominators, so they are
correlated), marginal and simultaneous over the steps.

**Mix/rate** (shift-share, a metric summed over parts): the metric per user is
sum_s w_s r_s, with w_s the weight of part s (users' share in a segment, or sends per
user in a channel) and r_s its rate (mean per user of the segment, or outcome per send).
The effect splits exactly into, per part, a mix term (w_t - w_c)(r_t + r_c)/2 and a rate
term (w_t + w_c)/2 (r_t - r_c).

Both split *unadjusted* means (`adjusted` is false): a metric that `analyze` adjusts with
CUPED or Lin has a different, adjusted effect there, and the decomposition's `note` says
so. Parts are checked to add up to the total when a result is built. Derivatives come from
complex-step differentiation, exact to rounding for these smooth functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from upshot.experiments.stats import Moments
from upshot.results import ResultsMixin

_H = 1e-30  # complex step: no subtraction, so no cancellation however small


def jacobian(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """d f / d x by complex step; f maps (k,) to (m,), returns (m, k)."""
    x = np.asarray(x, dtype=complex)
    cols = [np.imag(f(x + 1j * _H * e)) / _H for e in np.eye(x.size)]
    return np.array(cols).T


def delta_cov(
    f: Callable[[np.ndarray, np.ndarray], np.ndarray],
    mu_t: np.ndarray,
    v_t: np.ndarray,
    mu_c: np.ndarray,
    v_c: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """f(mu_t, mu_c) and its delta-method covariance (independent arms)."""
    value = np.real(f(mu_t.astype(complex), mu_c.astype(complex)))
    j_t = jacobian(lambda x: f(x, mu_c.astype(complex)), mu_t)
    j_c = jacobian(lambda x: f(mu_t.astype(complex), x), mu_c)
    return value, j_t @ v_t @ j_t.T + j_c @ v_c @ j_c.T


def joint_critical(corr: np.ndarray, alpha: float) -> float:
    """c with P(max_j |Z_j| <= c) = 1 - alpha for Z ~ N(0, corr): simultaneous CIs."""
    from scipy import optimize, stats

    k = corr.shape[0]
    if k == 1 or not np.all(np.isfinite(corr)):
        return float(stats.norm.ppf(1 - alpha / 2))

    def coverage(c: float) -> float:
        return float(
            stats.multivariate_normal.cdf(
                np.full(k, c),
                mean=np.zeros(k),
                cov=corr,
                lower_limit=np.full(k, -c),
                allow_singular=True,
                abseps=1e-7,
                releps=1e-7,
            )
        ) - (1 - alpha)

    low = float(stats.norm.ppf(1 - alpha / 2))
    high = float(stats.norm.ppf(1 - alpha / (2 * k))) + 1e-6  # Bonferroni bounds it above
    return float(optimize.brentq(coverage, low, high, xtol=1e-6))


@dataclass(frozen=True, slots=True)
class FunnelStep:
    """One step: `denominator` None for the first (a per-user mean). `log_effect` is
    log(treatment / control) of the step; `rel_effect` = exp(log_effect) - 1; `share` the
    step's part of the total log-effect (NaN when the total is 0); `rel_effect_joint_*`
    are simultaneous over all steps."""

    step: str
    numerator: str
    denominator: str | None
    control: float
    treatment: float
    log_effect: float
    log_effect_se: float
    log_effect_ci_lower: float
    log_effect_ci_upper: float
    rel_effect: float
    rel_effect_ci_lower: float
    rel_effect_ci_upper: float
    rel_effect_joint_ci_lower: float
    rel_effect_joint_ci_upper: float
    share: float
    share_se: float
    share_ci_lower: float
    share_ci_upper: float

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class FunnelDecomposition(ResultsMixin):
    """`metric` (the last step per user) of `arm` against control, split into `steps`.

    `total_log_effect` = log(treatment / control) of the metric; `covariance` is the
    joint covariance of the steps' log-effects (row/column order of `steps`).
    """

    experiment: str
    arm: str
    metric: str
    steps: tuple[FunnelStep, ...]
    total_log_effect: float
    total_log_effect_se: float
    total_rel_effect: float
    total_rel_effect_ci_lower: float
    total_rel_effect_ci_upper: float
    covariance: tuple[tuple[float, ...], ...]
    status: str
    n_control: int
    n_treatment: int
    # decompositions split unadjusted means; `note` says when `analyze` adjusts the metric
    adjusted: bool = False
    note: str = ""
    # users left out because a variable is missing (a file's NULL or NaN; see `analysis`)
    n_missing_control: int = 0
    n_missing_treatment: int = 0

    @property
    def shares_identified(self) -> bool:
        """Shares of a total that may be 0 are noise: only read them when the total's CI
        excludes 0."""
        lo, hi = self.total_rel_effect_ci_lower, self.total_rel_effect_ci_upper
        return self.status == "ok" and (lo > 0 or hi < 0)

    def __post_init__(self) -> None:
        if self.status != "ok":
            return
        parts = sum(s.log_effect for s in self.steps)
        if not math.isclose(parts, self.total_log_effect, rel_tol=1e-9, abs_tol=1e-12):
            raise ValueError(
                f"funnel steps add to {parts!r}, not the total {self.total_log_effect!r}"
            )
        shares = [s.share for s in self.steps]
        if all(math.isfinite(x) for x in shares) and not math.isclose(
            sum(shares), 1.0, rel_tol=1e-9
        ):
            raise ValueError(f"funnel shares add to {sum(shares)!r}, not 1")

    def to_dicts(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.steps]

    def to_document(self) -> dict[str, Any]:
        head = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "steps"}
        head["covariance"] = [list(r) for r in self.covariance]
        head["shares_identified"] = self.shares_identified
        return {**head, "steps": self.to_dicts()}


def _arm_stats(m: Moments) -> tuple[np.ndarray, np.ndarray, int]:
    n = float(np.asarray(m.n))
    with np.errstate(invalid="ignore", divide="ignore"):
        return m.mean(), m.cov() / n, int(n)


def funnel(
    control: Moments, treatment: Moments, *, experiment: str, arm: str, alpha: float
) -> FunnelDecomposition:
    """Decompose the last step per user into the steps' ratios (variables in funnel order)."""
    from scipy import stats

    names = control.names
    k = len(names)
    mu_c, v_c, n_c = _arm_stats(control)
    mu_t, v_t, n_t = _arm_stats(treatment)
    labels = [f"{names[0]} per user"] + [f"{names[j]}/{names[j - 1]}" for j in range(1, k)]

    def steps_of(mu: np.ndarray) -> np.ndarray:
        return np.concatenate([mu[:1], mu[1:] / mu[:-1]])

    def f(t: np.ndarray, c: np.ndarray) -> np.ndarray:
        logs = np.log(steps_of(t)) - np.log(steps_of(c))
        total = np.log(t[-1] / c[-1])
        return np.concatenate([logs, [total], logs / total])

    status = "ok"
    if n_c < 2 or n_t < 2:
        status = "insufficient_data"
    elif not (np.all(mu_c > 0) and np.all(mu_t > 0)):
        status = "zero_denominator"
    nan = math.nan
    if status != "ok":
        steps = tuple(
            FunnelStep(lab, names[j], names[j - 1] if j else None, *([nan] * 15))
            for j, lab in enumerate(labels)
        )
        return FunnelDecomposition(
            experiment, arm, names[-1], steps, nan, nan, nan, nan, nan, (), status, n_c, n_t
        )
    value, cov = delta_cov(f, mu_t, v_t, mu_c, v_c)
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    z = float(stats.norm.ppf(1 - alpha / 2))
    corr = cov[:k, :k] / np.outer(se[:k], se[:k])
    zj = joint_critical(corr, alpha)
    total, total_se = float(value[k]), float(se[k])
    sc, st = steps_of(mu_c), steps_of(mu_t)
    found: list[FunnelStep] = []
    for j in range(k):
        lg, s = float(value[j]), float(se[j])
        share, share_se = (
            (float(value[k + 1 + j]), float(se[k + 1 + j])) if total != 0 else (nan, nan)
        )
        found.append(
            FunnelStep(
                labels[j],
                names[j],
                names[j - 1] if j else None,
                float(sc[j]),
                float(st[j]),
                lg,
                s,
                lg - z * s,
                lg + z * s,
                math.expm1(lg),
                math.expm1(lg - z * s),
                math.expm1(lg + z * s),
                math.expm1(lg - zj * s),
                math.expm1(lg + zj * s),
                share,
                share_se,
                share - z * share_se,
                share + z * share_se,
            )
        )
    return FunnelDecomposition(
        experiment, arm, names[-1], tuple(found), total, total_se, math.expm1(total),
        math.expm1(total - z * total_se), math.expm1(total + z * total_se),
        tuple(tuple(float(x) for x in row) for row in cov[:k, :k]), status, n_c, n_t,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ShiftSharePart:
    """One part's mix and rate terms (metric units per user) with their CIs; `weight_*`
    and `rate_*` are the arms' weights and rates of the part."""

    part: str
    weight_control: float
    weight_treatment: float
    rate_control: float
    rate_treatment: float
    mix: float
    mix_se: float
    mix_ci_lower: float
    mix_ci_upper: float
    rate: float
    rate_se: float
    rate_ci_lower: float
    rate_ci_upper: float
    effect: float
    effect_se: float

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class ShiftShare(ResultsMixin):
    """`metric` per user of `arm` minus control (`effect`), split into `parts`; `mix` and
    `rate` are the sums of the parts' mix and rate terms."""

    experiment: str
    arm: str
    metric: str
    parts: tuple[ShiftSharePart, ...]
    effect: float
    effect_se: float
    effect_ci_lower: float
    effect_ci_upper: float
    mix: float
    mix_se: float
    rate: float
    rate_se: float
    status: str
    n_control: int
    n_treatment: int
    # decompositions split unadjusted means; `note` says when `analyze` adjusts the metric
    adjusted: bool = False
    note: str = ""
    # users left out because a variable is missing (a file's NULL or NaN; see `analysis`)
    n_missing_control: int = 0
    n_missing_treatment: int = 0

    def __post_init__(self) -> None:
        if self.status != "ok":
            return
        parts = sum(p.mix + p.rate for p in self.parts)
        if not math.isclose(parts, self.effect, rel_tol=1e-9, abs_tol=1e-12):
            raise ValueError(f"mix and rate terms add to {parts!r}, not the effect {self.effect!r}")
        if not math.isclose(self.mix + self.rate, self.effect, rel_tol=1e-9, abs_tol=1e-12):
            raise ValueError("the mix and rate totals do not add up to the effect")

    def to_dicts(self) -> list[dict[str, Any]]:
        return [p.to_dict() for p in self.parts]

    def to_document(self) -> dict[str, Any]:
        head = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "parts"}
        return {**head, "parts": self.to_dicts()}


def shift_share(
    control: Moments,
    treatment: Moments,
    parts: Sequence[str],
    *,
    experiment: str,
    arm: str,
    metric: str,
    alpha: float,
) -> ShiftShare:
    """Mix/rate split; the moments hold K weight variables then K value variables."""
    from scipy import stats

    kp = len(parts)
    mu_c, v_c, n_c = _arm_stats(control)
    mu_t, v_t, n_t = _arm_stats(treatment)

    def rates(w: np.ndarray, m: np.ndarray, w_o: np.ndarray, m_o: np.ndarray) -> np.ndarray:
        # a part with no weight in this arm borrows the other arm's rate (its w is 0 anyway)
        own = np.where(w != 0, m / np.where(w != 0, w, 1), 0)
        other = np.where(w_o != 0, m_o / np.where(w_o != 0, w_o, 1), 0)
        return np.where(w != 0, own, other)

    def f(t: np.ndarray, c: np.ndarray) -> np.ndarray:
        w_t, m_t, w_c, m_c = t[:kp], t[kp:], c[:kp], c[kp:]
        r_t, r_c = rates(w_t, m_t, w_c, m_c), rates(w_c, m_c, w_t, m_t)
        mix = (w_t - w_c) * (r_t + r_c) / 2
        rate = (w_t + w_c) / 2 * (r_t - r_c)
        effect = np.sum(m_t) - np.sum(m_c)
        return np.concatenate([mix, rate, mix + rate, [effect, np.sum(mix), np.sum(rate)]])

    nan = math.nan
    if n_c < 2 or n_t < 2:
        empty = tuple(ShiftSharePart(p, *([nan] * 14)) for p in parts)
        return ShiftShare(
            experiment, arm, metric, empty, nan, nan, nan, nan, nan, nan, nan, nan,
            "insufficient_data", n_c, n_t,
        )  # fmt: skip
    value, cov = delta_cov(f, mu_t, v_t, mu_c, v_c)
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    z = float(stats.norm.ppf(1 - alpha / 2))
    r_t = np.real(rates(mu_t[:kp], mu_t[kp:], mu_c[:kp], mu_c[kp:]))
    r_c = np.real(rates(mu_c[:kp], mu_c[kp:], mu_t[:kp], mu_t[kp:]))
    out = []
    for i, p in enumerate(parts):
        mix, rate, tot = (float(value[i + j * kp]) for j in range(3))
        mse, rse, tse = (float(se[i + j * kp]) for j in range(3))
        out.append(
            ShiftSharePart(
                p,
                float(mu_c[i]),
                float(mu_t[i]),
                float(r_c[i]),
                float(r_t[i]),
                mix,
                mse,
                mix - z * mse,
                mix + z * mse,
                rate,
                rse,
                rate - z * rse,
                rate + z * rse,
                tot,
                tse,
            )
        )
    eff, eff_se = float(value[3 * kp]), float(se[3 * kp])
    return ShiftShare(
        experiment, arm, metric, tuple(out), eff, eff_se, eff - z * eff_se, eff + z * eff_se,
        float(value[3 * kp + 1]), float(se[3 * kp + 1]), float(value[3 * kp + 2]),
        float(se[3 * kp + 2]), "ok", n_c, n_t,
    )  # fmt: skip


def segment_moments(
    rows: Sequence[dict[str, Any]], variable: str, segments: Sequence[str], prefix: str = ""
) -> Moments:
    """One arm's moments over [1{s}..., y 1{s}...] from per-segment rows (n, sums), each
    column name preceded by `prefix` (the complete case of users whose value is known)."""
    k = len(segments)
    names = tuple([f"w:{s}" for s in segments] + [f"y:{s}" for s in segments])
    sums = np.zeros(2 * k)
    prods = np.zeros((2 * k, 2 * k))
    by = {str(r["segment"]): r for r in rows}
    for i, s in enumerate(segments):
        r = by.get(s, {})
        n, sy, syy = (
            float(r.get(prefix + c) or 0.0)
            for c in ("n", f"{variable}_sum", f"{variable}_sum_squares")
        )
        sums[i], sums[k + i] = n, sy
        prods[i, i], prods[k + i, k + i] = n, syy
        prods[i, k + i] = prods[k + i, i] = sy
    total = sum(float(r.get(prefix + "n") or 0) for r in rows)
    return Moments(names, np.asarray(total), sums, prods)
