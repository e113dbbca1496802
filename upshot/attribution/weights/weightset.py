"""Value weights from one uplift run: rates → values → shrinkage → guardrails → caps.

`compute_weights` is pure: it takes the rows of `uplift_estimates` and `uplift_covariance`
of one run and the `[governance]` policy. Per class (segment `all`) and per segment:

1. the exchange rates, with the opt-out rate derived per channel when the policy says so;
2. value = Σ rate × uplift with its CI from the joint covariance (`value.combine`);
3. empirical-Bayes shrinkage toward the channel mean (segments: toward the mean of the
   class's segments), with each shrinkage factor (`shrinkage.shrink_groups`);
4. guardrails and caps (`governance.guardrails`, `governance.weight_for`): the weight.

`build_document` turns the result into the weights-file document (see the JSON Schema);
the export itself (database, drift, evaluation, files) is `upshot.attribution.weights.export`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from upshot.attribution.weights.combine import Component, Value, combine, z_value
from upshot.attribution.weights.policy import (
    Check,
    DerivedRate,
    ReachStats,
    derive_optout_rate,
    guardrails,
    policy_hash,
    weight_for,
)
from upshot.attribution.weights.read import SCHEMA_VERSION, sha256
from upshot.attribution.weights.shrinkage import Prior, Shrunk, shrink_groups
from upshot.config import Governance
from upshot.period import Period
from upshot.results import ResultsMixin

ALL = "all"
# what a person reads first about a class, in order
TABLE_FIELDS = (
    "message_class",
    "channel",
    "weight",
    "value",
    "value_ci_lower",
    "value_ci_upper",
    "value_raw",
    "shrinkage",
    "status",
    "reason",
    "n_treated",
    "n_control",
)
FILE_FIELDS = (
    "message_class",
    "channel",
    "weight",
    "value",
    "value_ci_lower",
    "value_ci_upper",
    "value_raw",
    "value_raw_ci_lower",
    "value_raw_ci_upper",
    "covariance",
)


@dataclass(frozen=True, slots=True)
class ClassWeight:
    """The weight of one class (segment `all`) or class × segment, in value units per send.

    `value_raw*` is Σ rate × uplift; `value*` the same after shrinkage (equal when
    shrinkage is off); `weight` is what a ranker uses: `value` held at or below 0 by a
    guardrail and at or below the channel cap, 0 when there is no estimate. `shrinkage` is
    the factor B in [0, 1] (NaN when not shrunk).
    """

    message_class: str
    channel: str | None
    segment: str
    weight: float
    value: float
    value_ci_lower: float
    value_ci_upper: float
    value_raw: float
    value_raw_ci_lower: float
    value_raw_ci_upper: float
    covariance: str
    components: tuple[Component, ...]
    shrinkage: float
    status: str
    reason: str | None
    n_treated: int | None
    n_control: int | None

    def row(self) -> dict[str, Any]:
        """The flat fields with one `uplift_<objective>` column per component."""
        out = {k: v for k, v in asdict(self).items() if k != "components"}
        out.update({f"uplift_{c.objective}": c.uplift for c in self.components})
        return out


@dataclass(frozen=True, slots=True)
class WeightSet(ResultsMixin):
    """Every class's and segment's weight under one policy, and how the rates were set.

    `channel_rates[channel]` replaces `rates` entries for that channel (the derived opt-out
    rates, explained in `derived`); `priors` are the channel priors of the class values.
    """

    classes: tuple[ClassWeight, ...]
    segments: tuple[ClassWeight, ...]
    rates: dict[str, float]
    channel_rates: dict[str, dict[str, float]] = field(default_factory=dict)
    derived: dict[str, DerivedRate] = field(default_factory=dict)
    priors: dict[str, Prior] = field(default_factory=dict)

    def to_dicts(self) -> list[dict[str, Any]]:
        return [{k: c.row()[k] for k in TABLE_FIELDS} for c in self.classes]

    def weights(self) -> dict[str, float]:
        return {c.message_class: c.weight for c in self.classes}

    def rates_for(self, channel: str | None) -> dict[str, float]:
        return {**self.rates, **self.channel_rates.get(channel or "", {})}

    def objectives(self) -> tuple[str, ...]:
        return tuple(sorted({c.objective for w in self.classes for c in w.components}))


@dataclass
class _Group:
    """The estimates of one class × segment, gathered from its per-objective rows."""

    channel: str | None = None
    uplift: dict[str, float] = field(default_factory=dict)
    se: dict[str, float] = field(default_factory=dict)
    ci_upper: dict[str, float] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    n_treated: dict[str, int] = field(default_factory=dict)
    n_control: dict[str, int] = field(default_factory=dict)
    refuted: list[bool] = field(default_factory=list)


def compute_weights(
    estimates: Sequence[Mapping[str, Any]],
    covariance: Sequence[Mapping[str, Any]],
    governance: Governance,
    *,
    reach: Mapping[str, ReachStats] | None = None,
) -> WeightSet:
    """Weights from one uplift run's `estimates` and `covariance` rows (see the module)."""
    groups = _gather(estimates, governance.alpha)
    covs: dict[tuple[str, str], dict[tuple[str, str], float]] = {}
    for row in covariance:
        pair = (str(row["objective_a"]), str(row["objective_b"]))
        covs.setdefault((row["message_class"], row["segment"]), {})[pair] = _num(row["covariance"])
    rates = dict(governance.rates)
    channel_rates: dict[str, dict[str, float]] = {}
    derived: dict[str, DerivedRate] = {}
    if governance.reachability_rate == "derived":
        derived = _derive(groups, governance, reach or {})
        optout = governance.optout_objective
        channel_rates = {channel: {optout: d.rate} for channel, d in derived.items()}

    def rates_for(channel: str | None) -> dict[str, float]:
        return {**rates, **channel_rates.get(channel or "", {})}

    values = {
        key: combine(rates_for(g.channel), g.uplift, g.se, covs.get(key), alpha=governance.alpha)
        for key, g in groups.items()
    }
    shrunk, priors = _shrink(groups, values, governance)
    checks = {key: _check(groups[key], values[key], governance) for key in groups}
    out: dict[tuple[str, str], ClassWeight] = {}
    for (cls, segment), g in sorted(groups.items()):
        check = checks[cls, segment]
        parent = checks.get((cls, ALL))
        if segment != ALL and parent and parent.status != "ok" and check.status == "ok":
            check = Check("guardrail", f"class: {parent.reason or parent.status}")
        post = shrunk[cls, segment]
        cap = governance.channel_caps.get(g.channel or "")
        weight, check = weight_for(post.estimate, check, cap)
        out[cls, segment] = _record(cls, segment, g, values[cls, segment], post, weight, check)
    return WeightSet(
        classes=tuple(w for (_, s), w in out.items() if s == ALL),
        segments=tuple(w for (_, s), w in out.items() if s != ALL),
        rates=rates,
        channel_rates=channel_rates,
        derived=derived,
        priors=priors,
    )


def _gather(estimates: Sequence[Mapping[str, Any]], alpha: float) -> dict[tuple[str, str], _Group]:
    z = z_value(alpha)
    groups: dict[tuple[str, str], _Group] = {}
    for row in estimates:
        g = groups.setdefault((str(row["message_class"]), str(row["segment"])), _Group())
        objective = str(row["objective"])
        g.channel = g.channel or row.get("channel")
        ok = row["status"] == "ok"
        ate, se = _num(row.get("ate")), _num(row.get("ate_se"))
        lower, upper = _num(row.get("ate_ci_lower")), _num(row.get("ate_ci_upper"))
        if not math.isfinite(se) and math.isfinite(upper - lower):
            se = (upper - lower) / (2 * z)  # the uplift CI is normal, so its width gives se
        g.uplift[objective] = ate if ok else math.nan
        g.se[objective] = se if ok else math.nan
        g.ci_upper[objective] = (
            (upper if math.isfinite(upper) else ate + z * se) if ok else math.nan
        )
        g.status[objective] = str(row["status"])
        g.n_treated[objective] = int(row.get("n_treated") or 0)
        g.n_control[objective] = int(row.get("n_control") or 0)
        if row.get("refute_passed") is not None:
            g.refuted.append(bool(row["refute_passed"]))
    return groups


def _derive(
    groups: Mapping[tuple[str, str], _Group],
    governance: Governance,
    reach: Mapping[str, ReachStats],
) -> dict[str, DerivedRate]:
    """Per channel, the opt-out rate from volume × the value of a send without opt-outs."""
    other = {k: r for k, r in governance.rates.items() if k != governance.optout_objective}
    per_channel: dict[str, list[tuple[float, int]]] = {}
    for (_, segment), g in groups.items():
        if segment != ALL or g.channel is None:
            continue
        value = combine(other, g.uplift, g.se, alpha=governance.alpha)
        n = min(g.n_treated.values(), default=0)
        per_channel.setdefault(g.channel, []).append((value.value, n))
    derived = {}
    for channel, values in sorted(per_channel.items()):
        stats = reach.get(channel)
        rate = derive_optout_rate(stats, values, governance.reach_horizon_weeks) if stats else None
        if rate is not None:
            derived[channel] = rate
    return derived


def _shrink(
    groups: Mapping[tuple[str, str], _Group],
    values: Mapping[tuple[str, str], Value],
    governance: Governance,
) -> tuple[dict[tuple[str, str], Shrunk], dict[str, Prior]]:
    if not governance.shrinkage:
        unshrunk = {
            key: Shrunk(v.value, v.value_se, v.value_ci_lower, v.value_ci_upper, math.nan)
            for key, v in values.items()
        }
        return unshrunk, {}
    # classes shrink toward their channel's classes, segments toward their class's segments;
    # two separate fits, so a borrowed all-classes prior never mixes in segments
    inputs: dict[bool, dict[tuple[str, str], tuple[str, float, float]]] = {True: {}, False: {}}
    for (cls, seg), g in groups.items():
        group = (g.channel or "(none)") if seg == ALL else cls
        inputs[seg == ALL][cls, seg] = (group, values[cls, seg].value, values[cls, seg].value_se)
    fit = partial(
        shrink_groups,
        method=governance.shrinkage_method,
        min_k=governance.shrinkage_min_classes,
        alpha=governance.alpha,
    )
    classes, priors = fit(inputs[True])
    segments, _ = fit(inputs[False])
    return {**classes, **segments}, priors


def _check(g: _Group, value: Value, governance: Governance) -> Check:
    optout = governance.optout_objective
    rated = {c.objective for c in value.components}
    return guardrails(
        statuses={k: g.status.get(k, "insufficient_data") for k in rated},
        n_treated=min((g.n_treated[k] for k in rated if k in g.n_treated), default=None),
        n_control=min((g.n_control[k] for k in rated if k in g.n_control), default=None),
        optout_ci_upper=g.ci_upper.get(optout),
        refute_passed=all(g.refuted) if g.refuted else None,
        value_status=value.status,
        governance=governance,
    )


def _record(
    cls: str, segment: str, g: _Group, raw: Value, post: Shrunk, weight: float, check: Check
) -> ClassWeight:
    return ClassWeight(
        message_class=cls,
        channel=g.channel,
        segment=segment,
        weight=float(weight),
        value=post.estimate,
        value_ci_lower=post.ci_lower,
        value_ci_upper=post.ci_upper,
        value_raw=raw.value,
        value_raw_ci_lower=raw.value_ci_lower,
        value_raw_ci_upper=raw.value_ci_upper,
        covariance=raw.covariance,
        components=raw.components,
        shrinkage=post.shrinkage,
        status=check.status,
        reason=check.reason,
        n_treated=min(g.n_treated.values(), default=None),
        n_control=min(g.n_control.values(), default=None),
    )


def build_document(
    ws: WeightSet,
    *,
    governance: Governance,
    generated_at: datetime,
    window: Period,
    source: Mapping[str, Any],
    segments: bytes,
    version: str | None = None,
) -> dict[str, Any]:
    """The weights-file document. Without `version`, the version is the date of
    `generated_at` and a hash of the content (and of the `segments` Parquet bytes), so the
    same inputs always give the same version and the same bytes."""
    from upshot.attribution.weights.publish import render

    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "weights_version": "",
        "generated_at": _iso(generated_at),
        "window": {"start": _iso(window.start), "end": _iso(window.end), "week": window.week},
        "source": dict(source),
        "policy": policy_block(ws, governance),
        "priors": {
            g: {k: v for k, v in asdict(p).items() if k not in ("tau2_var", "mu2_floor")}
            for g, p in sorted(ws.priors.items())
        },
        "classes": [_class_entry(c) for c in sorted(ws.classes, key=_order)],
        "segments": {"file": "", "rows": len(ws.segments)},
    }
    if version is None:
        digest = sha256(render(document) + segments)[:10]
        version = f"{generated_at.astimezone(UTC):%Y%m%d}-{digest}"
    document["weights_version"] = version
    document["segments"]["file"] = f"{version}.parquet"
    return document


def policy_block(ws: WeightSet, governance: Governance) -> dict[str, Any]:
    optout = governance.optout_objective
    return {
        "version": governance.policy_version,
        "hash": policy_hash(governance),
        "rates": dict(sorted(ws.rates.items())),
        "rate_sources": {
            k: governance.reachability_rate if k == optout else "manual" for k in sorted(ws.rates)
        },
        "channel_rates": dict(sorted(ws.channel_rates.items())),
        "derived": {ch: asdict(d) for ch, d in sorted(ws.derived.items())},
        "guardrails": {
            "optout_objective": optout,
            "max_optout_harm": governance.max_optout_harm,
            "min_treated": governance.min_treated,
            "min_control": governance.min_control,
        },
        "channel_caps": dict(sorted(governance.channel_caps.items())),
        "shrinkage": {
            "enabled": governance.shrinkage,
            "method": governance.shrinkage_method,
            "min_classes": governance.shrinkage_min_classes,
        },
        "drift": {"max_share": governance.drift_max_share, "threshold": governance.drift_threshold},
        "alpha": governance.alpha,
    }


def _class_entry(c: ClassWeight) -> dict[str, Any]:
    row = c.row()
    entry = {k: row[k] for k in FILE_FIELDS}
    entry["components"] = {
        p.objective: {
            "rate": p.rate,
            "uplift": p.uplift,
            "uplift_ci_lower": p.uplift_ci_lower,
            "uplift_ci_upper": p.uplift_ci_upper,
            "contribution": p.contribution,
        }
        for p in c.components
    }
    entry.update(
        shrinkage=c.shrinkage,
        status=c.status,
        reason=c.reason,
        n_treated=c.n_treated,
        n_control=c.n_control,
    )
    return entry


def _order(c: ClassWeight) -> tuple[str, str]:
    return (c.channel or "", c.message_class)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _num(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return math.nan
