"""How many decisions a class blocked by the opt-out guardrail would need to clear it.

The guardrail blocks a class while the upper CI bound of its opt-out uplift,
`u + z·se`, is over `max_optout_harm` (`h`). If the estimate `u` stayed where it is and
its standard error shrank like `1/√n` (more decisions, in the same treated/control
proportions), the bound reaches `h` at `n' = n · (z·se / (h - u))²` decisions. When
`u ≥ h` no number of decisions clears it at the current estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from upshot.attribution.weights.combine import z_value
from upshot.attribution.weights.weightset import WeightSet
from upshot.config import Governance
from upshot.results import ResultsMixin


@dataclass(frozen=True, slots=True)
class Clearance:
    """One blocked class: its opt-out uplift and upper bound (per send), the decisions
    behind them (`n_treated + n_control`) and the decisions it would need (`None`: the
    estimate itself is over the limit, `note` says so)."""

    message_class: str
    channel: str | None
    optout_uplift: float
    optout_ci_upper: float
    max_optout_harm: float
    decisions: int
    decisions_needed: int | None
    note: str


@dataclass(frozen=True, slots=True)
class Clearances(ResultsMixin):
    rows: tuple[Clearance, ...]

    def to_dicts(self) -> list[dict[str, object]]:
        from dataclasses import asdict

        return [asdict(r) for r in self.rows]


def optout_clearance(ws: WeightSet, governance: Governance) -> Clearances:
    """Every class (segment `all`) whose opt-out upper bound is over the limit."""
    z = z_value(governance.alpha)
    limit = governance.max_optout_harm
    rows = []
    for c in sorted(ws.classes, key=lambda c: c.message_class):
        part = next((p for p in c.components if p.objective == governance.optout_objective), None)
        if part is None or not (math.isfinite(part.uplift) and math.isfinite(part.uplift_ci_upper)):
            continue
        if part.uplift_ci_upper <= limit or c.n_treated is None or c.n_control is None:
            continue
        n = c.n_treated + c.n_control
        se = (part.uplift_ci_upper - part.uplift) / z
        if part.uplift >= limit:
            needed, note = (
                None,
                "the estimate itself is over the limit: more data will not clear it",
            )
        else:
            needed = math.ceil(n * (z * se / (limit - part.uplift)) ** 2)
            note = f"{needed / n:.1f}× the decisions, if the estimate holds"
        rows.append(
            Clearance(
                c.message_class,
                c.channel,
                part.uplift,
                part.uplift_ci_upper,
                limit,
                n,
                needed,
                note,
            )
        )
    return Clearances(tuple(rows))
