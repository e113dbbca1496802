"""The experiments live in a week: their stored results and their decompositions.

An experiment is live in a week when users were assigned before the week ended and the
latest assignment's longest metric window is still open when it starts. Its results are
the rows of the run the weekly job pinned, else of its newest run in
`experiment_results`. Decompositions are computed here from sufficient statistics by
`upshot.experiments.decompose` (a funnel and a mix/rate split, per `[report]`).
"""

from __future__ import annotations

import json
import warnings
from typing import TYPE_CHECKING, Any

from upshot.experiments.warehouse import live_experiments
from upshot.reports.significance import experiment_rows
from upshot.reports.tables import Records, fetch, num

if TYPE_CHECKING:
    import duckdb

    from upshot.config import Config

LABELS = frozenset(
    {
        "experiment_id",
        "arm",
        "control_arm",
        "metric",
        "kind",
        "role",
        "status",
        "srm_status",
        "verdict",
        "reason",
        "details",
        "higher_is_better",
        "suppressed",
    }
)


def results(
    con: duckdb.DuckDBPyConnection,
    names: list[str],
    pinned: dict[str, str] | None,
    fallback: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The stored result rows of `names`, and the run each came from: the `pinned` run,
    else (with `fallback`) the experiment's newest run."""
    runs = {n: r for n, r in (pinned or {}).items() if n in names}
    missing = [n for n in names if n not in runs]
    if missing and fallback:
        for r in fetch(con, "experiment-runs", experiments=missing):
            runs[r["experiment_id"]] = r["run_id"]
    if not runs:
        return [], {}
    found = fetch(
        con, "experiment-results-of-runs", runs=sorted(set(runs.values())), experiments=names
    )
    rows = []
    for r in found:
        details = json.loads(r["details"]) if isinstance(r["details"], str) else r["details"]
        row = {k: (num(v) if isinstance(v, float) else v) for k, v in r.items()}
        row["details"] = details or {}
        row["higher_is_better"] = (details or {}).get("higher_is_better")
        rows.append(row)
    return rows, runs


def suppress_arms(rows: list[dict[str, Any]], k: int) -> tuple[Records, int]:
    """Rows comparing an arm of fewer than `k` users lose their numbers."""
    out, hidden = [], 0
    for row in rows:
        small = "metric" in row and any(
            n is None or n < k for n in (row.get("n_control"), row.get("n_treatment"))
        )
        new = dict(row)
        if small:
            hidden += 1
            new.update(
                {n: None for n, v in row.items() if n not in LABELS and not isinstance(v, str)}
            )
            # text carries numbers too: the verdict's reason quotes the effect and p-value,
            # the details count excluded users
            new["reason"] = f"suppressed: fewer than {k} users in an arm"
            new["details"] = {"higher_is_better": row.get("higher_is_better")}
        new["suppressed"] = small
        out.append(new)
    return tuple(out), hidden


def _funnel_rows(item: Any) -> list[dict[str, Any]]:
    doc = item.to_document()
    rows = [
        {
            "label": f"{doc['metric']} per user (total)",
            "effect": num(doc["total_rel_effect"]),
            "ci_lower": num(doc["total_rel_effect_ci_lower"]),
            "ci_upper": num(doc["total_rel_effect_ci_upper"]),
            "share": 1.0 if doc["status"] == "ok" else None,
            "relative": True,
            "note": doc.get("note") or "",  # unadjusted while the results row is adjusted
        }
    ]
    rows += [
        {
            "label": f"step: {s['step']}",
            "effect": num(s["rel_effect"]),
            "ci_lower": num(s["rel_effect_ci_lower"]),
            "ci_upper": num(s["rel_effect_ci_upper"]),
            "share": num(s["share"]),
            "relative": True,
        }
        for s in doc["steps"]
    ]
    return rows


def _mix_rows(item: Any, k: int) -> list[dict[str, Any]]:
    """The total, then one row per part with its mix and rate terms (metric units per
    user); a part (a segment of users) with fewer than `k` users in an arm is suppressed."""
    doc = item.to_document()
    n = min(doc.get("n_control") or 0, doc.get("n_treatment") or 0)
    effect = num(doc["effect"])
    rows = [
        {
            "label": f"{doc['metric']} per user (total)",
            "effect": effect,
            "ci_lower": num(doc["effect_ci_lower"]),
            "ci_upper": num(doc["effect_ci_upper"]),
            "note": doc.get("note") or "",
            "mix": num(doc["mix"]),
            "rate": num(doc["rate"]),
            "share": 1.0 if effect else None,
            "relative": False,
        }
    ]
    for p in doc["parts"]:
        hidden = min(p["weight_control"] or 0, p["weight_treatment"] or 0) * n < k
        row: dict[str, Any] = {"label": str(p["part"]), "relative": False, "suppressed": hidden}
        if not hidden:
            total = num(p["effect"])
            row.update(
                effect=total,
                mix=num(p["mix"]),
                mix_ci_lower=num(p["mix_ci_lower"]),
                mix_ci_upper=num(p["mix_ci_upper"]),
                rate=num(p["rate"]),
                rate_ci_lower=num(p["rate_ci_lower"]),
                rate_ci_upper=num(p["rate_ci_upper"]),
                share=total / effect if total is not None and effect else None,
            )
        rows.append(row)
    return rows


def decompositions(
    con: duckdb.DuckDBPyConnection, config: Config, names: list[str]
) -> tuple[Records, int]:
    """Funnel and mix/rate rows per experiment and arm (`kind`, `label`, `effect`, CI,
    `share` of the total, `status`); one failing decomposition gives a status row."""
    from upshot.errors import UpshotError

    try:
        from upshot.experiments import decompose
    except ImportError:  # the experiments part is not installed: say so, per experiment
        missing: Records = tuple(
            {"experiment_id": n, "kind": "funnel", "arm": None, "status": "unavailable"}
            for n in names
        )
        return missing, 0

    settings, k = config.report, config.report.k_anonymity
    wanted: list[tuple[str, dict[str, Any]]] = []
    if len(settings.funnel) >= 2:
        wanted.append(("funnel", {"funnel": list(settings.funnel)}))
    if settings.mix_metric and settings.mix_segment:
        wanted.append(("mix", {"segment": settings.mix_segment, "metric": settings.mix_metric}))
    out: list[dict[str, Any]] = []
    hidden = 0
    for name in names:
        for kind, args in wanted:
            head = {"experiment_id": name, "kind": kind}
            try:
                with warnings.catch_warnings():
                    # an empty arm or step gives NaN (a `status`), not a number: quiet numpy
                    warnings.simplefilter("ignore", RuntimeWarning)
                    result = decompose(name, con=con, config=config, **args)
            except (UpshotError, ValueError, ArithmeticError) as exc:
                out.append({**head, "arm": None, "status": f"failed:{str(exc)[:120]}"})
                continue
            for item in result.items:
                status = item.status
                if min(item.n_control, item.n_treatment) < k:
                    out.append({**head, "arm": item.arm, "status": "suppressed"})
                    hidden += 1
                    continue
                parts = _funnel_rows(item) if kind == "funnel" else _mix_rows(item, k)
                hidden += sum(1 for r in parts if r.get("suppressed"))
                out += [{**head, "arm": item.arm, "status": status, **r} for r in parts]
    return tuple(out), hidden


def section(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    week: str,
    pinned: dict[str, str] | None,
    fallback: bool = True,
) -> tuple[Records, Records, dict[str, str], int]:
    """(result rows, decomposition rows, run per experiment, suppressed cells) of `week`."""
    found = live_experiments(con, config, week)
    names = [r["experiment_id"] for r in found]
    if not names:
        return (), (), {}, 0
    rows, runs = results(con, names, pinned, fallback)
    listed = {r["experiment_id"] for r in rows}
    rows += [
        {"experiment_id": r["experiment_id"], "status": "no_results", "users": r["users"]}
        for r in found
        if r["experiment_id"] not in listed
    ]
    kept, hidden = suppress_arms(
        experiment_rows(rows, config.experiments.alpha), config.report.k_anonymity
    )
    parts, hidden_parts = decompositions(con, config, names)
    return kept, parts, runs, hidden + hidden_parts
