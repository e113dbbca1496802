"""Report data from a tiny hand-built warehouse, checked against brute-force counts."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from tests.reports.conftest import START, WEEK, uid
from upshot.config import Config
from upshot.reports.data import report_data, suppress
from upshot.reports.significance import decide
from upshot.reports.uplift_view import headline, objective_meta


def test_uplift_rows_keep_numbers_only_for_classes_with_k_users(warehouse, config, tmp_path):
    data = report_data(warehouse, config, WEEK, weights_dir=tmp_path)
    by = {(r["message_class"], r["objective"]): r for r in data.uplift}
    big = by[("big_push", "conversion")]
    assert big["effect"] == pytest.approx(0.01)
    assert big["users"] == 25
    # brute force: treated sends of big_push in the week
    assert big["sends"] == 25 + 13
    tiny = by[("tiny_email", "conversion")]
    assert tiny["suppressed"]
    assert tiny["effect"] is None
    assert tiny["users"] is None
    assert by[("tiny_email", "engagement")]["status"] == "failed:boom"
    assert data.suppressed >= 2
    # history: the newest run of each week; the older run of W46 is not shown
    assert {
        (r["week"], r["effect"])
        for r in data.history
        if r["objective"] == "conversion" and r["message_class"] == "big_push"
    } == {("2026-W46", 0.02), (WEEK, 0.01)}


def test_headline_is_uplift_times_sends_summed_with_independent_errors(warehouse, config, tmp_path):
    data = report_data(warehouse, config, WEEK, weights_dir=tmp_path)
    conv = next(h for h in data.headline if h["objective"] == "conversion")
    # tiny_email is suppressed, so only big_push counts: 0.01 x 38 sends
    assert conv["effect"] == pytest.approx(0.38)
    half = stats.norm.ppf(0.975) * 0.002 * 38
    assert conv["effect_ci_lower"] == pytest.approx(0.38 - half)
    assert conv["status"] == "partial"
    assert conv["classes_estimated"] == 1


def test_headline_against_a_brute_force_sum():
    rng = np.random.default_rng(3)
    rows = [
        {"objective": "conversion", "effect": float(e), "effect_se": float(s), "sends": int(n)}
        for e, s, n in zip(
            rng.normal(0, 0.01, 6),
            rng.uniform(0.001, 0.01, 6),
            rng.integers(10, 1000, 6),
            strict=True,
        )
    ]
    (h,) = headline(rows, objective_meta(Config())[:1], 0.05)
    total = sum(r["effect"] * r["sends"] for r in rows)
    se = math.sqrt(sum((r["effect_se"] * r["sends"]) ** 2 for r in rows))
    assert h["effect"] == pytest.approx(total, rel=1e-12)
    assert h["effect_ci_upper"] - h["effect"] == pytest.approx(stats.norm.ppf(0.975) * se)


def test_daily_counts_show_the_empty_day(warehouse, config, tmp_path):
    data = report_data(warehouse, config, WEEK, weights_dir=tmp_path)
    days = {d["day"]: d for d in data.daily}
    assert len(days) == 7
    assert days["2026-11-19"]["sends"] == 0  # Thursday
    assert days["2026-11-19"]["outcomes"] == 30
    rows = warehouse.execute(
        "SELECT decided_at::DATE, count(*) FROM sends WHERE decided_at >= ? GROUP BY 1", [START]
    ).fetchall()  # brute force, with the same k rule: fewer than 10 users is suppressed
    for day, n in rows:
        users = warehouse.execute(
            "SELECT count(DISTINCT user_id) FROM sends WHERE decided_at::DATE = ?", [day]
        ).fetchone()[0]
        assert days[day.isoformat()]["sends"] == (n if users >= 10 else None)


def test_reach_counts_opted_in_users_not_yet_opted_out(warehouse, config, tmp_path):
    data = report_data(warehouse, config, WEEK, weights_dir=tmp_path)
    push = {r["week"]: r for r in data.reach if r["channel"] == "push"}
    # 24 opted in; u000-u002 left in W46 and u003-u004 in W47
    assert push["2026-W46"]["reachable"] == 21
    assert push[WEEK]["reachable"] == 19
    assert push[WEEK]["rate"] == pytest.approx(19 / 30)
    assert push[WEEK]["exits"] is None  # 2 users < k: suppressed
    # weeks before the data begins are not shown
    assert min(push) == "2026-W46"


def test_no_user_id_reaches_the_report_data(warehouse, config, tmp_path):
    data = report_data(warehouse, config, WEEK, weights_dir=tmp_path)
    text = repr(dataclasses.asdict(data))
    assert "user_id" not in text
    assert not any(uid(i) in text for i in range(30))


def test_suppress_does_not_touch_its_input_and_treats_unknown_counts_as_small():
    rows = [{"users": 3, "x": 1.0}, {"users": 30, "x": 2.0}, {"users": None, "x": 3.0}]
    out, hidden = suppress(rows, "users", 10, ("x",))
    assert hidden == 2
    assert [r["x"] for r in out] == [None, 2.0, None]
    assert [r["suppressed"] for r in out] == [True, False, True]
    assert rows[0] == {"users": 3, "x": 1.0}


@pytest.mark.parametrize(("method", "reference"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_significance_matches_statsmodels(method, reference):
    """Classes, the opt-out guardrail tests and the headline totals form one family: the
    adjusted p-values equal statsmodels' over the concatenation of all three."""
    rng = np.random.default_rng(1)
    p = np.concatenate([rng.uniform(0, 0.01, 4), rng.uniform(0, 1, 28)])
    rows = [
        {
            "week": WEEK,
            "objective": "reachability" if i < 3 else "conversion",
            "pvalue": float(v),
            "effect": 0.003 * (1 if i % 2 else -1),
            "effect_se": 0.001,
        }
        for i, v in enumerate(p)
    ]
    totals = [{"week": WEEK, "effect": 5.0, "effect_se": 2.0}]
    out, heads = decide(
        rows, totals, alpha=0.05, method=method, optout_objective="reachability", guardrail=0.002
    )
    guard = stats.norm.sf([(r["effect"] - 0.002) / 0.001 for r in rows[:3]])
    total_p = 2 * stats.norm.sf(5.0 / 2.0)
    family = np.concatenate([p, guard, [total_p]])
    reject, adjusted, _, _ = multipletests(family, alpha=0.05, method=reference)
    assert [r["pvalue_adj"] for r in out] == pytest.approx(list(adjusted[:32]), rel=1e-12)
    assert [r["significant"] != 0 for r in out] == list(reject[:32])
    assert all(r["significant"] == (1 if r["effect"] > 0 else -1) for r in out if r["significant"])
    assert [r["guardrail_pvalue_adj"] for r in out[:3]] == pytest.approx(
        list(adjusted[32:35]), rel=1e-12
    )
    assert [r["over_guardrail"] for r in out[:3]] == list(reject[32:35])
    assert "over_guardrail" not in out[3]
    assert heads[0]["pvalue"] == pytest.approx(total_p, rel=1e-12)
    assert heads[0]["pvalue_adj"] == pytest.approx(adjusted[35], rel=1e-12)
    assert heads[0]["significant"] == (1 if reject[35] else 0)
    assert "pvalue_adj" not in rows[0]
