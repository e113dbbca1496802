"""Builders shared by the weights tests (no tests here): uplift rows, documents, warehouses."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CREATED = datetime(2026, 11, 16, 3, 0, tzinfo=UTC)
OBJECTIVES = ("conversion", "engagement", "retention", "reachability")
# class -> (channel, {objective: ATE}); b_push harms reachability
CLASSES: dict[str, tuple[str, dict[str, float]]] = {
    "a_push": (
        "push",
        {"conversion": 0.010, "engagement": 5.0, "retention": 0.10, "reachability": 0.0},
    ),
    "b_push": (
        "push",
        {"conversion": 0.002, "engagement": 2.0, "retention": 0.05, "reachability": 0.030},
    ),
    "c_push": (
        "push",
        {"conversion": 0.004, "engagement": 1.0, "retention": 0.02, "reachability": 0.0},
    ),
    "d_email": (
        "email",
        {"conversion": 0.020, "engagement": 1.0, "retention": 0.02, "reachability": 0.0},
    ),
}


def se_of(ate: float) -> float:
    return 0.2 * abs(ate) + 0.0005


def estimate_rows(
    classes: Mapping[str, tuple[str, Mapping[str, float]]] = CLASSES,
    *,
    segments: tuple[str, ...] = ("all", "country=US", "country=DE"),
    n_treated: int = 5000,
    n_control: int = 1000,
    refute_passed: bool | None = True,
    status: Mapping[str, str] | None = None,
    scale: float = 1.0,
    created_at: datetime = CREATED,
    week: str | None = None,
) -> list[dict[str, Any]]:
    """`uplift_estimates` rows; `status[class]` overrides a class's status (ATE NaN then)."""
    rows = []
    for cls, (channel, effects) in classes.items():
        for segment in segments:
            for objective, ate in effects.items():
                ate = ate * scale
                ok = (status or {}).get(cls, "ok")
                se = se_of(ate)
                value = ate if ok == "ok" else math.nan
                rows.append(
                    {
                        "message_class": cls,
                        "channel": channel,
                        "objective": objective,
                        "segment": segment,
                        "estimator": "linear_dml",
                        "week": week,
                        "ate": value,
                        "ate_se": se if ok == "ok" else math.nan,
                        "ate_ci_lower": value - 1.959964 * se,
                        "ate_ci_upper": value + 1.959964 * se,
                        "n_treated": n_treated,
                        "n_control": n_control,
                        "refute_passed": refute_passed,
                        "status": ok,
                        "created_at": created_at,
                    }
                )
    return rows


def document(version: str | None = None, *, scale: float = 1.0) -> tuple[dict[str, Any], bytes]:
    """A valid weights document and its segment Parquet bytes."""
    from upshot.attribution.weights.publish import segments_parquet
    from upshot.attribution.weights.weightset import build_document, compute_weights
    from upshot.config import Governance
    from upshot.period import Period

    governance = Governance()
    ws = compute_weights(estimate_rows(scale=scale), [], governance)
    segments = segments_parquet([s.row() for s in ws.segments], OBJECTIVES)
    doc = build_document(
        ws,
        governance=governance,
        generated_at=CREATED,
        window=Period(datetime(2026, 11, 9, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC)),
        source={
            "uplift_run_id": "run-1",
            "estimator": "linear_dml",
            "inputs_fingerprint": "f" * 64,
            "seed": 0,
        },
        segments=segments,
        version=version,
    )
    return doc, segments


def insert_estimates(
    db: Path,
    rows: list[dict[str, Any]],
    run_id: str,
    covariance: list[dict[str, Any]] | None = None,
) -> None:
    """Write uplift rows for `run_id` into the warehouse `db` (created when absent)."""
    from upshot import store

    con = store.connect(str(db), read_only=False)
    try:
        for r in rows:
            con.execute(
                "INSERT INTO uplift_estimates (run_id, week, message_class, channel, objective, "
                "segment, estimator, ate, ate_se, ate_ci_lower, ate_ci_upper, n_treated, "
                "n_control, refute_passed, status, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    r["week"],
                    r["message_class"],
                    r["channel"],
                    r["objective"],
                    r["segment"],
                    r["estimator"],
                    r["ate"],
                    r["ate_se"],
                    r["ate_ci_lower"],
                    r["ate_ci_upper"],
                    r["n_treated"],
                    r["n_control"],
                    r["refute_passed"],
                    r["status"],
                    r["created_at"],
                ],
            )
        for c in covariance or []:
            con.execute(
                "INSERT INTO uplift_covariance VALUES (?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    c["message_class"],
                    c["segment"],
                    c["objective_a"],
                    c["objective_b"],
                    c["covariance"],
                ],
            )
    finally:
        con.close()


def world_warehouse(db: Path, *, users: int = 1500, weeks: int = 2, seed: int = 3) -> Any:
    """A warehouse holding a small `upshot.simulate` world (sends, outcomes, users)."""
    from upshot import store
    from upshot.simulate import make_world

    world = make_world(users=users, weeks=weeks, seed=seed)
    con = store.connect(str(db), read_only=False)
    try:
        for table, frame in (("sends", world.sends), ("outcomes", world.outcomes)):
            con.register("frame", frame.to_arrow())
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM frame")
            con.unregister("frame")
        con.register("frame", world.users.to_arrow())
        con.execute("DROP TABLE users")
        con.execute("CREATE TABLE users AS SELECT *, CAST(NULL AS VARCHAR) AS load_id FROM frame")
        con.unregister("frame")
    finally:
        con.close()
    return world


def truth_rows(world: Any, *, created_at: datetime = CREATED) -> list[dict[str, Any]]:
    """Uplift rows whose ATEs are the world's true effects (as a perfect estimator would)."""
    classes = {
        cls: (world.truth["planted"]["classes"][cls], dict(effects))
        for cls, effects in world.truth["uplift"].items()
    }
    return estimate_rows(classes, segments=("all",), created_at=created_at, n_control=500)
