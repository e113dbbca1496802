"""The report's long-term section: projections beside the 7-day effects, the backtest chart
and the `surrogacy_violated` alert (upshot.reports.longterm_view, chart_longterm,
html_longterm)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from tests.reports.conftest import make_data
from upshot import store
from upshot.config import Config
from upshot.reports import alerts, charts, html
from upshot.reports.longterm_view import longterm_section

Z = 1.959963984540054  # norm.ppf(0.975)


def _projection(cls, outcome, estimate, se, backtest="ok"):
    return {
        "run_id": "r1", "week": "2026-W47", "message_class": cls, "channel": "push",
        "outcome": outcome, "estimate": estimate, "se": se, "ci_lower": estimate - Z * se,
        "ci_upper": estimate + Z * se, "n_treated": 400, "n_control": 100, "n_history": 5000,
        "status": "ok", "backtest": backtest, "details": "{}",
        "created_at": datetime(2026, 11, 23, tzinfo=UTC),
    }  # fmt: skip


def _window(cls, window, projected, realized, diff_se, flagged, outcome="retention_180d"):
    return {
        "run_id": "r1", "outcome": outcome, "window": window, "message_class": cls,
        "projected": projected, "projected_ci_lower": projected - 1.0,
        "projected_ci_upper": projected + 1.0, "realized": realized, "realized_se": 0.5,
        "difference": projected - realized, "difference_se": diff_se,
        "naive": projected / 2, "missed": abs(projected - realized) > Z * diff_se,
        "flagged": flagged,
    }  # fmt: skip


BACKTEST = [
    _window("new_release_push", "2026-W01", 1.0, 1.2, 0.4, False),
    _window("resume_watching_push", "2026-W01", 2.0, -3.0, 1.0, True),
    _window("resume_watching_push", "2026-W02", 1.5, -2.5, 2.0, True),
]


def _insert(con, table, rows):
    names = list(rows[0])
    cols = ", ".join(f'"{n}"' for n in names)
    sql = f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' for _ in names)})"
    con.executemany(sql, [[r[n] for n in names] for r in rows])


def test_the_section_reads_the_run_beside_the_primary_7_day_effect_and_hides_small_classes():
    con = store.connect(":memory:", read_only=False)
    _insert(con, "longterm_estimates", [
        _projection("new_release_push", "retention_180d", 2.0, 0.5),
        _projection("new_release_push", "subscribed_180d", 0.01, 0.004),
        _projection("tiny_push", "retention_180d", 1.0, 0.9),
    ])  # fmt: skip
    _insert(con, "longterm_backtest", BACKTEST)
    uplift = (
        {"message_class": "new_release_push", "objective": "retention", "effect": 0.05,
         "effect_ci_lower": 0.01, "effect_ci_upper": 0.09, "suppressed": False},
        {"message_class": "new_release_push", "objective": "conversion", "effect": 0.004,
         "effect_ci_lower": 0.002, "effect_ci_upper": 0.006, "suppressed": False},
        {"message_class": "tiny_push", "objective": "retention", "effect": None,
         "effect_ci_lower": None, "effect_ci_upper": None, "suppressed": True},
    )  # fmt: skip
    projections, backtest, hidden = longterm_section(con, Config(), "r1", uplift)
    con.close()
    by = {(r["message_class"], r["outcome"]): r for r in projections}
    # the 7-day effect beside each outcome is its primary surrogate's (same events)
    ret = by["new_release_push", "retention_180d"]
    assert (ret["short_objective"], ret["short_effect"]) == ("retention", 0.05)
    assert (ret["estimate"], ret["ci_lower"]) == (2.0, pytest.approx(2.0 - Z * 0.5))
    sub = by["new_release_push", "subscribed_180d"]
    assert (sub["short_objective"], sub["short_effect"]) == ("conversion", 0.004)
    # a class whose 7-day cell is hidden (< k users) loses its projection's numbers too
    tiny = by["tiny_push", "retention_180d"]
    assert tiny["suppressed"]
    assert tiny["estimate"] is None
    assert tiny["ci_upper"] is None
    assert hidden == 1  # min_backtest_arm 50 >= k 10: the backtest rows are shown
    first = backtest[0]
    assert first["realized_ci_lower"] == pytest.approx(1.2 - Z * 0.5)
    assert [r["flagged"] for r in backtest] == [False, True, True]


def _pooled_z(rows):
    w = [1 / r["difference_se"] ** 2 for r in rows]
    pooled = sum(wi * r["difference"] for wi, r in zip(w, rows, strict=True)) / sum(w)
    return pooled / (1 / math.sqrt(sum(w)))


def test_a_flagged_class_raises_the_surrogacy_alert_with_its_pooled_miss():
    data = make_data(backtest=tuple(BACKTEST))
    found = [a for a in alerts.evaluate(data, Config()) if a.rule == "surrogacy_violated"]
    assert [(a.severity, a.subject) for a in found] == [("warning", "resume_watching_push")]
    # pooled by hand: differences 5 (se 1) and 4 (se 2): (5 + 4/4) / (1 + 1/4) = 4.8,
    # se 1/sqrt(1.25): z = 4.8 * sqrt(1.25) = 5.3666
    assert found[0].value == pytest.approx(_pooled_z(BACKTEST[1:]), rel=1e-9)
    assert found[0].value == pytest.approx(4.8 * math.sqrt(1.25), rel=1e-9)
    assert "retention_180d is not to be trusted: in 2 past window(s)" in found[0].message
    assert not [a for a in alerts.evaluate(make_data(), Config())
                if a.rule == "surrogacy_violated"]  # fmt: skip


def test_the_page_shows_the_projection_and_the_backtest_chart():
    config = Config()
    longterm = (
        {"message_class": "resume_watching_push", "channel": "push",
         "outcome": "retention_180d", "estimate": 3.07, "se": 1.2, "ci_lower": 0.72,
         "ci_upper": 5.42, "n_history": 5000, "status": "ok",
         "backtest": "surrogacy_violated", "short_objective": "retention",
         "short_effect": 0.05, "short_ci_lower": 0.01, "short_ci_upper": 0.09,
         "suppressed": False},
    )  # fmt: skip
    rows = [
        {**r, "realized_ci_lower": r["realized"] - Z * 0.5,
         "realized_ci_upper": r["realized"] + Z * 0.5, "suppressed": False}
        for r in BACKTEST
    ]  # fmt: skip
    data = make_data(longterm=longterm, backtest=tuple(rows))
    chart_list = charts.charts(data, config.governance.max_optout_harm, "reachability")
    (chart,) = [c for c in chart_list if c.name == "backtest"]
    assert chart.section == "longterm"
    panel = chart.spec["hconcat"][0]
    diagonal, points = panel["layer"][0], panel["layer"][3]
    # the 45-degree line spans the CIs' range on both axes
    ends = [v for r in rows for v in (r["projected_ci_lower"], r["projected_ci_upper"],
                                      r["realized_ci_lower"], r["realized_ci_upper"])]  # fmt: skip
    assert [d["v"] for d in diagonal["data"]["values"]] == pytest.approx([min(ends), max(ends)])
    verdicts = {(d["message_class"], d["window"]): d["verdict"] for d in points["data"]["values"]}
    assert verdicts["resume_watching_push", "2026-W02"] == "flagged"
    assert verdicts["new_release_push", "2026-W01"] == "holds"
    page = html.page(data, alerts.evaluate(data, config), chart_list, config, bundle="")
    assert 'id="longterm"' in page
    assert 'href="#longterm"' in page
    assert '<span class="badge critical">FLAGGED: surrogacy fails</span>' in page
    assert "+3.07<span" in page
    assert "retention +0.05" in page
    assert "The backtest flags resume_watching_push (retention_180d)" in page
