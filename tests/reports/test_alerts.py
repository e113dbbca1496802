"""Alert rules on hand-built aggregate data: each rule fires when it should and only then."""

from __future__ import annotations

import dataclasses

import pytest

from tests.reports.conftest import WEEK, make_data, redecide
from upshot.config import Config
from upshot.reports.alerts import SEVERITIES, Alert, evaluate


def rules(data, config=None):
    return {(a.rule, a.severity, a.subject) for a in evaluate(data, config or Config())}


def test_the_sample_week_raises_each_planted_problem_once():
    found = rules(make_data())
    assert ("optout_harm", "critical", "promo_blast_push") in found
    assert ("uplift_negative", "critical", "weekly_digest_email") in found
    assert ("reach_drop", "critical", "push") in found
    assert ("data_gap", "critical", "sends") in found
    assert ("late_data", "warning", "2026-W46") in found
    assert ("refutation_failed", "warning", "weekly_digest_email") in found
    assert ("estimation_failed", "warning", "broken_class") in found
    # nothing about the classes and channels that are fine
    subjects = {s for _, _, s in found}
    assert "new_release_push" not in subjects
    assert "sports_alert_push" not in subjects
    assert "email" not in subjects


def test_alerts_are_ordered_by_severity_then_rule_and_counted():
    alerts = evaluate(make_data(), Config())
    order = [(SEVERITIES.index(a.severity), a.rule, a.subject) for a in alerts]
    assert order == sorted(order)
    counts = alerts.counts()
    assert counts["critical"] == sum(a.severity == "critical" for a in alerts)
    assert alerts.at_or_above("never") == ()
    assert {a.severity for a in alerts.at_or_above("critical")} == {"critical"}
    assert len(alerts.at_or_above("warning")) == counts["critical"] + counts["warning"]
    assert alerts.document()["week"] == WEEK


def test_optout_harm_is_a_warning_when_only_the_point_estimate_is_over():
    data = make_data()
    uplift = tuple(
        {
            **r,
            "effect": 0.003,
            "effect_se": 0.002,
            "effect_ci_lower": -0.001,
            "effect_ci_upper": 0.007,
        }
        if r["message_class"] == "promo_blast_push" and r["objective"] == "reachability"
        else r
        for r in data.uplift
    )
    found = rules(redecide(dataclasses.replace(data, uplift=uplift)))
    assert ("optout_harm", "warning", "promo_blast_push") in found
    assert ("optout_harm", "critical", "promo_blast_push") not in found


@pytest.mark.parametrize(
    ("drop", "severity"), [(0.01, None), (0.03, "warning"), (0.08, "critical")]
)
def test_reach_drop_thresholds(drop, severity):
    data = make_data()
    reach = tuple(
        {**r, "reachable": 1000 if r["week"] != WEEK else round(1000 * (1 - drop))}
        for r in data.reach
        if r["channel"] == "push"
    )
    found = {
        a
        for a in evaluate(dataclasses.replace(data, reach=reach), Config())
        if a.rule == "reach_drop"
    }
    assert [a.severity for a in found] == ([severity] if severity else [])


def test_negative_uplift_on_a_key_objective_says_whether_it_is_new():
    data = make_data()
    history = tuple({**r, "significant": 0} if r["week"] == "2026-W46" else r for r in data.history)
    alerts = evaluate(dataclasses.replace(data, history=history), Config())
    (alert,) = [a for a in alerts if a.rule == "uplift_negative"]
    assert "new this week" in alert.message
    # engagement is positive for weekly_digest_email: only conversion is named
    assert "hurts conversion" in alert.message


def test_negative_uplift_on_an_objective_that_is_not_key_does_not_alert():
    config = Config()
    config = dataclasses.replace(
        config, report=dataclasses.replace(config.report, key_objectives=("engagement",))
    )
    assert not [a for a in evaluate(make_data(config), config) if a.rule == "uplift_negative"]


def test_srm_and_stage_failures():
    data = make_data()
    experiments = tuple({**r, "srm_status": "srm", "srm_pvalue": 1e-6} for r in data.experiments)
    stages = (
        *data.stages,
        {"stage": "weights", "status": "failed", "detail": "breaker"},
        {"stage": "experiments", "status": "unavailable", "detail": "not installed"},
        {"stage": "weights", "status": "refused", "detail": "the drift circuit breaker tripped"},
    )
    found = rules(dataclasses.replace(data, experiments=experiments, stages=stages))
    assert ("srm", "critical", "send_time_test") in found
    assert ("stage_failed", "critical", "weights") in found
    assert ("stage_unavailable", "info", "experiments") in found
    assert ("weights_refused", "critical", "weights") in found


def test_a_clean_week_has_no_alerts():
    data = make_data()
    clean = dataclasses.replace(
        data,
        uplift=tuple(
            {
                **r,
                "refute_passed": True,
                "effect": 0.0,
                "pvalue": 1.0,
                "effect_ci_lower": -0.001,
                "effect_ci_upper": 0.001,
            }
            for r in data.uplift
        ),
        reach=tuple({**r, "reachable": 5000} for r in data.reach),
        daily=tuple({**d, "sends": 10, "outcomes": 10} for d in data.daily),
        late=(),
        stages=(),
    )
    assert len(evaluate(redecide(clean), Config())) == 0


def test_an_alert_refuses_an_unknown_severity():
    with pytest.raises(ValueError, match="severity == 'urgent'"):
        Alert("x", "urgent", "s", "m")


def test_files_over_the_quarantine_gate_are_a_warning():
    data = make_data(
        over_gate=({"source": "s.csv", "table": "sends", "rows_read": 200, "rows_quarantined": 9},)
    )
    (alert,) = [a for a in evaluate(data, Config()) if a.rule == "quarantine"]
    assert alert.severity == "warning"
    assert alert.subject == "s.csv"
    assert "9 of 200 rows quarantined (4.5% > load.max_reject_rate 1.0%)" in alert.message


def test_a_class_at_confounding_risk_raises_one_warning_naming_its_objectives():
    data = make_data()
    assert not [a for a in evaluate(data, Config()) if a.rule == "confounding_risk"]
    risky = "sports_alert_push"
    uplift = tuple(
        {**r, "status": "confounding_risk", "effect": None, "significant": 0}
        if r["message_class"] == risky
        else r
        for r in data.uplift
    )
    found = [
        a
        for a in evaluate(dataclasses.replace(data, uplift=uplift), Config())
        if a.rule == "confounding_risk"
    ]
    objectives = sorted(r["objective"] for r in data.uplift if r["message_class"] == risky)
    assert [(a.severity, a.subject) for a in found] == [("warning", risky)]
    assert "may be confounded" in found[0].message
    assert ", ".join(objectives) in found[0].message
    assert "log the decision service's propensity" in found[0].message
