"""Hand-built aggregate report data: the framework is tested without any estimation."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from upshot import period, store
from upshot.config import Config
from upshot.reports.data import ReportData
from upshot.reports.significance import decide, experiment_rows, two_sided
from upshot.reports.uplift_view import headline, objective_meta

WEEK = "2026-W47"


def uid(i: int) -> str:
    """A user id no chart, font or script could contain by accident."""
    return f"zq-user-{i:03d}"


START, _ = period.bounds(WEEK)
CLASSES = {
    "new_release_push": (
        "push",
        {
            "conversion": (0.004, 0.001),
            "engagement": (6.0, 1.5),
            "retention": (0.05, 0.02),
            "reachability": (0.0004, 0.0003),
        },
    ),
    "promo_blast_push": (
        "push",
        {
            "conversion": (0.001, 0.001),
            "engagement": (0.5, 1.0),
            "retention": (0.0, 0.02),
            "reachability": (0.024, 0.002),
        },
    ),
    "sports_alert_push": (
        "push",
        {
            "conversion": (0.0, 0.001),
            "engagement": (0.1, 1.0),
            "retention": (0.0, 0.02),
            "reachability": (0.0, 0.0003),
        },
    ),
    "weekly_digest_email": (
        "email",
        {
            "conversion": (-0.006, 0.002),
            "engagement": (2.0, 0.8),
            "retention": (0.02, 0.01),
            "reachability": (0.001, 0.0004),
        },
    ),
}


def uplift_row(week: str, cls: str, objective: str, effect: float, se: float) -> dict[str, Any]:
    lower, upper = effect - 1.96 * se, effect + 1.96 * se
    return {
        "week": week,
        "message_class": cls,
        "channel": CLASSES[cls][0],
        "objective": objective,
        "effect": effect,
        "effect_se": se,
        "effect_ci_lower": lower,
        "effect_ci_upper": upper,
        "pvalue": two_sided(effect, se),
        "naive_effect": effect * 3 + se,
        "n_treatment": 4000,
        "n_control": 1000,
        "sends": 4000,
        "users": 3000,
        "treated_users": 2500,
        "control_users": 900,
        "design": "randomized",
        "refute_passed": cls != "weekly_digest_email",
        "status": "ok",
        "suppressed": False,
    }


def redecide(data: ReportData, config: Config | None = None) -> ReportData:
    """`data` with significance decided again (after a test changed its rows), as
    `report_data` decides it: one family per week over classes, guardrail and totals."""
    config = config or Config()
    rows = [r for r in data.history if r["week"] != data.week] + list(data.uplift)
    totals = [
        {**h, "week": week}
        for week in sorted({r["week"] for r in rows})
        for h in headline([r for r in rows if r["week"] == week], data.objectives, data.alpha)
    ]
    decided, heads = decide(
        rows,
        totals,
        alpha=data.alpha,
        method=config.report.correction,
        optout_objective=config.governance.optout_objective,
        guardrail=config.governance.max_optout_harm,
    )
    return dataclasses.replace(
        data,
        uplift=tuple(r for r in decided if r["week"] == data.week),
        history=tuple(decided),
        headline=tuple(
            {k: v for k, v in h.items() if k != "week"} for h in heads if h["week"] == data.week
        ),
    )


def make_data(config: Config | None = None, **changes: Any) -> ReportData:
    config = config or Config()
    objectives = objective_meta(config)
    history = [
        uplift_row(week, cls, o, effect * (1 + 0.1 * i), se)
        for i, week in enumerate(("2026-W45", "2026-W46", WEEK))
        for cls, (_, effects) in CLASSES.items()
        for o, (effect, se) in effects.items()
    ]
    uplift = tuple(r for r in history if r["week"] == WEEK)
    weights = tuple(
        {
            "message_class": cls,
            "channel": ch,
            "weight": w,
            "previous_weight": w - 0.05 if cls != "sports_alert_push" else None,
            "change": 0.05 if cls != "sports_alert_push" else None,
            "value": w,
            "value_ci_lower": w - 0.1,
            "value_ci_upper": w + 0.1,
            "status": "ok" if w > 0 else "guardrail",
            "reason": None if w > 0 else "opt-out harm over the guardrail",
            "new": cls == "sports_alert_push",
            "suppressed": False,
        }
        for (cls, (ch, _)), w in zip(CLASSES.items(), (0.9, 0.0, 0.05, 0.3), strict=True)
    )
    reach = tuple(
        {
            "channel": ch,
            "week": week,
            "users": 10000,
            "opted_in_start": opted,
            "reachable": opted - 40 * (i + 1) - (400 if ch == "push" and week == WEEK else 0),
            "rate": (opted - 40 * (i + 1) - (400 if ch == "push" and week == WEEK else 0)) / 10000,
            "exits": 40,
            "status": "ok",
            "suppressed": False,
        }
        for ch, opted in (("push", 7000), ("email", 8000))
        for i, week in enumerate(("2026-W45", "2026-W46", WEEK))
    )
    experiments = experiment_rows(
        (
            {
                "experiment_id": "send_time_test",
                "arm": "treatment",
                "control_arm": "control",
                "metric": metric,
                "kind": "mean",
                "role": role,
                "rel_effect": rel,
                "rel_effect_ci_lower": rel - 0.03,
                "rel_effect_ci_upper": rel + 0.03,
                "effect": rel,
                "effect_ci_lower": rel - 0.03,
                "effect_ci_upper": rel + 0.03,
                "pvalue": 0.01,
                "pvalue_adj": 0.02,
                "status": "ok",
                "n_control": 2500,
                "n_treatment": 2500,
                "srm_pvalue": 0.4,
                "srm_status": "ok",
                "verdict": "ship",
                "reason": f"{metric}: significant",
                "suppressed": False,
                "higher_is_better": role != "deterioration",
            }
            for metric, role, rel in (
                ("opens", "success", 0.15),
                ("minutes", "success", 0.01),
                ("opt_outs", "deterioration", 0.0),
            )
        ),
        0.05,
    )
    daily = tuple(
        {
            "day": f"2026-11-{16 + i}",
            "sends": 0 if i == 3 else 5000,
            "outcomes": 20000,
            "suppressed": False,
        }
        for i in range(7)
    )
    data = ReportData(
        week=WEEK,
        k=10,
        alpha=0.05,
        objectives=objectives,
        headline=headline(uplift, objectives, 0.05),
        uplift=uplift,
        history=tuple(history),
        weights=weights,
        weights_info={
            "status": "ok",
            "version": "v1",
            "previous_version": "v0",
            "policy_version": "1",
        },
        reach=reach,
        experiments=tuple(experiments),
        decompositions=tuple(
            {
                "experiment_id": "send_time_test",
                "arm": "treatment",
                "kind": "funnel",
                "status": "ok",
                "label": label,
                "effect": eff,
                "ci_lower": eff - 0.02,
                "ci_upper": eff + 0.02,
                "share": share,
                "relative": True,
            }
            for label, eff, share in (
                ("conversions per user (total)", 0.05, 1.0),
                ("step: opens", 0.15, 0.8),
                ("step: conversions", -0.1, 0.2),
            )
        ),
        daily=daily,
        touches=tuple(
            {
                "item": ch,
                "method": m,
                "kind": "causal" if m == "causal" else "touch",
                "conversions": c,
                "share": None,
                "ci_lower": c - 10 if m == "causal" else None,
                "ci_upper": c + 10 if m == "causal" else None,
                "status": "ok",
                "suppressed": False,
            }
            for ch, base in (("push", 120.0), ("email", 60.0))
            for m, c in (
                ("first_touch", base),
                ("last_touch", base * 1.2),
                ("markov", base * 0.9),
                ("causal", base * 0.3),
            )
        ),
        loads=(
            {
                "table": "sends",
                "files": 7,
                "rows_read": 35000,
                "rows_accepted": 34990,
                "duplicates_skipped": 5,
                "rows_quarantined": 5,
                "last_loaded_at": None,
            },
        ),
        quarantine=({"table": "sends", "reason": "bad_channel", "rows": 5},),
        over_gate=(),
        late=({"week": "2026-W46", "late_rows": 1234},),
        coverage={
            "last_send": None,
            "last_outcome": "2026-11-29T23:00:00+00:00",
            "windows_complete_at": "2026-11-30T00:00:00+00:00",
            "windows_complete": True,
        },
        stages=(
            {"stage": "load", "status": "ok", "seconds": 1.2, "detail": "14 files"},
            {
                "stage": "uplift",
                "status": "partial",
                "seconds": 30.0,
                "detail": "1 class failed",
                "failures": [{"subject": "broken_class", "status": "failed:singular matrix"}],
            },
        ),
        sources={
            "uplift_run_id": "r1",
            "experiment_runs": {"send_time_test": "r2"},
            "weights_version": "v1",
            "config_hash": "abc",
        },
        suppressed=0,
    )
    data = redecide(data, config)
    return dataclasses.replace(data, **changes)


@pytest.fixture
def data() -> ReportData:
    return make_data()


def _insert(con, table, rows):
    names = list(rows[0])
    sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
    con.executemany(sql, [[r[n] for n in names] for r in rows])


def _estimate(run, week, cls, channel, objective, ate, se, status="ok", refuted=True):
    ok = status == "ok"
    return {
        "run_id": run,
        "week": week,
        "message_class": cls,
        "channel": channel,
        "objective": objective,
        "segment": "all",
        "estimator": "linear_dml",
        "design": "randomized",
        "ate": ate if ok else math.nan,
        "ate_se": se if ok else math.nan,
        "ate_ci_lower": ate - 1.96 * se if ok else math.nan,
        "ate_ci_upper": ate + 1.96 * se if ok else math.nan,
        "naive_effect": ate * 2,
        "n_treated": 40,
        "n_control": 10,
        "refute_passed": refuted,
        "status": status,
        "created_at": datetime(2026, 11, 23, tzinfo=UTC),
    }


@pytest.fixture
def warehouse():
    """30 users; `big_push` reaches 25 of them in the week (12 held out), `tiny_email` only
    5, all sent (< k = 10 in each arm); in W46 `big_push` sends to 12 and holds out 12;
    push opt-outs: 3 users in W46, 2 in W47; no sends on Thursday of W47."""
    con = store.connect(":memory:", read_only=False)
    con.execute("ALTER TABLE users ADD COLUMN push_opt_in BOOLEAN")
    con.execute("ALTER TABLE users ADD COLUMN email_opt_in BOOLEAN")
    _insert(
        con,
        "users",
        [{"user_id": uid(i), "push_opt_in": i < 24, "email_opt_in": True} for i in range(30)],
    )
    sends, day = [], 0
    for i in range(25):
        for j in range(2):
            day = (i + j) % 7
            day = 4 if day == 3 else day  # Thursday stays empty
            sends.append(
                {
                    "send_id": f"s{i}-{j}",
                    "user_id": uid(i),
                    "message_class": "big_push",
                    "channel": "push",
                    "decided_at": START + timedelta(days=day, hours=9),
                    "treated": j == 0 or i % 2 == 0,
                }
            )
    sends += [
        {
            "send_id": f"w46-{i}",
            "user_id": uid(i),
            "message_class": "big_push",
            "channel": "push",
            "decided_at": START - timedelta(days=5),
            "treated": i < 12,  # 12 users sent, 12 held out: both arms reach k = 10
        }
        for i in range(24)
    ]
    for i in range(5):
        sends.append(
            {
                "send_id": f"t{i}",
                "user_id": uid(i),
                "message_class": "tiny_email",
                "channel": "email",
                "decided_at": START + timedelta(days=1, hours=i),
                "treated": True,
            }
        )
    _insert(con, "sends", sends)
    outcomes = [
        {
            "user_id": uid(i),
            "occurred_at": START + timedelta(days=day, hours=12),
            "event": "active_day",
            "value": 1.0,
        }
        for i in range(30)
        for day in range(7)
    ]
    outcomes += [
        {
            "user_id": uid(i),
            "occurred_at": START - timedelta(days=3),
            "event": "push_opt_out",
            "value": 1.0,
        }
        for i in (0, 1, 2)
    ] + [
        {
            "user_id": uid(i),
            "occurred_at": START + timedelta(days=2),
            "event": "push_opt_out",
            "value": 1.0,
        }
        for i in (3, 4)
    ]
    _insert(con, "outcomes", outcomes)
    estimates = [
        _estimate("r47", WEEK, "big_push", "push", "conversion", 0.01, 0.002),
        _estimate("r47", WEEK, "big_push", "push", "engagement", -3.0, 1.0, refuted=False),
        _estimate("r47", WEEK, "tiny_email", "email", "conversion", 0.5, 0.1),
        _estimate("r47", WEEK, "tiny_email", "email", "engagement", 0, 0, status="failed:boom"),
        _estimate("r46", "2026-W46", "big_push", "push", "conversion", 0.02, 0.002),
        _estimate("r46-old", "2026-W46", "big_push", "push", "conversion", 9.0, 0.002),
    ]
    estimates[-1]["created_at"] = datetime(2026, 11, 1, tzinfo=UTC)  # older run: not shown
    _insert(con, "uplift_estimates", estimates)
    yield con
    con.close()


@pytest.fixture
def config():
    base = Config()
    objectives = {k: v for k, v in base.objectives.items() if k in ("conversion", "engagement")}
    return dataclasses.replace(base, objectives=objectives)
