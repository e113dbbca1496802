"""The warehouse side: which experiments exist, and writing results with a run id."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from upshot import period
from upshot.results import jsonable
from upshot.sql import query

if TYPE_CHECKING:
    import duckdb

    from upshot.config import Config
    from upshot.experiments.decision import Verdict
    from upshot.experiments.results import ExperimentAnalysis


def list_experiments(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """One dict per experiment: arms with their users, users, first/last assignment, and
    users assigned to several arms (excluded from every analysis)."""
    multi = dict(con.execute(query("experiments", "multi-arm-users")).fetchall())
    found: dict[str, dict[str, Any]] = {}
    for exp, variant, users, first, last in con.execute(
        query("experiments", "list-experiments")
    ).fetchall():
        e = found.setdefault(
            exp,
            {
                "experiment": exp,
                "arms": {},
                "users": 0,
                "first_assigned": first,
                "last_assigned": last,
                "multi_arm_users": int(multi.get(exp, 0)),
            },
        )
        e["arms"][variant] = int(users)
        e["users"] += int(users)
        e["first_assigned"] = min(e["first_assigned"], first)
        e["last_assigned"] = max(e["last_assigned"], last)
    for e in found.values():
        # a user in two arms was counted in both; report people, not arm memberships
        e["users"] -= e["multi_arm_users"]
    return list(found.values())


def _null(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def save(
    con: duckdb.DuckDBPyConnection,
    analysis: ExperimentAnalysis,
    run_id: str,
    verdict: Verdict | None = None,
) -> int:
    """Insert one `experiment_results` row per metric x arm; returns the rows written."""
    decisions = {}
    arm_verdicts = {}
    if verdict is not None:
        for a in verdict.arms:
            arm_verdicts[a.arm] = a.verdict
            for d in a.metrics:
                decisions[(d.metric, d.arm)] = d.reason
    sql = query("experiments", "insert-result")
    details_common = {"excluded": analysis.excluded, "adjust": analysis.adjust}
    for r in analysis.results:
        params = {
            "run_id": run_id,
            "experiment_id": analysis.experiment,
            "metric": r.metric,
            "arm": r.arm,
            "control_arm": analysis.control_arm,
            "kind": r.kind,
            "role": r.role,
            "control": r.control,
            "treatment": r.treatment,
            "effect": r.effect,
            "effect_se": r.effect_se,
            "effect_ci_lower": r.effect_ci_lower,
            "effect_ci_upper": r.effect_ci_upper,
            "rel_effect": r.rel_effect,
            "rel_effect_se": r.rel_effect_se,
            "rel_effect_ci_lower": r.rel_effect_ci_lower,
            "rel_effect_ci_upper": r.rel_effect_ci_upper,
            "statistic": r.statistic,
            "df": r.df,
            "pvalue": r.pvalue,
            "pvalue_adj": r.pvalue_adj,
            "correction": analysis.correction,
            "method": r.method,
            "status": r.status,
            "n_control": r.n_control,
            "n_treatment": r.n_treatment,
            "variance_reduction": r.variance_reduction,
            "covariates": ",".join(r.covariates) or None,
            "sequential": analysis.sequential is not None,
            "srm_pvalue": analysis.srm.pvalue,
            "srm_status": analysis.srm.status,
            "verdict": arm_verdicts.get(r.arm),
            "reason": decisions.get((r.metric, r.arm)),
            "details": json.dumps(
                jsonable(
                    {**details_common, "margin": r.margin, "higher_is_better": r.higher_is_better}
                )
            ),
        }
        con.execute(sql, {k: _null(v) for k, v in params.items()})
    return len(analysis.results)


def live_experiments(
    con: duckdb.DuckDBPyConnection, config: Config, week: str
) -> list[dict[str, Any]]:
    """experiment_id, first/last assignment and users of the experiments live in `week`:
    users assigned before it ends, and the last assignment's longest metric window still
    open when it starts."""
    from upshot.config import parse_window

    start, end = period.bounds(week)
    days = max(
        (parse_window(m.window, "window") for m in config.experiments.metrics.values()),
        default=0.0,
    )
    cursor = con.execute(
        query("experiments", "live-experiments"),
        {"start": start, "end": end, "window_seconds": days * 86400.0},
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
