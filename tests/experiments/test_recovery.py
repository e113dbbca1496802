"""On `upshot simulate` data, the planted experiment effects are recovered within their CIs.

The truth is the exact sample effect of each variant (potential outcomes by toggling the
experiment's latent events), so a 95% CI misses it with probability 0.05 per metric. The
world is seeded, so this is a fixed check: every (experiment, metric, arm) CI of the
seed-7 world covers its truth, and the planted non-zero effects are detected.
"""

from __future__ import annotations

import math

import pytest

from upshot.config import Config
from upshot.experiments import analyze, decide, decompose, list_experiments
from upshot.store import reading


@pytest.mark.parametrize("experiment", ["send_time_test", "frequency_test", "subject_line_test"])
def test_planted_effects_are_inside_the_cis(sim_warehouse, experiment):
    db, truth = sim_warehouse
    a = analyze(experiment, db=db)
    assert a.srm.status == "ok"
    assert a.arms == truth["experiments"][experiment]["n_users"]
    checked = 0
    for r in a.results:
        planted = truth["experiments"][experiment].get(r.metric, {}).get(r.arm)
        if planted is None:
            continue  # the ratio metric has no planted value
        assert r.status == "ok"
        assert r.effect_ci_lower <= planted <= r.effect_ci_upper, (r.metric, r.arm, planted, r)
        checked += 1
    assert checked == 5 * (len(a.arms) - 1)


def test_the_strong_planted_effects_are_detected(sim_warehouse):
    db, _truth = sim_warehouse
    freq = analyze("frequency_test", db=db).result("minutes", "high_frequency")
    assert freq.pvalue < 0.01
    assert freq.effect > 0
    assert freq.variance_reduction > 0.5  # the pre-period predicts viewing well
    opens = analyze("send_time_test", db=db).result("opens", "treatment")
    assert opens.effect_ci_lower > 0


def test_null_experiment_does_not_ship(sim_warehouse):
    db, _ = sim_warehouse
    verdict = decide(analyze("subject_line_test", db=db))
    assert verdict.verdict == "no_ship"
    assert {a.arm for a in verdict.arms} == {"variant_a", "variant_b"}


def test_list_and_decompose_on_the_warehouse(sim_warehouse):
    db, truth = sim_warehouse
    with reading(Config(), db) as con:
        found = {e["experiment"]: e for e in list_experiments(con)}
    assert set(found) == set(truth["experiments"])
    assert found["send_time_test"]["arms"] == truth["experiments"]["send_time_test"]["n_users"]
    d = decompose("send_time_test", db=db, funnel=["opens", "conversions"])
    (item,) = d.items
    assert item.status == "ok"
    assert math.isclose(sum(s.log_effect for s in item.steps), item.total_log_effect, rel_tol=1e-9)
    seg = decompose("frequency_test", db=db, segment="country", metric="minutes")
    (s,) = seg.items
    raw = analyze("frequency_test", db=db, metrics=["minutes"]).result("minutes")
    assert s.effect == pytest.approx(raw.treatment_raw - raw.control_raw, rel=1e-9)
    # analyze adjusts minutes (CUPED): the decomposition says it is not, and why they differ
    assert raw.covariates
    assert not s.adjusted
    assert s.note.startswith("unadjusted: analyze reports minutes adjusted (cuped on ")
    assert raw.effect != pytest.approx(s.effect, rel=1e-3)
    assert (raw.n_missing_control, raw.n_missing_treatment) == (0, 0)  # no event is a 0
    conv = analyze("send_time_test", db=db, metrics=["conversions"]).result("conversions")
    assert (item.note != "") == bool(conv.covariates)  # the funnel's total: conversions
    assert {p.part for p in s.parts} <= {"US", "GB", "DE", "BR", "IN"}
