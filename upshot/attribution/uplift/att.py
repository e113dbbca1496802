"""The effect on the treated (ATT) of one objective, from the doubly robust scores.

Every estimator's scores `φ_i` satisfy `E[φ_i | x_i] = τ(x_i)` when the propensity `p` is
right (the R-learner score of `linear_dml` whatever the form of θ, the AIPW score of the
DR learner). Hence `E[p(X) φ] / E[p(X)] = E[p(X) τ(X)] / E[p(X)] = E[τ(X) | T = 1]`: the
propensity-weighted mean of the scores is the ATT. The plain mean of the scores of the
treated rows is not (for `linear_dml` it is biased wherever θ(x) is misspecified).
The standard error is that of the ratio of means, from the influence terms
`p_i (φ_i - att) / mean(p)`, the propensity taken as known (as for the ATE's).

When sends are targeted on users with larger effects, ATT > ATE: the conversions the
treated sends caused are ATT × treated sends, not ATE × treated sends.
"""

from __future__ import annotations

import math

import numpy as np


def effect_on_treated(scores: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """`{"att", "att_se"}` from per-row scores and propensities (NaN rows dropped)."""
    scores, p = np.asarray(scores, dtype=float), np.asarray(p, dtype=float)
    kept = np.isfinite(scores) & np.isfinite(p)
    phi, w = scores[kept], p[kept]
    if len(phi) < 2 or w.sum() <= 0:
        return {"att": math.nan, "att_se": math.nan}
    att = float(w @ phi / w.sum())
    influence = w * (phi - att) / w.mean()
    return {"att": att, "att_se": float(influence.std(ddof=1) / math.sqrt(len(phi)))}
