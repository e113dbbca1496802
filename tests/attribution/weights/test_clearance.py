"""The decisions a class blocked by the opt-out guardrail needs to clear it (issue 13,
item 14): checked by recomputing the weights with that many decisions."""

from __future__ import annotations

import math

import pytest

from tests.attribution.weights.test_weights_data import CLASSES, estimate_rows
from tests.conftest import run_cli
from upshot.attribution.weights.clearance import optout_clearance
from upshot.attribution.weights.weightset import compute_weights
from upshot.config import Governance

Z = 1.959963984540054


def test_needed_decisions_are_where_the_bound_meets_the_limit():
    # b_push: opt-out uplift 0.03, se 0.2·0.03 + 0.0005 = 0.0065, bound 0.04274 > 0.04
    governance = Governance(max_optout_harm=0.04, shrinkage=False)
    rows = estimate_rows(segments=("all",))
    found = optout_clearance(compute_weights(rows, [], governance), governance).rows
    assert [r.message_class for r in found] == ["b_push"]
    row = found[0]
    assert row.decisions == 6000
    # by hand: 6000 · (1.96 · 0.0065 / (0.04 - 0.03))² = 9,738.4 → 9,739
    assert row.decisions_needed == math.ceil(6000 * (Z * 0.0065 / 0.01) ** 2) == 9739
    # with that many decisions (se shrunk by √(n/n')), the guardrail no longer blocks it;
    # with one decision in twenty fewer it still does
    for factor, blocked in ((1.0, False), (0.95, True)):
        n = row.decisions_needed * factor
        scale = math.sqrt(row.decisions / n)
        more = [
            {
                **r,
                "ate_se": r["ate_se"] * scale,
                "ate_ci_lower": r["ate"] - Z * r["ate_se"] * scale,
                "ate_ci_upper": r["ate"] + Z * r["ate_se"] * scale,
                "n_treated": round(r["n_treated"] * n / row.decisions),
                "n_control": round(r["n_control"] * n / row.decisions),
            }
            for r in rows
            if r["message_class"] == "b_push"
        ]
        b = compute_weights(more, [], governance).classes[0]
        assert (b.status == "guardrail") is blocked, (factor, b.status, b.reason)


def test_an_estimate_over_the_limit_cannot_be_cleared():
    governance = Governance(max_optout_harm=0.02, shrinkage=False)
    ws = compute_weights(estimate_rows(segments=("all",)), [], governance)
    (row,) = optout_clearance(ws, governance).rows
    assert row.message_class == "b_push"
    assert row.decisions_needed is None
    assert "more data will not clear it" in row.note
    assert row.optout_uplift == pytest.approx(CLASSES["b_push"][1]["reachability"])


def test_export_prints_the_clearance(tmp_path):
    from tests.attribution.weights.test_weights_data import insert_estimates

    db = tmp_path / "upshot.duckdb"
    insert_estimates(db, estimate_rows(segments=("all",)), "run-1")
    (tmp_path / "upshot.toml").write_text("[governance]\nmax_optout_harm = 0.04\n")
    args = ("--db", str(db), "weights", "export", "--check", "--no-evaluate")
    table = run_cli(*args, cwd=tmp_path)
    assert table.code == 0, table.err
    assert "blocked by the opt-out guardrail: decisions to clear it" in table.out
    assert "9739" in table.out.replace(",", "")
    body = run_cli(*args, "--json", cwd=tmp_path)
    import json

    (row,) = json.loads(body.out)["optout_clearance"]
    assert (row["message_class"], row["decisions"], row["decisions_needed"]) == (
        "b_push",
        6000,
        9739,
    )
