"""Sample ratio mismatch: are the arm sizes what the intended split says they should be?

A chi-square goodness-of-fit test of the users per arm against the split weights. A
mismatch means the assignment or the logging is broken, so every effect is suspect and
the experiment never gets a ship verdict. Users of variants the split does not name are
a mismatch by themselves (`unknown_variant`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from upshot.errors import UsageError


@dataclass(frozen=True, slots=True)
class SrmResult:
    """`observed` users per arm; `expected` users per arm under the split; `status` is
    ok | srm | unknown_variant | insufficient_data."""

    statistic: float
    df: int
    pvalue: float
    status: str
    alpha: float
    observed: dict[str, int] = field(default_factory=dict)
    expected: dict[str, float] = field(default_factory=dict)
    unknown: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "pvalue": self.pvalue,
            "status": self.status,
            "statistic": self.statistic,
            "df": self.df,
            "alpha": self.alpha,
            "observed": dict(self.observed),
            "expected": dict(self.expected),
            "unknown_variants": dict(self.unknown),
        }


def check_split(split: Mapping[str, float]) -> dict[str, float]:
    """Validated split weights, normalised to sum to 1."""
    if len(split) < 2:
        raise UsageError(f"split == {dict(split)}, must name at least two arms")
    for arm, w in split.items():
        if not (isinstance(w, int | float) and math.isfinite(w) and w > 0):
            raise UsageError(f"split weight of {arm!r} == {w!r}, must be > 0")
    total = float(sum(split.values()))
    return {arm: float(w) / total for arm, w in split.items()}


def srm_test(
    counts: Mapping[str, int],
    split: Mapping[str, float],
    *,
    alpha: float = 0.001,
    unknown: Mapping[str, int] | None = None,
) -> SrmResult:
    """Chi-square test of `counts` against `split` (weights; normalised here)."""
    from scipy import special

    weights = check_split(split)
    observed = {arm: int(counts.get(arm, 0)) for arm in weights}
    total = sum(observed.values())
    expected = {arm: total * w for arm, w in weights.items()}
    extra = {k: int(v) for k, v in (unknown or {}).items() if v}
    df = len(weights) - 1
    if total == 0:
        status = "unknown_variant" if extra else "insufficient_data"
        return SrmResult(math.nan, df, math.nan, status, alpha, observed, expected, extra)
    statistic = sum((observed[a] - expected[a]) ** 2 / expected[a] for a in weights)
    pvalue = float(special.chdtrc(df, statistic))
    status = "unknown_variant" if extra else ("srm" if pvalue < alpha else "ok")
    return SrmResult(float(statistic), df, pvalue, status, alpha, observed, expected, extra)
