"""Value weights: from one uplift run to published, verified weight files, and back.

A map of the package:

- `combine`    the value of a send: Σ exchange rate × uplift over objectives, with its CI
- `policy`     the governance policy: exchange rates, guardrails, caps, drift
- `shrinkage`  empirical-Bayes shrinkage of noisy class values toward their group's mean
- `ebci`       the robust EBCI critical value (Armstrong, Kolesár, Plagborg-Møller 2022)
- `weightset`  rates → values → shrinkage → guardrails → caps: one `WeightSet` and its document
- `ope`        off-policy evaluation of a candidate sending policy on logged decisions
- `clearance`  decisions a class blocked by the opt-out guardrail needs to clear it
- `export`     the `upshot weights export` flow: load a run, compute, evaluate, publish
- `publish`    the writer: atomic files, the manifest, `latest.json`, retention
- `reconcile`  records in the warehouse a version a killed export published unjournaled
- `read`       the reference reader decision services embed (no EconML, no DuckDB)

`read_weights`, `read_segments` and `verify_weights` are re-exported here and by `upshot`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Resolved on first use, so that `import upshot.attribution.weights.read` in a decision
# service stays as light as the reader itself.
_EXPORTS = {"read_weights": "read", "read_segments": "read_segments", "verify_weights": "verify"}
__all__ = ["read_segments", "read_weights", "verify_weights"]

if TYPE_CHECKING:
    from upshot.attribution.weights.read import read as read_weights
    from upshot.attribution.weights.read import read_segments as read_segments
    from upshot.attribution.weights.read import verify as verify_weights


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'upshot.attribution.weights' has no attribute {name!r}")
    from upshot.attribution.weights import read

    return getattr(read, _EXPORTS[name])
