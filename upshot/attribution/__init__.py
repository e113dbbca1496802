"""Causal attribution: what sending a message of each class is worth, and to whom.

Four sub-packages, one subject each; arrows run only downwards in this list:

- `upshot.attribution.uplift`   per-decision frames, EconML fits per class, refutation,
                                CATE evaluation, the local and Ray backends
- `upshot.attribution.weights`  value weights from one uplift run: combination, governance
                                policy, shrinkage, off-policy evaluation, the weight-file
                                writer and the reference reader decision services embed
- `upshot.attribution.touches`  rule-based, Markov and Shapley credit beside the causal column
- `upshot.attribution.longterm` long-term effects projected from short-term ones (surrogate
                                index) and the backtest of that projection

The uplift names are re-exported here, resolved on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Exports resolve on first use: importing `upshot.attribution.weights.read` must not pull
# EconML and scikit-learn into a decision service or every command's start-up.
_EXPORTS = {
    "UpliftCovariance": "upshot.attribution.uplift.results",
    "UpliftEstimate": "upshot.attribution.uplift.results",
    "UpliftResults": "upshot.attribution.uplift.results",
    "decision_frame": "upshot.attribution.uplift.frames",
    "estimate_uplift": "upshot.attribution.uplift.estimate",
    "uplift_from_warehouse": "upshot.attribution.uplift.estimate",
    "write_results": "upshot.attribution.uplift.estimate",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from upshot.attribution.uplift.estimate import (
        estimate_uplift as estimate_uplift,
    )
    from upshot.attribution.uplift.estimate import (
        uplift_from_warehouse as uplift_from_warehouse,
    )
    from upshot.attribution.uplift.estimate import write_results as write_results
    from upshot.attribution.uplift.frames import decision_frame as decision_frame
    from upshot.attribution.uplift.results import UpliftCovariance as UpliftCovariance
    from upshot.attribution.uplift.results import UpliftEstimate as UpliftEstimate
    from upshot.attribution.uplift.results import UpliftResults as UpliftResults


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'upshot.attribution' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
