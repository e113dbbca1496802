"""The report tells the truth about itself: one significance decision read by the headline,
the charts and the alerts; suppression by user counts, said in the section; a week
without an uplift run is an alert."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from scipy import stats

from tests.reports.conftest import WEEK, make_data, redecide
from upshot.config import Config
from upshot.reports import charts, html_sections, summary
from upshot.reports.alerts import evaluate
from upshot.reports.data import report_data, suppress

GUARD = Config().governance.max_optout_harm  # 0.002 per send


def _config(method: str) -> Config:
    base = Config()
    return dataclasses.replace(base, report=dataclasses.replace(base.report, correction=method))


def _world(method: str):
    """Three planted cells whose raw test passes at 0.05 but which a correction over the
    week's 24 tests (16 class x objective, 4 guardrail, 4 totals) can overturn:

    - every class's conversion uplift at z = 1.15, so the headline total is at z = 2.3
      (4 equal classes of 4,000 sends: total / se = 4 e / (2 s));
    - weekly_digest_email's engagement at z = -2.5 (a key objective: harmful);
    - promo_blast_push's opt-out uplift 2.25 se over the guardrail (one-sided).
    """
    planted = {
        "conversion": (0.00115, 0.001),
        ("weekly_digest_email", "engagement"): (-2.0, 0.8),
        ("promo_blast_push", "reachability"): (0.0065, 0.002),
    }
    config = _config(method)
    data = make_data(config)

    def change(r: dict[str, Any]) -> dict[str, Any]:
        key = (r["message_class"], r["objective"])
        effect, se = planted.get(key) or planted.get(r["objective"]) or (None, None)
        if effect is None:
            return r
        return {
            **r,
            "effect": effect,
            "effect_se": se,
            "effect_ci_lower": effect - 1.96 * se,
            "effect_ci_upper": effect + 1.96 * se,
            "pvalue": 2 * stats.norm.sf(abs(effect / se)),
        }

    uplift = tuple(change(r) for r in data.uplift)
    data = dataclasses.replace(data, uplift=uplift, history=uplift)
    return redecide(data, config), config


def _chart_rows(spec: Any, field: str) -> list[dict[str, Any]]:
    """Every inline datum of a Vega-Lite spec that carries `field`."""
    found = []
    if isinstance(spec, dict):
        for key, value in spec.items():
            if key == "values" and isinstance(value, list):
                found += [v for v in value if isinstance(v, dict) and field in v]
            else:
                found += _chart_rows(value, field)
    elif isinstance(spec, list):
        for value in spec:
            found += _chart_rows(value, field)
    return found


def _panels(spec: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    """(title, inline data) of every uplift panel: a layer titled with its objective."""
    found = []
    if isinstance(spec, dict):
        if "layer" in spec and isinstance(spec.get("title"), str):
            found.append((spec["title"], _chart_rows(spec, "verdict")))
        else:
            for value in spec.values():
                found += _panels(value)
    elif isinstance(spec, list):
        for value in spec:
            found += _panels(value)
    return found


def _look(data, config):
    """(uplift verdict per class x objective, opt-out level per class) from the charts,
    the alerts as (rule, severity, subject), and the headline card tone per objective."""
    built = {
        c.name: c.spec
        for c in charts.charts(data, config.governance.max_optout_harm, "reachability")
    }
    label = {o["label"]: o["objective"] for o in data.objectives}
    verdicts = {
        (r["message_class"], label[title]): r["verdict"]
        for title, rows in _panels(built["uplift"])
        for r in rows
    }
    levels = {r["message_class"]: r["level"] for r in _chart_rows(built["optout"], "level")}
    found = {(a.rule, a.severity, a.subject) for a in evaluate(data, config)}
    cards = re.findall(
        r'<div class="label">([^<]*)</div><div class="value( good| bad)?">',
        html_sections.headline_section(data),
    )
    tones = {label: (tone or "").strip() for label, tone in cards}
    return verdicts, levels, found, tones


def test_raw_significance_that_the_correction_overturns_is_nowhere_called_significant():
    data, config = _world("holm")
    rows = {(r["message_class"], r["objective"]): r for r in data.uplift}
    digest = rows[("weekly_digest_email", "engagement")]
    promo = rows[("promo_blast_push", "reachability")]
    conversion = next(h for h in data.headline if h["objective"] == "conversion")
    # the premise: each planted test passes raw at 0.05 and fails after Holm
    assert digest["pvalue"] < 0.05 <= digest["pvalue_adj"]
    assert stats.norm.sf((promo["effect"] - GUARD) / promo["effect_se"]) < 0.05
    assert promo["effect_ci_lower"] > GUARD  # the raw CI clears the guardrail
    assert promo["guardrail_pvalue_adj"] >= 0.05
    assert conversion["effect_ci_lower"] > 0  # the raw CI of the total excludes 0
    assert conversion["pvalue"] < 0.05 <= conversion["pvalue_adj"]

    verdicts, levels, found, tones = _look(data, config)
    assert digest["significant"] == 0
    assert verdicts[("weekly_digest_email", "engagement")] == "unclear"
    assert not any(r == "uplift_negative" and s == "weekly_digest_email" for r, _, s in found)
    assert levels["promo_blast_push"] == "may exceed it"
    assert ("optout_harm", "warning", "promo_blast_push") in found
    assert ("optout_harm", "critical", "promo_blast_push") not in found
    assert conversion["significant"] == 0
    assert tones[conversion["label"]] == ""
    assert r"weekly\_digest\_email on engagement" not in "\n".join(summary.movers_block(data))


def test_without_a_correction_the_same_cells_are_significant_everywhere_at_once():
    data, config = _world("none")
    rows = {(r["message_class"], r["objective"]): r for r in data.uplift}
    conversion = next(h for h in data.headline if h["objective"] == "conversion")
    assert rows[("weekly_digest_email", "engagement")]["significant"] == -1
    assert rows[("promo_blast_push", "reachability")]["over_guardrail"] is True
    assert conversion["significant"] == 1

    verdicts, levels, found, tones = _look(data, config)
    assert verdicts[("weekly_digest_email", "engagement")] == "hurts"
    assert ("uplift_negative", "critical", "weekly_digest_email") in found
    assert levels["promo_blast_push"] == "over the guardrail"
    assert ("optout_harm", "critical", "promo_blast_push") in found
    assert tones[conversion["label"]] == "good"
    assert r"weekly\_digest\_email on engagement" in "\n".join(summary.movers_block(data))


@pytest.mark.parametrize("method", ["holm", "bonferroni", "bh", "none"])
def test_headline_charts_and_alerts_agree_on_every_row(method):
    data, config = _world(method)
    verdicts, levels, found, tones = _look(data, config)
    for r in data.uplift:
        sign = r["significant"]
        better = data.objective(r["objective"])["higher_is_better"]
        expected = "unclear" if not sign else "helps" if (sign > 0) == better else "hurts"
        assert verdicts[(r["message_class"], r["objective"])] == expected
        key = data.objective(r["objective"])["key"]
        harmful = key and sign == (-1 if better else 1)
        alerted = ("uplift_negative", "critical", r["message_class"]) in found
        if harmful:
            assert alerted
        if r["objective"] == "reachability":
            over = ("optout_harm", "critical", r["message_class"]) in found
            assert (
                over == r["over_guardrail"] == (levels[r["message_class"]] == "over the guardrail")
            )
    for h in data.headline:
        better = data.objective(h["objective"])["higher_is_better"]
        sign = h["significant"]
        tone = "" if not sign else "good" if (sign > 0) == better else "bad"
        assert tones[h["label"]] == tone


def test_suppression_follows_user_counts_per_arm_not_the_size_of_the_estimate():
    rows = [
        # many users, a tiny estimate: shown
        {"treated_users": 5000, "control_users": 4000, "effect": 1e-9},
        # a few held-out users, a huge estimate: hidden
        {"treated_users": 5000, "control_users": 3, "effect": 1e9},
        # a few sent users: hidden
        {"treated_users": 9, "control_users": 4000, "effect": 0.5},
    ]
    out, hidden = suppress(rows, ("treated_users", "control_users"), 10, ("effect",))
    assert [r["suppressed"] for r in out] == [False, True, True]
    assert [r["effect"] for r in out] == [1e-9, None, None]
    assert hidden == 2


def test_a_class_with_few_held_out_users_is_hidden_and_the_section_says_so(
    warehouse, config, tmp_path
):
    # big_push holds out 12 users in the week: with k = 13 its held-out arm is too small,
    # although it has 25 users in all and a large, tight estimate
    tight = dataclasses.replace(config, report=dataclasses.replace(config.report, k_anonymity=13))
    data = report_data(warehouse, tight, WEEK, weights_dir=tmp_path)
    big = [r for r in data.uplift if r["message_class"] == "big_push"]
    assert all(r["suppressed"] and r["effect"] is None for r in big)
    hidden = sum(1 for r in data.uplift if r["suppressed"])
    assert data.suppressed_by["uplift"] == hidden == 4  # 2 classes x 2 objectives
    section = html_sections.uplift_section(data, {})
    assert (
        "4 cells hidden: a class whose sent or held-out group had fewer than 13 users "
        "(report.k_anonymity)" in section
    )
    # W46's big_push (12 sent, 12 held out) is hidden in the past weeks too, and said so
    assert data.suppressed_by["history"] == 1
    assert (
        "1 cell hidden: a class in an earlier week whose sent or held-out group had fewer "
        "than 13 users" in html_sections.history_section(data, {})
    )
    # at k = 10 big_push (25 sent, 12 held out) is shown and only tiny_email is hidden
    data = report_data(warehouse, config, WEEK, weights_dir=tmp_path)
    assert not any(r["suppressed"] for r in data.uplift if r["message_class"] == "big_push")
    assert "2 cells hidden: a class whose sent or held-out group had fewer than 10 users" in (
        html_sections.uplift_section(data, {})
    )
    assert "cells hidden (fewer than 10 users" in summary.health_line(data)


def test_a_section_without_suppressed_cells_has_no_note():
    data = make_data()
    assert "hidden:" not in html_sections.uplift_section(data, {})


def test_a_week_without_an_uplift_run_is_a_critical_alert():
    data = make_data(uplift=(), headline=(), sources={"uplift_run_id": None}, stages=())
    alerts = evaluate(data, Config())
    (alert,) = [a for a in alerts if a.rule == "no_uplift_run"]
    assert (alert.severity, alert.subject) == ("critical", WEEK)
    assert "no uplift estimates for 2026-W47" in alert.message
    assert "**Alerts:** none." not in summary.markdown(data, alerts)
    # the stage's own reason is quoted; not installed is a warning, not a page
    skipped = {"stage": "uplift", "status": "skipped", "detail": "no decisions in 2026-W47"}
    (alert,) = [
        a
        for a in evaluate(dataclasses.replace(data, stages=(skipped,)), Config())
        if a.rule == "no_uplift_run"
    ]
    assert "(uplift stage skipped: no decisions in 2026-W47)" in alert.message
    missing = {"stage": "uplift", "status": "unavailable", "detail": "not installed"}
    (alert,) = [
        a
        for a in evaluate(dataclasses.replace(data, stages=(missing,)), Config())
        if a.rule == "no_uplift_run"
    ]
    assert alert.severity == "warning"
    assert not [a for a in evaluate(make_data(), Config()) if a.rule == "no_uplift_run"]


def test_a_live_experiment_without_results_is_a_warning():
    data = make_data()
    experiments = (
        *data.experiments,
        {"experiment_id": "silent_test", "status": "no_results", "users": 400},
    )
    found = evaluate(dataclasses.replace(data, experiments=experiments), Config())
    (alert,) = [a for a in found if a.rule == "no_experiment_run"]
    assert (alert.severity, alert.subject) == ("warning", "silent_test")


def test_report_data_of_a_week_with_no_uplift_run_alerts(warehouse, config, tmp_path):
    data = report_data(warehouse, config, "2026-W49", weights_dir=tmp_path)
    assert data.sources["uplift_run_id"] is None
    assert all(h["status"] == "no_estimates" for h in data.headline)
    rules = {a.rule for a in evaluate(data, config)}
    assert "no_uplift_run" in rules


def test_a_week_with_estimates_but_no_weights_says_so_unless_a_stage_already_did():
    data = make_data(weights=(), weights_info={"status": "no_weights", "version": None})
    (alert,) = [a for a in evaluate(data, Config()) if a.rule == "no_weights"]
    assert (alert.severity, alert.subject) == ("info", WEEK)
    refused = {"stage": "weights", "status": "refused", "detail": "drift"}
    found = evaluate(dataclasses.replace(data, stages=(refused,)), Config())
    assert not [a for a in found if a.rule == "no_weights"]
    assert [a.rule for a in found if a.subject == "weights"] == ["weights_refused"]
    assert not [a for a in evaluate(make_data(), Config()) if a.rule == "no_weights"]


def test_experiment_colours_and_summary_follow_the_adjusted_p_value_the_table_shows():
    from upshot.reports.significance import experiment_rows

    base = make_data()
    row = dict(base.experiments[0])  # opens: +15%, CI [+12%, +18%]
    rows = experiment_rows(
        [
            # the raw CI excludes 0, the adjusted p does not pass: not significant anywhere
            {**row, "metric": "opens", "effect": 0.15, "pvalue": 0.01, "pvalue_adj": 0.08},
            # lower is better and it went down, adjusted p passes: better
            {
                **row,
                "metric": "latency",
                "effect": -0.2,
                "rel_effect": -0.2,
                "rel_effect_ci_lower": -0.3,
                "rel_effect_ci_upper": -0.1,
                "pvalue_adj": 0.001,
                "higher_is_better": False,
            },
        ],
        0.05,
    )
    assert [r["significant"] for r in rows] == [0, -1]
    data = dataclasses.replace(base, experiments=tuple(rows))
    (chart,) = [
        c for c in charts.charts(data, GUARD, "reachability") if c.name.startswith("experiment-")
    ]
    directions = {r["metric"]: r["direction"] for r in _chart_rows(chart.spec, "direction")}
    assert directions == {"opens": "no significant change", "latency": "better"}
    (line,) = summary.experiments_block(data)
    assert "latency -20.0%" in line
    assert "opens" not in line


def test_touch_credit_is_hidden_by_the_users_messaged_on_the_channel_not_by_its_size(
    warehouse, monkeypatch
):
    """push reached 25 users in the week, email 5 (k = 10): push keeps a credit of 0.3
    conversions (a small estimate), email loses one of a million."""
    import upshot.attribution.touches.persist as persist
    from upshot.reports.data import touches

    def row(item, method, conversions):
        return {
            "item": item,
            "method": method,
            "conversions": conversions,
            "value": None,
            "share": 0.5,
            "se": None,
            "ci_lower": None,
            "ci_upper": None,
            "status": "ok",
        }

    stored = [row("push", "last_touch", 0.3), row("push", "causal", -0.2),
              row("email", "last_touch", 1e6)]  # fmt: skip
    monkeypatch.setattr(persist, "stored_rows", lambda con, by, week: stored)
    rows, hidden = touches(warehouse, WEEK, 10)
    by = {(r["item"], r["method"]): r for r in rows}
    assert by[("push", "last_touch")]["conversions"] == 0.3
    assert by[("push", "causal")]["conversions"] == -0.2
    assert not by[("push", "last_touch")]["suppressed"]
    assert by[("email", "last_touch")]["conversions"] is None
    assert by[("email", "last_touch")]["suppressed"]
    assert hidden == 1
