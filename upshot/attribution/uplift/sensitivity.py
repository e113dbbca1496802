"""How strong would an unobserved confounder have to be to explain the effect away?

For classes whose decisions were not randomized, the estimate rests on "no unobserved
confounding given the covariates". EconML's omitted-variable-bias analysis
(Chernozhukov et al. 2022, "Long story short") bounds the bias a confounder can cause by
how much of the residual variance of the outcome (`c_y`) and of the treatment (`c_t`) it
would explain. upshot reports two numbers from it:

- `robustness_value`: the strength `c_y = c_t` at which the CI first reaches 0
  (0: the CI already contains 0; higher is more robust);
- the CI under a confounder of strength `strength` (`uplift.sensitivity_strength`).

They refer to EconML's partially linear (DML, causal forest) or doubly robust (DR)
average effect, computed by EconML's own functions from the cross-fitted nuisances
(no estimator is refitted for them); the DML one is the ATE when effects are homogeneous
and close to it otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Sensitivity:
    """Omitted-variable-bias bounds; NaN when the estimator cannot compute them."""

    robustness_value: float
    ci_lower: float
    ci_upper: float
    strength: float


def sensitivity(
    y: np.ndarray,
    T: np.ndarray,
    p: np.ndarray,
    mu: np.ndarray,
    *,
    dr: bool,
    alpha: float,
    strength: float,
) -> Sensitivity:
    """EconML's sensitivity analysis from the cross-fitted nuisances, without refitting
    an estimator: its own `dml_sensitivity_values` (DML and the causal forest) or
    `dr_sensitivity_values` (`dr`) of the residuals it would compute from the same
    nuisances, then its `RV` and `sensitivity_interval`. `y` (n,), `T` (n,) 0/1, `p` (n,)
    the clipped propensity, `mu` (n, 2) the per-arm outcomes."""
    from econml.validate.sensitivity_analysis import (
        RV,
        dml_sensitivity_values,
        dr_sensitivity_values,
        sensitivity_interval,
    )

    try:
        with np.errstate(all="raise"):
            if dr:
                # EconML's DR nuisances: per-arm predictions with the doubly robust correction
                t_pred = np.column_stack([1 - p, p])
                y_pred = mu + (y[:, None] - mu) * np.column_stack([T == 0, T == 1]) / t_pred
                values = dr_sensitivity_values(y, T[:, None].astype(float), y_pred, t_pred)
                params = {k: v[0] for k, v in values._asdict().items()}
            else:
                m = p * mu[:, 1] + (1 - p) * mu[:, 0]
                params = dml_sensitivity_values(T - p, y - m)._asdict()
            rv = float(RV(**params, alpha=alpha))
            lower, upper = sensitivity_interval(
                **params, alpha=alpha, c_y=strength, c_t=strength, rho=1.0
            )
    except (ValueError, FloatingPointError, np.linalg.LinAlgError):
        # too little residual variation (e.g. a degenerate fold): no bounds, not fake ones
        return Sensitivity(math.nan, math.nan, math.nan, strength)
    return Sensitivity(rv, float(np.ravel(lower)[0]), float(np.ravel(upper)[0]), strength)
