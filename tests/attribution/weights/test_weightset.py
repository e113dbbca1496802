"""Weights from uplift rows: values by hand, guardrails, caps, shrinkage, derived rates, drift and
the circuit breaker, and the document (schema, determinism)."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import pytest

from tests.attribution.weights.test_weights_data import CLASSES, CREATED, estimate_rows, se_of
from upshot.attribution.weights.policy import ReachStats, drift, policy_hash
from upshot.attribution.weights.publish import render
from upshot.attribution.weights.read import check_document
from upshot.attribution.weights.weightset import build_document, compute_weights
from upshot.config import Governance
from upshot.errors import ConfigError
from upshot.period import Period

RATES = Governance().rates
Z = 1.959963984540054


def _by_class(ws):
    return {c.message_class: c for c in ws.classes}


def _hand_value(effects, rates=RATES):
    return sum(rates[k] * v for k, v in effects.items())


def test_values_are_rate_times_uplift_by_hand():
    ws = compute_weights(estimate_rows(), [], Governance(shrinkage=False))
    got = _by_class(ws)
    for cls, (channel, effects) in CLASSES.items():
        c = got[cls]
        assert c.channel == channel
        assert c.value_raw == pytest.approx(_hand_value(effects), rel=1e-12)
        # independent fallback: se² = Σ (rate × se_k)²
        se = math.sqrt(sum((RATES[k] * se_of(v)) ** 2 for k, v in effects.items()))
        assert c.value_raw_ci_upper - c.value_raw == pytest.approx(Z * se, rel=1e-6)
        assert c.covariance == "independent"
        assert c.value == c.value_raw  # shrinkage off
        assert math.isnan(c.shrinkage)
        parts = {p.objective: p.contribution for p in c.components}
        assert parts == pytest.approx({k: RATES[k] * v for k, v in effects.items()})
    assert got["d_email"].value_raw == pytest.approx(100 * 0.02 + 0.05 * 1 + 0.02)


def test_joint_covariance_is_used_when_present():
    cov = [
        {
            "message_class": "d_email",
            "segment": "all",
            "objective_a": "conversion",
            "objective_b": "engagement",
            "covariance": 0.5 * se_of(0.02) * se_of(1.0),
        },
    ]
    ws = compute_weights(estimate_rows(), cov, Governance(shrinkage=False))
    d = _by_class(ws)["d_email"]
    assert d.covariance == "partial"
    variance = sum((RATES[k] * se_of(v)) ** 2 for k, v in CLASSES["d_email"][1].items())
    variance += 2 * 100 * 0.05 * cov[0]["covariance"]
    assert d.value_raw_ci_upper - d.value_raw == pytest.approx(Z * math.sqrt(variance), rel=1e-6)


def test_optout_harm_gets_no_positive_weight_with_the_reason():
    ws = compute_weights(estimate_rows(), [], Governance())
    b = _by_class(ws)["b_push"]
    assert b.status == "guardrail"
    assert b.weight <= 0
    assert re.search(r"reachability uplift upper CI 0\.04\d* > max_optout_harm 0\.002", b.reason)
    a = _by_class(ws)["a_push"]
    assert a.status == "ok"
    assert a.weight == a.value > 0


def test_a_harmful_class_with_negative_value_keeps_its_negative_weight():
    classes = {**CLASSES, "b_push": ("push", {**CLASSES["b_push"][1], "reachability": 0.5})}
    b = _by_class(compute_weights(estimate_rows(classes), [], Governance()))["b_push"]
    assert b.value < 0
    assert b.weight == b.value


@pytest.mark.parametrize("status", ["insufficient_data", "no_overlap", "failed:singular"])
def test_no_estimate_means_weight_zero_and_nan_value(status):
    ws = compute_weights(estimate_rows(status={"a_push": status}), [], Governance())
    a = _by_class(ws)["a_push"]
    assert a.status == status
    assert a.weight == 0.0
    assert math.isnan(a.value)
    assert math.isnan(a.value_raw)
    assert "uplift status" in a.reason


def test_minimum_samples_and_failed_refutation():
    small = _by_class(compute_weights(estimate_rows(n_treated=100), [], Governance()))["a_push"]
    assert small.status == "insufficient_data"
    assert small.weight == 0.0
    assert small.value_raw > 0  # the estimate is reported, just not used
    assert "n_treated 100 (min 500)" in small.reason
    refuted = compute_weights(estimate_rows(refute_passed=False), [], Governance())
    assert all(c.status == "guardrail" and c.weight <= 0 for c in refuted.classes)
    assert "refutation failed" in _by_class(refuted)["a_push"].reason
    unrefuted = compute_weights(estimate_rows(refute_passed=None), [], Governance())
    assert _by_class(unrefuted)["a_push"].status == "ok"  # not run is not failed


def test_missing_optout_estimate_blocks_a_positive_weight():
    classes = {"x": ("push", {"conversion": 0.01})}
    x = _by_class(compute_weights(estimate_rows(classes), [], Governance()))["x"]
    assert x.status == "insufficient_data"  # reachability is rated but has no row
    rates = {"conversion": 100.0}
    y = _by_class(compute_weights(estimate_rows(classes), [], Governance(rates=rates)))["x"]
    assert y.status == "guardrail"
    assert "no reachability estimate" in y.reason


def test_channel_caps():
    ws = compute_weights(estimate_rows(), [], Governance(channel_caps={"email": 1.0}))
    d = _by_class(ws)["d_email"]
    assert d.status == "capped"
    assert d.weight == 1.0
    assert d.value > 1.0


def test_shrinkage_toward_the_channel_and_borrowed_prior():
    ws = compute_weights(estimate_rows(), [], Governance(shrinkage_min_classes=3))
    assert ws.priors["push"].scope == "push"
    assert ws.priors["push"].k == 3
    assert ws.priors["email"].scope == "*"  # one email class: borrow from all classes
    assert ws.priors["email"].k == 4  # ... the 4 classes, never their segments
    assert all(0 <= s.shrinkage <= 1 for s in ws.segments)
    for c in ws.classes:
        assert 0 <= c.shrinkage <= 1
        mean = ws.priors[c.channel].mean
        # the shrunk value lies between the raw value and the prior mean
        assert min(c.value_raw, mean) - 1e-12 <= c.value <= max(c.value_raw, mean) + 1e-12


def test_segments_inherit_the_class_guardrail():
    rows = estimate_rows()
    for r in rows:  # refutation failed for a_push overall only
        if r["message_class"] == "a_push" and r["segment"] == "all":
            r["refute_passed"] = False
    ws = compute_weights(rows, [], Governance())
    segs = [s for s in ws.segments if s.message_class == "a_push"]
    assert {s.segment for s in segs} == {"country=US", "country=DE"}
    assert all(s.status == "guardrail" and s.weight <= 0 for s in segs)
    assert all(s.reason == "class: refutation failed" for s in segs)
    c = [s for s in ws.segments if s.message_class == "c_push"]
    assert all(s.status == "ok" and s.weight > 0 for s in c)


def test_derived_optout_rate_per_channel():
    governance = Governance(reachability_rate="derived", shrinkage=False)
    reach = {"push": ReachStats(sends=3000, users=1000, weeks=2.0)}
    ws = compute_weights(estimate_rows(), [], governance, reach=reach)
    future = 3000 / 1000 / 2.0 * 26
    without = {
        c: _hand_value({k: v for k, v in e.items() if k != "reachability"})
        for c, (ch, e) in CLASSES.items()
        if ch == "push"
    }
    per_send = sum(without.values()) / 3  # equal n_treated
    assert ws.derived["push"].future_sends_per_user == pytest.approx(future)
    assert ws.derived["push"].value_per_send == pytest.approx(per_send)
    assert ws.channel_rates == {"push": {"reachability": pytest.approx(-future * per_send)}}
    b = _by_class(ws)["b_push"]
    reach_part = next(p for p in b.components if p.objective == "reachability")
    assert reach_part.rate == pytest.approx(-future * per_send)
    d = _by_class(ws)["d_email"]  # no volume for email: the manual rate
    assert next(p for p in d.components if p.objective == "reachability").rate == -25.0


def test_drift_and_the_breaker_by_hand():
    previous = {"a": 1.0, "b": 1.0, "c": 1.0, "d": -1.0}
    new = {"a": 1.2, "b": 2.0, "c": 1.0, "e": 5.0}
    d = drift(previous, new, threshold=0.5, max_share=0.3, previous_version="v1")
    rows = {r.message_class: r for r in d.rows}
    assert rows["a"].rel_change == pytest.approx(0.2)
    assert rows["b"].moved
    assert not rows["c"].moved
    assert rows["d"].note == "removed"
    assert rows["e"].note == "added"
    assert d.n_compared == 3
    assert d.n_moved == 1
    assert d.share_moved == pytest.approx(1 / 3)
    assert d.tripped
    assert not drift(previous, new, threshold=0.5, max_share=0.34).tripped
    assert not drift(None, new, threshold=0.5, max_share=0.0).tripped


def test_drift_floors_near_zero_weights_at_the_median():
    previous = {"a": 0.001, "b": 2.0, "c": 2.0}
    new = {"a": 0.01, "b": 2.0, "c": 2.0}
    d = drift(previous, new, threshold=0.5, max_share=0.3)
    assert not d.tripped  # 0.009 over the median 2.0, not over 0.001
    flip = drift({"a": 0.5}, {"a": -0.1}, threshold=0.5, max_share=0.3)
    assert flip.rows[0].flipped
    assert flip.tripped


def _document(governance=None, rows=None, version=None):
    governance = governance or Governance()
    ws = compute_weights(rows or estimate_rows(), [], governance)
    return build_document(
        ws,
        governance=governance,
        generated_at=CREATED,
        window=Period(None, None),
        source={
            "uplift_run_id": "r",
            "estimator": "linear_dml",
            "inputs_fingerprint": None,
            "seed": 0,
        },
        segments=b"parquet bytes",
        version=version,
    )


def test_document_is_deterministic_and_versioned_by_content():
    first, second = _document(), _document()
    assert render(first) == render(second)
    assert re.fullmatch(r"20261116-[0-9a-f]{10}", first["weights_version"])
    assert first["segments"]["file"] == first["weights_version"] + ".parquet"
    changed = _document(Governance(max_optout_harm=0.5))
    assert changed["weights_version"] != first["weights_version"]
    assert changed["policy"]["hash"] != first["policy"]["hash"]
    assert first["policy"]["hash"] == policy_hash(Governance())
    assert _document(version="2026-W47")["weights_version"] == "2026-W47"


def test_document_validates_with_nan_as_null():
    doc = _document(rows=estimate_rows(status={"a_push": "no_overlap"}))
    check_document(doc, "doc")  # raises on any violation
    rendered = render(doc).decode()
    assert "NaN" not in rendered
    a = next(c for c in doc["classes"] if c["message_class"] == "a_push")
    assert a["weight"] == 0.0
    assert a["status"] == "no_overlap"
    assert [c["message_class"] for c in doc["classes"]] == ["d_email", "a_push", "b_push", "c_push"]


def test_governance_is_validated_with_the_key_named():
    with pytest.raises(ConfigError, match=r"governance\.drift_max_share == 1\.5"):
        Governance(drift_max_share=1.5)
    with pytest.raises(ConfigError, match=r"governance\.channel_caps\.push == -1"):
        replace(Governance(), channel_caps={"push": -1.0})
