"""The verdict rule, metric by metric, on constructed results with known statistics."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from upshot.experiments import decide
from upshot.experiments.results import EffectResult, ExperimentAnalysis
from upshot.experiments.srm import srm_test


def row(
    metric: str,
    z: float,
    *,
    role="success",
    margin=0.0,
    hib=True,
    rel=0.0,
    rel_se=0.01,
    status="ok",
) -> EffectResult:
    return EffectResult(
        metric=metric, arm="treatment", control=1.0, treatment=1.0 + rel, effect=z * 0.1,
        effect_se=0.1, effect_ci_lower=math.nan, effect_ci_upper=math.nan, rel_effect=rel,
        rel_effect_se=rel_se, rel_effect_ci_lower=math.nan, rel_effect_ci_upper=math.nan,
        pvalue=2 * stats.norm.sf(abs(z)), pvalue_adj=math.nan, method="z", status=status,
        n_control=5000, n_treatment=5000, statistic=z, df=math.inf, role=role, margin=margin,
        higher_is_better=hib,
    )  # fmt: skip


def analysis(*rows: EffectResult, counts=(5000, 5000)) -> ExperimentAnalysis:
    arms = {"control": counts[0], "treatment": counts[1]}
    srm = srm_test(arms, {"control": 1, "treatment": 1})
    return ExperimentAnalysis("e", "control", arms, srm, tuple(rows))


def test_one_significant_success_and_holding_guardrails_ship():
    # two success metrics: each is tested one-sided at 0.05 / 2 = 0.025, so z = 2.1 wins
    a = analysis(
        row("s1", 2.1, rel=0.02),
        row("s2", 0.3),
        row("g", 0.0, role="guardrail", margin=0.05, rel=0.0, rel_se=0.01),
    )
    v = decide(a)
    assert v.verdict == "ship"
    assert v.ship_arms == ("treatment",)
    assert v.success_level == pytest.approx(0.025)
    ds = {d.metric: d for d in v.arms[0].metrics}
    assert ds["s1"].passed
    assert not ds["s2"].passed
    assert ds["s1"].pvalue == pytest.approx(stats.norm.sf(2.1), rel=1e-12)
    # the guardrail: (rel + margin) / se = 5 standard errors above the margin
    assert ds["g"].pvalue == pytest.approx(stats.norm.sf(5.0), rel=1e-9)


def test_success_alpha_is_split_over_success_metrics_only():
    a = analysis(row("s1", 2.1), row("s2", 0.3), row("s3", 0.1))
    assert decide(a).success_level == pytest.approx(0.05 / 3)
    with_guards = analysis(
        row("s1", 2.1), *(row(f"g{i}", 0, role="guardrail", margin=0.1) for i in range(4))
    )
    assert decide(with_guards).success_level == pytest.approx(0.05)  # guardrails do not count
    assert decide(with_guards).verdict == "ship"


def test_a_guardrail_not_shown_non_inferior_blocks_shipping():
    a = analysis(
        row("s", 4.0, rel=0.05),
        row("g", 0.0, role="guardrail", margin=0.01, rel=-0.005, rel_se=0.01),
    )
    v = decide(a)
    assert v.verdict == "no_ship"
    assert any("guardrails not shown non-inferior: g" in r for r in v.arms[0].reasons)


def test_lower_is_better_metrics_turn_the_tests_around():
    # opt-outs up significantly: a deterioration that blocks shipping
    a = analysis(
        row("s", 4.0, rel=0.05), row("opt_outs", 3.0, role="deterioration", hib=False, rel=0.2)
    )
    v = decide(a)
    d = {d.metric: d for d in v.arms[0].metrics}["opt_outs"]
    assert v.verdict == "no_ship"
    assert d.deteriorated
    assert d.passed is None
    assert d.deterioration_pvalue == pytest.approx(stats.norm.sf(3.0), rel=1e-9)
    # opt-outs down: fine
    good = analysis(
        row("s", 4.0, rel=0.05), row("opt_outs", -3.0, role="deterioration", hib=False, rel=-0.2)
    )
    assert decide(good).verdict == "ship"


def test_a_success_metric_that_deteriorates_blocks_shipping():
    a = analysis(row("s1", 4.0, rel=0.05), row("s2", -2.6, rel=-0.03))
    v = decide(a)  # s2 one-sided worse at p = 0.0047 < 0.01
    assert v.verdict == "no_ship"
    assert any("significant deterioration: s2" in r for r in v.arms[0].reasons)


def test_quality_checks_make_the_verdict_invalid():
    v = decide(analysis(row("s", 6.0), counts=(5300, 4700)))
    assert v.verdict == "invalid"
    assert any("sample ratio mismatch" in q for q in v.quality)
    v = decide(analysis(row("s", 6.0), counts=(60, 60)), min_sample=100)
    assert v.verdict == "invalid"
    assert any("min_sample" in q for q in v.quality)


def test_rows_without_an_estimate_cannot_pass():
    a = analysis(row("s", math.nan, status="insufficient_data"), row("s2", 3.0, rel=0.01))
    v = decide(a)
    d = {d.metric: d for d in v.arms[0].metrics}
    assert d["s"].passed is False
    assert "insufficient_data" in d["s"].reason
    assert v.verdict == "ship"  # s2 still wins; s failing is not a deterioration
    no_success = analysis(row("g", 0, role="guardrail", margin=0.1))
    assert decide(no_success).verdict == "no_ship"


def test_noninferiority_with_a_t_distribution_uses_its_df():
    r = replace(row("g", 0.0, role="guardrail", margin=0.02, rel=-0.01, rel_se=0.004), df=30.0)
    d = decide(analysis(row("s", 5.0), r)).arms[0].metrics[1]
    assert d.pvalue == pytest.approx(stats.t.sf((-0.01 + 0.02) / 0.004, 30), rel=1e-9)
    assert d.passed


def test_sequential_verdicts_use_the_confidence_sequence():
    a = replace(analysis(row("s", 2.5, rel=0.03)), sequential={"tuning": 10000.0, "rho": 0.0})
    # z = 2.5 is significant at a fixed horizon but not for an always-valid sequence
    assert decide(replace(a, sequential=None)).verdict == "ship"
    assert decide(a).verdict == "no_ship"
    big = replace(analysis(row("s", 6.0, rel=0.06)), sequential={"tuning": 10000.0, "rho": 0.0})
    assert decide(big).verdict == "ship"
    assert np.isfinite(decide(big).arms[0].metrics[0].pvalue)
