"""The governance policy applied to class values: exchange rates, guardrails, caps and drift.

Pure functions over plain records; `upshot.attribution.weights.export` feeds them the estimates
of one uplift run and the previous published weights.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from upshot.results import ResultsMixin

if TYPE_CHECKING:
    from upshot.config import Governance


def policy_hash(governance: Governance) -> str:
    """sha256 of the whole `[governance]` section, so any change is a new policy."""
    body = json.dumps(asdict(governance), sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ReachStats:
    """A channel's sending volume in the estimation window: `sends` messages actually sent
    to `users` distinct users over `weeks` weeks."""

    sends: int
    users: int
    weeks: float


@dataclass(frozen=True, slots=True)
class DerivedRate:
    """The opt-out rate of one channel: `-(future_sends_per_user × value_per_send)`, value
    units per opt-out; `value_per_send` is the send-weighted value of the channel's classes
    without the opt-out term, floored at 0 (losing reach to worthless sends costs nothing)."""

    rate: float
    future_sends_per_user: float
    value_per_send: float
    horizon_weeks: float


def derive_optout_rate(
    stats: ReachStats,
    class_values: Sequence[tuple[float, int]],
    horizon_weeks: float,
) -> DerivedRate | None:
    """The derived rate from the channel's volume and its classes' `(value without the
    opt-out term, n_treated)`; None when the channel has no sends or no valued class."""
    usable = [(v, n) for v, n in class_values if math.isfinite(v) and n > 0]
    if stats.users <= 0 or stats.weeks <= 0 or not usable:
        return None
    future = stats.sends / stats.users / stats.weeks * horizon_weeks
    per_send = max(0.0, math.fsum(v * n for v, n in usable) / sum(n for _, n in usable))
    return DerivedRate(-future * per_send, future, per_send, horizon_weeks)


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of the guardrails for one class (or segment): `status` and `reason`."""

    status: str
    reason: str | None


def guardrails(
    *,
    statuses: Mapping[str, str],
    n_treated: int | None,
    n_control: int | None,
    optout_ci_upper: float | None,
    refute_passed: bool | None,
    value_status: str,
    governance: Governance,
) -> Check:
    """Which rule, if any, keeps a class from a positive weight.

    `statuses` are the uplift statuses of the rated objectives; the first that is not ok
    is the class's status. Then the sample minimums (`insufficient_data`), then the
    opt-out harm and a failed refutation (`guardrail`, all reasons listed).
    """
    for objective, status in sorted(statuses.items()):
        if status != "ok":
            return Check(status, f"{objective}: uplift status {status}")
    if value_status != "ok":
        return Check(value_status, "the value could not be computed")
    if (n_treated or 0) < governance.min_treated or (n_control or 0) < governance.min_control:
        return Check(
            "insufficient_data",
            f"n_treated {n_treated or 0} (min {governance.min_treated}), "
            f"n_control {n_control or 0} (min {governance.min_control})",
        )
    reasons = []
    if optout_ci_upper is None or not math.isfinite(optout_ci_upper):
        reasons.append(f"no {governance.optout_objective} estimate to check the opt-out harm")
    elif optout_ci_upper > governance.max_optout_harm:
        reasons.append(
            f"{governance.optout_objective} uplift upper CI {optout_ci_upper:.4g} > "
            f"max_optout_harm {governance.max_optout_harm:g}"
        )
    if refute_passed is False:
        reasons.append("refutation failed")
    return Check("guardrail", "; ".join(reasons)) if reasons else Check("ok", None)


def weight_for(value: float, check: Check, cap: float | None) -> tuple[float, Check]:
    """The weight to rank by: 0 without an estimate, at most 0 under a guardrail, at most
    the channel cap otherwise (status `capped`)."""
    if check.status != "ok" and check.status != "guardrail":
        return 0.0, check
    if not math.isfinite(value):
        return 0.0, Check("insufficient_data", check.reason or "no value")
    if check.status == "guardrail":
        return min(value, 0.0), check
    if cap is not None and value > cap:
        return cap, Check("capped", f"value {value:.4g} capped at the channel cap {cap:g}")
    return value, check


@dataclass(frozen=True, slots=True)
class DriftRow:
    """One class's weight before and after (value units per send).

    `rel_change` is `|new - old|` over the larger of `|old|` and the median `|old|` of all
    compared classes, so near-zero weights do not trip the breaker on noise; `moved` when
    it exceeds the threshold; `flipped` when the sign of "send or not" changes.
    """

    message_class: str
    weight_old: float | None
    weight_new: float | None
    change: float
    rel_change: float
    moved: bool
    flipped: bool
    note: str


@dataclass(frozen=True, slots=True)
class Drift(ResultsMixin):
    """The new weights against the previous version, and the circuit breaker's verdict."""

    rows: tuple[DriftRow, ...]
    previous_version: str | None
    n_compared: int
    n_moved: int
    share_moved: float
    max_share: float
    threshold: float
    tripped: bool

    def to_dicts(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.rows]

    def summary(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("previous_version", "n_compared", "n_moved")}
        return {
            **out,
            "share_moved": self.share_moved,
            "max_share": self.max_share,
            "threshold": self.threshold,
            "tripped": self.tripped,
        }


def drift(
    previous: Mapping[str, float] | None,
    new: Mapping[str, float],
    *,
    threshold: float,
    max_share: float,
    previous_version: str | None = None,
) -> Drift:
    """Compare class weights; the breaker trips when more than `max_share` of the classes
    present in both versions moved by more than `threshold` (relative). Added and removed
    classes are listed but not counted. No previous version: nothing to compare."""
    previous = previous or {}
    both = sorted(set(previous) & set(new))
    scale = statistics.median([abs(previous[c]) for c in both]) if both else 0.0
    rows = []
    for name in sorted(set(previous) | set(new)):
        old, now = previous.get(name), new.get(name)
        if old is None or now is None:
            note = "added" if old is None else "removed"
            rows.append(DriftRow(name, old, now, math.nan, math.nan, False, False, note))
            continue
        change = now - old
        denominator = max(abs(old), scale)
        rel = abs(change) / denominator if denominator > 0 else (math.inf if change else 0.0)
        rows.append(
            DriftRow(name, old, now, change, rel, rel > threshold, (old > 0) != (now > 0), "")
        )
    moved = sum(r.moved for r in rows)
    share = moved / len(both) if both else 0.0
    return Drift(
        tuple(rows),
        previous_version,
        len(both),
        moved,
        share,
        max_share,
        threshold,
        bool(both) and share > max_share,
    )
