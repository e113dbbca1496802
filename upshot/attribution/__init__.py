"""Causal attribution: what sending a message of each class does to each objective.

A map of the package (uplift part):

- `frames`       per-decision frames built in DuckDB (`decision_frame`), covariate encoding
- `estimate`     frame → per-class tasks → estimates (`estimate_uplift`), warehouse I/O
- `uplift`       one class: guards, shared propensity and folds, objectives, covariance
- `adapter`      the EconML adapter: propensity design, folds, one objective's fit
- `models`       scikit-learn pieces given to EconML (known propensity, row-capped nuisances)
- `refute`       the DoWhy adapter: placebo, random common cause and subset refuters
- `evaluate`     held-out Qini, AUUC and calibration of CATE models
- `sensitivity`  bounds under unobserved confounding (EconML's omitted-variable bias)
- `backend`      where per-class fits run (`map_fits`, local processes; Ray plugs in here)
- `results`      the records: `UpliftEstimate`, `UpliftCovariance`, `UpliftResults`

Value weights, shrinkage, off-policy evaluation and touch attribution live beside them
(`value`, `shrinkage`, `ope`, `weights`, `touches`, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Exports resolve on first use: importing a sibling such as `upshot.attribution.ope` must
# not pull EconML and scikit-learn into every command's start-up.
_EXPORTS = {
    "UpliftCovariance": "upshot.attribution.results",
    "UpliftEstimate": "upshot.attribution.results",
    "UpliftResults": "upshot.attribution.results",
    "decision_frame": "upshot.attribution.frames",
    "estimate_uplift": "upshot.attribution.estimate",
    "uplift_from_warehouse": "upshot.attribution.estimate",
    "write_results": "upshot.attribution.estimate",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from upshot.attribution.estimate import (
        estimate_uplift as estimate_uplift,
    )
    from upshot.attribution.estimate import (
        uplift_from_warehouse as uplift_from_warehouse,
    )
    from upshot.attribution.estimate import write_results as write_results
    from upshot.attribution.frames import decision_frame as decision_frame
    from upshot.attribution.results import UpliftCovariance as UpliftCovariance
    from upshot.attribution.results import UpliftEstimate as UpliftEstimate
    from upshot.attribution.results import UpliftResults as UpliftResults


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'upshot.attribution' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
