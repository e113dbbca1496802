"""Pre-period behaviour as covariates: a class targeted on past activity that the users
table does not hold. Without `pre_<objective>` the estimate is badly biased; with it (the
default) it recovers the planted effect; without it and without a logged propensity the
class is `confounding_risk`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from tests.attribution.uplift.uplift_world import load_world
from upshot import store
from upshot.attribution.uplift.estimate import uplift_from_warehouse
from upshot.config import Config, Objective, Report, Uplift

EFFECT = 15.0  # minutes every sent message adds, exactly, to the week's engagement
START = datetime(2026, 11, 16, tzinfo=UTC)
WEEK = "2026-W47"  # the ISO week that starts at START


def _world(seed: int, n: int = 3000) -> SimpleNamespace:
    """One decision per user in the week from START. Latent activity a ~ Gamma(2, 1) gives
    Poisson(6a) ten-minute streams in the 28 days before the decision and Poisson(1.5a)
    in the 7 after; the class targets users by their past streams (logistic in the
    count), logs no propensity, and a send adds one stream of EFFECT minutes. Past streams
    are the only confounder and the users table has no activity column. E[a | past count]
    is linear in the count (gamma-Poisson), so linear nuisances are well specified."""
    rng = np.random.default_rng(seed)
    users = [f"u{i}" for i in range(n)]
    activity = rng.gamma(2.0, 1.0, size=n)
    decided = [START + timedelta(seconds=float(s)) for s in rng.uniform(0, 7 * 86400, n)]
    past = rng.poisson(6 * activity)
    treated = rng.random(n) < 1 / (1 + np.exp(-0.2 * (past - 12)))
    later = rng.poisson(1.5 * activity)
    rows: list[tuple[str, datetime, float]] = []
    for i in range(n):
        before = rng.uniform(1, 28 * 86400 - 1, past[i])
        after = rng.uniform(1, 7 * 86400 - 1, later[i])
        rows += [(users[i], decided[i] - timedelta(seconds=float(s)), 10.0) for s in before]
        rows += [(users[i], decided[i] + timedelta(seconds=float(s)), 10.0) for s in after]
        if treated[i]:
            rows.append((users[i], decided[i] + timedelta(hours=1), EFFECT))
    return SimpleNamespace(
        users=pl.DataFrame({"user_id": users, "country": rng.choice(["US", "GB"], size=n)}),
        sends=pl.DataFrame(
            {
                "send_id": [f"s{i}" for i in range(n)],
                "user_id": users,
                "message_class": ["activity_push"] * n,
                "channel": ["push"] * n,
                "decided_at": decided,
                "treated": treated,
                "randomized": [False] * n,
            }
        ),
        outcomes=pl.DataFrame(
            {
                "user_id": [r[0] for r in rows],
                "occurred_at": [r[1] for r in rows],
                "event": ["stream_minutes"] * len(rows),
                "value": [r[2] for r in rows],
            }
        ),
    )


def _estimate(world, pre_window: str, *, alerts: bool = False):
    con = store.connect(":memory:", read_only=False)
    load_world(con, world)
    settings = Uplift(nuisance="linear", segments=(), pre_window=pre_window)
    config = Config(
        objectives={"engagement": Objective(("stream_minutes",), "sum", "7d")},
        uplift=settings,
        report=Report(key_objectives=("engagement",)),
    )
    results = uplift_from_warehouse(con, config, refute=False)
    (row,) = [e for e in results.estimates if e.segment == "all"]
    if alerts:
        # as `upshot uplift --week` stores it, then the week's report alerts
        from upshot.attribution.uplift.estimate import write_results
        from upshot.reports.alerts import evaluate
        from upshot.reports.data import report_data

        write_results(con, results, run_id="r1", week=WEEK, seed=0)
        return row, results, evaluate(report_data(con, config, WEEK), config)
    return row, results


@pytest.fixture(scope="module")
def world():
    return _world(seed=11)


def test_pre_period_covariates_recover_the_effect_of_a_class_targeted_on_activity(world):
    row, results = _estimate(world, "28d")
    assert row.design == "estimated_propensity"
    assert row.status == "ok"
    assert row.details["pre_period"] is True
    # the 95% CI covers the planted effect (one seeded world: a 5% chance of a miss is
    # what a correct CI has; this seed is not tuned, and the bias below is > 10 SE)
    assert row.ate_ci_lower <= EFFECT <= row.ate_ci_upper
    # the naive difference is dominated by selection on activity
    assert row.naive_effect - EFFECT > 10 * row.ate_se
    assert results.classes["activity_push"].get("status") is None


def test_without_pre_period_covariates_the_estimate_is_biased_and_flagged(world):
    row, results, alerts = _estimate(world, "0d", alerts=True)
    good, _ = _estimate(world, "28d")
    # only `country` (noise) is left to adjust for: the bias is many of its SEs
    assert row.ate - EFFECT > 10 * row.ate_se
    assert abs(row.ate - EFFECT) > 5 * abs(good.ate - EFFECT)
    assert row.status == "confounding_risk"
    assert row.details["pre_period"] is False
    assert results.classes["activity_push"]["status"] == "confounding_risk"
    # the numbers are kept (they are an estimate, with a warning), not NaN
    assert np.isfinite([row.ate, row.ate_se, row.ate_ci_lower]).all()
    # and the week's report says so
    risky = [a for a in alerts if a.rule == "confounding_risk"]
    assert [(a.severity, a.subject) for a in risky] == [("warning", "activity_push")]
    assert "engagement may be confounded" in risky[0].message


def test_a_logged_propensity_or_a_randomized_design_is_no_confounding_risk(world):
    n = world.sends.height
    logged = SimpleNamespace(
        users=world.users,
        outcomes=world.outcomes,
        sends=world.sends.with_columns(propensity=pl.lit(0.5)),
    )
    row, _ = _estimate(logged, "0d")
    assert row.design == "logged_propensity"
    assert row.status == "ok"
    randomized = SimpleNamespace(
        users=world.users,
        outcomes=world.outcomes,
        sends=world.sends.with_columns(randomized=pl.Series([True] * n)),
    )
    row, _ = _estimate(randomized, "0d")
    assert row.design == "randomized"
    assert row.status == "ok"
