"""The warehouse query on a hand-built warehouse: windows, aggregations, exclusions.

Every expected number below is counted by hand from the rows inserted, so the SQL is
checked against the definition in DESIGN.md (strictly after assignment, up to and
including the window's end; the pre-period up to but not including assignment).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from upshot.config import Config, Experiments, Metric, Ratio
from upshot.experiments import analyze
from upshot.experiments.sources import warehouse_rows
from upshot.experiments.spec import from_config
from upshot.experiments.stats import Moments
from upshot.store import connect

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
D = timedelta(days=1)

METRICS = {
    "any_open": Metric(("message_open",), "any", "14d"),
    "opens": Metric(("message_open",), "count", "14d"),
    "minutes": Metric(("stream_minutes",), "sum", "14d", pre_window="7d"),
    "days": Metric(("stream_minutes",), "distinct_days", "14d"),
}


@pytest.fixture
def warehouse(tmp_path):
    db = str(tmp_path / "w.duckdb")
    con = connect(db, read_only=False)
    assign = [
        ("exp", "u1", "control", T0),
        ("exp", "u2", "treatment", T0),
        ("exp", "u3", "control", T0),
        ("exp", "u3", "treatment", T0 + D),  # in both arms: excluded
        ("exp", "u4", "treatment", T0),
        ("exp", "u4", "treatment", T0 + 2 * D),  # assigned twice to one arm: first counts
        ("exp", "u5", "control", T0),  # no events at all
        ("other", "u1", "control", T0),
    ]
    con.executemany("INSERT INTO assignments VALUES (?, ?, ?, ?, NULL)", assign)
    events = [
        ("u1", T0, "message_open", 1.0),  # at assignment: in no window
        ("u1", T0 + timedelta(seconds=1), "message_open", 1.0),
        ("u1", T0 + 14 * D, "message_open", 1.0),  # the window's last instant: in
        ("u1", T0 + 14 * D + timedelta(seconds=1), "message_open", 1.0),  # out
        ("u1", T0 + 2 * D, "stream_minutes", 30.0),
        ("u1", T0 + 2 * D + timedelta(hours=1), "stream_minutes", 10.0),  # same day
        ("u1", T0 + 3 * D, "stream_minutes", 5.0),
        ("u1", T0 - 3 * D, "stream_minutes", 50.0),  # pre-period
        ("u1", T0 - 8 * D, "stream_minutes", 70.0),  # before the 7-day pre-period
        ("u2", T0 + D, "message_open", 1.0),
        ("u2", T0 + 5 * D, "stream_minutes", 100.0),
        ("u2", T0 - D, "stream_minutes", 20.0),
        ("u3", T0 + D, "stream_minutes", 999.0),  # excluded user
        ("u4", T0 + D + timedelta(hours=1), "stream_minutes", 7.0),  # counts from the first
        ("u4", T0 + D, "push_opt_out", 1.0),  # an event no metric uses
    ]
    con.executemany("INSERT INTO outcomes VALUES (?, ?, ?, ?, NULL, NULL, NULL)", events)
    con.close()
    return db


def test_windows_aggregations_and_exclusions(warehouse):
    config = Config(
        experiments=Experiments(metrics=METRICS, ratios={"per_day": Ratio("minutes", "days")})
    )
    specs, variables = from_config(config.experiments)
    con = connect(warehouse, read_only=True)
    rows = warehouse_rows(con, "exp", specs, variables)
    con.close()
    by = {(r["variant"], r["exclusion"]): r for r in rows}
    assert by[(None, "multi_arm")]["n"] == 1
    control, treatment = by[("control", "")], by[("treatment", "")]
    assert (control["n"], treatment["n"]) == (2, 2)  # u1, u5 | u2, u4

    def values(row, names):
        return [float(Moments.from_row(row, [v]).sums[0]) for v in names]

    names = ["any_open", "opens", "minutes", "pre_minutes", "days"]
    # u1: opens at +1s and +14d; minutes 30 + 10 + 5 on 2 days; pre 50; u5: nothing
    assert values(control, names) == [1.0, 2.0, 45.0, 50.0, 2.0]
    # u2: one open, 100 minutes on 1 day, pre 20; u4: 7 minutes on 1 day
    assert values(treatment, names) == [1.0, 1.0, 107.0, 20.0, 2.0]
    assert Moments.from_row(control, ["minutes"]).products[0, 0] == 45.0**2
    assert Moments.from_row(treatment, ["minutes"]).products[0, 0] == 100.0**2 + 7.0**2


def test_analyze_counts_the_excluded_and_winsorizes_in_sql(warehouse):
    metrics = dict(METRICS)
    plain = analyze(
        "exp", db=warehouse, config=Config(experiments=Experiments(metrics=metrics, ratios={}))
    )
    assert plain.excluded == {"multi_arm": 1}
    assert plain.arms == {"control": 2, "treatment": 2}
    capped_metrics = {
        **metrics,
        "minutes": Metric(("stream_minutes",), "sum", "14d", winsorize=0.5),
    }
    capped = analyze(
        "exp",
        db=warehouse,
        config=Config(experiments=Experiments(metrics=capped_metrics, ratios={})),
    )
    # users' minutes are 45, 0 | 100, 7; the pooled median is 26, so 45 and 100 become 26
    assert capped.result("minutes").control == pytest.approx((26 + 0) / 2)
    assert capped.result("minutes").treatment == pytest.approx((26 + 7) / 2)
