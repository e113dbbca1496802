"""The records `upshot uplift` produces: one estimate per class × objective × segment.

Effects are per decision, in the objective's own units (a probability for `any`
objectives, minutes for sums of minutes, days for `distinct_days`): sending a message of
the class instead of holding it back changes the objective by `ate` on average.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from upshot.results import ResultsMixin

OK = "ok"
INSUFFICIENT = "insufficient_data"
NO_OVERLAP = "no_overlap"
POOR_OVERLAP = "poor_overlap"
NO_HOLDOUT = "no_holdout"
ZERO_VARIANCE = "zero_variance"
# estimated, but from a targeted design with neither a logged propensity nor past behaviour
# among the covariates: targeting on activity the covariates miss biases it (numbers kept)
CONFOUNDING_RISK = "confounding_risk"
NAN = math.nan
# how `ate` is computed, on every estimated row whatever the estimator: the mean of the
# cross-fitted doubly robust (AIPW) scores over the cell's rows, SE sd/sqrt(n) of the cell
DR_SCORE_MEAN = "dr_score_mean"


def failed(reason: str) -> str:
    """`failed:<reason>` with the reason reduced to one short line."""
    line = " ".join(str(reason).split())[:120] or "unknown"
    return f"failed:{line}"


@dataclass(frozen=True, slots=True)
class UpliftEstimate:
    """One class × objective × segment (`all`, or `column=value`).

    `ate` and its CI (level `1 - alpha`) come from the causal estimator; `naive_effect` is
    the plain sent-minus-held-out difference of means, shown so the bias is visible.
    `refute_*` are our estimator's re-estimates under a placebo treatment (≈ 0 expected),
    with a random common cause added, and on random subsets (≈ `ate` expected); `qini`, `auuc`
    and `calibration` evaluate the CATE model on held-out folds; `robustness_value` is
    the confounding strength (share of residual variance, 0..1) that would make the CI
    reach 0, reported for non-randomized designs. NaN wherever nothing was estimated.
    `ate` of every estimator, overall and per segment, is the mean of the same doubly
    robust scores over the cell (`method`, `DR_SCORE_MEAN`), so the n-weighted mean of a
    segment column's GATEs is the overall ATE. `clipped_share` is the share of the cell's
    fitted decisions whose propensity was clipped; over `max_clipped_share` in the class
    the status is `poor_overlap` (estimates kept, not to be used as `ok`). A targeted class
    estimated without a logged propensity or pre-period covariates keeps its estimates
    with status `confounding_risk` (see `classfit._fitted_status`).
    """

    message_class: str
    channel: str | None
    objective: str
    segment: str
    estimator: str
    design: str | None
    nuisance: str
    ate: float = NAN
    ate_se: float = NAN
    ate_ci_lower: float = NAN
    ate_ci_upper: float = NAN
    pvalue: float = NAN
    naive_effect: float = NAN
    n_treated: int = 0
    n_control: int = 0
    clipped_share: float = NAN
    method: str | None = None
    refute_placebo: float = NAN
    refute_random_cause: float = NAN
    refute_subset: float = NAN
    refute_passed: bool | None = None
    qini: float = NAN
    auuc: float = NAN
    calibration: float = NAN
    robustness_value: float = NAN
    status: str = OK
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    def row(self) -> dict[str, Any]:
        """The flat fields, without `details`."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)[:-1]}


@dataclass(frozen=True, slots=True)
class UpliftCovariance:
    """Cov(ate of `objective_a`, ate of `objective_b`) for one class and segment.

    In the product of the two objectives' units; the diagonal (`a == b`) is `ate_se²`.
    """

    message_class: str
    segment: str
    objective_a: str
    objective_b: str
    covariance: float


@dataclass(frozen=True, slots=True)
class UpliftResults(ResultsMixin):
    """Every estimate of a run (`estimates`), the joint covariances, and per-class notes.

    `classes` maps each class to its diagnostics (design, overlap, folds, timings).
    """

    estimates: tuple[UpliftEstimate, ...]
    covariance: tuple[UpliftCovariance, ...] = ()
    classes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dicts(self) -> list[dict[str, Any]]:
        return [e.row() for e in self.estimates]

    def documents(self) -> list[dict[str, Any]]:
        """`to_dicts()` with each estimate's `details` kept (for JSON)."""
        return [{**e.row(), "details": e.details} for e in self.estimates]

    def covariance_dicts(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(c) for c in self.covariance]
