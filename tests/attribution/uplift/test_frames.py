"""Per-decision frames: the SQL against hand-computed rows and a brute-force polars join."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from tests.attribution.uplift.uplift_world import load_world
from upshot import store
from upshot.attribution.uplift.frames import (
    covariate_columns,
    decision_frame,
    encode_covariates,
)
from upshot.config import DEFAULT_OBJECTIVES, Config, Uplift
from upshot.errors import UsageError
from upshot.period import bounds


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def tiny():
    con = store.connect(":memory:", read_only=False)
    con.execute("ALTER TABLE users ADD COLUMN country VARCHAR")
    con.execute("ALTER TABLE users ADD COLUMN tenure_days BIGINT")
    con.execute("ALTER TABLE users ADD COLUMN campaign_id VARCHAR")  # an id: not a covariate
    con.execute(
        "INSERT INTO users VALUES ('u1', 'l1', 'US', 10, 'c'), ('u2', 'l1', 'GB', 400, 'c')"
    )
    sends = [
        ("s1", "u1", "a", "push", _t("2026-11-16 10:00"), True, 0.8, True),
        ("s2", "u2", "a", "push", _t("2026-11-17 10:00"), False, 0.8, True),
        ("s3", "u3", "b", "email", _t("2026-11-18 10:00"), True, 0.5, False),
        ("s4", "u1", "a", "push", _t("2026-11-23 09:00"), True, 0.8, True),
    ]
    con.executemany(
        "INSERT INTO sends (send_id, user_id, message_class, channel, decided_at, treated, "
        "propensity, randomized) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        sends,
    )
    outcomes = [
        ("u1", "2026-11-16 10:00", "subscription_start", 1),  # at the decision: not after it
        ("u1", "2026-11-16 11:00", "stream_minutes", 30),
        ("u1", "2026-11-17 11:00", "stream_minutes", 20),
        ("u1", "2026-11-17 11:00", "active_day", 1),
        ("u1", "2026-11-17 12:00", "active_day", 1),  # same UTC day: one distinct day
        ("u1", "2026-11-18 11:00", "active_day", 1),
        ("u1", "2026-11-23 10:00", "stream_minutes", 5),  # exactly 7 days after s1: inside
        ("u1", "2026-11-23 10:00:01", "stream_minutes", 7),  # one second later: outside s1
        ("u2", "2026-11-17 11:00", "push_opt_out", 1),
        ("u2", "2026-11-17 09:00", "push_opt_out", 1),  # before s2
    ]
    con.executemany(
        "INSERT INTO outcomes (user_id, occurred_at, event, value) VALUES (?, ?, ?, ?)",
        [(u, _t(t), e, v) for u, t, e, v in outcomes],
    )
    return con


def test_frame_counts_only_outcomes_strictly_after_and_inside_the_window(tiny):
    frame = decision_frame(tiny, Config())
    assert frame.columns == [
        "send_id", "user_id", "message_class", "channel", "decided_at", "treated",
        "propensity", "randomized", "country", "tenure_days",
        "pre_conversion", "pre_engagement", "pre_retention", "pre_reachability",
        "conversion", "engagement", "retention", "reachability",
    ]  # fmt: skip
    rows = {r["send_id"]: r for r in frame.iter_rows(named=True)}
    assert rows["s1"]["conversion"] == 0.0
    assert rows["s1"]["engagement"] == 55.0  # 30 + 20 + 5
    assert rows["s1"]["retention"] == 2.0  # 11-17 (twice) and 11-18
    assert rows["s4"]["engagement"] == 12.0  # 5 + 7: both after 11-23 09:00
    assert rows["s2"]["reachability"] == 1.0
    assert rows["s2"]["engagement"] == 0.0
    assert rows["s3"]["country"] is None  # a user without covariates keeps the decision
    assert rows["s1"]["decided_at"] == _t("2026-11-16 10:00")
    # pre-period values: strictly before the decision, at most 28 days
    assert rows["s1"]["pre_conversion"] == 0.0  # the start at the decision itself is neither
    assert rows["s1"]["pre_engagement"] == 0.0
    assert rows["s4"]["pre_conversion"] == 1.0  # 11-16 10:00, a week before s4
    assert rows["s4"]["pre_engagement"] == 50.0  # 30 + 20; the 5 and 7 after s4 do not leak
    assert rows["s4"]["pre_retention"] == 2.0  # 11-17 and 11-18
    assert rows["s2"]["pre_reachability"] == 1.0  # the opt-out at 09:00, before s2 at 10:00
    assert rows["s2"]["reachability"] == 1.0  # and the one at 11:00 after it


def test_pre_period_values_never_see_an_outcome_at_or_after_the_decision(tiny):
    # events one microsecond either side of a decision, at it, and at the window's edges
    at = _t("2026-12-20 12:00")
    tiny.execute(
        "INSERT INTO sends (send_id, user_id, message_class, channel, decided_at, treated) "
        "VALUES ('s9', 'u9', 'c', 'push', ?, true)",
        [at],
    )
    micro, day = timedelta(microseconds=1), timedelta(days=1)
    events = [
        (at - 28 * day, 1.0),  # exactly pre_window before: outside the open window
        (at - 28 * day + micro, 2.0),  # just inside
        (at - micro, 4.0),  # just before the decision
        (at, 8.0),  # at the decision: neither before nor after it
        (at + micro, 16.0),  # just after: the objective's, never the pre-period's
        (at + 7 * day, 32.0),  # the objective window's last instant
    ]
    tiny.executemany(
        "INSERT INTO outcomes (user_id, occurred_at, event, value) VALUES ('u9', ?, "
        "'stream_minutes', ?)",
        events,
    )
    row = decision_frame(tiny, Config(), classes=["c"]).row(0, named=True)
    assert row["pre_engagement"] == 2.0 + 4.0
    assert row["engagement"] == 16.0 + 32.0
    # a shorter pre-window moves its edge; "0d" drops the pre-period columns altogether
    week = Config(uplift=Uplift(pre_window="1w"))
    assert decision_frame(tiny, week, classes=["c"]).row(0, named=True)["pre_engagement"] == 4.0
    off = decision_frame(tiny, Config(uplift=Uplift(pre_window="0d")), classes=["c"])
    assert not [c for c in off.columns if c.startswith("pre_")]
    assert off.row(0, named=True)["engagement"] == 16.0 + 32.0
    # the period filter must not cut the pre-window: s9's past is before --start
    late = decision_frame(tiny, Config(), classes=["c"], start="2026-12-20")
    assert late.row(0, named=True)["pre_engagement"] == 6.0


def test_frame_filters_classes_period_and_objectives(tiny):
    frame = decision_frame(
        tiny,
        Config(),
        classes=["a"],
        start="2026-11-17",
        end="2026-11-23",
        objectives=["retention"],
    )
    assert frame["send_id"].to_list() == ["s2"]
    assert frame.columns[-1] == "retention"
    assert "engagement" not in frame.columns
    start, end = bounds("2026-W48")
    assert decision_frame(tiny, Config(), start=start, end=end)["send_id"].to_list() == ["s4"]


def test_frame_refuses_unknown_objectives_and_clashing_columns(tiny):
    with pytest.raises(UsageError, match="'clicks' is not configured"):
        decision_frame(tiny, Config(), objectives=["clicks"])
    assert covariate_columns(tiny) == ["country", "tenure_days"]
    tiny.execute("ALTER TABLE users ADD COLUMN pre_engagement DOUBLE")
    with pytest.raises(UsageError, match=r"users\.pre_engagement clashes with a pre-period"):
        decision_frame(tiny, Config())
    assert "pre_engagement" in decision_frame(tiny, Config(uplift=Uplift(pre_window="0d")))
    tiny.execute("ALTER TABLE users ADD COLUMN channel VARCHAR")
    with pytest.raises(UsageError, match=r"users\.channel clashes"):
        decision_frame(tiny, Config())


def _brute_force(world, objectives, pre_days: float = 28.0) -> pl.DataFrame:
    """Each objective per decision, and its pre-period value, by an explicit polars join:
    the independent reference."""
    out = world.sends.select("send_id", "user_id", "decided_at")
    pairs = out.join(world.outcomes, on="user_id", how="inner")
    when, at = pl.col("occurred_at"), pl.col("decided_at")
    spans = {
        name: (objective, (when > at) & (when <= at + timedelta(days=objective.window_days)))
        for name, objective in objectives.items()
    }
    spans |= {
        f"pre_{name}": (objective, (when < at) & (when > at - timedelta(days=pre_days)))
        for name, objective in objectives.items()
    }
    for name, (objective, span) in spans.items():
        inside = pairs.filter(pl.col("event").is_in(list(objective.events)) & span)
        agg = {
            "any": pl.len().gt(0).cast(pl.Float64),
            "sum": pl.col("value").sum(),
            "count": pl.len().cast(pl.Float64),
            "distinct_days": pl.col("occurred_at").dt.date().n_unique().cast(pl.Float64),
        }[objective.aggregation]
        per = inside.group_by("send_id").agg(agg.alias(name))
        out = out.join(per, on="send_id", how="left").with_columns(pl.col(name).fill_null(0.0))
    return out.sort("send_id")


def test_frame_matches_a_brute_force_join_on_a_simulated_world():
    from upshot.simulate import make_world

    world = make_world(users=300, weeks=1, seed=3)
    con = store.connect(":memory:", read_only=False)
    load_world(con, world)
    objectives = {
        **DEFAULT_OBJECTIVES,
        "opens": DEFAULT_OBJECTIVES["engagement"].__class__(("message_open",), "count", "3d"),
    }
    config = Config(objectives=objectives)
    frame = decision_frame(con, config).sort("send_id")
    expected = _brute_force(world, objectives)
    assert frame.height == world.sends.height
    assert frame["send_id"].to_list() == expected["send_id"].to_list()
    assert frame["pre_engagement"].sum() > 0  # the world has a past to measure
    for name in [*objectives, *(f"pre_{o}" for o in objectives)]:
        # sums of float minutes may differ in the last bits by summation order
        np.testing.assert_allclose(frame[name].to_numpy(), expected[name].to_numpy(), rtol=1e-12)
    covariates = [c for c in world.users.columns if c != "user_id"]
    joined = world.sends.join(world.users, on="user_id").sort("send_id")
    for name in covariates:
        assert frame[name].to_list() == joined[name].to_list()


def test_encode_covariates_one_hot_missing_and_constant_columns():
    frame = pl.DataFrame(
        {
            "country": ["US", "US", "GB", None, "US"],
            "tenure": [1.0, None, 3.0, 5.0, 1.0],
            "premium": [True, False, True, True, False],
            "constant": [7, 7, 7, 7, 7],
        }
    )
    before = frame.clone()
    design = encode_covariates(frame, ["country", "tenure", "premium", "constant"])
    # US is the most frequent level: the reference; nulls get their own level
    assert design.names == (
        "country=(null)", "country=GB", "tenure:missing", "tenure", "premium"
    )  # fmt: skip
    np.testing.assert_array_equal(design.X[:, 0], [0, 0, 0, 1, 0])
    np.testing.assert_array_equal(design.X[:, 1], [0, 0, 1, 0, 0])
    np.testing.assert_array_equal(design.X[:, 2], [0, 1, 0, 0, 0])
    np.testing.assert_allclose(design.X[:, 3], [1, 2.5, 3, 5, 1])  # the mean fills the gap
    np.testing.assert_array_equal(design.X[:, 4], [1, 0, 1, 1, 0])
    assert frame.equals(before)


def test_the_frame_written_to_parquet_is_the_frame(tiny, tmp_path):
    from polars.testing import assert_frame_equal

    from upshot.attribution.uplift.frames import frame_folder, write_decision_frame

    config = Config()
    path = tmp_path / "frame.parquet"
    n = write_decision_frame(tiny, config, path, classes=["a"], start="2026-11-16")
    expected = decision_frame(tiny, config, classes=["a"], start="2026-11-16")
    assert n == expected.height == 3
    # same columns, types, order and values (NaN equal to NaN)
    assert_frame_equal(pl.read_parquet(path), expected)
    # the run's folder lives under the configured temporary directory and goes away
    settings = config.warehouse.__class__(temp_directory=str(tmp_path / "tmp"))
    with frame_folder(Config(warehouse=settings)) as folder:
        assert folder.parent == tmp_path / "tmp"
        (folder / "x.parquet").write_bytes(b"")
    assert not folder.exists()
    # a temp_directory that cannot be made is a clear usage error naming it
    (tmp_path / "file").write_text("")
    blocked = config.warehouse.__class__(temp_directory=str(tmp_path / "file" / "tmp"))
    with (
        pytest.raises(UsageError, match=r"warehouse.temp_directory == .*file/tmp.*cannot write"),
        frame_folder(Config(warehouse=blocked)),
    ):
        pass


def test_summed_objectives_are_exact_whatever_order_the_engine_adds_them_in(tiny):
    """A float sum depends on the order rows are added (DuckDB adds in parallel, Spark per
    partition), and an ulp moved in a covariate moves a tree model's bins: the same data gave
    different estimates on two runs. The frame adds values as exact decimals, so a sum is the
    correctly rounded exact sum, math.fsum's, in any order; non-finite values stay floats."""
    import math

    values = [1e16, 0.1, -1e16, 0.2, 0.3, 123456.789, -0.05]
    start = _t("2026-11-17 10:00")  # s2's decision: u2's values come after it
    rows = [
        ("u2", start + timedelta(minutes=i + 1), "stream_minutes", v) for i, v in enumerate(values)
    ]
    tiny.executemany(
        "INSERT INTO outcomes (user_id, occurred_at, event, value) VALUES (?, ?, ?, ?)", rows
    )
    tiny.execute("SET threads = 4")

    def s2() -> float:
        frame = decision_frame(tiny, Config())
        return frame.filter(pl.col("send_id") == "s2")["engagement"].item()

    sums = {s2() for _ in range(5)}
    inside = [v for (_, _, _, v) in rows]
    assert sums == {math.fsum(inside)}
    assert math.fsum(inside) != sum(inside)  # the float sum in this order is off: not vacuous
    tiny.execute(
        "INSERT INTO outcomes (user_id, occurred_at, event, value) VALUES (?, ?, ?, ?)",
        ("u2", _t("2026-11-18 09:00"), "stream_minutes", float("inf")),
    )
    assert s2() == float("inf")
