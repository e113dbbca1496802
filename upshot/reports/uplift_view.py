"""The uplift numbers of the report: per class and objective, and the week's headline
totals. Pure functions over stored estimates and send counts; what is significant is
decided once, in `upshot.reports.significance`."""

from __future__ import annotations

import math
from collections.abc import Iterable
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from upshot.reports.significance import two_sided
from upshot.reports.tables import Records, num

if TYPE_CHECKING:
    from upshot.config import Config, Objective

_LABELS = {
    "conversion": ("Incremental conversions", "conversions", "conversion probability"),
    "engagement": ("Incremental minutes watched", "minutes", "minutes"),
    "retention": ("Retained days", "active days", "active days"),
    "reachability": ("Opt-outs caused", "opt-outs", "opt-out probability"),
}
_AGG_UNITS = {"any": "users", "sum": "units", "count": "events", "distinct_days": "days"}


def objective_meta(config: Config) -> Records:
    rates = config.governance.rates
    key = set(config.report.key_objectives)
    return tuple(
        {
            "objective": name,
            "label": _LABELS.get(name, (_generic_label(name, o), "", ""))[0],
            "unit": _LABELS.get(name, ("", _AGG_UNITS[o.aggregation], ""))[1],
            "per_send": _LABELS.get(name, ("", "", _AGG_UNITS[o.aggregation]))[2],
            "binary": o.binary,
            "higher_is_better": rates.get(name, 1.0) >= 0,
            "key": name in key,
        }
        for name, o in config.objectives.items()
    )


def _generic_label(name: str, objective: Objective) -> str:
    return f"{name} ({objective.aggregation} of {', '.join(objective.events)})"


def _z(alpha: float) -> float:
    return NormalDist().inv_cdf(1 - alpha / 2)


def uplift_rows(
    estimates: Iterable[dict[str, Any]],
    counts: dict[tuple[str, str], dict[str, Any]],
    alpha: float,
) -> list[dict[str, Any]]:
    """Stored estimates → report rows; `counts[(week, class)]` gives users (all, sent and
    held out) and sends. `significant` is left to `significance.decide`."""
    z = _z(alpha)
    rows = []
    for e in estimates:
        ok = e["status"] == "ok"
        effect, lower, upper = (
            num(e[k]) if ok else None for k in ("ate", "ate_ci_lower", "ate_ci_upper")
        )
        se = num(e["ate_se"]) if ok else None
        if se is None and lower is not None and upper is not None:
            se = (upper - lower) / (2 * z)
        seen = counts.get((e["week"], e["message_class"]), {})
        stored = num(e.get("pvalue")) if ok else None  # the estimator's own test, when stored
        rows.append(
            {
                "week": e["week"],
                "message_class": e["message_class"],
                "channel": e["channel"] or seen.get("channel"),
                "objective": e["objective"],
                "effect": effect,
                "effect_se": se,
                "effect_ci_lower": lower,
                "effect_ci_upper": upper,
                "pvalue": stored if stored is not None else two_sided(effect, se),
                "naive_effect": num(e["naive_effect"]),
                "n_treatment": e["n_treated"],
                "n_control": e["n_control"],
                "sends": seen.get("treated"),
                "users": seen.get("users"),
                "treated_users": seen.get("treated_users"),
                "control_users": seen.get("control_users"),
                "design": e["design"],
                "refute_passed": e["refute_passed"],
                "status": e["status"],
            }
        )
    return rows


def headline(uplift: Iterable[dict[str, Any]], objectives: Records, alpha: float) -> Records:
    """Per objective: Σ over classes of per-send uplift × this week's sends, with a CI.

    Classes are estimated on disjoint decisions, so their errors are treated as
    independent: var = Σ (sends × se)². Suppressed or failed classes are left out and
    the row says how many were (`partial`); with none estimated the total is None.
    """
    z = _z(alpha)
    out = []
    by_objective: dict[str, list[dict[str, Any]]] = {}
    for row in uplift:
        by_objective.setdefault(row["objective"], []).append(row)
    for meta in objectives:
        rows = by_objective.get(meta["objective"], [])
        usable = [
            r for r in rows if r["effect"] is not None and r["effect_se"] is not None and r["sends"]
        ]
        total = sum(r["effect"] * r["sends"] for r in usable)
        se = math.sqrt(sum((r["effect_se"] * r["sends"]) ** 2 for r in usable))
        status = (
            "ok"
            if usable and len(usable) == len(rows)
            else "partial"
            if usable
            else ("no_estimates")
        )
        out.append(
            {
                "objective": meta["objective"],
                "label": meta["label"],
                "unit": meta["unit"],
                "effect": total if usable else None,
                "effect_ci_lower": total - z * se if usable else None,
                "effect_ci_upper": total + z * se if usable else None,
                "effect_se": se if usable else None,
                "classes_estimated": len(usable),
                "classes": len(rows),
                "status": status,
            }
        )
    return tuple(out)
