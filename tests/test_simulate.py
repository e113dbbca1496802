"""upshot.simulate: determinism, the input contract, exact truth, planted effects, dirty mode, CLI.

The truth is checked against an independent brute-force recomputation: per unit, plain
Python walks the realised outcome rows in the window, drops the rows the unit alone
realised (from `World.latent`), adds all of its latent events, and aggregates.
"""

from __future__ import annotations

import bisect
import gzip
import json
import math
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pytest

from upshot.config import CHANNELS, DEFAULT_METRICS, DEFAULT_OBJECTIVES
from upshot.errors import UsageError
from upshot.simulate import World, make_world, simulate

START = date(2026, 10, 19)
DAY_US = 86_400_000_000

SCHEMAS = {
    "users": {
        "user_id": pl.String,
        "country": pl.String,
        "product_tier": pl.String,
        "tenure_days": pl.Int64,
        "tenure_band": pl.String,
        "pre_minutes": pl.Float64,
        "pre_active_days": pl.Int64,
        "push_opt_in": pl.Boolean,
        "email_opt_in": pl.Boolean,
        "platform": pl.String,
    },
    "sends": {
        "send_id": pl.String,
        "user_id": pl.String,
        "message_class": pl.String,
        "channel": pl.String,
        "decided_at": pl.Datetime("us", "UTC"),
        "treated": pl.Boolean,
        "propensity": pl.Float64,
        "randomized": pl.Boolean,
        "campaign_id": pl.String,
        "experiment_id": pl.String,
        "variant": pl.String,
    },
    "outcomes": {
        "user_id": pl.String,
        "occurred_at": pl.Datetime("us", "UTC"),
        "event": pl.String,
        "value": pl.Float64,
        "event_id": pl.String,
        "send_id": pl.String,
    },
    "assignments": {
        "experiment_id": pl.String,
        "user_id": pl.String,
        "variant": pl.String,
        "assigned_at": pl.Datetime("us", "UTC"),
    },
}


@pytest.fixture(scope="module")
def small() -> World:
    return make_world(users=1500, weeks=2, seed=11)


@pytest.fixture(scope="module")
def mid() -> World:
    return make_world(users=8000, weeks=3, seed=5)


def frames(world: World) -> dict[str, pl.DataFrame]:
    names = ("users", "sends", "outcomes", "assignments", "latent", "effects")
    return {k: getattr(world, k) for k in names}


# --- determinism and API -------------------------------------------------------------


def test_same_seed_same_world_and_other_seed_differs(small: World) -> None:
    again = make_world(users=1500, weeks=2, seed=11)
    for name, frame in frames(small).items():
        assert frame.equals(frames(again)[name]), name
    assert again.truth == small.truth
    other = make_world(users=1500, weeks=2, seed=12)
    assert not other.sends.equals(small.sends)
    assert other.truth["uplift"] != small.truth["uplift"]


def test_dirty_adds_faults_without_changing_the_clean_world(small: World) -> None:
    dirty = make_world(users=1500, weeks=2, seed=11, dirty=True)
    for name, frame in frames(small).items():
        assert frame.equals(frames(dirty)[name]), name
    strip = {"dirty", "parameters"}
    assert {k: v for k, v in dirty.truth.items() if k not in strip} == {
        k: v for k, v in small.truth.items() if k not in strip
    }
    assert small.truth["dirty"] == {}
    assert small.dirty_sends is None
    assert dirty.truth["dirty"]["sends"]["duplicates"] > 0


def test_tiny_worlds_work_and_empty_cells_are_null() -> None:
    world = make_world(users=1, weeks=1, seed=1, dirty=True)
    assert world.users.height == 1
    for cells in world.truth["uplift"].values():
        assert all(v is None or isinstance(v, float) for v in cells.values())
    for week in world.truth["uplift_by_week"].values():
        assert all(v is not None for cell in week.values() for v in cell.values())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": date(2026, 10, 20)}, "must be a Monday"),
        ({"start": datetime(2026, 10, 19, tzinfo=UTC)}, "must be a date"),
        ({"users": 0}, "users == 0"),
        ({"weeks": 0}, "weeks == 0"),
        ({"seed": -1}, "seed == -1"),
    ],
)
def test_bad_arguments_are_usage_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        make_world(**{"users": 10, "weeks": 1, **kwargs})


# --- the input contract ----------------------------------------------------------------


def test_contract_columns_and_types(small: World) -> None:
    for name, schema in SCHEMAS.items():
        assert dict(getattr(small, name).schema) == schema, name


def test_contract_values(mid: World) -> None:
    users, sends, outcomes = mid.users, mid.sends, mid.outcomes
    n = users.height
    assert users["user_id"].n_unique() == n
    assert set(users["country"]) == {"US", "GB", "DE", "BR", "IN"}
    assert set(users["tenure_band"]) == {"0-90d", "90-365d", "1y+"}
    assert set(users["platform"]) == {"ios", "android", "web"}
    # shares within 5 binomial standard errors of the design (0.3, ~0.8, 0.9)
    for column, target in (("product_tier", 0.3), ("push_opt_in", 0.8), ("email_opt_in", 0.9)):
        flag = users[column] == "premium" if column == "product_tier" else users[column]
        share = float(flag.cast(pl.Float64).to_numpy().mean())
        assert abs(share - target) < 5 * math.sqrt(target * (1 - target) / n) + 0.01, column
    assert users["pre_active_days"].is_between(0, 14).all()
    band = (
        pl.when(pl.col("tenure_days") <= 90)
        .then(pl.lit("0-90d"))
        .when(pl.col("tenure_days") <= 365)
        .then(pl.lit("90-365d"))
        .otherwise(pl.lit("1y+"))
    )
    assert users.select((band == pl.col("tenure_band")).all()).item()

    assert sends["send_id"].n_unique() == sends.height
    assert set(sends["channel"]) <= set(CHANNELS)
    assert sends["message_class"].n_unique() == 8
    assert ((sends["propensity"] > 0) & (sends["propensity"] <= 1)).all()
    rand = sends.filter("randomized")
    assert (rand["propensity"] == 0.8).all()
    assert sends.filter(~pl.col("randomized"))["propensity"].is_between(0.05, 0.95).all()
    assert 0.25 < float(sends["randomized"].to_numpy().mean()) < 0.35
    first = datetime(2026, 10, 19, tzinfo=UTC)
    assert (sends["decided_at"] >= first).all()
    assert (sends["decided_at"] < first + timedelta(weeks=3)).all()
    joined = sends.join(users, on="user_id")
    assert joined.filter(pl.col("channel") == "push")["push_opt_in"].all()
    assert joined.filter(pl.col("channel") == "email")["email_opt_in"].all()

    assert outcomes["event_id"].n_unique() == outcomes.height
    assert outcomes["value"].is_finite().all()
    days = outcomes.filter(pl.col("event") == "active_day").select(
        "user_id", pl.col("occurred_at").dt.date()
    )
    assert days.is_unique().all()
    assert (
        outcomes.filter(pl.col("event") == "subscription_start")
        .join(users, on="user_id")["product_tier"]
        .eq("free")
        .all()
    )
    opens = outcomes.filter(pl.col("event") == "message_open")
    assert opens["send_id"].null_count() == 0
    assert outcomes.filter(pl.col("event") != "message_open")["send_id"].null_count() == (
        outcomes.height - opens.height
    )
    opened = opens.join(sends, on="send_id", suffix="_send")
    assert opened.height == opens.height
    assert opened["treated"].all()
    assert (opened["occurred_at"] > opened["decided_at"]).all()
    assert (opened["user_id"] == opened["user_id_send"]).all()

    a = mid.assignments
    assert a.select("experiment_id", "user_id").is_unique().all()
    assert (a["assigned_at"] < first + timedelta(weeks=2)).all()
    assert set(a["experiment_id"]) == set(mid.truth["experiments"])
    both = a.filter(pl.col("experiment_id").is_in(["send_time_test", "frequency_test"]))
    assert both.group_by("user_id").len().filter(pl.col("len") == 2).height > 0


def test_pre_period_covariates_equal_the_pre_period_outcomes(small: World) -> None:
    first = datetime(2026, 10, 19, tzinfo=UTC)
    pre = small.outcomes.filter(pl.col("occurred_at") < first)
    assert (pre["occurred_at"] >= first - timedelta(days=14)).all()
    got = pre.group_by("user_id").agg(
        (pl.col("event") == "active_day").sum().alias("days"),
        pl.col("value").filter(pl.col("event") == "stream_minutes").sum().round(1).alias("minutes"),
    )
    check = small.users.join(got, on="user_id", how="left").fill_null(0)
    assert (check["days"] == check["pre_active_days"]).all()
    assert np.allclose(check["minutes"], check["pre_minutes"], atol=1e-6)


# --- the truth, recomputed independently ------------------------------------------------


class Brute:
    """Objective values per unit by walking the rows, with and without its own events."""

    def __init__(self, world: World) -> None:
        out = world.outcomes.with_columns(pl.col("occurred_at").dt.epoch("us").alias("t"))
        self.rows: dict[tuple[str, str], list[tuple[int, float, str]]] = defaultdict(list)
        for user, event, t, value, eid in out.select(
            "user_id", "event", "t", "value", "event_id"
        ).iter_rows():
            self.rows[(user, event)].append((t, value, eid))
        for rows in self.rows.values():
            rows.sort()
        lat = world.latent.with_columns(pl.col("occurred_at").dt.epoch("us").alias("t"))
        self.support: dict[str, set[Any]] = defaultdict(set)
        self.latent: dict[Any, list[tuple[str, int, float]]] = defaultdict(list)
        for src, sid, exp, var, user, event, t, value, realised, eid in lat.select(
            "source", "send_id", "experiment_id", "variant", "user_id", "event", "t",
            "value", "realised", "event_id",
        ).iter_rows():  # fmt: skip
            owner = sid if src == "send" else (exp, user, var)
            self.latent[owner].append((event, t, value))
            if realised:
                assert eid is not None
                self.support[eid].add(owner)
            else:
                assert eid is None

    def effect(
        self, user: str, t0: int, window_days: float, events: tuple[str, ...], agg: str,
        off: Any, on: Any,
    ) -> float:  # fmt: skip
        """agg(R − rows only `off` realised + `on`'s latent events) − agg(R − those rows)."""
        t1 = t0 + round(window_days * DAY_US)
        base: list[tuple[int, float]] = []
        for event in events:
            rows = self.rows.get((user, event), [])
            lo = bisect.bisect_right(rows, (t0, math.inf, ""))
            for t, value, eid in rows[lo:]:
                if t > t1:
                    break
                if self.support.get(eid) != {off}:
                    base.append((t, value))
        added = [(t, v) for e, t, v in self.latent.get(on, []) if e in events and t0 < t <= t1]
        return _agg(base + added, agg) - _agg(base, agg)


def _agg(rows: list[tuple[int, float]], agg: str) -> float:
    if agg == "any":
        return float(bool(rows))
    if agg == "sum":
        return float(sum(v for _, v in rows))
    if agg == "count":
        return float(len(rows))
    return float(len({t // DAY_US for t, _ in rows}))  # UTC days: the epoch starts one


def _close(got: float, want: float) -> bool:
    # the only difference is float summation order over a few thousand terms
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)


def test_uplift_truth_equals_brute_force_toggling(small: World) -> None:
    brute = Brute(small)
    sends = small.sends.with_columns(pl.col("decided_at").dt.epoch("us").alias("t"))
    sums: dict[tuple[str, str], float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for sid, user, cls, t0 in sends.select("send_id", "user_id", "message_class", "t").iter_rows():
        counts[cls] += 1
        for name, o in DEFAULT_OBJECTIVES.items():
            sums[(cls, name)] += brute.effect(
                user, t0, o.window_days, o.events, o.aggregation, sid, sid
            )
    nonzero = 0
    for (cls, name), total in sums.items():
        want = small.truth["uplift"][cls][name]
        assert _close(total / counts[cls], want), (cls, name, total / counts[cls], want)
        nonzero += want != 0
    assert nonzero >= 20  # the check is not vacuous


def test_experiment_truth_equals_brute_force_toggling(small: World) -> None:
    brute = Brute(small)
    a = small.assignments.with_columns(pl.col("assigned_at").dt.epoch("us").alias("t"))
    for exp, info in small.truth["experiments"].items():
        members = a.filter(pl.col("experiment_id") == exp)
        assert info["n_users"] == dict(members.group_by("variant").len().iter_rows())
        for variant in info["variants"][1:]:
            for name, m in DEFAULT_METRICS.items():
                window = float(m.window.rstrip("d"))
                total = sum(
                    brute.effect(
                        user, t0, window, m.events, m.aggregation,
                        (exp, user, assigned), (exp, user, variant),
                    )
                    for user, assigned, t0 in members.select("user_id", "variant", "t").iter_rows()
                )  # fmt: skip
                assert _close(total / members.height, info[name][variant]), (exp, name, variant)


def test_weekly_and_segment_truth_add_up_to_the_overall(mid: World) -> None:
    truth = mid.truth
    assert mid.effects["send_id"].equals(mid.sends["send_id"])
    joined = mid.effects.join(mid.sends.select("send_id", "message_class"), on="send_id")
    means = joined.drop("send_id").group_by("message_class").mean()
    for row in means.iter_rows(named=True):
        for objective in DEFAULT_OBJECTIVES:
            want = truth["uplift"][row["message_class"]][objective]
            assert math.isclose(row[objective], want, rel_tol=1e-9, abs_tol=1e-12)
    classes = mid.sends.group_by("message_class").len()
    weeks = (
        mid.sends.with_columns(pl.col("decided_at").dt.strftime("%G-W%V").alias("week"))
        .group_by("week", "message_class")
        .len()
    )
    assert set(truth["uplift_by_week"]) == {"2026-W43", "2026-W44", "2026-W45"}
    tier = mid.sends.join(mid.users, on="user_id").group_by("product_tier", "message_class").len()
    for cls, n in classes.iter_rows():
        for objective in DEFAULT_OBJECTIVES:
            by_week = sum(
                truth["uplift_by_week"][w][cls][objective] * k
                for w, c, k in weeks.iter_rows()
                if c == cls
            )
            by_tier = sum(
                truth["uplift_by_segment"][cls][f"product_tier={t}"][objective] * k
                for t, c, k in tier.iter_rows()
                if c == cls
            )
            want = truth["uplift"][cls][objective] * n
            assert math.isclose(by_week, want, rel_tol=1e-9, abs_tol=1e-9)
            assert math.isclose(by_tier, want, rel_tol=1e-9, abs_tol=1e-9)


# --- planted effects and the confounding ------------------------------------------------


def test_planted_classes(mid: World) -> None:
    truth = mid.truth
    planted = truth["planted"]
    assert planted["harmful_reachability"] == "promo_blast_push"
    assert planted["zero_effect"] == "sports_alert_push"
    assert planted["classes"] == dict(
        mid.sends.select("message_class", "channel").unique().iter_rows()
    )
    zero = planted["zero_effect"]
    assert all(v == 0.0 for v in truth["uplift"][zero].values())
    assert all(
        v == 0.0 for cell in truth["uplift_by_segment"][zero].values() for v in cell.values()
    )
    reach = {c: v["reachability"] for c, v in truth["uplift"].items()}
    harmful = planted["harmful_reachability"]
    assert 0.015 < reach[harmful] < 0.035  # "2-3 percentage points"
    assert reach[harmful] > 4 * max(v for c, v in reach.items() if c != harmful)
    assert truth["uplift"][harmful]["engagement"] > 0
    helpful = [c for c, v in truth["uplift"].items() if v["engagement"] > 0 or v["conversion"] > 0]
    assert len(helpful) == 7
    trial = truth["uplift_by_segment"]["trial_offer_email"]
    assert trial["product_tier=premium"]["conversion"] == 0.0
    assert trial["tenure_band=0-90d"]["conversion"] > 2 * trial["tenure_band=1y+"]["conversion"]


def _observed(world: World, objective: str) -> pl.DataFrame:
    """Each decision's objective as an analyst would compute it from the tables (DuckDB)."""
    o = DEFAULT_OBJECTIVES[objective]
    agg = {
        "any": "(count(o.user_id) > 0)::DOUBLE",
        "sum": "coalesce(sum(o.value), 0)",
        "distinct_days": "count(DISTINCT CAST(o.occurred_at AS DATE))::DOUBLE",
    }[o.aggregation]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("sends", world.sends.to_arrow())
    con.register("outcomes", world.outcomes.to_arrow())
    return con.sql(
        f"""SELECT s.send_id, any_value(s.message_class) AS message_class,
                   any_value(s.treated) AS treated, any_value(s.randomized) AS randomized,
                   {agg} AS y
            FROM sends s LEFT JOIN outcomes o ON o.user_id = s.user_id
             AND o.event IN (SELECT unnest($events))
             AND o.occurred_at > s.decided_at
             AND o.occurred_at <= s.decided_at + INTERVAL {int(o.window_days)} DAY
            GROUP BY s.send_id""",
        params={"events": list(o.events)},
    ).pl()


def _diff(frame: pl.DataFrame) -> tuple[float, float]:
    """Treated minus held-out mean and its standard error."""
    t = frame.filter("treated")["y"].to_numpy()
    c = frame.filter(~pl.col("treated"))["y"].to_numpy()
    return t.mean() - c.mean(), math.sqrt(t.var(ddof=1) / len(t) + c.var(ddof=1) / len(c))


def test_naive_targeted_difference_is_biased_and_randomized_one_is_not(mid: World) -> None:
    y = _observed(mid, "engagement")
    for cls, cells in mid.truth["uplift"].items():
        truth = cells["engagement"]
        naive, se = _diff(y.filter((pl.col("message_class") == cls) & ~pl.col("randomized")))
        assert naive - truth > max(10 * se, 3 * abs(truth), 50.0), cls
        # randomized holdouts estimate the truth; 4.5 SE keeps 8 seeded checks far from flaky
        rand, se = _diff(y.filter((pl.col("message_class") == cls) & pl.col("randomized")))
        assert abs(rand - truth) < 4.5 * se, (cls, rand, truth, se)


def test_experiment_truth_has_the_promised_shape(mid: World) -> None:
    exps = mid.truth["experiments"]
    assert set(exps) == {"send_time_test", "frequency_test", "subject_line_test"}
    for info in exps.values():
        assert info["control"] == "control"
        assert set(info) >= set(DEFAULT_METRICS) | {"variants", "n_users"}
    assert all(v == 0.0 for m in DEFAULT_METRICS for v in exps["subject_line_test"][m].values())
    st = exps["send_time_test"]
    assert [st[m]["treatment"] for m in ("conversions", "minutes", "active_days", "opt_outs")] == [
        0.0
    ] * 4
    fq = exps["frequency_test"]
    assert fq["conversions"]["high_frequency"] == fq["active_days"]["high_frequency"] == 0.0
    assert fq["opens"]["high_frequency"] == 0.0
    assert 0.006 < fq["opt_outs"]["high_frequency"] < 0.014  # +1 point
    # relative lifts against the control arm's observed mean in the 14-day window
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("a", mid.assignments.to_arrow())
    con.register("o", mid.outcomes.to_arrow())
    means = dict(
        con.sql(
            """SELECT a.experiment_id || ':' || o.event, sum(o.value) / any_value(n)
               FROM (SELECT *, count(*) OVER (PARTITION BY experiment_id) AS n FROM a
                     WHERE variant = 'control') a
               JOIN o ON o.user_id = a.user_id AND o.occurred_at > a.assigned_at
                AND o.occurred_at <= a.assigned_at + INTERVAL 14 DAY
               GROUP BY 1"""
        ).fetchall()
    )
    assert 0.12 < st["opens"]["treatment"] / means["send_time_test:message_open"] < 0.18
    assert 0.04 < fq["minutes"]["high_frequency"] / means["frequency_test:stream_minutes"] < 0.06


# --- dirty mode and the files -----------------------------------------------------------


def test_simulate_writes_the_layout_and_truth(tmp_path: Path) -> None:
    summary = simulate(tmp_path / "w", users=400, weeks=1, seed=3)
    out = tmp_path / "w"
    world = make_world(users=400, weeks=1, seed=3)
    assert json.loads((out / "truth.json").read_text()) == world.truth
    files = sorted((out / "sends").glob("date=*/channel=*/part-0.parquet"))
    assert sorted({p.parent.parent.name for p in files}) == [
        f"date={START + timedelta(days=d)}" for d in range(7)
    ]
    assert {p.parent.name for p in files} == {f"channel={c}" for c in world.sends["channel"]}
    # as hive writers do, the channel lives in the folder name only
    assert "channel" not in pl.read_parquet(files[0]).columns
    outcome_days = sorted(p.parent.name for p in (out / "outcomes").glob("date=*/part-0.parquet"))
    assert outcome_days == [f"date={START + timedelta(days=d)}" for d in range(-14, 21)]
    read = pl.concat(
        pl.read_parquet(p).with_columns(channel=pl.lit(p.parent.name.removeprefix("channel=")))
        for p in files
    ).select(world.sends.columns)
    assert read.sort("send_id").equals(world.sends)
    day = pl.read_parquet(out / "outcomes" / "date=2026-10-20" / "part-0.parquet")
    assert (day["occurred_at"].dt.date() == date(2026, 10, 20)).all()
    assert pl.read_parquet(out / "users.parquet").equals(world.users)
    assert pl.read_parquet(out / "assignments.parquet").equals(world.assignments)
    heights = {k: getattr(world, k).height for k in ("users", "assignments", "sends", "outcomes")}
    assert summary.rows == heights


def test_dirty_files_hold_exactly_the_recorded_faults(tmp_path: Path) -> None:
    simulate(tmp_path, users=1200, weeks=1, seed=4, dirty=True)
    world = make_world(users=1200, weeks=1, seed=4)
    report = json.loads((tmp_path / "truth.json").read_text())["dirty"]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    raw = con.sql(
        f"SELECT * FROM read_csv('{tmp_path}/sends/*/part-0.csv', all_varchar = true, "
        "header = true, hive_partitioning = false)"
    ).pl()
    s = report["sends"]
    assert raw.height == s["rows_written"]
    assert raw.height - raw.unique().height == s["duplicates"]
    assert raw["send_id"].n_unique() == s["clean_rows"] + sum(s["malformed"].values())
    faults = {
        "bad_channel": pl.col("channel") == "telegram",
        "propensity_zero": pl.col("propensity") == "0",
        "propensity_above_one": pl.col("propensity") == "1.5",
        "propensity_not_a_number": pl.col("propensity") == "abc",
        "null_user_id": pl.col("user_id").is_null(),
        "bad_decided_at": pl.col("decided_at") == "not-a-date",
        "bad_treated": pl.col("treated") == "maybe",
    }
    distinct = raw.unique()
    assert {k: distinct.filter(e).height for k, e in faults.items()} == s["malformed"]
    assert sum(s["expected_quarantine"].values()) == sum(s["malformed"].values())
    clean = distinct.filter(~pl.col("send_id").str.contains("-bad"))
    at = clean["decided_at"]
    assert at.str.ends_with("+05:30").sum() == s["offset_timestamps"] > 0
    assert (~at.str.contains(r"(Z|[+-]\d\d:\d\d)$")).sum() == s["naive_timestamps"] > 0
    # every spelling is the same instant: parsed in UTC, the clean rows are the clean sends
    con.register("clean", clean.to_arrow())
    back = con.sql(
        "SELECT send_id, user_id, message_class, channel, decided_at::TIMESTAMPTZ AS decided_at,"
        " treated::BOOLEAN AS treated, propensity::DOUBLE AS propensity,"
        " randomized::BOOLEAN AS randomized, campaign_id, experiment_id, variant"
        " FROM clean ORDER BY send_id"
    ).pl()
    assert back.equals(world.sends)

    o = report["outcomes"]
    lines, partitions = [], []
    for path in sorted((tmp_path / "outcomes").glob("date=*/part-0.ndjson.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                lines.append(line)
                partitions.append(path.parent.name[5:])
    assert len(lines) == o["rows_written"]
    assert len(lines) - len(set(lines)) == o["duplicates"]
    rows = [json.loads(line) for line in set(lines)]
    got = {
        "value_inf": sum(r["value"] == "inf" for r in rows),
        "value_nan": sum(r["value"] == "NaN" for r in rows),
        "null_user_id": sum(r["user_id"] is None for r in rows),
        "bad_occurred_at": sum(r["occurred_at"] == "not-a-date" for r in rows),
    }
    assert got == o["malformed"]
    late = {
        line for line, part in zip(lines, partitions, strict=True)
        if "-bad" not in line and json.loads(line)["occurred_at"][:10] != part
    }  # fmt: skip
    assert len(late) == o["late_events"] > 0
    assert all(json.loads(line)["occurred_at"][11:13] == "23" for line in late)
    good = [r for r in rows if "-bad" not in r["event_id"]]
    assert len(good) == o["clean_rows"] == world.outcomes.height


# --- CLI ----------------------------------------------------------------------------------


def test_cli_json_is_one_document_and_layout(tmp_path: Path, cli: Any) -> None:
    out = tmp_path / "sim"
    args = ["--users", "300", "--weeks", "1"]
    result = cli("simulate", "--out", str(out), *args, "--seed", "2", "--json")
    assert result.code == 0
    document = json.loads(result.out)
    assert document["rows"]["users"] == 300
    assert document["files"]["sends"] == len(list((out / "sends").rglob("*.parquet")))
    assert len(list((out / "sends").glob("*"))) == 7
    truth = json.loads((out / "truth.json").read_text())
    assert {c["message_class"] for c in document["classes"]} == set(truth["uplift"])
    assert (out / "users.parquet").exists()
    assert (out / "assignments.parquet").exists()
    assert list((out / "sends" / "date=2026-10-19").glob("channel=*/part-0.parquet"))
    # a previous simulation may be replaced, with other options
    result = cli("simulate", "--out", str(out), *args, "--dirty")
    assert result.code == 0
    assert "classes" in result.out
    assert not list((out / "sends").rglob("*.parquet"))
    assert (out / "sends" / "date=2026-10-19" / "part-0.csv").exists()
    assert (out / "outcomes" / "date=2026-10-19" / "part-0.ndjson.gz").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--users", "50"], "no truth.json"),  # tmp_path holds someone's notes.txt
        (["--start", "2026-10-20"], "must be a Monday"),
        (["--start", "soon"], "--start == 'soon'"),
        (["--weeks", "0"], "weeks == 0"),
    ],
)
def test_cli_refuses_foreign_folders_and_bad_options(
    tmp_path: Path, cli: Any, args: list[str], message: str
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = cli("simulate", "--out", str(tmp_path), *args)
    assert result.code == 2
    assert result.out == ""
    assert message in result.err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_cli_help_teaches(cli: Any) -> None:
    result = cli("simulate", "--help")
    assert result.code == 0
    for text in ("--out", "--dirty", "truth.json", "Monday", "Example"):
        assert text in result.out
