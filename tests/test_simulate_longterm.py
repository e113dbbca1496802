"""`upshot simulate --longterm`: the history cohort and the long-term truth."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from tests.conftest import run_cli
from upshot.simulate import longterm as lt
from upshot.simulate import make_world

USERS = 3_000


@pytest.fixture(scope="module")
def worlds():
    return make_world(users=USERS, weeks=2, seed=3), make_world(
        users=USERS, weeks=2, seed=3, longterm=True
    )


def test_the_current_world_is_unchanged(worlds):
    plain, long = worlds
    current = pl.col("send_id").str.starts_with("h").not_()
    assert long.sends.filter(current).equals(plain.sends)
    assert long.outcomes.filter(pl.col("event_id").str.starts_with("l").not_()).equals(
        plain.outcomes
    )
    assert long.truth["uplift"] == plain.truth["uplift"]
    assert set(long.truth) - set(plain.truth) == {
        "longterm", "longterm_by_week", "longterm_outcomes", "history"
    }  # fmt: skip
    assert long.truth["planted"]["surrogacy_violated"] == lt.SURROGACY_VIOLATED


def _history(world):
    """Each history decision with its 7-day and 180-day retention and conversion,
    brute force in polars (a join of sends to events, as the SQL does)."""
    sends = world.sends.filter(pl.col("send_id").str.starts_with("h"))
    history_events = pl.col("event_id").str.starts_with("l")
    events = world.outcomes.filter(history_events).select(
        "user_id", "occurred_at", "event", "value"
    )
    joined = sends.join(events, on="user_id", how="left").filter(
        pl.col("occurred_at") > pl.col("decided_at")
    )
    after = pl.col("occurred_at") - pl.col("decided_at")
    active = pl.col("event") == "active_day"
    conv = pl.col("event") == "subscription_start"
    minutes = pl.col("event") == "stream_minutes"
    opt_out = pl.col("event").is_in(["push_opt_out", "email_unsubscribe"])
    week = after <= timedelta(days=7)
    day = pl.col("occurred_at").dt.date()
    out = joined.group_by("send_id").agg(
        pl.col("value").filter(minutes & week).sum().alias("eng7"),
        opt_out.filter(week).any().alias("reach7"),
        day.filter(active & (after <= timedelta(days=7))).n_unique().alias("ret7"),
        day.filter(active & (after <= timedelta(days=180))).n_unique().alias("ret180"),
        conv.filter(after <= timedelta(days=7)).any().alias("conv7"),
        conv.filter(after <= timedelta(days=180)).any().alias("conv180"),
        pl.col("occurred_at").max().alias("last"),
    )
    return sends.join(out, on="send_id", how="left").join(world.users, on="user_id")


def test_the_history_is_old_enough_and_its_tail_follows_the_stated_model(worlds):
    _, long = worlds
    h = _history(long)
    start = long.sends.filter(pl.col("send_id").str.starts_with("s"))["decided_at"].min()
    assert h.height == long.truth["history"]["decisions"]
    # every history outcome is complete 180 days after the decision, and more than the
    # 28-day pre-window before the first current decision
    assert (h["decided_at"].max() + timedelta(days=180)) < start - timedelta(days=28)
    assert h["last"].max() < start - timedelta(days=28)
    # the tail (days 8..179) is the only activity after day 7; its mean is 172 x the mean
    # daily rate the module states (tolerance: 4 standard errors of a mean of
    # independent binomials, each variance <= 172/4)
    tail = (h["ret180"] - h["ret7"]).fill_null(0).to_numpy().astype(float)
    assert tail.min() >= 0
    assert tail.max() <= lt.N_TAIL
    s = {
        "retention": h["ret7"].fill_null(0).to_numpy().astype(float),
        "engagement": h["eng7"].fill_null(0).to_numpy().astype(float),
        "conversion": h["conv7"].fill_null(False).to_numpy().astype(float),
        "reachability": h["reach7"].fill_null(False).to_numpy().astype(float),
    }
    tier = (h["product_tier"] == "premium").to_numpy().astype(float)
    pre = h["pre_active_days"].to_numpy().astype(float)
    planted = (h["message_class"] == lt.SURROGACY_VIOLATED).to_numpy() & h["treated"].to_numpy()
    q = np.clip(lt.tail_rate(s, tier, pre) - lt.HARM * planted, 0, 1)
    # the tail count is Binomial(172, q) per decision, independent given S and X
    se = np.sqrt(np.sum(lt.N_TAIL * q * (1 - q))) / h.height
    assert abs(tail.mean() - lt.N_TAIL * q.mean()) < 4 * se, (tail.mean(), lt.N_TAIL * q.mean())
    # the planted harm is visible in the history: treated minus held out, within class
    mine = (h["message_class"] == lt.SURROGACY_VIOLATED).to_numpy()
    w = h["treated"].to_numpy()
    gap = tail - lt.N_TAIL * np.clip(lt.tail_rate(s, tier, pre), 0, 1)
    assert gap[mine & w].mean() < -0.5 * lt.HARM * lt.N_TAIL < gap[mine & ~w].mean()


def test_the_long_term_truth_is_recorded_per_class_and_week(worlds):
    _, long = worlds
    truth = long.truth
    assert set(truth["longterm"]) == set(truth["uplift"])
    assert truth["longterm"]["sports_alert_push"] == {"retention_180d": 0.0, "subscribed_180d": 0.0}
    # the planted harm is -HARM x 172 days on top of a small 7-day-driven gain
    assert truth["longterm"][lt.SURROGACY_VIOLATED]["retention_180d"] < -0.7 * lt.HARM * lt.N_TAIL
    # the overall effect is the decision-weighted mean of the weekly ones
    for cls, overall in truth["longterm"].items():
        weeks = [w[cls] for w in truth["longterm_by_week"].values() if cls in w]
        sizes = [
            long.sends.filter(
                (pl.col("message_class") == cls)
                & (pl.col("decided_at").dt.strftime("%G-W%V") == week)
                & pl.col("send_id").str.starts_with("s")
            ).height
            for week in truth["longterm_by_week"]
            if cls in truth["longterm_by_week"][week]
        ]
        for outcome, value in overall.items():
            mean = np.average([w[outcome] for w in weeks], weights=sizes)
            assert mean == pytest.approx(value, rel=1e-9, abs=1e-12)


def test_cli_longterm_writes_the_history_and_the_truth(tmp_path):
    result = run_cli(
        "simulate", "--out", str(tmp_path / "w"), "--users", "500", "--weeks", "1",
        "--longterm", "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    truth = json.loads((tmp_path / "w" / "truth.json").read_text())
    assert truth["parameters"]["longterm"] is True
    assert truth["history"]["start"] == "2026-02-23"
    assert set(truth["longterm_outcomes"]) == {"retention_180d", "subscribed_180d"}
