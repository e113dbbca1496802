"""Do two concurrent experiments interact? The interaction term of the 2x2 factorial.

Among users in both experiments, the four cells (control or arm of A) x (control or arm
of B) give cell means m[a, b]; the interaction is

    (m[1, 1] - m[0, 1]) - (m[1, 0] - m[0, 0])

the difference between A's effect with B's treatment and without it. The cells are
independent, so its variance is the sum of the four cells' variances (this equals the
interaction coefficient of OLS y ~ A * B with HC2 standard errors exactly, the model
being saturated). A significant interaction means A's effect depends on B: the two
should not be analysed as if they ran alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from upshot.experiments import corrections
from upshot.experiments.effects import critical, two_sided_p
from upshot.experiments.estimates import arm_estimates
from upshot.experiments.spec import MetricSpec
from upshot.experiments.stats import Moments


@dataclass(frozen=True, slots=True)
class InteractionResult:
    """The interaction of `arm` (of `experiment`) with `other_arm` (of `other`) on `metric`.

    `effect` is the interaction in metric units; `effect_without`/`effect_with` are A's
    effect among B's control users and among B's `other_arm` users; `n_cells` the users
    in (A control, B control), (A control, B arm), (A arm, B control), (A arm, B arm).
    `significant` compares `pvalue_adj` with alpha.
    """

    metric: str
    experiment: str
    arm: str
    other: str
    other_arm: str
    effect: float
    effect_se: float
    effect_ci_lower: float
    effect_ci_upper: float
    effect_without: float
    effect_with: float
    pvalue: float
    pvalue_adj: float
    significant: bool
    method: str
    status: str
    n_cells: tuple[int, int, int, int]

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["n_cells"] = list(self.n_cells)
        return d


def interactions(
    rows: Sequence[Mapping[str, Any]],
    specs: Sequence[MetricSpec],
    *,
    experiment: str,
    other: str,
    control: str,
    other_control: str,
    alpha: float,
    correction: str,
) -> tuple[InteractionResult, ...]:
    """Interaction tests from rows keyed by (variant, variant_b, exclusion)."""
    cells: dict[tuple[str, str], Mapping[str, Any]] = {}
    for row in rows:
        if row.get("exclusion") or row.get("variant") is None or row.get("variant_b") is None:
            continue
        cells[(str(row["variant"]), str(row["variant_b"]))] = row
    arms_a = sorted({a for a, _ in cells if a != control})
    arms_b = sorted({b for _, b in cells if b != other_control})
    out = []
    for spec in specs:
        target = spec.target(False)  # unadjusted: the cells are small, keep the test simple
        prefix = target.case[0]  # a file's complete-case aggregates, when the rows have them
        prefix = prefix if any(prefix + "n" in r for r in cells.values()) else ""
        for arm in arms_a:
            for arm_b in arms_b:
                keys = [
                    (control, other_control),
                    (control, arm_b),
                    (arm, other_control),
                    (arm, arm_b),
                ]
                ms = [Moments.from_row(cells.get(k, {}), target.variables, prefix) for k in keys]
                est = arm_estimates(ms, target, "none")
                out.append(_one(spec.name, experiment, arm, other, arm_b, est, alpha))
    adjusted = corrections.adjust([r.pvalue for r in out], correction)
    return tuple(
        replace(r, pvalue_adj=float(p), significant=bool(p < alpha))
        for r, p in zip(out, adjusted, strict=True)
    )


def _one(
    metric: str, experiment: str, arm: str, other: str, arm_b: str, est: list[Any], alpha: float
) -> InteractionResult:
    v = [float(np.asarray(e.value)) for e in est]
    var = [float(np.asarray(e.variance)) for e in est]
    n = tuple(int(np.asarray(e.n)) for e in est)
    effect = (v[3] - v[1]) - (v[2] - v[0])
    se = math.sqrt(sum(var)) if all(math.isfinite(x) for x in var) else math.nan
    if min(n) < 2:
        status = "insufficient_data"
    elif not all(math.isfinite(x) for x in v):
        status = "zero_denominator"
    elif not se > 0:
        status = "zero_variance"
    else:
        status = "ok"
    if status != "ok":
        effect_ok = effect if status == "zero_variance" else math.nan
        return InteractionResult(
            metric, experiment, arm, other, arm_b, effect_ok, math.nan, math.nan, math.nan,
            v[2] - v[0] if status == "zero_variance" else math.nan,
            v[3] - v[1] if status == "zero_variance" else math.nan,
            math.nan, math.nan, False, "interaction_z", status, n,  # type: ignore[arg-type]
        )  # fmt: skip
    z = effect / se
    crit = float(critical(alpha, np.asarray(np.inf)))
    return InteractionResult(
        metric, experiment, arm, other, arm_b, effect, se, effect - crit * se, effect + crit * se,
        v[2] - v[0], v[3] - v[1], float(two_sided_p(np.asarray(z), np.asarray(np.inf))),
        math.nan, False, "interaction_z", status, n,  # type: ignore[arg-type]
    )  # fmt: skip
