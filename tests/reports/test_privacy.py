"""k-anonymity covers text too: no number of a suppressed cell appears anywhere in the report."""

from __future__ import annotations

import dataclasses
import json

from tests.reports.conftest import make_data
from upshot.config import Config
from upshot.reports import alerts, charts, html, summary
from upshot.reports.experiments_view import suppress_arms
from upshot.results import dumps

# distinctive numbers of the small arm, in every way the report could print them
SECRETS = ("42.71", "0.4271", "42.7%", "0.000617", "0.00062", "6.2e-04", "0.0781", "7.81")


def _report(data):
    config = Config()
    found = alerts.evaluate(data, config)
    chart_list = charts.charts(data, config.governance.max_optout_harm, "reachability")
    page = html.page(data, found, chart_list, config, bundle="")
    return "\n".join(
        [
            page,
            summary.markdown(data, found),
            dumps(found.document()),
            *(json.dumps(c.spec) for c in chart_list),
            dumps([dict(r) for r in data.experiments]),
        ]
    )


def test_a_suppressed_arm_leaves_no_number_in_html_summary_charts_or_alerts():
    data = make_data()
    # the search can fail: none of the secrets is in the report of the other data
    assert [s for s in SECRETS if s in _report(data)] == []
    row = dict(data.experiments[0])
    small = {
        **row,
        "arm": "tiny_arm",
        "rel_effect": 0.4271,
        "pvalue": 0.000617,
        "n_treatment": 6,  # fewer than k = 10 users: every number of this row is private
        # the verdict's reason as upshot.experiments.decision writes it
        "reason": "success: significantly better (+42.71%, p = 0.00062 < 0.05)",
        "details": {"excluded": {"bot": 0.0781}, "margin": 0.0781, "higher_is_better": True},
    }
    kept, hidden = suppress_arms([*data.experiments, small], data.k)
    assert hidden == 1
    report = _report(dataclasses.replace(data, experiments=kept))
    assert "tiny_arm" in report  # the arm is listed, its numbers are not
    leaked = [s for s in SECRETS if s in report]
    assert leaked == []
    suppressed = next(r for r in kept if r["arm"] == "tiny_arm")
    assert suppressed["reason"] == "suppressed: fewer than 10 users in an arm"
    assert suppressed["details"] == {"higher_is_better": True}
    # an arm with enough users keeps its reason
    assert kept[0]["reason"] == data.experiments[0]["reason"]
