"""Governance rates on a long-term outcome: the value read off the projection, by hand,
and a class the backtest flags blocked with the reason (upshot.attribution.weights.longterm)."""

from __future__ import annotations

import math

import pytest

from tests.attribution.weights.test_weights_data import CLASSES, CREATED, estimate_rows, se_of
from upshot.attribution.weights.longterm import priced
from upshot.attribution.weights.weightset import compute_weights
from upshot.config import Governance

Z = 1.959963984540054  # norm.ppf(0.975)
RATES = {"conversion": 100.0, "engagement": 0.05, "retention": 0.0, "retention_180d": 1.0,
         "reachability": -25.0}  # fmt: skip
# projected retention_180d (days in 180) and its se, per class; b_push is flagged
PROJECTED = {"a_push": (2.0, 0.5), "b_push": (-1.5, 0.4), "c_push": (0.8, 0.3),
             "d_email": (0.3, 0.2)}  # fmt: skip


def _projected(backtest=None, status=None):
    return [
        {
            "message_class": cls, "channel": CLASSES[cls][0], "outcome": "retention_180d",
            "week": None, "estimate": est, "se": se, "ci_lower": est - Z * se,
            "ci_upper": est + Z * se, "n_treated": 5000, "n_control": 1000,
            "status": (status or {}).get(cls, "ok"),
            "backtest": (backtest or {}).get(cls, "ok"), "created_at": CREATED,
        }
        for cls, (est, se) in PROJECTED.items()
    ]  # fmt: skip


def test_a_rated_long_term_outcome_is_valued_on_the_projection_by_hand():
    governance = Governance(rates=RATES, shrinkage=False)
    rows = priced(estimate_rows(segments=("all",)), _projected(), RATES)
    got = {c.message_class: c for c in compute_weights(rows, [], governance).classes}
    for cls, (_, effects) in CLASSES.items():
        est, se_l = PROJECTED[cls]
        # by hand: 100 x conversion + 0.05 x engagement + 1 x retention_180d - 25 x opt-outs
        # (7-day retention rated 0 drops out); independent estimates: se^2 = sum (rate se)^2
        value = 100 * effects["conversion"] + 0.05 * effects["engagement"] + est
        value += -25 * effects["reachability"]
        se = math.sqrt((100 * se_of(effects["conversion"])) ** 2
                       + (0.05 * se_of(effects["engagement"])) ** 2 + se_l**2
                       + (25 * se_of(effects["reachability"])) ** 2)  # fmt: skip
        c = got[cls]
        assert c.value_raw == pytest.approx(value, rel=1e-12), cls
        assert c.value_raw_ci_upper - c.value_raw == pytest.approx(Z * se, rel=1e-6), cls
        parts = {p.objective: p.contribution for p in c.components}
        assert parts["retention_180d"] == pytest.approx(est)
        assert "retention" not in parts
    # a_push: 1.0 + 0.25 + 2.0 = 3.25, no guardrail: weighted by its value
    assert got["a_push"].value_raw == pytest.approx(3.25)
    assert got["a_push"].weight == pytest.approx(3.25)


def test_a_class_the_backtest_flags_is_not_priced_on_its_projection():
    governance = Governance(rates=RATES, shrinkage=False)
    rows = priced(estimate_rows(segments=("all",)), _projected({"c_push": "surrogacy_violated"}),
                  RATES)  # fmt: skip
    got = {c.message_class: c for c in compute_weights(rows, [], governance).classes}
    c = got["c_push"]
    assert c.weight == 0.0
    # a status the weights file's schema allows (failed:<why>), weight 0, the reason said
    assert c.status == "failed:surrogacy_violated"
    assert c.reason == "retention_180d: uplift status failed:surrogacy_violated"
    # the others keep their value; an unbacktested class is priced on its projection
    rows = priced(estimate_rows(segments=("all",)), _projected({"a_push": "not_backtested"}),
                  RATES)  # fmt: skip
    a = {c.message_class: c for c in compute_weights(rows, [], governance).classes}["a_push"]
    assert (a.status, a.weight) == ("ok", pytest.approx(3.25))


def test_an_unrated_outcome_adds_nothing_and_a_missing_projection_blocks():
    governance = Governance(shrinkage=False)  # default rates: no long-term outcome
    base = estimate_rows(segments=("all",))
    assert priced(base, _projected(), governance.rates) == base
    rows = priced(base, _projected(status={"d_email": "insufficient_data"}), RATES)
    weights = compute_weights(rows, [], Governance(rates=RATES, shrinkage=False))
    d = {c.message_class: c for c in weights.classes}["d_email"]
    assert (d.weight, d.status) == (0.0, "insufficient_data")


def test_the_weights_file_of_a_blocked_class_passes_the_schema():
    from tests.attribution.weights.test_weightset import _document
    from upshot.attribution.weights.read import check_document

    governance = Governance(rates=RATES, shrinkage=False)
    rows = priced(estimate_rows(), _projected({"c_push": "surrogacy_violated"}), RATES)
    doc = _document(governance, rows)
    check_document(doc, "doc")  # raises on any violation (the status must be one it allows)
    c = next(c for c in doc["classes"] if c["message_class"] == "c_push")
    assert (c["weight"], c["status"]) == (0.0, "failed:surrogacy_violated")
    # the policy in the file names the long-term rate the values were priced with
    assert doc["policy"]["rates"]["retention_180d"] == 1.0
