"""Result records of an experiment analysis and the collection that prints them.

Field names follow CONVENTIONS.md: `effect`, `rel_effect` (a fraction, printed as a
percentage), `effect_ci_lower`/`_upper`, `pvalue`, `pvalue_adj`, `n_control`,
`n_treatment`. A number that could not be estimated is NaN and `status` says why:

- `ok`
- `insufficient_data`: an arm has fewer than two users (empty arm, a single user)
- `zero_variance`: no variation in either arm, so no standard error
- `zero_denominator`: a ratio's mean denominator is 0 in an arm (nothing is estimable), or
  the control mean is 0 so the relative lift alone is undefined (the absolute effect, its
  CI and p-value stand, and a success metric can pass on them)
- `failed:non_finite_values`: the data hold NaN or infinite values for this metric
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from upshot.experiments.srm import SrmResult
from upshot.results import ResultsMixin

STATUSES = ("ok", "insufficient_data", "zero_variance", "zero_denominator")


@dataclass(frozen=True, slots=True)
class EffectResult:
    """One metric, one treatment arm against control.

    `control`/`treatment` are the arms' values on the scale of the effect: the means (a
    ratio: sum num / sum den, per denominator unit), regression-adjusted when `covariates`
    were used (the arm's mean - theta'(arm's covariate means - all users' covariate means)),
    so that on every row `effect` = treatment - control and `rel_effect` = treatment /
    control - 1; `control_raw`/`treatment_raw` are the unadjusted means (equal to them when
    nothing is adjusted). CIs are two-sided at 1 - alpha (confidence sequences when the
    method ends in `_sequential`); `pvalue` is two-sided; `statistic` t or z; `df` is inf
    for normal tests; `variance_reduction` = 1 - var(adjusted) / var(unadjusted effect).
    `n_control`/`n_treatment` are the users analysed for this metric and
    `n_missing_control`/`n_missing_treatment` the users left out because its value (a
    ratio: numerator or denominator) is missing (NULL or NaN in a `--table` file).
    """

    metric: str
    arm: str
    control: float
    treatment: float
    effect: float
    effect_se: float
    effect_ci_lower: float
    effect_ci_upper: float
    rel_effect: float
    rel_effect_se: float
    rel_effect_ci_lower: float
    rel_effect_ci_upper: float
    pvalue: float
    pvalue_adj: float
    method: str
    status: str
    n_control: int
    n_treatment: int
    statistic: float = float("nan")
    df: float = float("nan")
    variance_reduction: float = float("nan")
    kind: str = "mean"
    covariates: tuple[str, ...] = ()
    role: str = "success"
    margin: float = 0.0
    higher_is_better: bool = True
    n_missing_control: int = 0
    n_missing_treatment: int = 0
    control_raw: float = float("nan")
    treatment_raw: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["covariates"] = list(self.covariates)
        return d


TABLE_FIELDS = (
    "metric", "arm", "control", "treatment", "effect", "effect_ci_lower", "effect_ci_upper",
    "rel_effect", "pvalue", "pvalue_adj", "method", "status", "n_missing_control",
    "n_missing_treatment",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExperimentAnalysis(ResultsMixin):
    """Every metric x treatment arm of one experiment, the SRM check and what was excluded.

    `arms` maps each analysed arm (control first) to its users; `excluded` counts users
    left out by reason (`multi_arm`, `null_variant`, `unknown_variant`).
    """

    experiment: str
    control_arm: str
    arms: dict[str, int]
    srm: SrmResult
    results: tuple[EffectResult, ...]
    excluded: dict[str, int] = field(default_factory=dict)
    alpha: float = 0.05
    correction: str = "holm"
    adjust: str = "cuped"
    sequential: dict[str, Any] | None = None
    source: str = "warehouse"
    interactions: tuple[Any, ...] = ()

    def to_dicts(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.results]

    def table(self) -> list[dict[str, Any]]:
        """The columns people read first, for the terminal."""
        return [{k: r.to_dict()[k] for k in TABLE_FIELDS} for r in self.results]

    def result(self, metric: str, arm: str | None = None) -> EffectResult:
        for r in self.results:
            if r.metric == metric and (arm is None or r.arm == arm):
                return r
        raise KeyError(f"no result for metric {metric!r} and arm {arm!r}")

    def to_document(self) -> dict[str, Any]:
        """The `--json` document of `upshot experiments analyze`."""
        doc: dict[str, Any] = {
            "experiment": self.experiment,
            "source": self.source,
            "control_arm": self.control_arm,
            "arms": [{"arm": a, "users": n} for a, n in self.arms.items()],
            "excluded": dict(self.excluded),
            "alpha": self.alpha,
            "correction": self.correction,
            "adjust": self.adjust,
            "sequential": self.sequential,
            "srm": self.srm.to_dict(),
            "results": self.to_dicts(),
        }
        if self.interactions:
            doc["interactions"] = [i.to_dict() for i in self.interactions]
        return doc
