"""Sample sizes and detectable effects under the verdict's corrections.

The verdict (`decision`) tests success metrics one-sided at alpha / (S * K) and
guardrails one-sided at alpha. For the *decision* to have power 1 - beta, Schultzberg,
Ankargren and Frånberg (2024) split beta: the false alarms of the deterioration tests
(one per metric, at `deterioration_alpha`) and of the SRM check (at `srm_alpha`) are
spent first, and the rest is shared by the success family and each of the G guardrails
(a union bound over the ways a good change can fail to ship):

    beta_test = (beta - D * deterioration_alpha - srm_alpha) / (G + 1)

Each metric then needs, for a two-arm comparison with traffic shares w_t and w_c,

    N = (z(1 - level) + z(1 - beta_test))**2 * sigma**2 * (1/w_t + 1/w_c) / delta**2

users in total (all arms), where sigma is the per-user standard deviation of the metric
(after CUPED when covariates are used; the delta-method one for ratios) and delta the
absolute effect: mde * baseline for success metrics, margin * baseline for guardrails
(powered at a true effect of zero). The experiment needs the largest N over metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from upshot.errors import UsageError
from upshot.results import ResultsMixin


@dataclass(frozen=True, slots=True)
class Baseline:
    """A metric's control level `mean` and per-user standard deviation `sd` (metric units;
    for a ratio the delta-method sd per user, for an adjusted metric the residual sd)."""

    mean: float
    sd: float


@dataclass(frozen=True, slots=True)
class MetricPlan:
    """One metric's requirement. `mde` is relative (0.02 = 2%); `level` the one-sided
    significance level of its test; `users_total` over all arms (NaN: nothing to power,
    a deterioration-only metric or a success metric without an MDE);
    `detectable_effect` the relative effect detectable with `users` (when given)."""

    metric: str
    role: str
    baseline_mean: float
    baseline_sd: float
    mde: float
    level: float
    power: float
    users_total: float
    users_control: float
    users_treatment: float
    detectable_effect: float
    status: str

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class Plan(ResultsMixin):
    """Every metric's requirement and the experiment's: `users_total` = the largest."""

    metrics: tuple[MetricPlan, ...]
    alpha: float
    power: float
    beta_per_test: float
    split: dict[str, float]
    users_total: float
    users: int | None

    def to_dicts(self) -> list[dict[str, Any]]:
        return [m.to_dict() for m in self.metrics]

    def to_document(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "power": self.power,
            "beta_per_test": self.beta_per_test,
            "split": dict(self.split),
            "users_total": self.users_total,
            "users_per_arm": {
                a: math.ceil(self.users_total * w) if math.isfinite(self.users_total) else None
                for a, w in self.split.items()
            },
            "users": self.users,
            "metrics": self.to_dicts(),
        }


def beta_per_test(
    beta: float,
    n_guardrails: int,
    n_deterioration: int,
    deterioration_alpha: float,
    srm_alpha: float,
) -> float:
    """The type II error rate each powered test gets (see the module docstring)."""
    return (beta - n_deterioration * deterioration_alpha - srm_alpha) / (n_guardrails + 1)


def users_needed(
    sd: float, delta: float, level: float, beta: float, w_t: float, w_c: float
) -> float:
    """Total users (all arms) for a one-sided z test at `level` with power 1 - `beta`."""
    from scipy import stats

    if not (delta > 0 and sd > 0):
        return math.nan
    z = stats.norm.ppf(1 - level) + stats.norm.ppf(1 - beta)
    return z**2 * sd**2 * (1 / w_t + 1 / w_c) / delta**2


def detectable(sd: float, users: float, level: float, beta: float, w_t: float, w_c: float) -> float:
    """The absolute effect detectable with `users` in total (the inverse of users_needed)."""
    from scipy import stats

    z = stats.norm.ppf(1 - level) + stats.norm.ppf(1 - beta)
    return z * sd * math.sqrt(1 / (users * w_t) + 1 / (users * w_c))


def plan(
    baselines: Mapping[str, Baseline],
    roles: Mapping[str, str],
    *,
    mde: Mapping[str, float] | None = None,
    margins: Mapping[str, float] | None = None,
    split: Mapping[str, float] | None = None,
    control: str = "control",
    users: int | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    deterioration_alpha: float = 0.01,
    srm_alpha: float = 0.001,
) -> Plan:
    """Users needed per metric and overall, and the effects detectable with `users`.

    `roles` maps every metric of the verdict to success | guardrail | deterioration;
    `mde` gives success metrics' relative minimum detectable effects; `margins` the
    guardrails' relative non-inferiority margins.
    """
    mde, margins = dict(mde or {}), dict(margins or {})
    if not 0 < alpha < 1:
        raise UsageError(f"alpha == {alpha}, must be in (0, 1)")
    if not 0 < power < 1:
        raise UsageError(f"power == {power}, must be in (0, 1)")
    split = dict(split or {control: 1.0, "treatment": 1.0})
    if control not in split or len(split) < 2:
        raise UsageError(f"split == {split}, must name the control {control!r} and an arm")
    total_w = sum(split.values())
    shares = {a: w / total_w for a, w in split.items()}
    treatments = [a for a in shares if a != control]
    w_c, w_t = shares[control], min(shares[a] for a in treatments)
    n_success = sum(1 for r in roles.values() if r == "success")
    n_guard = sum(1 for r in roles.values() if r == "guardrail")
    beta = beta_per_test(1 - power, n_guard, len(roles), deterioration_alpha, srm_alpha)
    if beta <= 0:
        raise UsageError(
            f"no power left: {len(roles)} deterioration tests at {deterioration_alpha:g} and the "
            f"SRM check use up beta = {1 - power:g}; lower deterioration_alpha"
        )
    success_level = alpha / max(1, n_success * len(treatments))
    rows = []
    for metric, role in roles.items():
        if metric not in baselines:
            raise UsageError(f"metric {metric!r} has no baseline")
        b = baselines[metric]
        if role == "success":
            level, rel = success_level, mde.get(metric, math.nan)
        elif role == "guardrail":
            level, rel = alpha, margins.get(metric, math.nan)
        else:
            level, rel = math.nan, math.nan
        status = "ok"
        if not (math.isfinite(b.mean) and b.mean != 0 and math.isfinite(b.sd)):
            status = "insufficient_data"
        elif b.sd == 0:
            status = "zero_variance"
        elif role == "deterioration" or not (math.isfinite(rel) and rel > 0):
            status = "not_powered"
        n = (
            users_needed(b.sd, rel * abs(b.mean), level, beta, w_t, w_c)
            if status == "ok"
            else math.nan
        )
        det = (
            detectable(b.sd, users, level, beta, w_t, w_c) / abs(b.mean)
            if users and status in ("ok", "not_powered") and role != "deterioration"
            else math.nan
        )
        rows.append(
            MetricPlan(
                metric, role, b.mean, b.sd, rel, level, 1 - beta, n, n * w_c, n * w_t, det, status
            )
        )
    needed = [m.users_total for m in rows if math.isfinite(m.users_total)]
    return Plan(tuple(rows), alpha, power, beta, shares, max(needed) if needed else math.nan, users)


def baselines_from(
    moments_by_metric: Mapping[str, Any], targets: Mapping[str, Any], adjust: str
) -> dict[str, Baseline]:
    """Baselines from one group's `Moments` per metric (control arm, or all users)."""
    import numpy as np

    from upshot.experiments.estimates import arm_estimates

    out = {}
    for name, m in moments_by_metric.items():
        (est,) = arm_estimates([m], targets[name], "lin" if adjust != "none" else "none")
        n = float(np.asarray(m.n))
        out[name] = Baseline(
            float(np.asarray(est.raw)), math.sqrt(float(np.asarray(est.variance)) * n)
        )
    return out


def as_mapping(items: Sequence[tuple[str, str]], flag: str) -> dict[str, float]:
    out = {}
    for name, value in items:
        try:
            out[name] = float(value)
        except ValueError:
            raise UsageError(f"{flag} {name}={value}: must be a number") from None
    return out


def plan_experiment(
    experiment: str | None = None,
    *,
    table: str | None = None,
    con: Any = None,
    db: str | None = None,
    config: Any = None,
    metrics: Sequence[str] | None = None,
    ratios: Sequence[str] = (),
    covariates: Sequence[str] = (),
    variant_col: str | None = "variant",
    control: str | None = None,
    mde: Mapping[str, float] | None = None,
    guardrails: Sequence[str] = (),
    deteriorations: Sequence[str] = (),
    lower_is_better: Sequence[str] = (),
    users: int | None = None,
    split: Mapping[str, float] | None = None,
    alpha: float | None = None,
    power: float | None = None,
    adjust: str | None = None,
) -> Plan:
    """`plan` with baselines measured on data: the control arm of a warehouse experiment
    or of a file (every row when the file has no `variant_col` column), per-user
    standard deviations after the configured adjustment."""
    from upshot.config import load_config
    from upshot.experiments import spec as specs_mod
    from upshot.experiments.analysis import connection
    from upshot.experiments.engine import is_binary, sort_rows
    from upshot.experiments.query import table_columns
    from upshot.experiments.sources import require_experiment, table_rows, warehouse_rows
    from upshot.experiments.stats import Moments

    config = config or load_config()
    ex = config.experiments
    control = control or ex.control
    with connection(con, None if table is not None else db, config) as c:
        if table is not None:
            specs = specs_mod.from_table_args(
                list(metrics or []), list(ratios), list(covariates), guardrails=guardrails,
                deteriorations=deteriorations, lower_is_better=lower_is_better,
            )  # fmt: skip
            if variant_col and variant_col.lower() not in table_columns(c, table):
                variant_col = None
            rows = table_rows(c, table, specs, variant_col=variant_col)
            group = control if variant_col else "all"
        else:
            if not experiment:
                raise UsageError("name an experiment for the baselines, or give --table")
            specs, variables = specs_mod.from_config(ex, metrics)
            specs = specs_mod.apply_roles(specs, guardrails, deteriorations, lower_is_better)
            require_experiment(c, experiment, "experiment")
            rows = warehouse_rows(c, experiment, specs, variables)
            group = control
    groups = sort_rows(rows, group, None)
    row = groups.rows.get(group)
    if not row:
        raise UsageError(f"no users in arm {group!r} to measure baselines on")
    targets = {}
    moments = {}
    for s in specs:
        prefix = s.target().case[0]  # a file's complete case (NULL is missing), if given
        prefix = prefix if prefix + "n" in row else ""
        binary = s.binary if s.binary is not None else is_binary({group: row}, s.numerator, prefix)
        targets[s.name] = replace(
            s.target(bool(binary) and s.denominator is None), indicators=bool(prefix)
        )
        moments[s.name] = Moments.from_row(row, targets[s.name].variables, prefix)
    baselines = baselines_from(moments, targets, adjust or ex.adjust)
    return plan(
        baselines,
        {s.name: s.role for s in specs},
        mde=mde,
        margins={s.name: s.margin for s in specs if s.role == "guardrail"},
        split=split,
        control=control,
        users=users,
        alpha=alpha if alpha is not None else ex.alpha,
        power=power if power is not None else ex.power,
        deterioration_alpha=ex.deterioration_alpha,
        srm_alpha=ex.srm_alpha,
    )
