"""Journeys built in SQL against a pure-Python reference; the causal column; storage; CLI.

`reference_journeys` follows the definition in `upshot/sql/touches.sql` one touch at a
time with plain loops: a touch belongs to the first conversion strictly after it; it
joins that conversion's journey when the conversion comes within the lookback and
falls in the period, and is a non-converting touch (grouped per user between
conversions) when no conversion claims it and it was sent in the period.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tests.conftest import run_cli
from upshot import store
from upshot.attribution.touches.attribute import chart_data, from_warehouse, warehouse_journeys
from upshot.attribution.touches.causal import causal_column
from upshot.attribution.touches.persist import stored_rows
from upshot.config import Config
from upshot.errors import UsageError
from upshot.period import Period
from upshot.period import parse as period

ORIGIN = datetime(2026, 10, 19, tzinfo=UTC)  # a Monday: 2026-W43
CLASSES = {
    "new_release_push": "push",
    "promo_blast_push": "push",
    "weekly_digest_email": "email",
    "inapp_upsell_banner": "in_app",
}
EVENTS = ("subscription_start",)


def make_logs(seed: int, users: int = 120, days: int = 28):
    """Sends (70% treated) and outcomes (conversions, repeats, noise events) at random
    microsecond times, so no two events of a user tie."""
    rng = np.random.default_rng(seed)
    sends, outcomes = [], []

    def when() -> datetime:
        return ORIGIN + timedelta(microseconds=int(rng.integers(0, days * 86_400_000_000)))

    for u in range(users):
        user = f"u{u:03d}"
        for k in range(int(rng.integers(0, 12))):
            cls = str(rng.choice(list(CLASSES)))
            sends.append(
                (f"{user}-s{k}", user, cls, CLASSES[cls], when(), bool(rng.random() < 0.7))
            )
        conversions = int(rng.poisson(1.2))
        outcomes += [
            (user, when(), "subscription_start", float(rng.integers(1, 20)), f"{user}-c{k}")
            for k in range(conversions)
        ]
        noise = int(rng.integers(0, 4))
        outcomes += [(user, when(), "stream_minutes", 30.0, f"{user}-m{k}") for k in range(noise)]
    return sends, outcomes


def make_warehouse(path, sends, outcomes):
    import pyarrow as pa

    con = store.connect(str(path), read_only=False)
    # through Arrow: executemany costs milliseconds per row
    columns = ("send_id", "user_id", "message_class", "channel", "decided_at", "treated")
    con.register("new_sends", pa.table(dict(zip(columns, zip(*sends, strict=True), strict=True))))
    con.execute(f"INSERT INTO sends ({', '.join(columns)}) SELECT * FROM new_sends")
    columns = ("user_id", "occurred_at", "event", "value", "event_id")
    con.register(
        "new_outcomes", pa.table(dict(zip(columns, zip(*outcomes, strict=True), strict=True)))
    )
    con.execute(f"INSERT INTO outcomes ({', '.join(columns)}) SELECT * FROM new_outcomes")
    con.unregister("new_sends")
    con.unregister("new_outcomes")
    return con


def reference_journeys(sends, outcomes, *, by, lo, hi, lookback_days, half_life_days):
    lo = lo or datetime(1900, 1, 1, tzinfo=UTC)
    hi = hi or datetime(2900, 1, 1, tzinfo=UTC)
    lookback = timedelta(days=lookback_days)
    conversions = defaultdict(list)
    for user, at, event, value, event_id in outcomes:
        if event in EVENTS:
            conversions[user].append((at, value, event_id))
    for events in conversions.values():
        events.sort()
    journeys = defaultdict(list)
    for _, user, cls, channel, at, treated in sends:
        if not treated or at >= hi or at < lo - lookback:
            continue
        times = [c[0] for c in conversions[user]]
        following = bisect.bisect_right(times, at)
        nxt = conversions[user][following] if following < len(times) else None
        claimed = nxt is not None and nxt[0] <= at + lookback
        touch = cls if by == "class" else channel
        if claimed and lo <= nxt[0] < hi:
            journeys[("conv", user, nxt)].append((at, touch))
        elif not claimed and at >= lo:
            journeys[("null", user, nxt)].append((at, touch))
    paths = Counter()
    values = Counter()
    decay = defaultdict(lambda: [0.0, 0.0])
    claimed_ids = set()
    for (kind, _, nxt), touches in journeys.items():
        touches.sort()
        path = tuple(t for _, t in touches)
        paths[(path, kind)] += 1
        if kind == "conv":
            values[path] += nxt[1]
            claimed_ids.add(nxt[2])
            weights = [
                2 ** (-(nxt[0] - at).total_seconds() / 86400 / half_life_days) for at, _ in touches
            ]
            for (_, t), w in zip(touches, weights, strict=True):
                decay[t][0] += w / sum(weights)
                decay[t][1] += nxt[1] * w / sum(weights)
    in_period = [c for events in conversions.values() for c in events if lo <= c[0] < hi]
    without = [c for c in in_period if c[2] not in claimed_ids]
    return paths, values, dict(decay), len(without), sum(c[1] for c in without)


CASES = [
    # seed, by, week or (start, end), lookback days, half-life days
    (1, "channel", None, 7.0, 7.0),
    (2, "class", "2026-W44", 7.0, 2.0),
    (3, "channel", ("2026-10-25", "2026-11-06T12:00:00"), 3.0, 1.0),
    (4, "class", "2026-W45", 0.5, 0.25),
]


@pytest.mark.parametrize(("seed", "by", "when", "lookback", "half_life"), CASES)
def test_sql_journeys_equal_python_reference(tmp_path, seed, by, when, lookback, half_life):
    sends, outcomes = make_logs(seed)
    con = make_warehouse(tmp_path / "w.duckdb", sends, outcomes)
    span = period(week=when) if isinstance(when, str) else period(*((None, *when) if when else ()))
    journeys = warehouse_journeys(
        con, EVENTS, by=by, span=span, lookback_days=lookback, half_life_days=half_life
    )
    paths, values, decay, without, without_value = reference_journeys(
        sends,
        outcomes,
        by=by,
        lo=span.start,
        hi=span.end,
        lookback_days=lookback,
        half_life_days=half_life,
    )
    table = journeys.paths
    got = {}
    for path, c, n, v in zip(
        table.paths, table.conversions, table.nulls, table.values, strict=True
    ):
        got[(path, "conv")], got[(path, "null")] = c, n
        assert v == pytest.approx(values[path])
    assert {k: v for k, v in got.items() if v} == dict(paths)
    assert table.total_conversions > 0  # the case exercises converting journeys
    assert table.total_nulls > 0
    credited = dict(zip(journeys.time_decay.channels, journeys.time_decay.conversions, strict=True))
    assert credited == pytest.approx({k: v[0] for k, v in decay.items()}, rel=1e-9)
    worth = dict(zip(journeys.time_decay.channels, journeys.time_decay.value, strict=True))
    assert worth == pytest.approx({k: v[1] for k, v in decay.items()}, rel=1e-9)
    assert journeys.without_touch == without
    assert journeys.without_touch_value == pytest.approx(without_value)
    con.close()


def add_uplift(con, run_id, created, rows, week=None):
    for cls, ate, se, status in rows:
        con.execute(
            "INSERT INTO uplift_estimates (run_id, week, message_class, channel, objective, "
            "segment, estimator, ate, ate_se, ate_ci_lower, ate_ci_upper, status, created_at) "
            "VALUES (?, ?, ?, ?, 'conversion', 'all', 'linear_dml', ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                week,
                cls,
                CLASSES[cls],
                ate,
                se,
                ate - 1.96 * se,
                ate + 1.96 * se,
                status,
                created,
            ],
        )


def treated_counts(sends, span):
    counts = Counter()
    for _, _, cls, _, at, treated in sends:
        if treated and (span.start is None or span.start <= at < span.end):
            counts[cls] += 1
    return counts


def test_causal_column_is_uplift_times_treated_sends(tmp_path):
    sends, outcomes = make_logs(5)
    con = make_warehouse(tmp_path / "w.duckdb", sends, outcomes)
    span = period(week="2026-W44")
    none = causal_column(con, by="channel", span=span, items=["push"])
    assert none.status == "no_uplift_run"
    assert all(math.isnan(r.effect) and r.status == "no_uplift_run" for r in none.rows)

    old = [(c, 0.5, 0.1, "ok") for c in CLASSES]
    add_uplift(con, "old", datetime(2026, 11, 1, tzinfo=UTC), old)
    new = [
        ("new_release_push", 0.010, 0.002, "ok"),
        ("promo_blast_push", -0.004, 0.003, "ok"),
        ("weekly_digest_email", 0.02, 0.01, "ok"),
        ("inapp_upsell_banner", math.nan, math.nan, "insufficient_data"),
    ]
    add_uplift(con, "new", datetime(2026, 11, 2, tzinfo=UTC), new)
    n = treated_counts(sends, span)

    by_class = causal_column(con, by="class", span=span, items=[])
    assert by_class.uplift_run_id == "new"
    rows = {r.item: r for r in by_class.rows}
    push = rows["new_release_push"]
    assert push.n_treatment == n["new_release_push"]
    assert push.effect == pytest.approx(0.010 * n["new_release_push"])
    assert push.effect_ci_lower == pytest.approx((0.010 - 1.96 * 0.002) * n["new_release_push"])
    assert rows["inapp_upsell_banner"].status == "insufficient_data"
    assert math.isnan(rows["inapp_upsell_banner"].effect)

    by_channel = {r.item: r for r in causal_column(con, by="channel", span=span, items=[]).rows}
    a, b = n["new_release_push"], n["promo_blast_push"]
    effect = 0.010 * a - 0.004 * b
    half = 1.96 * math.hypot(0.002 * a, 0.003 * b)  # independent classes add in quadrature
    assert by_channel["push"].effect == pytest.approx(effect)
    assert by_channel["push"].effect_ci_upper == pytest.approx(effect + half)
    assert by_channel["push"].uplift == pytest.approx(effect / (a + b))
    assert by_channel["in_app"].status == "insufficient_data"
    assert "inapp_upsell_banner" in by_channel["in_app"].note

    add_uplift(con, "older-but-same-week", datetime(2026, 10, 1, tzinfo=UTC), old, week="2026-W44")
    assert (
        causal_column(con, by="class", span=span, items=[]).uplift_run_id == "older-but-same-week"
    )
    con.close()


def test_from_warehouse_adds_up_and_reports_untouched_conversions(tmp_path):
    sends, outcomes = make_logs(6)
    con = make_warehouse(tmp_path / "w.duckdb", sends, outcomes)
    result = from_warehouse(con, Config(), span=period(week="2026-W44"))
    assert result.lookback == "7d"  # the conversion objective's window
    doc = result.document()
    for method in ("first_touch", "last_touch", "linear", "time_decay", "markov", "shapley"):
        total = sum(e["conversions"] for e in doc["credits"] if e["method"] == method)
        assert total == pytest.approx(doc["total_conversions"])
    assert doc["conversions_without_touch"] >= 0
    with pytest.raises(UsageError, match="--lookback"):
        from_warehouse(con, Config(), lookback="soon")
    con.close()


def test_period_parsing():
    week = period(week="2026-w47")
    assert (week.start, week.end, week.week) == (
        datetime(2026, 11, 16, tzinfo=UTC),
        datetime(2026, 11, 23, tzinfo=UTC),
        "2026-W47",
    )
    assert period() == Period()
    with pytest.raises(UsageError, match="must look like 2026-W47"):
        period(week="47")
    with pytest.raises(UsageError, match="use one"):
        period(week="2026-W47", start="2026-11-01")
    with pytest.raises(UsageError, match="must be after"):
        period(start="2026-11-02", end="2026-11-01")


def test_cli_stores_credits_with_a_run_id(tmp_path):
    sends, outcomes = make_logs(7)
    db = tmp_path / "w.duckdb"
    make_warehouse(db, sends, outcomes).close()
    result = run_cli("--db", str(db), "touches", "--week", "2026-W44", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["source"] == "warehouse"
    assert doc["period"]["week"] == "2026-W44"
    assert doc["causal_source"]["status"] == "no_uplift_run"
    assert "time_decay" in doc["methods"]
    with store.reading(Config(), str(db)) as con:
        runs = con.execute(
            "SELECT status, command FROM runs WHERE run_id = ?", [doc["run_id"]]
        ).fetchall()
        assert runs == [("ok", "touches")]
        stored = con.execute(
            "SELECT count(*) FROM touch_credits WHERE run_id = ? AND method <> 'causal'",
            [doc["run_id"]],
        ).fetchone()[0]
        assert stored == len(doc["credits"])
        rows = stored_rows(con, by="channel", week="2026-W44")
    got = {(r["item"], r["method"]): r["conversions"] for r in rows if r["method"] != "causal"}
    assert got == pytest.approx(
        {(e["channel"], e["method"]): e["conversions"] for e in doc["credits"]}
    )
    assert all(math.isnan(r["conversions"]) for r in rows if r["method"] == "causal")
    assert chart_data(rows)[0]["item"] == sorted(got)[0][0]

    again = run_cli("--db", str(db), "touches", "--by", "class", "--no-store", "--json")
    assert again.code == 0, again.err
    assert json.loads(again.out)["run_id"] is None
    with store.reading(Config(), str(db)) as con:
        assert con.execute("SELECT count(DISTINCT run_id) FROM touch_credits").fetchone()[0] == 1


def test_cli_without_a_warehouse_is_a_usage_error(tmp_path):
    result = run_cli("--db", str(tmp_path / "none.duckdb"), "touches", "--json")
    assert result.code == 2
    assert "no warehouse here yet" in result.err
    assert not (tmp_path / "none.duckdb").exists()


def test_time_decay_with_a_tiny_half_life_stays_finite(tmp_path):
    # 7 days is 70,000 half-lives of 1e-4 days: 2^-70000 underflows unless ages are
    # counted from each journey's newest touch, as the SQL does
    sends, outcomes = make_logs(8)
    con = make_warehouse(tmp_path / "w.duckdb", sends, outcomes)
    journeys = warehouse_journeys(con, EVENTS, half_life_days=1e-4)
    assert np.isfinite(journeys.time_decay.conversions).all()
    assert journeys.time_decay.conversions.sum() == pytest.approx(journeys.paths.total_conversions)
    con.close()


def test_hash_buckets_add_up_to_one_pass(tmp_path):
    sends, outcomes = make_logs(9)
    con = make_warehouse(tmp_path / "w.duckdb", sends, outcomes)
    span = period(week="2026-W44")
    whole = warehouse_journeys(con, EVENTS, span=span)
    split = warehouse_journeys(con, EVENTS, span=span, touches_per_bucket=37)  # ~10 buckets
    assert split.paths.paths == whole.paths.paths
    for name in ("conversions", "nulls", "values"):
        np.testing.assert_allclose(getattr(split.paths, name), getattr(whole.paths, name))
    assert split.time_decay.channels == whole.time_decay.channels
    np.testing.assert_allclose(split.time_decay.conversions, whole.time_decay.conversions)
    assert (split.without_touch, split.without_touch_value) == pytest.approx(
        (whole.without_touch, whole.without_touch_value)
    )
    con.close()


def test_causal_column_is_the_effect_on_the_treated_times_treated_sends(tmp_path):
    """With `att`/`att_se` stored (the uplift run's effect on the treated), the column is
    ATT × treated sends with CI att ± 1.96·att_se; a class without them falls back to its
    ATE and the item says so (`estimand`)."""
    import json

    sends, outcomes = make_logs(5)
    con = make_warehouse(tmp_path / "w.duckdb", sends, outcomes)
    span = period(week="2026-W44")
    created = datetime(2026, 11, 2, tzinfo=UTC)
    rows = [(c, 0.010, 0.002, "ok") for c in CLASSES]
    add_uplift(con, "run", created, rows)
    # the targeted push class: ATT 0.0132 (32% above its ATE), se 0.0025
    con.execute(
        "UPDATE uplift_estimates SET details = ? WHERE message_class = 'new_release_push'",
        [json.dumps({"att": 0.0132, "att_se": 0.0025})],
    )
    n = treated_counts(sends, span)
    got = {r.item: r for r in causal_column(con, by="class", span=span, items=[]).rows}
    push = got["new_release_push"]
    assert push.estimand == "att"
    assert push.effect == pytest.approx(0.0132 * n["new_release_push"])
    z = 1.959963984540054  # scipy's norm.isf(0.025): the uplift's alpha 0.05
    assert push.effect_ci_lower == pytest.approx((0.0132 - z * 0.0025) * n["new_release_push"])
    assert push.uplift == pytest.approx(0.0132)
    other = got["promo_blast_push"]
    assert other.estimand == "ate"
    assert other.effect == pytest.approx(0.010 * n["promo_blast_push"])
    assert "ATE × sends for 1 of 1 classes" in other.note
    channel = {r.item: r for r in causal_column(con, by="channel", span=span, items=[]).rows}
    assert channel["push"].estimand == "mixed"
    assert channel["push"].effect == pytest.approx(
        0.0132 * n["new_release_push"] + 0.010 * n["promo_blast_push"]
    )
    con.close()


def test_causal_above_observed_warns_and_relative_cis_stay_above_minus_100_percent(tmp_path):
    from upshot.attribution.touches.causal import against_observed, missing_row, relative

    sends, outcomes = make_logs(5)
    con = make_warehouse(tmp_path / "w.duckdb", sends, outcomes)
    span = period(week="2026-W44")
    # an effect far larger than anything observed, and a wide CI reaching far below 0
    add_uplift(
        con, "run", datetime(2026, 11, 2, tzinfo=UTC), [(c, 0.5, 0.4, "ok") for c in CLASSES]
    )
    observed = {"push": 1.0, "email": 1e6}
    rows = {
        r.item: r
        for r in causal_column(con, by="channel", span=span, items=[], observed=observed).rows
    }
    assert rows["push"].effect > 1.0
    assert "above the 1 observed" in rows["push"].warning
    assert rows["push"].rel_effect == math.inf
    assert rows["email"].warning == ""
    assert rows["email"].observed == 1e6
    # lift over the counterfactual observed - effect: 0.5·n / (1e6 - 0.5·n)
    e = rows["email"].effect
    assert rows["email"].rel_effect == pytest.approx(e / (1e6 - e))
    con.close()
    # a lower bound of -5 conversions against 2 observed: -5/7 = -71%, not -250%
    assert relative(-5.0, 2.0) == pytest.approx(-5 / 7)
    for effect in (-1e9, -100.0, -2.0, 0.0, 1.0):
        assert relative(effect, 2.0) > -1.0
    row = against_observed(missing_row("x", 0, "no_uplift_run", ""), 3.0)
    assert math.isnan(row.rel_effect)  # no estimate, no relative effect
    assert row.warning == ""


def test_touches_cli_prints_relative_cis_and_the_warning(tmp_path):
    sends, outcomes = make_logs(6)
    db = tmp_path / "w.duckdb"
    con = make_warehouse(db, sends, outcomes)
    add_uplift(
        con, "run", datetime(2026, 11, 2, tzinfo=UTC), [(c, 0.9, 0.4, "ok") for c in CLASSES]
    )
    con.close()
    result = run_cli("--db", str(db), "touches", "--week", "2026-W44", "--by", "channel")
    assert result.code == 0, result.err
    assert "causal_rel_ci" in result.out
    assert "warning: push: causal conversions" in result.err
    for cell in re.findall(r"\[([-+][0-9.]+)%", result.out):
        assert float(cell) > -100.0
