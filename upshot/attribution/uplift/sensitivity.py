"""How strong would an unobserved confounder have to be to explain the effect away?

For classes whose decisions were not randomized, the estimate rests on "no unobserved
confounding given the covariates". EconML's omitted-variable-bias analysis
(Chernozhukov et al. 2022, "Long story short") bounds the bias a confounder can cause by
how much of the residual variance of the outcome (`c_y`) and of the treatment (`c_t`) it
would explain. upshot reports two numbers from it:

- `robustness_value`: the strength `c_y = c_t` at which the CI first reaches 0
  (0: the CI already contains 0; higher is more robust);
- the CI under a confounder of strength `strength` (`uplift.sensitivity_strength`).

They refer to EconML's partially linear (DML) or doubly robust (DR) average effect of the
fitted model, which is the ATE when effects are homogeneous and close to it otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Sensitivity:
    """Omitted-variable-bias bounds; NaN when the estimator cannot compute them."""

    robustness_value: float
    ci_lower: float
    ci_upper: float
    strength: float


def sensitivity(est: Any, *, dr: bool, alpha: float, strength: float) -> Sensitivity:
    """EconML's sensitivity analysis of a fitted DML (`dr=False`) or DR learner."""
    extra = {"T": 1} if dr else {}
    try:
        rv = float(est.robustness_value(alpha=alpha, **extra))
        lower, upper = est.sensitivity_interval(alpha=alpha, c_y=strength, c_t=strength, **extra)
    except (ValueError, AttributeError, FloatingPointError):
        # too little residual variation (e.g. a degenerate fold): no bounds, not fake ones
        return Sensitivity(math.nan, math.nan, math.nan, strength)
    return Sensitivity(rv, float(lower), float(upper), strength)
